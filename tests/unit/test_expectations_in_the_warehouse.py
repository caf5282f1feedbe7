"""Expectations evaluated in DuckDB agree with Great Expectations' own evaluation of the same
expectations on the same data (pandas), verdict and counts, for every form the warehouse
evaluates; a type without a warehouse form is still validated by GX itself."""

from __future__ import annotations

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import pytest

from expectations.validation import evaluate

TABLE = """
create table t as select
    range as id,
    case when range % 4 = 0 then null else range end as a,
    range * 2 - 20 as b,
    case when range % 7 = 0 then 'x' || range else 'y' end as s,
    range % 5 as d,
    case when range % 3 = 0 then null else range % 6 end as p
from range(40)
"""

EXPECTATIONS = [
    gxe.ExpectColumnValuesToNotBeNull(column="a"),
    gxe.ExpectColumnValuesToNotBeNull(column="id"),
    gxe.ExpectColumnValuesToBeBetween(column="a", min_value=0, max_value=30),
    gxe.ExpectColumnValuesToBeBetween(column="b", min_value=0),
    gxe.ExpectColumnValuesToBeBetween(column="b", max_value=10, strict_max=True),
    gxe.ExpectColumnValuesToBeBetween(column="a", min_value=1, max_value=39),
    gxe.ExpectColumnValuesToBeUnique(column="d"),
    gxe.ExpectColumnValuesToBeUnique(column="id"),
    gxe.ExpectColumnValuesToMatchRegex(column="s", regex=r"^x\d+$"),
    gxe.ExpectColumnValuesToBeInSet(column="d", value_set=[0, 1, 2]),
    gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="a", column_B="b", or_equal=True, ignore_row_if="either_value_is_missing"
    ),
    gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="id", column_B="d", or_equal=False, ignore_row_if="either_value_is_missing"
    ),
    gxe.ExpectColumnPairValuesToBeEqual(
        column_A="d", column_B="p", ignore_row_if="either_value_is_missing"
    ),
    gxe.ExpectColumnMeanToBeBetween(column="b", min_value=0, max_value=100),
    gxe.ExpectColumnMedianToBeBetween(column="b", min_value=0, max_value=100),
    gxe.ExpectColumnMinToBeBetween(column="b", min_value=0),
    gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(column="a", min_value=0.8),
    gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(column="a", min_value=0.7),
    gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=39),
    gxe.ExpectTableColumnsToMatchSet(column_set=["id", "a", "b", "s", "d", "p"], exact_match=True),
    gxe.ExpectTableColumnsToMatchSet(column_set=["id", "a"], exact_match=False),
    gxe.ExpectTableColumnsToMatchSet(column_set=["id", "a"], exact_match=True),
    gxe.ExpectColumnToExist(column="a"),
    gxe.ExpectColumnToExist(column="nope"),
]


def gx_results(frame, expectations):
    """Great Expectations' own results over a pandas frame, in the expectations' order."""
    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas(name="reference").add_dataframe_asset(name="t")
    suite = context.suites.add(
        gx.ExpectationSuite(name="reference", expectations=[e.copy() for e in expectations])
    )
    ids = [e.id for e in suite.expectations]
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(
            name="reference",
            data=asset.add_batch_definition_whole_dataframe(name="whole"),
            suite=suite,
        )
    )
    outcome = validation.run(
        batch_parameters={"dataframe": frame}, result_format={"result_format": "SUMMARY"}
    )
    by_id = {r.expectation_config.id: r for r in outcome.results}
    return [by_id[i] for i in ids]


@pytest.fixture(scope="module")
def compared():
    con = duckdb.connect()
    con.execute(TABLE)
    columns = [row[0] for row in con.execute("describe t").fetchall()]
    rows, ours = evaluate(con, "select * from t", columns, EXPECTATIONS)
    return rows, ours, gx_results(con.sql("select * from t").df(), EXPECTATIONS)


@pytest.mark.parametrize("index", range(len(EXPECTATIONS)))
def test_the_warehouse_verdict_is_great_expectations_verdict(compared, index: int) -> None:
    rows, ours, theirs = compared
    assert rows == 40
    mine, reference = ours[index], theirs[index]
    kind = reference.expectation_config.type
    assert mine.success == reference.success, kind
    for key in ("element_count", "unexpected_count", "missing_count"):
        if key in reference.result:
            assert mine.result[key] == reference.result[key], (kind, key)
    if "unexpected_percent" in reference.result:
        assert mine.result["unexpected_percent"] == pytest.approx(
            reference.result["unexpected_percent"]
        ), kind
    if "observed_value" in reference.result:
        observed = reference.result["observed_value"]
        if isinstance(observed, list):
            assert sorted(mine.result["observed_value"]) == sorted(observed), kind
        else:
            assert mine.result["observed_value"] == pytest.approx(observed), kind
    if reference.result.get("unexpected_count"):
        assert len(mine.result["partial_unexpected_list"]) == min(
            20, reference.result["unexpected_count"]
        )


def test_the_verdicts_are_not_all_alike(compared) -> None:
    """The fixture exercises both outcomes (a comparison of all-passing results proves little)."""
    _, ours, _ = compared
    assert 5 < sum(r.success for r in ours) < len(ours) - 5


def test_a_type_without_a_warehouse_form_is_validated_by_great_expectations() -> None:
    con = duckdb.connect()
    con.execute(TABLE)
    columns = [row[0] for row in con.execute("describe t").fetchall()]
    expectations = [
        gxe.ExpectColumnValueLengthsToBeBetween(column="s", min_value=1, max_value=2),
        gxe.ExpectColumnValuesToNotBeNull(column="a"),
    ]
    _, results = evaluate(con, "select * from t", columns, expectations)
    lengths = results[0]
    assert lengths.expectation_config.type == "expect_column_value_lengths_to_be_between"
    # 'y', 'x0' and 'x7' fit; 'x14', 'x21', 'x28' and 'x35' are 3 characters long
    assert not lengths.success and lengths.result["unexpected_count"] == 4
    assert results[1].result["unexpected_count"] == 10
