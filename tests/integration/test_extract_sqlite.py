"""``warehouse extract`` from the SQLite demo source into DuckDB raw, end to end."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.mutate import mutate_source
from ingestion.pipeline import run_extract
from ingestion.specs import EXCLUDED_TABLES, TABLE_SPECS
from orchestration.cli import app
from tests.ingestion_support import (
    assert_raw_ids_equal_source,
    child_environment,
    generate_platform,
    generated_pii_values,
    raw_count,
    scan_warehouse_for,
    settings_for,
    source_count,
    source_rows,
    warehouse_rows,
)


@pytest.fixture
def demo(tmp_path: Path) -> tuple[str, Path, dict]:
    """A tiny generated demo source in tmp_path: (url, manifest path, manifest)."""
    url = f"sqlite:///{tmp_path / 'platform.sqlite'}"
    manifest_path = tmp_path / "platform.manifest.json"
    return url, manifest_path, generate_platform(url, manifest_path)


def test_demo_lands_every_specd_table_with_contract_types(demo, tmp_path) -> None:
    url, _, manifest = demo
    settings = settings_for(tmp_path, url)
    summary = run_extract(settings)

    assert summary.ok, summary.failed
    raw_tables = {
        r[0]
        for r in warehouse_rows(
            settings.warehouse_path,
            "select table_name from information_schema.tables where table_schema = 'raw'",
        )
    }
    assert set(TABLE_SPECS) <= raw_tables
    assert not set(EXCLUDED_TABLES) & raw_tables
    for table in TABLE_SPECS:
        assert raw_count(settings.warehouse_path, table) == source_count(url, table), table
    types = dict(
        warehouse_rows(
            settings.warehouse_path,
            "select table_name || '.' || column_name, data_type from information_schema.columns "
            "where table_schema = 'raw'",
        )
    )
    assert types["payments.amount"] == "DECIMAL(12,2)"
    assert types["payments.created_at"] == "TIMESTAMP"
    assert types["users.marketing_consent"] == "BOOLEAN"
    assert types["users.birth_year"] == "INTEGER"
    assert types["users.two_factor_last_verified_at"] == "TIMESTAMP"
    assert types["instructor_profiles.account_id"] == "VARCHAR"
    assert types["payouts.period_start"] == "DATE"
    assert types["users._source_deleted_at"] == "TIMESTAMP"
    assert "users.email" not in types and "users.ssn" not in types
    assert "integrations.api_key" not in types and "webhooks.secret" not in types

    # Zero dates: NULL in raw, and counted exactly as many as the generator planted.
    planted = manifest["defects"]["zero_date"]["users.legacyImportedAt"]["count"]
    log = dict(
        warehouse_rows(
            settings.warehouse_path,
            "select table_name, zero_dates_nulled from raw._extract_log",
        )
    )
    assert log["users"] == planted > 0
    nulls = warehouse_rows(
        settings.warehouse_path,
        "select count(*) from raw.users where legacy_imported_at is null",
    )[0][0]
    source_nulls = source_rows(
        url,
        'select count(*) from users where "legacyImportedAt" is null '
        "or \"legacyImportedAt\" = '0000-00-00 00:00:00'",
    )[0][0]
    assert nulls == source_nulls


def test_demo_warehouse_holds_no_pii_value(demo, tmp_path) -> None:
    url, _, _ = demo
    settings = settings_for(tmp_path, url)
    assert run_extract(settings).ok
    values = generated_pii_values(url)
    assert len(values) > 1000
    assert scan_warehouse_for(settings.warehouse_path, values) == []
    # The scan itself can find a value: a planted one is found.
    email = next(v for v in values if "@" in v)
    canary = tmp_path / "canary.duckdb"
    import duckdb

    with duckdb.connect(str(canary)) as conn:
        conn.execute("create table leak (note varchar)")
        conn.execute("insert into leak values (?)", [f"contact {email} please"])
    assert scan_warehouse_for(canary, values) == ['"main"."leak"."note"']


def test_incremental_reads_only_the_delta(demo, tmp_path) -> None:
    url, manifest_path, _ = demo
    settings = settings_for(tmp_path, url)
    assert run_extract(settings).ok
    cursors = {
        t: source_rows(url, f"select max({s.cursor}) from {t}")[0][0]
        for t, s in TABLE_SPECS.items()
        if s.cursor
    }
    mutate_source(url, manifest_path, volume=0.02)

    summary = run_extract(settings)
    assert summary.ok
    for table, spec in TABLE_SPECS.items():
        report = summary.tables[table]
        if spec.cursor == "updated_at":
            since = datetime.fromisoformat(str(cursors[table])) - timedelta(
                seconds=spec.lag_seconds
            )
            expected = source_rows(
                url, f"select count(*) from {table} where updated_at >= '{since:%Y-%m-%d %H:%M:%S}'"
            )[0][0]
        elif spec.cursor == "id":
            expected = source_rows(
                url, f"select count(*) from {table} where id > {cursors[table]}"
            )[0][0]
        else:
            expected = source_count(url, table)
        assert report.rows_read == expected, table
        assert report.mode == ("incremental" if spec.cursor else "full"), table
    assert summary.tables["activity_logs"].rows_read < source_count(url, "activity_logs") / 10
    # Landed state equals the source for every live key (apart from stale-cursor rows).
    assert raw_count(settings.warehouse_path, "activity_logs") == source_count(url, "activity_logs")


def test_reconcile_marks_hard_deletes_and_catches_stale_cursor_changes(demo, tmp_path) -> None:
    url, manifest_path, _ = demo
    settings = settings_for(tmp_path, url)
    assert run_extract(settings).ok
    record = mutate_source(url, manifest_path, volume=0.05)
    stale = record["tables"]["enrollments"]["updated_stale"]
    deleted = {t: info.get("hard_deleted", []) for t, info in record["tables"].items()}
    assert stale and deleted["payments"] and deleted["enrollments"]

    assert run_extract(settings).ok  # plain incremental: misses stale rows and deletes
    progress_sql = "select id, progress_pct, status from enrollments order by id"
    source_progress = {r[0]: (float(r[1]), r[2]) for r in source_rows(url, progress_sql)}
    raw_progress = {
        r[0]: (float(r[1]), r[2])
        for r in warehouse_rows(
            settings.warehouse_path, "select id, progress_pct, status from raw.enrollments"
        )
    }
    differing = {i for i, v in source_progress.items() if raw_progress.get(i) != v}
    assert differing, "the stale cursor should hide some progress changes from an incremental run"

    summary = run_extract(settings, mode="reconcile")
    assert summary.ok, summary.failed
    for table in ("payments", "enrollments", "community_posts"):
        assert summary.tables[table].deletes_detected == len(deleted[table]), table
        marked = warehouse_rows(
            settings.warehouse_path,
            f"select id from raw.{table} where _source_deleted_at is not null order by id",
        )
        assert [r[0] for r in marked] == sorted(deleted[table])
    assert summary.tables["enrollments"].changed_rows_detected == len(differing)
    raw_progress = {
        r[0]: (float(r[1]), r[2])
        for r in warehouse_rows(
            settings.warehouse_path,
            "select id, progress_pct, status from raw.enrollments where _source_deleted_at is null",
        )
    }
    assert raw_progress == source_progress
    log = warehouse_rows(
        settings.warehouse_path,
        "select mode, deletes_detected from raw._extract_log where table_name = 'payments' "
        "order by started_at",
    )
    assert [m for m, _ in log] == ["full", "incremental", "reconcile"]
    assert log[-1][1] == len(deleted["payments"])

    # A second reconcile finds nothing new and re-marks nothing.
    again = run_extract(settings, mode="reconcile")
    assert again.tables["payments"].deletes_detected == 0
    assert again.tables["enrollments"].changed_rows_detected == 0


def test_cli_inventory_lists_every_table_and_its_fate(demo, tmp_path) -> None:
    url, _, _ = demo
    result = CliRunner().invoke(
        app,
        ["extract", "--inventory", "--source", url, "--warehouse", str(tmp_path / "w.duckdb")],
        env={"COLUMNS": "250", "WAREHOUSE_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    for table in TABLE_SPECS:
        assert table in result.output
    for table in EXCLUDED_TABLES:
        assert table in result.output
    assert result.output.count("excluded") == len(EXCLUDED_TABLES)
    assert not (tmp_path / "w.duckdb").exists()


def test_cli_rejects_an_unknown_table_in_one_line(demo, tmp_path) -> None:
    url, _, _ = demo
    result = CliRunner().invoke(
        app,
        [
            "extract",
            "--source",
            url,
            "--warehouse",
            str(tmp_path / "w.duckdb"),
            "--tables",
            "no_such_table",
        ],
        env={"WAREHOUSE_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: no such table in the source: no_such_table"


@pytest.mark.slow
def test_a_killed_extract_process_is_completed_by_the_next_run(demo, tmp_path) -> None:
    url, _, _ = demo
    settings = settings_for(tmp_path, url)
    environment = child_environment(
        PYTHONUNBUFFERED="1", WAREHOUSE_PII_KEY="test-pii-key", WAREHOUSE_DATA_DIR=str(tmp_path)
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from orchestration.cli import app; app()",
            "extract",
            "--source",
            url,
            "--warehouse",
            str(settings.warehouse_path),
            "--chunk-rows",
            "100",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert process.stdout is not None
    # activity_logs (60 reads of 100 rows) follows field_service_events: kill it there.
    for line in process.stdout:
        if line.startswith("field_service_events:"):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    summary = run_extract(settings)
    assert summary.ok, summary.failed
    assert_raw_ids_equal_source(url, settings.warehouse_path)


@pytest.mark.slow
def test_twenty_fresh_process_extracts_in_a_row_all_succeed(demo, tmp_path) -> None:
    """Each run is a new interpreter, so pandas is imported afresh every time: two extract
    workers importing it at once failed 2 runs in 10 ("partially initialized module")."""
    url, _, _ = demo
    environment = child_environment(
        WAREHOUSE_PII_KEY="test-pii-key", WAREHOUSE_DATA_DIR=str(tmp_path)
    )
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ingestion.pipeline import run_extract\n"
        "from ingestion.settings import WarehouseSettings\n"
        "s = WarehouseSettings(data_dir=Path(sys.argv[2]), source_url=sys.argv[1], "
        "path=Path(sys.argv[2]) / 'w.duckdb')\n"
        "summary = run_extract(s, tables=['tenants', 'users', 'courses', 'payments'])\n"
        "sys.exit(0 if summary.ok else 3)\n"
    )
    failures = []
    for attempt in range(20):
        folder = tmp_path / f"run_{attempt}"
        done = subprocess.run(
            [sys.executable, "-c", script, url, str(folder)],
            capture_output=True,
            text=True,
            env=environment,
            cwd=Path(__file__).resolve().parents[2],
            timeout=120,
        )
        if done.returncode != 0:
            failures.append((attempt, done.returncode, done.stderr.strip().splitlines()[-1:]))
    assert failures == []
