"""The golden check: generate the tiny dataset, extract, transform, and compare every metric in
the marts with an independent pandas computation over the source (golden_metrics.py).

Money must agree to the cent (exactly: both sides round each conversion half-up to the cent);
ratios to 1e-9; averages and medians to half a cent / 1e-6 days or hours.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from ingestion.settings import PROJECT_ROOT, WarehouseSettings
from orchestration.cli import app
from tests.orchestration_support import Transformed, transform

sys.path.insert(0, str(Path(__file__).parent))
from golden_metrics import Golden, Source

FX_SEED = PROJECT_ROOT / "dbt_project" / "seeds" / "fx_rates_daily.csv"
RATIO_TOLERANCE = 1e-9
CENT_TOLERANCE = 0.005
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt")]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Transformed]:
    """(source SQLite, warehouse DuckDB, dbt build result) after generate tiny -> extract ->
    transform."""
    root = tmp_path_factory.mktemp("golden")
    sqlite_path = root / "platform.sqlite"
    warehouse = root / "warehouse.duckdb"
    source = f"sqlite:///{sqlite_path}"
    runner = CliRunner()
    for args in (
        ["generate", "--scale", "tiny", "--source", source, "--replace"],
        ["extract", "--source", source, "--warehouse", str(warehouse)],
    ):
        env = {"WAREHOUSE_DATA_DIR": str(root), "WAREHOUSE_PII_KEY": "golden-check-key"}
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, f"warehouse {args[0]} failed:\n{result.output}"
    settings = WarehouseSettings(data_dir=root, source_url=source, path=warehouse)
    outcome = transform(settings, root / "dbt_target")
    return sqlite_path, warehouse, outcome


@pytest.fixture(scope="module")
def built(pipeline: tuple[Path, Path, Transformed]) -> tuple[Path, Path]:
    assert pipeline[2].success, "\n".join(pipeline[2].failures)
    return pipeline[0], pipeline[1]


@pytest.fixture(scope="module")
def golden(built: tuple[Path, Path]) -> Golden:
    return Golden(Source(built[0], FX_SEED))


def query(warehouse: Path, sql: str) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def assert_close(actual: object, expected: object, column: str, key: object) -> None:
    where = f"{column} at {key}: warehouse {actual!r} != golden {expected!r}"
    if expected is None:
        assert actual is None, where
    elif isinstance(expected, Decimal):
        assert actual is not None and Decimal(str(actual)) == expected, where
    elif isinstance(expected, bool):
        assert actual is expected, where
    elif isinstance(expected, int):
        assert actual == expected, where
    else:
        tolerance = CENT_TOLERANCE if column.endswith("_usd") else RATIO_TOLERANCE
        if column.startswith("median_days") or column.startswith("median_hours"):
            tolerance = 1e-6
        assert actual is not None and abs(float(actual) - float(expected)) <= tolerance, where


def compare(rows: dict, expected: dict, name: str) -> None:
    assert set(rows) == set(expected), (
        f"{name}: keys only in warehouse {sorted(set(rows) - set(expected))[:5]}, "
        f"only in golden {sorted(set(expected) - set(rows))[:5]}"
    )
    for key, values in expected.items():
        for column, value in values.items():
            assert_close(rows[key][column], value, column, (name, key))


def test_dbt_build_passes_every_test(pipeline: tuple[Path, Path, Transformed]) -> None:
    """`warehouse transform` on the tiny dataset: every model, snapshot and seed builds, and
    every check on them passes (dbt's data tests, the row accounting, the mart suites, the raw
    contract)."""
    outcome = pipeline[2]
    assert outcome.success, "\n".join(outcome.failures)
    assert outcome.summary.checks_failed == []
    assert outcome.summary.checks_passed >= 240 + 24 + 5 + 24
    assert len(outcome.built) >= 57  # seeds, snapshots, models
    with duckdb.connect(str(pipeline[1]), read_only=True) as con:
        marts = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('finance', 'marketplace', 'quality')"
        ).fetchall()
    assert {m for (m,) in marts} >= {
        "finance.mart_learner_ltv",
        "finance.mart_ltv_cohorts",
        "finance.mart_instructor_pnl",
        "marketplace.mart_marketplace_liquidity",
        "quality.mart_data_quality",
    }


def test_as_of_is_the_latest_source_timestamp(golden: Golden, built: tuple[Path, Path]) -> None:
    (row,) = query(built[1], "select as_of_at from intermediate.int_metrics_as_of")
    assert row["as_of_at"] == golden.as_of.to_pydatetime()


def test_learner_ltv(golden: Golden, built: tuple[Path, Path]) -> None:
    expected = golden.learner_ltv()
    for row in expected.values():
        row["first_paid_at"] = row["first_paid_at"].to_pydatetime()
        row["cohort_month"] = row["cohort_month"].date()
    rows = {r["person_id"]: r for r in query(built[1], "select * from finance.mart_learner_ltv")}
    for r in rows.values():
        r["first_paid_at"] = r["first_paid_at"]
    assert len(expected) > 100
    for key, values in expected.items():
        assert rows[key]["first_paid_at"] == values.pop("first_paid_at"), key
        assert rows[key]["cohort_month"] == values.pop("cohort_month"), key
    compare(rows, expected, "mart_learner_ltv")


def test_ltv_cohorts(golden: Golden, built: tuple[Path, Path]) -> None:
    rows = {
        (r["tenant_id"], r["cohort_month"]): r
        for r in query(built[1], "select * from finance.mart_ltv_cohorts")
    }
    compare(rows, golden.ltv_cohorts(), "mart_ltv_cohorts")


def test_instructor_pnl(golden: Golden, built: tuple[Path, Path]) -> None:
    rows = {
        (r["instructor_id"], r["tenant_id"], r["month_start_date"]): r
        for r in query(built[1], "select * from finance.mart_instructor_pnl")
    }
    expected = golden.instructor_pnl()
    assert any(v["refunds_usd"] for v in expected.values())
    assert any(v["payouts_paid_usd"] for v in expected.values())
    compare(rows, expected, "mart_instructor_pnl")


def test_marketplace_liquidity(golden: Golden, built: tuple[Path, Path]) -> None:
    rows = {
        (r["tenant_id"], r["month_start_date"]): r
        for r in query(built[1], "select * from marketplace.mart_marketplace_liquidity")
    }
    compare(rows, golden.marketplace_liquidity(), "mart_marketplace_liquidity")


def test_data_quality_accounts_for_every_row(golden: Golden, built: tuple[Path, Path]) -> None:
    rows = query(
        built[1],
        """
        select
            table_name,
            sum(rows_in_raw) as rows_in_raw,
            sum(rows_used) as rows_used,
            sum(rows_quarantined) as rows_quarantined,
            sum(quarantined_orphan) as orphan,
            sum(quarantined_unknown_enum) as unknown_enum,
            sum(quarantined_duplicate_person) as duplicate_person,
            sum(quarantined_parent) as parent,
            sum(rows_read) as rows_read,
            sum(rows_landed) as rows_landed
        from quality.mart_data_quality
        group by table_name
        """,
    )
    by_table = {r["table_name"]: r for r in rows}
    expected = golden.data_quality()
    assert len(by_table) == 24
    for table, row in by_table.items():
        assert row["rows_in_raw"] == row["rows_used"] + row["rows_quarantined"], table
        assert row["rows_landed"] == row["rows_in_raw"], table
        for column in ("rows_in_raw", "orphan", "unknown_enum", "duplicate_person", "parent"):
            assert row[column] == expected[table][column], (table, column)
    # The generator's own ledger of what it planted agrees with what the warehouse caught.
    assert by_table["refunds"]["orphan"] > 0 and by_table["community_posts"]["orphan"] > 0
    assert by_table["users"]["duplicate_person"] > 0 and by_table["payments"]["unknown_enum"] > 0


@pytest.mark.mysql
def test_mariadb_sourced_warehouse_agrees_with_the_golden(
    mysql_database, tmp_path: Path, golden: Golden
) -> None:
    """The same seed generated into MariaDB, extracted and transformed: the same marts."""
    source = mysql_database("golden")
    warehouse = tmp_path / "warehouse.duckdb"
    runner = CliRunner()
    env = {"WAREHOUSE_DATA_DIR": str(tmp_path), "WAREHOUSE_PII_KEY": "golden-check-key"}
    for args in (
        ["generate", "--scale", "tiny", "--source", source],
        ["extract", "--source", source, "--warehouse", str(warehouse)],
    ):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, f"warehouse {args[0]} failed:\n{result.output}"
    settings = WarehouseSettings(data_dir=tmp_path, source_url=source, path=warehouse)
    outcome = transform(settings, tmp_path / "dbt_target")
    assert outcome.success, "\n".join(outcome.failures)
    built = (Path("unused: the golden reads the SQLite twin"), warehouse)
    for check in (
        test_as_of_is_the_latest_source_timestamp,
        test_learner_ltv,
        test_ltv_cohorts,
        test_instructor_pnl,
        test_marketplace_liquidity,
        test_data_quality_accounts_for_every_row,
    ):
        check(golden, built)
