"""Write-audit-publish of the serving DuckDB file: atomic swap, open readers, versions, rollback."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime

import duckdb
import lkml
import pytest

from serving.checks import CheckSummary, PublishBlocked
from serving.publish import (
    AuditFailed,
    current_version,
    list_versions,
    publish_warehouse,
    rollback,
)
from serving.settings import ServingSettings
from tests.serving_support import (
    AS_OF,
    build_warehouse,
    mart_rows,
    passing_checks,
    write_manifest,
)

pytestmark = pytest.mark.xdist_group("serving_publish")


@pytest.fixture
def setup(tmp_path):
    warehouse = build_warehouse(tmp_path / "wh.duckdb", mart_rows(seed=1))
    manifest = write_manifest(tmp_path / "target" / "manifest.json", warehouse)
    settings = ServingSettings(
        data_dir=tmp_path, dbt_target_dir=manifest.parent, serving_keep=3, pg_url=None
    )
    checks = passing_checks()
    return warehouse, settings, checks


def ltv_total(path) -> float:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "select round(sum(ltv_30_usd), 2) from analytics.mart_learner_ltv"
        ).fetchone()[0]
    finally:
        con.close()


def test_publish_copies_served_tables_read_only(setup):
    warehouse, settings, checks = setup
    rows = mart_rows(seed=1)
    result = publish_warehouse(warehouse, settings, checks)
    serving = settings.resolved_serving_path
    assert serving.exists()
    assert not os.stat(serving).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert result.row_counts == {name: len(data) for name, data in rows.items()}
    assert result.postgres is None
    con = duckdb.connect(str(serving), read_only=True)
    tables = {
        r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
    }
    assert "stg_app__payments" not in tables and "_dlt_loads" not in tables
    meta = con.execute(
        "select distinct version, checks_passed, checks_failed, data_as_of from analytics._publish_metadata"
    ).fetchall()
    # readable by BI drivers on DuckDB 1.x, not only by this DuckDB
    (tags,) = con.execute(
        "select tags from duckdb_databases() where path is not null and not internal"
    ).fetchone()
    con.close()
    assert tags["storage_version"].startswith("v1.0.0")
    assert len(meta) == 1
    assert meta[0][:3] == (result.version, 12, 1)
    assert meta[0][3].isoformat().startswith("2026-11-01T06:00:00")
    expected = round(sum(r["ltv_30_usd"] for r in rows["mart_learner_ltv"]), 2)
    assert ltv_total(serving) == pytest.approx(expected)
    # LookML and exposures regenerated from the manifest with every publish
    views = [p for p in result.artefacts if p.name.endswith(".view.lkml")]
    assert sorted(p.name.removesuffix(".view.lkml") for p in views) == sorted(rows)
    for view in views:
        (parsed,) = lkml.load(view.read_text())["views"]
        assert parsed["sql_table_name"] == f"analytics.{parsed['name']}"
    assert result.artefacts[-1].name == "dbt_exposures.yml"


def test_open_reader_keeps_old_version_and_does_not_block(setup, tmp_path):
    warehouse, settings, checks = setup
    first = publish_warehouse(warehouse, settings, checks)
    reader = duckdb.connect(str(settings.resolved_serving_path), read_only=True)
    before = reader.execute("select count(*) from analytics.mart_learner_ltv").fetchone()[0]
    # the pipeline rewrites the warehouse while a BI tool holds the serving file open
    build_warehouse(warehouse, mart_rows(seed=2, scale=1.5))
    second = publish_warehouse(warehouse, settings, checks)
    assert second.version > first.version
    assert reader.execute("select count(*) from analytics.mart_learner_ltv").fetchone()[0] == before
    reader.close()
    new_rows = len(mart_rows(seed=2, scale=1.5)["mart_learner_ltv"])
    assert new_rows != before
    assert current_version(settings) == second.version
    fresh = duckdb.connect(str(settings.resolved_serving_path), read_only=True)
    assert (
        fresh.execute("select count(*) from analytics.mart_learner_ltv").fetchone()[0] == new_rows
    )
    fresh.close()


def test_keeps_last_n_versions_and_rolls_back(setup):
    warehouse, settings, checks = setup
    totals = {}
    versions = []
    for seed in (11, 12, 13, 14):
        build_warehouse(warehouse, mart_rows(seed=seed))
        result = publish_warehouse(warehouse, settings, checks)
        versions.append(result.version)
        totals[result.version] = round(
            sum(r["ltv_30_usd"] for r in mart_rows(seed=seed)["mart_learner_ltv"]), 2
        )
    kept = [p.stem for p in list_versions(settings)]
    assert kept == versions[-3:]  # serving_keep=3
    back = rollback(settings)
    assert (back.rolled_back_from, back.version) == (versions[3], versions[2])
    assert current_version(settings) == versions[2]
    assert ltv_total(settings.resolved_serving_path) == pytest.approx(totals[versions[2]])
    rollback(settings)
    assert current_version(settings) == versions[1]
    with pytest.raises(PublishBlocked, match="no version older"):
        rollback(settings)
    # a new publish after rollbacks becomes current
    latest = publish_warehouse(warehouse, settings, checks)
    assert current_version(settings) == latest.version


def test_failed_blocking_check_publishes_nothing(setup, tmp_path):
    warehouse, settings, checks = setup
    first = publish_warehouse(warehouse, settings, checks)
    build_warehouse(warehouse, mart_rows(seed=5))
    failing = CheckSummary(passed=0, failed=1, blocking_failures=("unique_mart_learner_ltv",))
    with pytest.raises(PublishBlocked, match="unique_mart_learner_ltv"):
        publish_warehouse(warehouse, settings, failing)
    assert current_version(settings) == first.version
    assert [p.stem for p in list_versions(settings)] == [first.version]


def test_audit_rejects_mart_without_tenant(setup):
    warehouse, settings, checks = setup
    first = publish_warehouse(warehouse, settings, checks)
    con = duckdb.connect(str(warehouse))
    con.execute(
        "update main_marts.mart_ltv_cohorts set tenant_id = null where cohort_month = date '2026-03-01'"
    )
    con.close()
    with pytest.raises(AuditFailed, match="mart_ltv_cohorts: 2 rows without tenant_id"):
        publish_warehouse(warehouse, settings, checks)
    assert current_version(settings) == first.version
    assert not list(settings.versions_dir.glob(".building-*"))


def test_cli_rollback_and_list_and_a_warehouse_no_check_judged(setup, tmp_path):
    from typer.testing import CliRunner

    from orchestration.cli import app

    warehouse, settings, checks = setup
    first = publish_warehouse(warehouse, settings, checks)
    publish_warehouse(warehouse, settings, checks)
    env = {
        "WAREHOUSE_DATA_DIR": str(tmp_path),
        "WAREHOUSE_PATH": str(warehouse),
        "WAREHOUSE_DBT_TARGET_DIR": str(tmp_path / "target"),
        "WAREHOUSE_PG_URL": "",
        "COLUMNS": "200",
    }
    runner = CliRunner()
    out = runner.invoke(app, ["publish", "--rollback"], env=env)
    assert out.exit_code == 0, out.output
    assert "Rolled back" in " ".join(out.output.split())
    assert current_version(settings) == first.version
    second = publish_warehouse(
        warehouse,
        settings,
        CheckSummary(passed=40, failed=2, data_as_of=datetime(2026, 11, 2, 7, tzinfo=UTC)),
    )
    publish_warehouse(warehouse, settings, checks)  # served again: the one above is kept
    runner.invoke(app, ["publish", "--rollback"], env=env)
    out = runner.invoke(app, ["publish", "--list"], env=env)
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.startswith("2")]
    assert [line.split()[0] for line in lines] == [
        p.stem for p in sorted(settings.versions_dir.glob("2*.duckdb"))
    ]
    listed = {line.split()[0]: line for line in lines}
    tables = len(mart_rows(seed=1))
    # the data's as-of is the marts' own, not the check summary's
    assert (
        f"data as of {AS_OF:%Y-%m-%d %H:%M:%S}  checks 40 passed, 2 failed  {tables} tables"
        in listed[second.version]
    )
    assert listed[second.version].endswith("* served")  # rolled back to it
    assert [line.endswith("* served") for line in lines].count(True) == 1
    # This warehouse was built by hand: no check of the project ever judged it, so the gate
    # (the project's real checks, from its dbt manifest) refuses it, in one line.
    env["WAREHOUSE_DBT_TARGET_DIR"] = str(tmp_path / "dbt_target")
    out = runner.invoke(app, ["publish"], env=env)
    assert out.exit_code == 2
    refusal = [line for line in out.output.splitlines() if line.startswith("error:")]
    assert len(refusal) == 1 and "has no verdict on this warehouse" in refusal[0], out.output
    assert current_version(settings) == second.version


def test_postgres_failure_keeps_the_previous_version_everywhere(setup):
    import psycopg

    warehouse, settings, checks = setup
    first = publish_warehouse(warehouse, settings, checks)
    build_warehouse(warehouse, mart_rows(seed=6))
    broken = settings.model_copy(
        update={"pg_url": "postgresql://postgres@127.0.0.1:5432/no_such_database_for_serving"}
    )
    with pytest.raises(psycopg.OperationalError):
        publish_warehouse(warehouse, broken, checks)
    assert current_version(settings) == first.version
    assert [p.stem for p in list_versions(settings)] == [first.version]  # no orphan version
