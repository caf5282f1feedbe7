"""``warehouse status``: what is served and as of when, freshness per raw table and per mart
against the SLA, the checks that failed last with their reason, and the last run of each job,
read from a warehouse, a published version and a Dagster instance set up here by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.commands.status import render_status
from orchestration.status import warehouse_status
from serving.publish import publish_warehouse
from serving.settings import ServingSettings
from tests.serving_support import (
    AS_OF,
    build_warehouse,
    mart_rows,
    passing_checks,
    write_manifest,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


@pytest.fixture
def recorded(tmp_path: Path):
    """A warehouse whose raw tables were loaded 1 h and 30 h before NOW (and one failed load
    since), whose marts were built 2 h and 40 h before, with three checks passed and one
    failed; a published version; a Dagster instance where only the land job ran."""
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema raw")
        con.execute(
            "create table raw._extract_log (load_id varchar, table_name varchar, "
            "status varchar, finished_at timestamp)"
        )
        con.executemany(
            "insert into raw._extract_log values (?, ?, ?, ?)",
            [
                ("1", "payments", "ok", naive(NOW - timedelta(hours=1))),
                ("1", "users", "ok", naive(NOW - timedelta(hours=30))),
                ("2", "users", "failed", naive(NOW - timedelta(minutes=10))),
            ],
        )
        con.execute("create schema meta")
        con.execute(
            "create table meta.dbt_builds (unique_id varchar, build_id varchar, built_at timestamp)"
        )
        con.executemany(
            "insert into meta.dbt_builds values (?, 'b', ?)",
            [
                ("model.platform_warehouse.mart_learner_ltv", naive(NOW - timedelta(hours=2))),
                ("model.platform_warehouse.mart_instructor_pnl", naive(NOW - timedelta(hours=40))),
                ("model.platform_warehouse.fct_payments", naive(NOW - timedelta(hours=40))),
            ],
        )
        con.execute(
            "create table meta.check_verdicts (check_key varchar, asset_key varchar, "
            "judged varchar, identity varchar, passed boolean, severity varchar, "
            "description varchar, run_id varchar, evaluated_at timestamp)"
        )
        con.executemany(
            "insert into meta.check_verdicts values (?, ?, '', '', ?, ?, ?, 'r', null)",
            [
                ("raw/payments:raw_contract", "raw/payments", True, "ERROR", "ok"),
                ("raw/users:raw_contract", "raw/users", True, "ERROR", "ok"),
                (
                    "finance/mart_learner_ltv:mart_rules",
                    "finance/mart_learner_ltv",
                    True,
                    "ERROR",
                    "",
                ),
                (
                    "finance/mart_ltv_cohorts:unique_combination_of_columns",
                    "finance/mart_ltv_cohorts",
                    False,
                    "ERROR",
                    "Got 3 results, configured to fail if != 0",
                ),
            ],
        )
    marts = build_warehouse(tmp_path / "marts.duckdb", mart_rows(seed=2))
    manifest = write_manifest(tmp_path / "target" / "manifest.json", marts)
    serving = ServingSettings(data_dir=tmp_path, dbt_target_dir=manifest.parent, pg_url=None)
    published = publish_warehouse(marts, serving, passing_checks(passed=12, failed_warn=1))

    @dg.op
    def observe() -> None:
        return None

    @dg.job(name="land")
    def land() -> None:
        observe()

    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        run = land.execute_in_process(instance=instance)
        yield warehouse, serving, instance, published, run.run_id, home


def test_status_reports_what_is_served_fresh_failed_and_run(recorded) -> None:
    warehouse, serving, instance, published, land_run, _ = recorded
    state = warehouse_status(warehouse, serving, instance, sla_hours=26, now=NOW)

    assert state.served is not None and state.served.version == published.version
    assert state.served.data_as_of == AS_OF  # the marts' own as-of time
    assert (state.served.checks_passed, state.served.checks_failed) == (12, 1)
    sources = {f.name: (f.fresh, f.at) for f in state.sources}
    assert sources == {
        "payments": (True, NOW - timedelta(hours=1)),
        "users": (False, NOW - timedelta(hours=30)),  # the failed load since does not count
    }
    assert {f.name: f.fresh for f in state.marts} == {
        "mart_learner_ltv": True,
        "mart_instructor_pnl": False,
    }
    assert sorted(state.stale) == ["mart_instructor_pnl", "users"]
    assert state.checks_passed == 3
    assert [(c.asset, c.check, c.description) for c in state.failed] == [
        (
            "finance/mart_ltv_cohorts",
            "unique_combination_of_columns",
            "Got 3 results, configured to fail if != 0",
        )
    ]
    runs = {r.job: r for r in state.runs}
    assert runs["land"].status == "SUCCESS" and runs["land"].run_id == land_run
    assert runs["reconcile"].status is None

    text = "\n".join(render_status(state))
    assert f"Served: version {published.version}" in text
    assert f"data as of {AS_OF:%Y-%m-%d %H:%M:%S} UTC" in text
    assert "Sources (last successful load; SLA 26 h): 1 of 2 fresh" in text
    assert "  users     STALE  2026-11-30 06:00:00 UTC (30.0 h ago)" in text
    assert "Marts (last build; SLA 26 h): 1 of 2 fresh" in text
    assert (
        "  FAILED finance/mart_ltv_cohorts unique_combination_of_columns (ERROR): "
        "Got 3 results, configured to fail if != 0"
    ) in text
    assert "  reconcile    never run" in text


def test_status_command_runs_without_a_source_or_a_writer(recorded, tmp_path: Path) -> None:
    """The CLI: plain lines, exit 0, and a warehouse that does not exist said in one line."""
    warehouse, _, _, published, _, home = recorded
    env = {
        "WAREHOUSE_DATA_DIR": str(tmp_path),
        "WAREHOUSE_PATH": str(warehouse),
        "WAREHOUSE_SOURCE_URL": "mysql+pymysql://nobody@127.0.0.1:1/unreachable",
        "DAGSTER_HOME": str(home),
    }
    result = CliRunner().invoke(app, ["status"], env=env)
    assert result.exit_code == 0, result.output
    assert f"Served: version {published.version}" in result.output
    assert "  land         SUCCESS" in result.output
    env["WAREHOUSE_PATH"] = str(tmp_path / "missing.duckdb")
    result = CliRunner().invoke(app, ["status"], env=env)
    assert result.exit_code == 0, result.output
    assert f"Warehouse: no warehouse at {tmp_path / 'missing.duckdb'}" in result.output
