"""`warehouse transform --incremental` after the source moves on: only what changed is built,
and the result equals a full rebuild."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from ingestion.settings import WarehouseSettings
from orchestration.cli import app
from orchestration.transformation import transform

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt")]

MART_TOTALS = """
select
    (select sum(ltv_to_date_usd) from finance.mart_learner_ltv),
    (select sum(net_sales_usd) from finance.mart_instructor_pnl),
    (select count(*) from core.fct_learning_activity),
    (select count(*) from core.fct_payments),
    (select sum(rows_in_raw) from quality.mart_data_quality)
"""


def cli(root: Path, *args: str) -> None:
    env = {"WAREHOUSE_DATA_DIR": str(root), "WAREHOUSE_PII_KEY": "incremental-test-key"}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, f"warehouse {args[0]} failed:\n{result.output}"


def totals(warehouse: Path) -> tuple:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute(MART_TOTALS).fetchone()
    assert row is not None
    return row


def test_incremental_transform_builds_only_changes_and_matches_a_full_rebuild(
    tmp_path: Path,
) -> None:
    source = f"sqlite:///{tmp_path / 'platform.sqlite'}"
    warehouse = tmp_path / "warehouse.duckdb"
    settings = WarehouseSettings(data_dir=tmp_path, source_url=source, path=warehouse)
    target = tmp_path / "dbt_target"
    cli(tmp_path, "generate", "--scale", "tiny", "--source", source, "--replace")
    cli(tmp_path, "extract", "--source", source, "--warehouse", str(warehouse))
    first = transform(settings, target_path=target, quiet=True)
    assert first.success, first.failures
    activity_before = totals(warehouse)[2]

    # Nothing was loaded since: nothing to do.
    idle = transform(settings, incremental=True, target_path=target, quiet=True)
    assert idle.skipped and idle.changed_tables == []

    cli(tmp_path, "generate", "--mutate", "--volume", "0.05", "--source", source)
    cli(tmp_path, "extract", "--source", source, "--warehouse", str(warehouse))
    incremental = transform(settings, incremental=True, target_path=target, quiet=True)
    assert incremental.success, incremental.failures
    assert incremental.changed_tables and "activity_logs" in incremental.changed_tables
    built = sum(incremental.statuses.values())
    assert 0 < built < sum(first.statuses.values())
    after_incremental = totals(warehouse)
    assert after_incremental[2] > activity_before  # new activity appended

    full = transform(settings, full_refresh=True, target_path=target, quiet=True)
    assert full.success, full.failures
    assert totals(warehouse) == after_incremental
