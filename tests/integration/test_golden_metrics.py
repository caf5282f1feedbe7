"""The golden check: generate the tiny dataset, extract, transform, and compare every metric in
the marts with an independent pandas computation over the source (golden_metrics.py).

Money must agree to the cent (exactly: both sides round each conversion half-up to the cent);
ratios to 1e-9; averages and medians to half a cent / 1e-6 days or hours.

Two more scenarios start from copies of the built warehouse: the marts rebuilt at an as-of
before the end of the data (nothing after it may count), and the platform running on for a
day in which revenue payments are hard-deleted, extracted with --reconcile and transformed
incrementally (the marts restate history; the quality mart shows the deletions, one row per
extract run).
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from ingestion.settings import PROJECT_ROOT, WarehouseSettings
from orchestration.build_state import state_folder
from orchestration.cli import app
from tests.orchestration_support import Transformed, transform

sys.path.insert(0, str(Path(__file__).parent))
from golden_metrics import Golden, Source

FX_SEED = PROJECT_ROOT / "dbt_project" / "seeds" / "fx_rates_daily.csv"
RATIO_TOLERANCE = 1e-9
CENT_TOLERANCE = 0.005
REVENUE_HARD_DELETE = 0.02
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("golden")]


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


def invoke(args: list[str], root: Path) -> str:
    """`warehouse <args>` with the data folder ``root``; its output, after asserting success."""
    env = {"WAREHOUSE_DATA_DIR": str(root), "WAREHOUSE_PII_KEY": "golden-check-key"}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, f"warehouse {args[0]} failed:\n{result.output}"
    return result.output


def copy_of(built: tuple[Path, Path], root: Path) -> tuple[Path, Path]:
    """The built source (with its manifest) and warehouse (with its build state beside it),
    copied under ``root``."""
    sqlite_path, warehouse = built
    for path in (sqlite_path, sqlite_path.with_suffix(".manifest.json"), warehouse):
        shutil.copy(path, root / path.name)
    state = state_folder(warehouse)
    shutil.copytree(state, root / state.name)
    return root / sqlite_path.name, root / warehouse.name


def pick_as_of(sqlite_path: Path) -> pd.Timestamp:
    """An as-of about two thirds into the data that falls between an order's request and its
    match (within 24 h): the order is requested by then, but not yet matched."""
    with sqlite3.connect(sqlite_path) as con:
        orders = pd.read_sql(
            "select requested_at, matched_at from field_service_orders where matched_at is not null",
            con,
            parse_dates=["requested_at", "matched_at"],
        )
    lag = orders["matched_at"] - orders["requested_at"]
    candidates = orders[(lag > pd.Timedelta(hours=1)) & (lag < pd.Timedelta(hours=24))]
    target = orders["requested_at"].min() + (
        orders["requested_at"].max() - orders["requested_at"].min()
    ) * (2 / 3)
    order = candidates.loc[(candidates["requested_at"] - target).abs().idxmin()]
    return (order["requested_at"] + (order["matched_at"] - order["requested_at"]) / 2).floor("s")


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
    """Every raw row is used or quarantined by reason, and the orphans kept (flagged) are
    counted beside the quarantined ones."""
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
            sum(orphan_flagged) as orphan_flagged,
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
        for column in expected[table]:
            assert row[column] == expected[table][column], (table, column)
    # The generator's own ledger of what it planted agrees with what the warehouse caught.
    assert by_table["refunds"]["orphan"] > 0 and by_table["community_posts"]["orphan"] > 0
    assert by_table["users"]["duplicate_person"] > 0 and by_table["payments"]["unknown_enum"] > 0
    assert (
        by_table["payouts"]["orphan_flagged"] > 0
        and by_table["learning_paths"]["orphan_flagged"] > 0
    )


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


# -- the marts at an as-of before the end of the data ------------------------------------------


@pytest.fixture(scope="module")
def as_of_build(
    built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, pd.Timestamp]:
    """A copy of the built warehouse whose as-of and everything after it (the marts) is rebuilt
    with `warehouse transform --as-of`."""
    root = tmp_path_factory.mktemp("golden_as_of")
    sqlite_path, warehouse = copy_of(built, root)
    as_of = pick_as_of(sqlite_path)
    settings = WarehouseSettings(
        data_dir=root, source_url=f"sqlite:///{sqlite_path}", path=warehouse
    )
    outcome = transform(
        settings, root / "dbt_target", as_of=as_of.isoformat(), select="int_metrics_as_of+"
    )
    assert outcome.success, "\n".join(outcome.failures)
    return sqlite_path, warehouse, as_of


def test_marts_at_an_as_of_count_only_what_was_known_then(
    as_of_build: tuple[Path, Path, pd.Timestamp],
) -> None:
    """Rebuilt at an as-of inside the data, every business mart equals the golden computed at
    that as-of: no course published, order matched or cancelled, or payment made after it
    counts, and no month after it appears."""
    sqlite_path, warehouse, as_of = as_of_build
    src = Source(sqlite_path, FX_SEED)
    golden = Golden(src, as_of=as_of)
    # The edge cases are in the data: an order requested before the as-of and matched after
    # it, a course published after it, a payment after it.
    orders = src.orders
    assert (
        (pd.to_datetime(orders["requested_at"]) <= as_of)
        & (pd.to_datetime(orders["matched_at"]) > as_of)
    ).any()
    assert (pd.to_datetime(src.courses["published_at"]) > as_of).sum() > 0
    assert (golden.payments["created_utc"] > as_of).sum() > 0
    (row,) = query(
        warehouse, "select as_of_at, is_as_of_overridden from intermediate.int_metrics_as_of"
    )
    assert row == {"as_of_at": as_of.to_pydatetime(), "is_as_of_overridden": True}

    built = (sqlite_path, warehouse)
    test_learner_ltv(golden, built)
    test_ltv_cohorts(golden, built)
    test_instructor_pnl(golden, built)
    test_marketplace_liquidity(golden, built)
    (latest,) = query(
        warehouse, "select max(month_start_date) as m from marketplace.mart_marketplace_liquidity"
    )
    assert latest["m"] <= as_of.date().replace(day=1) + pd.Timedelta(days=31)


# -- revenue payments hard-deleted in the source, found by --reconcile -------------------------


@pytest.fixture(scope="module")
def after_hard_deletes(
    built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, set[int], list[str]]:
    """A copy of the built pipeline after the platform ran on for a day in which a share of the
    revenue payments was hard-deleted: `generate --mutate --rate revenue_hard_delete=...`,
    `extract --reconcile`, `transform --incremental`. Returns the source, the warehouse, the
    payment ids the source lost (read from the source before and after) and the dlt loads the
    reconcile run wrote."""
    root = tmp_path_factory.mktemp("golden_hard_delete")
    sqlite_path, warehouse = copy_of(built, root)
    source = f"sqlite:///{sqlite_path}"

    def payment_ids() -> set[int]:
        with sqlite3.connect(sqlite_path) as con:
            return {i for (i,) in con.execute("select id from payments")}

    def loads() -> set[str]:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return {i for (i,) in con.execute("select load_id from raw._dlt_loads").fetchall()}

    before, loads_before = payment_ids(), loads()
    invoke(
        [
            "generate",
            "--mutate",
            "--source",
            source,
            "--rate",
            f"revenue_hard_delete={REVENUE_HARD_DELETE}",
        ],
        root,
    )
    invoke(["extract", "--reconcile", "--source", source, "--warehouse", str(warehouse)], root)
    settings = WarehouseSettings(data_dir=root, source_url=source, path=warehouse)
    outcome = transform(settings, root / "dbt_target", incremental=True)
    assert outcome.success, "\n".join(outcome.failures)
    assert outcome.built and "int_payments_converted" in outcome.built
    assert "enum_mappings" not in outcome.built, "the incremental build rebuilt what did not change"
    return sqlite_path, warehouse, before - payment_ids(), sorted(loads() - loads_before)


def test_hard_deleted_revenue_payments_restate_every_mart(
    after_hard_deletes: tuple[Path, Path, set[int], list[str]], golden: Golden
) -> None:
    """A finance analyst reads the history the source tells now: a revenue payment deleted in
    the source leaves every mart (its refunds with it), exactly as the golden recomputed from
    the mutated source says."""
    sqlite_path, warehouse, deleted, _ = after_hard_deletes
    revenue_before = golden.revenue_payments()
    deleted_revenue = revenue_before[revenue_before["id"].isin(deleted)]
    assert len(deleted_revenue) >= 5, "the mutation deleted too few revenue payments to test"
    assert golden.refunds["payment_id"].isin(deleted).any(), "no deleted payment had a refund"

    after = Golden(Source(sqlite_path, FX_SEED))
    built = (sqlite_path, warehouse)
    test_learner_ltv(after, built)
    test_ltv_cohorts(after, built)
    test_instructor_pnl(after, built)
    test_marketplace_liquidity(after, built)
    # Gross sales moved by exactly what the day added less the deleted payments, to the cent.
    (gross,) = query(warehouse, "select sum(gross_sales_usd) as g from finance.mart_instructor_pnl")
    attributed_before = revenue_before[revenue_before["instructor_id"].notna()]
    attributed_after = after.revenue_payments()
    attributed_after = attributed_after[attributed_after["instructor_id"].notna()]
    added = attributed_after[~attributed_after["id"].isin(attributed_before["id"])]
    removed = attributed_before[attributed_before["id"].isin(deleted)]
    assert len(removed) > 0
    assert Decimal(str(gross["g"])) == (
        sum(attributed_before["amount_usd"], Decimal(0))
        - sum(removed["amount_usd"], Decimal(0))
        + sum(added["amount_usd"], Decimal(0))
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        kept_as_revenue = con.execute(
            "select count(*) from core.fct_payments where is_source_deleted and is_revenue"
        ).fetchone()
    assert kept_as_revenue == (0,)


def test_quality_mart_shows_the_deletions_in_one_row_per_extract_run(
    after_hard_deletes: tuple[Path, Path, set[int], list[str]],
) -> None:
    """The reconcile run wrote two dlt loads (its incremental pass and the reconciliation); the
    quality mart has one row per table for the run, counting the raw rows of both loads, and the
    payments row reports every hard delete; the deleted payments' refunds are quarantined as
    orphans, as the golden counts them."""
    sqlite_path, warehouse, deleted, run_loads = after_hard_deletes
    assert len(run_loads) == 2, run_loads
    listed = ", ".join(f"'{load}'" for load in run_loads)
    rows = query(
        warehouse,
        f"select * from quality.mart_data_quality where load_id in ({listed})",
    )
    per_table: dict[str, list[dict]] = {}
    for row in rows:
        per_table.setdefault(row["table_name"], []).append(row)
    assert {t: len(r) for t, r in per_table.items() if len(r) != 1} == {}
    assert {r["load_id"] for r in rows} == {run_loads[0]}, "a run is keyed by its first load"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table, (row,) in per_table.items():
            (in_raw,) = con.execute(
                f'select count(*) from raw."{table}" where _dlt_load_id in ({listed})'
            ).fetchone()
            (landed,) = con.execute(
                f"select coalesce(sum(rows_landed), 0) from raw._extract_log "
                f"where table_name = ? and load_id in ({listed})",
                [table],
            ).fetchone()
            assert (row["rows_in_raw"], row["rows_landed"]) == (in_raw, landed), table
    payments = per_table["payments"][0]
    assert payments["extract_mode"] == "reconcile"
    assert payments["hard_deletes_detected"] == len(deleted)

    (totals,) = query(
        warehouse,
        "select sum(source_deleted_rows) as marked from quality.mart_data_quality "
        "where table_name = 'payments'",
    )
    assert totals["marked"] == len(deleted)
    expected = Golden(Source(sqlite_path, FX_SEED)).data_quality()
    by_table = {
        r["table_name"]: r
        for r in query(
            warehouse,
            "select table_name, sum(rows_in_raw) - sum(source_deleted_rows) as in_source, "
            "sum(quarantined_orphan) as orphan, sum(quarantined_parent) as parent, "
            "sum(quarantined_unknown_enum) as unknown_enum from quality.mart_data_quality "
            "where table_name in ('payments', 'refunds') group by table_name",
        )
    }
    for table in ("payments", "refunds"):
        assert by_table[table]["in_source"] == expected[table]["rows_in_raw"], table
        for column in ("orphan", "parent", "unknown_enum"):
            assert by_table[table][column] == expected[table][column], (table, column)


# -- the semantic layer: governed metrics equal the marts -------------------------------------

SEMANTIC_QUERIES = {
    # metrics -> (the mart, its month column, the expected value of each metric in SQL)
    "instructor_pnl": (
        ["gross_sales", "net_sales", "platform_revenue", "contribution_margin", "take_rate"],
        "finance.mart_instructor_pnl",
        "month_start_date",
        {
            "gross_sales": "sum(gross_sales_usd)",
            "net_sales": "sum(net_sales_usd)",
            "platform_revenue": "sum(platform_revenue_usd)",
            "contribution_margin": "sum(contribution_margin_usd)",
            "take_rate": "sum(platform_revenue_usd) / nullif(sum(gross_sales_usd), 0)",
        },
    ),
    "ltv_cohorts": (
        ["new_paying_learners", "ltv_30", "ltv_90", "ltv_365"],
        "finance.mart_ltv_cohorts",
        "cohort_month",
        {
            "new_paying_learners": "sum(cohort_size)",
            "ltv_30": "sum(avg_ltv_30_usd)",
            "ltv_90": "sum(avg_ltv_90_usd)",
            "ltv_365": "sum(avg_ltv_365_usd)",
        },
    ),
    "liquidity": (
        ["fill_rate_24h", "buyer_seller_ratio"],
        "marketplace.mart_marketplace_liquidity",
        "month_start_date",
        {
            "fill_rate_24h": "sum(fill_rate_24h)",
            "buyer_seller_ratio": "sum(buyer_seller_ratio)",
        },
    ),
}


def test_semantic_layer_metrics_equal_their_marts(built: tuple[Path, Path], tmp_path: Path) -> None:
    """`mf query` (MetricFlow on DuckDB, over a dbt parse of a copy of the project) returns
    every headline KPI by tenant and month exactly as the mart it comes from has it."""
    import csv
    import os
    import subprocess

    project = tmp_path / "dbt_project"
    shutil.copytree(
        PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs")
    )
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built[1], warehouse)
    env = {
        **os.environ,
        "WAREHOUSE_PATH": str(warehouse),
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    bin_dir = Path(sys.executable).parent

    def run(*args: str) -> None:
        result = subprocess.run(
            args, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]

    run(str(bin_dir / "dbt"), "parse", "--profiles-dir", str(project))
    for name, (metrics, mart, month, expected_sql) in SEMANTIC_QUERIES.items():
        out = tmp_path / f"{name}.csv"
        run(
            str(bin_dir / "mf"),
            "query",
            "--metrics",
            ",".join(metrics),
            "--group-by",
            "metric_time__month,tenant",
            "--csv",
            str(out),
        )
        with out.open() as handle:
            got = {
                (int(r["tenant"]), r["metric_time__month"][:10]): r for r in csv.DictReader(handle)
            }
        expected = {
            (r["tenant_id"], str(r["month"])): r
            for r in query(
                warehouse,
                f"select tenant_id, {month} as month, "
                + ", ".join(f"{sql} as {metric}" for metric, sql in expected_sql.items())
                + f" from {mart} group by tenant_id, {month}",
            )
        }
        assert set(got) == set(expected), name
        for key, row in expected.items():
            for metric in metrics:
                value, want = got[key][metric], row[metric]
                if want is None:
                    assert value in ("", "None"), (metric, key, value)
                else:
                    assert value not in ("", "None"), (metric, key)
                    assert abs(float(value) - float(want)) <= 1e-6 * max(1.0, abs(float(want))), (
                        metric,
                        key,
                        value,
                        want,
                    )
