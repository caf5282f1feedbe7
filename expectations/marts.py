"""Mart suites: the business rules of ``docs/metrics.md`` and the marts' distributions.

Rules (ERROR, they gate everything downstream of the mart):

- every mart row carries a tenant;
- every ratio (a ``*_rate``, ``*_rate_<window>`` or ``*_share`` column) lies in [0, 1]
  and every stored numerator is at most its denominator (``<x>_numerator`` against
  ``<x>_denominator``, plus the pairs each mart names: matched orders against requested
  ones, mature learners against the cohort, ...); the HHI lies in [0, 10,000];
- LTV never decreases from 30 to 90 to 365 days for learners mature at the longer
  window, nor from 365 days to date;
- an instructor month's take rate lies within what the revenue shares allow:
  0 <= take_rate <= 1 - min(revenue_share_pct) / 100;
- data quality: every raw row of a load is used or quarantined (rows_in_raw =
  rows_used + rows_quarantined).

Distributions (WARN, reported but never blocking) flag a mart whose shape drifted.
A rule whose column is missing fails on ``expect_column_to_exist``: a renamed column
never silently turns a rule off.

``great_expectations`` is imported inside the functions that use it, on purpose: it takes
seconds to import, and the CLI and the Dagster definitions load these modules without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from expectations.validation import Severity, Suite, SuiteInputs

RATIO = re.compile(r"_rate(_\w+)?$|_share$")
NUMERATOR = re.compile(r"^(?P<stem>.+)_numerator$")


def _exist(inputs: SuiteInputs, *columns: str) -> list[Any]:
    """``expect_column_to_exist`` for each named column the batch lacks."""
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnToExist(column=c) for c in columns if c not in inputs.columns]


def common_rules(inputs: SuiteInputs) -> list[Any]:
    """Rules every mart obeys: tenant on every row, ratios in [0, 1], numerator <= denominator."""
    import great_expectations.expectations as gxe

    columns = list(inputs.columns)
    rules: list[Any] = [*_exist(inputs, "tenant_id")]
    if "tenant_id" in columns:
        rules.append(gxe.ExpectColumnValuesToNotBeNull(column="tenant_id"))
    for column in columns:
        if RATIO.search(column):
            rules.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=1))
        match = NUMERATOR.match(column)
        if match and f"{match['stem']}_denominator" in columns:
            rules.append(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=f"{match['stem']}_denominator",
                    column_B=column,
                    or_equal=True,
                    ignore_row_if="either_value_is_missing",
                )
            )
    return rules


def _at_most(inputs: SuiteInputs, pairs: Sequence[tuple[str, str]]) -> list[Any]:
    """``part <= whole`` for each (part, whole) pair (missing columns fail on existence)."""
    import great_expectations.expectations as gxe

    rules = _exist(inputs, *{c for pair in pairs for c in pair})
    for part, whole in pairs:
        rules.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=whole,
                column_B=part,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        )
    return rules


def _liquidity_rules(inputs: SuiteInputs) -> list[Any]:
    import great_expectations.expectations as gxe

    pairs = [
        ("courses_never_sold", "courses_published"),
        ("orders_matched_within_24h", "orders_requested"),
        ("orders_cancelled_without_match", "orders_requested"),
        ("top_decile_gross_sales_usd", "instructor_gross_sales_usd"),
    ]
    return [
        *_at_most(inputs, pairs),
        *_exist(inputs, "seller_hhi"),
        gxe.ExpectColumnValuesToBeBetween(column="seller_hhi", min_value=0, max_value=10_000),
    ]


def _cohort_rules(inputs: SuiteInputs) -> list[Any]:
    pairs = [
        ("mature_learners_365", "mature_learners_90"),
        ("mature_learners_90", "mature_learners_30"),
        ("mature_learners_30", "cohort_size"),
    ]
    return _at_most(inputs, pairs)


def _learner_ltv_rules(inputs: SuiteInputs) -> list[Any]:
    import great_expectations.expectations as gxe

    pairs = [
        ("mature_ltv_90_usd", "mature_ltv_30_usd"),
        ("mature_ltv_365_usd", "mature_ltv_90_usd"),
        ("ltv_to_date_usd", "mature_ltv_365_usd"),
    ]
    return [
        *_exist(inputs, "ltv_30_usd", "ltv_90_usd", "ltv_365_usd", "ltv_to_date_usd"),
        *[
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=a, column_B=b, or_equal=True, ignore_row_if="either_value_is_missing"
            )
            for a, b in pairs
        ],
    ]


# Each window's LTV is kept only where the learner is mature at the *longer* window, so a
# pair compares like with like; immature rows drop out via ignore_row_if.
LEARNER_LTV_QUERY = """
select
    *,
    case when is_mature_90 then ltv_30_usd end as mature_ltv_30_usd,
    case when is_mature_90 then ltv_90_usd end as mature_ltv_90_usd,
    case when is_mature_365 then ltv_365_usd end as mature_ltv_365_usd
