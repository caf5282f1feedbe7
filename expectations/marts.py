"""Mart suites: the business rules of ``shared/METRICS.md`` and the marts' distributions.

Rules (ERROR, they gate everything downstream of the mart):

- every mart row carries a tenant;
- every ratio (a ``*_rate`` or ``*_share`` column) lies in [0, 1] and every stored
  numerator is at most its denominator;
- LTV never decreases from 30 to 90 to 365 days for learners mature at the longer
  window, nor from 365 days to date;
- an instructor month's take rate lies within what the revenue shares allow:
  0 <= take_rate <= 1 - min(revenue_share_pct) / 100;
- data quality: rows read = rows landed + rows quarantined.

Distributions (WARN, reported but never blocking) flag a mart whose shape drifted.
A rule whose column is missing fails on ``expect_column_to_exist``: a renamed column
never silently turns a rule off.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from expectations.validation import Severity, Suite, SuiteInputs

RATIO = re.compile(r"(_rate|_share)$|^share_")
NUMERATOR = re.compile(r"^(?P<stem>.+)_numerator$")


def _exist(inputs: SuiteInputs, *columns: str) -> list[Any]:
    """``expect_column_to_exist`` for each named column the batch lacks."""
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnToExist(column=c) for c in columns if c not in inputs.frame.columns]


def common_rules(inputs: SuiteInputs) -> list[Any]:
    """Rules every mart obeys: tenant on every row, ratios in [0, 1], numerator <= denominator."""
    import great_expectations.expectations as gxe

    columns = list(inputs.frame.columns)
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
        *_exist(inputs, "take_rate", "net_sales_usd", "gross_sales_usd"),
        gxe.ExpectColumnValuesToBeBetween(column="take_rate", min_value=0, max_value=max_take),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="gross_sales_usd",
            column_B="net_sales_usd",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
    ]


def _data_quality_rules(inputs: SuiteInputs) -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        *_exist(inputs, "rows_read", "rows_landed", "rows_quarantined"),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="rows_read",
            column_B="rows_accounted_for",
            ignore_row_if="either_value_is_missing",
        ),
    ]


DATA_QUALITY_QUERY = """
select *, rows_landed + rows_quarantined as rows_accounted_for from {relation}
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
    "mart_ltv_cohorts": (None, None, None),
    "mart_instructor_pnl": (_instructor_pnl_rules, None, _pnl_distribution),
    "mart_marketplace_liquidity": (None, None, None),
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
            description=f"{mart} obeys the business rules of METRICS.md.",
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
