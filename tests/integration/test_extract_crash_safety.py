"""Kill ``warehouse extract`` at every named step, rerun it, and find raw equal to the source.

Each case runs the real command line in a child process with ``WAREHOUSE_FAULT_AT=<point>``:
the child kills itself with SIGKILL when it reaches that step (ingestion/faults.py), as
``kill -9`` would, deterministically. The next run (in this process) must leave raw equal
to the source with no duplicate key, and ``raw._extract_log`` must account for every row
raw holds: per table and load, the rows it says landed are the rows raw has from that load.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from generator.mutate import mutate_source
from ingestion.pipeline import run_extract
from ingestion.specs import TABLE_SPECS
from tests.ingestion_support import (
    PII_KEY,
    assert_raw_ids_equal_source,
    child_environment,
    generate_platform,
    settings_for,
    source_rows,
    warehouse_rows,
)

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[2]

FIRST_LOAD_POINTS = [
    "state_sync",
    "read",
    "extract",
    "log_loading",
    "normalize",
    "load_job:1",
    "load_job:12",
    "load",
    "log_settled",
    "checkpoint",
]
INCREMENTAL_POINTS = ["extract", "load_job:1", "load_job:4", "load"]


def killed_extract(url: str, warehouse: Path, point: str, data_dir: Path) -> None:
    """Run ``warehouse extract`` in a child that kills itself at ``point``."""
    environment = child_environment(
        WAREHOUSE_PII_KEY=PII_KEY, WAREHOUSE_DATA_DIR=str(data_dir), WAREHOUSE_FAULT_AT=point
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from orchestration.cli import app; app()",
            "extract",
            "--source",
            url,
            "--warehouse",
            str(warehouse),
            "--chunk-rows",
            "500",
        ],
        capture_output=True,
        text=True,
        env=environment,
        cwd=PROJECT,
        timeout=180,
    )
    assert done.returncode == -signal.SIGKILL, (point, done.returncode, done.stderr[-2000:])


def assert_no_duplicate_and_no_gap(url: str, warehouse: Path) -> None:
    for table in TABLE_SPECS:
        source_ids = [r[0] for r in source_rows(url, f"select id from {table} order by id")]
        raw_ids = [
            r[0] for r in warehouse_rows(warehouse, f"select id from raw.{table} order by id")
        ]
        assert len(raw_ids) == len(set(raw_ids)), f"duplicate keys in raw.{table}"
        assert set(source_ids) <= set(raw_ids), f"rows of {table} missing from raw"


def assert_log_accounts_for_raw(warehouse: Path) -> None:
    """Every (table, load) raw holds rows of is logged ok with exactly that many rows landed,
    and no load is left 'loading'."""
    assert (
        warehouse_rows(warehouse, "select * from raw._extract_log where status = 'loading'") == []
    )
    for table in TABLE_SPECS:
        held = dict(
            warehouse_rows(
                warehouse, f"select _dlt_load_id, count(*) from raw.{table} group by all"
            )
        )
        logged = dict(
            warehouse_rows(
                warehouse,
                "select load_id, sum(rows_landed) from raw._extract_log "
                "where table_name = ? and status = 'ok' and rows_landed > 0 group by all",
                [table],
            )
        )
        assert held == logged, table


@pytest.fixture(scope="module")
def tiny_source(mysql_server, tmp_path_factory) -> str:
    """One tiny platform database for the first-load cases (they never change it)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"crash_{os.getpid()}"
    engine = create_engine(mysql_server)
    with engine.begin() as conn:
        conn.execute(text(f"drop database if exists `{name}`"))
        conn.execute(text(f"create database `{name}` character set utf8mb4"))
    url = make_url(mysql_server).set(database=name).render_as_string(hide_password=False)
    generate_platform(url, tmp_path_factory.mktemp("crash") / "platform.manifest.json")
    yield url
    with engine.begin() as conn:
        conn.execute(text(f"drop database if exists `{name}`"))
    engine.dispose()


@pytest.mark.parametrize("point", FIRST_LOAD_POINTS)
def test_a_first_load_killed_at_any_step_is_completed_by_the_next_run(
    tiny_source, tmp_path, point
) -> None:
    settings = settings_for(tmp_path, tiny_source)
    killed_extract(tiny_source, settings.warehouse_path, point, tmp_path)

    summary = run_extract(settings)
    assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
    assert_raw_ids_equal_source(tiny_source, settings.warehouse_path)
    assert_log_accounts_for_raw(settings.warehouse_path)
    # Nothing landed twice: the log's rows landed add up to the source, table by table.
    landed = dict(
        warehouse_rows(
            settings.warehouse_path,
            "select table_name, sum(rows_landed) from raw._extract_log where status = 'ok' "
            "group by all",
        )
    )
    for table in TABLE_SPECS:
        assert landed[table] == len(source_rows(tiny_source, f"select id from {table}")), table


@pytest.mark.parametrize("point", INCREMENTAL_POINTS)
def test_an_incremental_load_killed_at_any_step_is_completed_by_the_next_run(
    mysql_database, tmp_path, point
) -> None:
    url = mysql_database("crash")
    manifest = tmp_path / "platform.manifest.json"
    generate_platform(url, manifest)
    settings = settings_for(tmp_path, url)
    assert run_extract(settings).ok
    mutate_source(url, manifest, volume=0.05)
    killed_extract(url, settings.warehouse_path, point, tmp_path)

    summary = run_extract(settings)
    assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
    assert_no_duplicate_and_no_gap(url, settings.warehouse_path)
    assert (
        warehouse_rows(
            settings.warehouse_path, "select * from raw._extract_log where status = 'loading'"
        )
        == []
    )
    # Every changed row landed with its new values (the merge path, not only appends).
    for table, spec in TABLE_SPECS.items():
        if spec.cursor != "updated_at":
            continue
        source = set(source_rows(url, f"select id, updated_at from {table}"))
        raw = set(
            warehouse_rows(settings.warehouse_path, f"select id, updated_at from raw.{table}")
        )
        assert source <= raw, table


def test_a_pending_load_dropped_on_request_is_read_again(tiny_source, tmp_path) -> None:
    settings = settings_for(tmp_path, tiny_source)
    killed_extract(tiny_source, settings.warehouse_path, "load_job:6", tmp_path)

    summary = run_extract(settings, drop_pending_load=True)
    assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
    assert summary.recovered == []
    assert_raw_ids_equal_source(tiny_source, settings.warehouse_path)
    dropped = warehouse_rows(
        settings.warehouse_path,
        "select distinct status, rows_landed, note from raw._extract_log where load_id <> ?",
        [summary.load_id],
    )
    assert [(s, n) for s, n, _ in dropped] == [("failed", 0)]
    assert "--drop-pending-load" in dropped[0][2]
    assert_log_accounts_for_raw(settings.warehouse_path)