from {relation}
"""


def _instructor_pnl_rules(inputs: SuiteInputs) -> list[Any]:
    import great_expectations.expectations as gxe

    min_share = inputs.scalar(
        "select min(revenue_share_pct) from raw.instructor_profiles where _source_deleted_at is null"
    )
    max_take = 1 - float(min_share) / 100 if min_share is not None else 1.0
    return [
        *_exist(inputs, "take_rate", "net_sales_usd", "gross_sales_usd", "platform_revenue_usd"),
        gxe.ExpectColumnValuesToBeBetween(
            column="take_rate_before_rounding", min_value=0, max_value=max_take
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="gross_sales_usd",
            column_B="net_sales_usd",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
    ]


# platform_revenue_usd is rounded to the cent, so take_rate may exceed the share's bound by
# up to 0.005 / gross; the rule compares the rate with that half cent taken back.
INSTRUCTOR_PNL_QUERY = """
select
    *,
    case
        when gross_sales_usd > 0
            then (platform_revenue_usd - sign(platform_revenue_usd) * 0.005) / gross_sales_usd
    end as take_rate_before_rounding
from {relation}
"""


def _data_quality_rules(inputs: SuiteInputs) -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        *_exist(inputs, "rows_in_raw", "rows_used", "rows_quarantined"),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="rows_in_raw",
            column_B="rows_accounted_for",
            ignore_row_if="either_value_is_missing",
        ),
        gxe.ExpectColumnValuesToBeBetween(column="rows_quarantined", min_value=0),
    ]


# No row disappears without a reason: every raw row of a load is used or quarantined.
DATA_QUALITY_QUERY = """
select *, rows_used + rows_quarantined as rows_accounted_for from {relation}
"""


def _ltv_distribution(inputs: SuiteInputs) -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        *_exist(inputs, "ltv_to_date_usd", "cohort_month"),
        gxe.ExpectColumnMinToBeBetween(column="ltv_to_date_usd", min_value=0),
        gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(column="cohort_month", min_value=1),
        gxe.ExpectColumnMeanToBeBetween(column="ltv_to_date_usd", min_value=1, max_value=100_000),
    ]


def _pnl_distribution(inputs: SuiteInputs) -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        *_exist(inputs, "take_rate", "contribution_margin_usd"),
        gxe.ExpectColumnMedianToBeBetween(column="take_rate", min_value=0.03, max_value=0.63),
        gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(column="take_rate", min_value=0.5),
    ]


def _with_common(
    specific: Callable[[SuiteInputs], list[Any]] | None,
) -> Callable[[SuiteInputs], Sequence[Any]]:
    def build(inputs: SuiteInputs) -> list[Any]:
        return [*common_rules(inputs), *(specific(inputs) if specific else [])]

    return build


#: mart -> (extra ERROR rules, batch query, WARN distribution builder)
_MARTS: dict[str, tuple[Callable[[SuiteInputs], list[Any]] | None, str | None, Any]] = {
    "mart_learner_ltv": (_learner_ltv_rules, LEARNER_LTV_QUERY, _ltv_distribution),
    "mart_ltv_cohorts": (_cohort_rules, None, None),
    "mart_instructor_pnl": (_instructor_pnl_rules, INSTRUCTOR_PNL_QUERY, _pnl_distribution),
    "mart_marketplace_liquidity": (_liquidity_rules, None, None),
    "mart_data_quality": (_data_quality_rules, DATA_QUALITY_QUERY, None),
}


def mart_suites(mart: str) -> list[Suite]:
    """The suites of one mart: its ERROR rules and, where it has one, its WARN distribution."""
    specific, query, distribution = _MARTS.get(mart, (None, None, None))
    suites = [
        Suite(
            name=f"marts.{mart}.rules",
            table=mart,
            severity=Severity.ERROR,
            description=f"{mart} obeys the business rules of docs/metrics.md.",
            build=_with_common(specific),
            query=query or "select * from {relation}",
        )
    ]
    if distribution is not None:
        suites.append(
            Suite(
                name=f"marts.{mart}.distribution",
                table=mart,
                severity=Severity.WARN,
                description=f"{mart}'s distribution has not drifted from what is plausible.",
                build=distribution,
            )
        )
    return suites
