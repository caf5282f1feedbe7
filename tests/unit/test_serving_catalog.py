"""Which tables are served, how check results gate a publish, how types map to PostgreSQL."""

from __future__ import annotations

import json

import duckdb
import pytest

from orchestration.serving.catalog import discover_served_tables
from orchestration.serving.checks import PublishBlocked, load_check_results, write_check_results
from orchestration.serving.postgres import pg_type, tenant_role_name
from tests.serving_support import build_warehouse, mart_rows, write_manifest


def test_discovers_marts_dims_facts_not_staging(tmp_path):
    warehouse = build_warehouse(tmp_path / "wh.duckdb", mart_rows(scale=0.2))
    con = duckdb.connect(str(warehouse), read_only=True)
    tables = discover_served_tables(con, "wh")
    names = [t.name for t in tables]
    assert names == [
        "dim_date",
        "dim_instructor",
        "dim_tenant",
        "fct_payments",
        "mart_data_quality",
        "mart_instructor_pnl",
        "mart_learner_ltv",
        "mart_ltv_cohorts",
        "mart_marketplace_liquidity",
    ]
    assert {t.schema for t in tables} == {"main_marts"}
    assert [t.name for t in tables if not t.has_tenant] == ["dim_date"]


def test_manifest_resolves_a_name_in_two_schemas(tmp_path):
    warehouse = build_warehouse(tmp_path / "wh.duckdb", mart_rows(scale=0.2))
    manifest = write_manifest(tmp_path / "manifest.json", warehouse)
    con = duckdb.connect(str(warehouse))
    con.execute("create schema old_marts")
    con.execute("create table old_marts.mart_ltv_cohorts as select 1 as tenant_id")
    con.execute("create table old_marts.mart_gone as select 1 as tenant_id")
    with pytest.raises(ValueError, match="several schemas"):
        discover_served_tables(con, "wh")
    tables = {t.name: t for t in discover_served_tables(con, "wh", manifest)}
    assert tables["mart_ltv_cohorts"].schema == "main_marts"
    assert "mart_gone" not in tables  # not a dbt model any more


def test_orchestration_check_results(tmp_path):
    path = write_check_results(
        tmp_path / "checks.json",
        [
            {"name": "a", "passed": True},
            {"name": "b", "passed": False, "blocking": False},
            {"name": "c", "passed": True, "blocking": True},
        ],
    )
    summary = load_check_results(path)
    assert (summary.passed, summary.failed, summary.gate_open) == (2, 1, True)
    assert summary.stamp() == "checks: 2 passed, 1 failed"
    write_check_results(path, [{"name": "x", "passed": False}])
    assert load_check_results(path).blocking_failures == ("x",)


def test_dbt_run_results_gate(tmp_path):
    results = {
        "metadata": {"generated_at": "2026-11-01T06:00:00Z"},
        "results": [
            {"unique_id": "model.p.mart_a", "status": "success"},
            {"unique_id": "test.p.unique_a", "status": "pass"},
            {"unique_id": "test.p.not_null_a", "status": "pass"},
            {"unique_id": "test.p.fresh", "status": "warn"},
            {"unique_id": "test.p.rel", "status": "fail"},
        ],
    }
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps(results))
    summary = load_check_results(path)
    assert (summary.passed, summary.failed) == (2, 2)
    assert summary.blocking_failures == ("test.p.rel",)
    assert summary.data_as_of.isoformat() == "2026-11-01T06:00:00+00:00"
    with pytest.raises(PublishBlocked, match="no check results"):
        load_check_results(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("duck", "pg"),
    [
        ("BIGINT", "bigint"),
        ("DECIMAL(18,2)", "numeric(18,2)"),
        ("TIMESTAMP WITH TIME ZONE", "timestamptz"),
        ("VARCHAR", "text"),
        ("INTEGER[]", "text"),
        ("BOOLEAN", "boolean"),
        ("DOUBLE", "double precision"),
        ("DATE", "date"),
    ],
)
def test_pg_types(duck, pg):
    assert pg_type(duck) == pg


def test_tenant_role_names_are_identifier_safe():
    assert tenant_role_name("warehouse_tenant_", 7) == "warehouse_tenant_7"
    assert tenant_role_name("t_", "Acme-EU") == "t_acme_eu"
