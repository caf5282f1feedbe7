"""Which tables are served, how check results gate a publish, how types map to PostgreSQL."""

from __future__ import annotations

import duckdb
import pytest

from serving.catalog import discover_served_tables
from serving.postgres import pg_type, tenant_role_name
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
