"""LookML views and dbt exposures generated from the manifest: they parse, cover every served
model, and their measures compute docs/metrics.md's numbers (checked against plain Python)."""

from __future__ import annotations

import statistics

import duckdb
import lkml
import pytest
import yaml

from serving.exposures import REPORT_MARTS, write_exposures
from serving.lookml import write_views
from tests.serving_support import build_warehouse, mart_rows, write_manifest


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    base = tmp_path_factory.mktemp("lookml")
    rows = mart_rows(seed=9)
    warehouse = build_warehouse(base / "wh.duckdb", rows)
    manifest = write_manifest(base / "manifest.json", warehouse)
    paths = write_views(manifest, base / "views", schema="main_marts")
    views = {}
    for path in [p for p in paths if p.name.endswith(".view.lkml")]:
        parsed = lkml.load(path.read_text())
        (view,) = parsed["views"]
        views[view["name"]] = view
    return rows, warehouse, manifest, views, base


def measure_sql(view: dict, name: str) -> str:
    """Compile one generated measure to SQL the way Looker would (filters as FILTER)."""
    (measure,) = [m for m in view["measures"] if m["name"] == name]
    expr = measure.get("sql", "").replace("${TABLE}", "t")
    filters = [f for group in measure.get("filters__all", []) for f in group]
    assert all(v == "yes" for f in filters for v in f.values())
    where = " and ".join(f"t.{field}" for f in filters for field in f)
    filt = f" filter (where {where})" if where else ""
    kind = measure["type"]
    if kind == "count":
        return f"count(*){filt}"
    if kind in ("sum", "average", "median"):
        fn = {"sum": "sum", "average": "avg", "median": "median"}[kind]
        return f"{fn}({expr}){filt}"
    return expr


def evaluate(warehouse, view: dict, name: str, where: str = "true"):
    table = view["sql_table_name"]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            f"select {measure_sql(view, name)} from {table} as t where {where}"
        ).fetchone()[0]
    finally:
        con.close()


def test_every_served_model_has_a_parsable_view(generated):
    rows, _, _, views, _ = generated
    assert set(views) == set(rows)  # every mart, fact and dim; no staging model
    for name, view in views.items():
        assert view["sql_table_name"] == f"main_marts.{name}"
        assert any(m["name"] == "count" for m in view["measures"])
    ltv = views["mart_learner_ltv"]
    groups = {g["name"]: g for g in ltv["dimension_groups"]}
    assert groups["first_paid"]["type"] == "time"
    assert groups["cohort_month"]["datatype"] == "date"
    dims = {d["name"]: d for d in ltv["dimensions"]}
    assert dims["is_mature_30"]["type"] == "yesno"
    assert dims["ltv_30_usd"]["value_format_name"] == "usd"


def test_take_rate_is_a_ratio_of_sums(generated):
    rows, warehouse, _, views, _ = generated
    pnl = views["mart_instructor_pnl"]
    dims = {d["name"]: d for d in pnl["dimensions"]}
    assert dims["take_rate_row"]["hidden"] == "yes"  # the per-row ratio must not be summed
    tenant1 = [r for r in rows["mart_instructor_pnl"] if r["tenant_id"] == 1]
    expected = sum(r["platform_revenue_usd"] for r in tenant1) / sum(
        r["gross_sales_usd"] for r in tenant1
    )
    assert evaluate(warehouse, pnl, "take_rate", "tenant_id = 1") == pytest.approx(expected)
    owed = sum(
        r["instructor_earnings_usd"] - r["payouts_paid_usd"]
        for r in tenant1
        if r["instructor_id"] == 101
    )
    assert evaluate(warehouse, pnl, "balance_owed_usd", "instructor_id = 101") == pytest.approx(
        owed
    )


def test_ltv_measures_use_mature_learners_only(generated):
    rows, warehouse, _, views, _ = generated
    ltv = views["mart_learner_ltv"]
    for days in (30, 90, 365):
        mature = [r[f"ltv_{days}_usd"] for r in rows["mart_learner_ltv"] if r[f"is_mature_{days}"]]
        assert len(mature) < len(rows["mart_learner_ltv"])  # the filter matters
        assert evaluate(warehouse, ltv, f"avg_ltv_{days}_usd") == pytest.approx(
            statistics.mean(mature)
        )
        assert evaluate(warehouse, ltv, f"median_ltv_{days}_usd") == pytest.approx(
            statistics.median(mature)
        )
        assert evaluate(warehouse, ltv, f"mature_learners_{days}") == len(mature)
    cohorts = views["mart_ltv_cohorts"]
    mature90 = [
        r["ltv_90_usd"]
        for r in rows["mart_learner_ltv"]
        if r["is_mature_90"] and r["tenant_id"] == 2
    ]
    # cohort averages re-weighted by mature learners give the pooled average (to rounding)
    assert evaluate(warehouse, cohorts, "avg_ltv_90_usd", "tenant_id = 2") == pytest.approx(
        statistics.mean(mature90), abs=0.01
    )


def test_liquidity_ratios_follow_their_parts(generated):
    rows, warehouse, _, views, _ = generated
    liquidity = views["mart_marketplace_liquidity"]
    data = rows["mart_marketplace_liquidity"]

    def ratio(numerator, denominator):
        return sum(r[numerator] for r in data) / sum(r[denominator] for r in data)

    expected = {
        "fill_rate_24h": ratio("orders_matched_within_24h", "orders_requested"),  # from column meta
        "sell_through_30d_rate": ratio(
            "sell_through_30d_numerator", "sell_through_30d_denominator"
        ),
        "buyer_seller_ratio": ratio("paying_people", "selling_instructors"),
        "never_sold_share": ratio("courses_never_sold", "courses_published"),
        "top_decile_sales_share": ratio("top_decile_gross_sales_usd", "instructor_gross_sales_usd"),
    }
    for measure, value in expected.items():
        assert evaluate(warehouse, liquidity, measure) == pytest.approx(value), measure
    # an average of the monthly ratios would be a different (wrong) number
    naive = sum(r["fill_rate_24h"] for r in data) / len(data)
    assert naive != pytest.approx(expected["fill_rate_24h"])


def test_exposures_reference_served_models(generated):
    rows, _, manifest, _, base = generated
    path = write_exposures(manifest, base / "exposures.yml")
    document = yaml.safe_load(path.read_text())
    exposures = {e["name"]: e for e in document["exposures"]}
    assert document["version"] == 2
    assert exposures["leadership_weekly_report"]["depends_on"] == [
        f"ref('{m}')" for m in REPORT_MARTS
    ]
    for exposure in exposures.values():
        assert exposure["type"] in {"dashboard", "notebook", "analysis", "ml", "application"}
        assert exposure["owner"]["email"]
        for ref in exposure["depends_on"]:
            assert ref[5:-2] in rows
    assert len(exposures["metabase_dashboards"]["depends_on"]) == len(rows)
