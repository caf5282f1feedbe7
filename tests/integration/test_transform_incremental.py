"""`warehouse transform --incremental` after the source moves on: only what changed is built,
its data tests run (in one query, or through `dbt test` when one is not a plain generic test)
and catch failures, activity extracted before its user waits in quarantine until the user
lands, a duplicate account whose canonical one changes its email becomes a person of its own,
and every table it leaves equals, row for row and to the cent, what a full rebuild makes."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from ingestion.settings import WarehouseSettings
from orchestration import transformation
from orchestration.cli import app
from orchestration.transformation import (
    TransformResult,
    _single_pass_tests,
    run_data_tests,
    transform,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt")]

BUILT_SCHEMAS = ("intermediate", "core", "finance", "marketplace", "quality", "snapshots")

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


def built_tiny_warehouse(
    tmp_path: Path,
) -> tuple[str, Path, WarehouseSettings, Path, TransformResult]:
    """A tiny generated source, extracted and built once in full: (source URL, warehouse
    file, settings, dbt target folder, the full build's result)."""
    source = f"sqlite:///{tmp_path / 'platform.sqlite'}"
    warehouse = tmp_path / "warehouse.duckdb"
    settings = WarehouseSettings(data_dir=tmp_path, source_url=source, path=warehouse)
    target = tmp_path / "dbt_target"
    cli(tmp_path, "generate", "--scale", "tiny", "--source", source, "--replace")
    cli(tmp_path, "extract", "--source", source, "--warehouse", str(warehouse))
    first = transform(settings, target_path=target, quiet=True)
    assert first.success, first.failures
    return source, warehouse, settings, target, first


def totals(warehouse: Path) -> tuple:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute(MART_TOTALS).fetchone()
    assert row is not None
    return row


def table_differences(incremental: Path, full: Path) -> dict[str, tuple[int, int]]:
    """Every table dbt builds: rows only in the incremental result / only in the full one
    (multisets: ``except all`` both ways, so duplicates and every cent count)."""
    differences = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{incremental}' as inc (read_only)")
        con.execute(f"attach '{full}' as full_build (read_only)")
        schemas = ", ".join(f"'{schema}'" for schema in BUILT_SCHEMAS)
        tables = con.execute(
            f"select schema_name, table_name from duckdb_tables() where database_name = 'inc' "
            f"and schema_name in ({schemas}) order by 1, 2"
        ).fetchall()
        assert len(tables) > 10, tables
        for schema, table in tables:
            counts = con.execute(
                f"""
                select
                    (select count(*) from (select * from inc.{schema}.{table}
                        except all select * from full_build.{schema}.{table})),
                    (select count(*) from (select * from full_build.{schema}.{table}
                        except all select * from inc.{schema}.{table}))
                """
            ).fetchone()
            assert counts is not None
            differences[f"{schema}.{table}"] = (int(counts[0]), int(counts[1]))
    return differences


def test_incremental_transform_builds_only_changes_and_matches_a_full_rebuild(
    tmp_path: Path,
) -> None:
    source, warehouse, settings, target, first = built_tiny_warehouse(tmp_path)
    activity_before = totals(warehouse)[2]

    # Nothing was loaded since: nothing to do.
    idle = transform(settings, incremental=True, target_path=target, quiet=True)
    assert idle.skipped and idle.changed_tables == []

    # Activity extracted before its user: held back, then built once the user lands. The full
    # rebuild below checks every table it touched too.
    hold_an_orphan_until_its_user_lands(tmp_path, source, settings, target)
    # A canonical account changes its email: its duplicate becomes a person of its own.
    part_a_duplicate_from_its_person(tmp_path, source, settings, target)
    # A tenant, a course, an ebook, a payment, a community and a membership change under rows
    # that did not land.
    move_parents_under_unchanged_rows(tmp_path, source, settings, target)
    activity_before = totals(warehouse)[2]

    cli(tmp_path, "generate", "--mutate", "--volume", "0.05", "--source", source)
    # A reconcile: besides the changes, it marks the rows hard-deleted in the source (a mark
    # keeps the row's load id) and re-lands the progress updates the stale cursor missed.
    cli(tmp_path, "extract", "--reconcile", "--source", source, "--warehouse", str(warehouse))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        marked = con.execute(
            "select count(*) from raw.enrollments where _source_deleted_at is not null"
        ).fetchone()
    assert marked is not None and marked[0] > 0
    incremental = transform(settings, incremental=True, target_path=target, quiet=True)
    assert incremental.success, incremental.failures
    assert incremental.changed_tables and "activity_logs" in incremental.changed_tables
    # Re-read tables that landed no row changed nothing: they are not rebuilt from.
    assert "tenants" not in incremental.changed_tables
    built = sum(incremental.statuses.values())
    assert 0 < built < sum(first.statuses.values())
    assert incremental.statuses.get("pass", 0) > 0  # its data tests ran
    assert not any(node.startswith("test.") for node in incremental.built)
    after_incremental = totals(warehouse)
    assert after_incremental[2] > activity_before  # new activity appended
    incremental_copy = tmp_path / "incremental.duckdb"
    shutil.copy(warehouse, incremental_copy)

    full = transform(settings, full_refresh=True, target_path=target, quiet=True)
    assert full.success, full.failures
    assert totals(warehouse) == after_incremental
    differences = table_differences(incremental_copy, warehouse)
    assert all(d == (0, 0) for d in differences.values()), {
        table: d for table, d in differences.items() if d != (0, 0)
    }

    # The single-query data tests fail where dbt's would.
    manifest = json.loads((target / "manifest.json").read_text())
    tests = _single_pass_tests(manifest, set(manifest["nodes"]))
    assert tests is not None and len(tests) > 100
    statuses, failures = run_data_tests(incremental_copy, manifest, tests)
    assert statuses == {"pass": len(tests)} and failures == []
    with duckdb.connect(str(incremental_copy)) as con:
        con.execute("insert into core.fct_payments select * from core.fct_payments limit 1")
        con.execute("update finance.mart_learner_ltv set tenant_id = null")
    statuses, failures = run_data_tests(incremental_copy, manifest, tests)
    assert statuses["fail"] == len(failures) >= 2
    assert any("unique_fct_payments_payment_id" in f for f in failures)
    assert any("not_null_mart_learner_ltv_tenant_id" in f for f in failures)


def test_a_table_whose_build_fails_keeps_its_previous_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tables are replaced in place inside one transaction (macros/materializations/table.sql):
    a table model that fails after its old table was dropped leaves that table exactly as it
    was, with no temporary or backup relation behind; no build renames or backs up a table."""
    project = tmp_path / "dbt_project"  # a copy: its own dbt log
    shutil.copytree(
        transformation.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs")
    )
    monkeypatch.setattr(transformation, "DBT_PROJECT_DIR", project)
    _, warehouse, settings, target, _ = built_tiny_warehouse(tmp_path)

    def relations(con: duckdb.DuckDBPyConnection) -> set[str]:
        rows = con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() "
            "union all select schema_name || '.' || view_name from duckdb_views() "
            "where not internal"
        ).fetchall()
        return {row[0] for row in rows}

    with duckdb.connect(str(warehouse), read_only=True) as con:
        before = con.execute("select * from intermediate.int_metrics_as_of").fetchall()
        relations_before = relations(con)
    assert len(before) == 1

    # A malformed as-of time makes int_metrics_as_of (a table) fail in DuckDB, after the
    # materialization dropped the old table in the same transaction.
    failed = transform(settings, as_of="not a time", target_path=target, quiet=True)
    assert not failed.success
    assert any("int_metrics_as_of" in failure for failure in failed.failures), failed.failures
    with duckdb.connect(str(warehouse), read_only=True) as con:
        after = con.execute("select * from intermediate.int_metrics_as_of").fetchall()
        relations_after = relations(con)
    assert after == before
    assert relations_after == relations_before
    assert not [name for name in relations_after if "__dbt_" in name]

    logs = sorted((project / "logs").glob("dbt.log*"), reverse=True)  # dbt.log.1 first
    log = "".join(path.read_text() for path in logs)
    failed_run = log[log.rindex("Running with dbt=") :]
    assert 'drop table if exists "warehouse"."intermediate"."int_metrics_as_of"' in failed_run
    assert "ROLLBACK" in failed_run
    # No table is renamed or backed up (views still are: dbt-duckdb's view materialization).
    assert not re.search(r'drop table if exists "[^"]+"\."[^"]+"\."[^"]+__dbt_backup"', log)
    assert not re.search(r"alter table \S+ rename to", log, re.IGNORECASE)
    assert re.search(r"alter view \S+ rename to", log, re.IGNORECASE)  # the search works


def test_incremental_transform_runs_custom_tests_through_dbt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data test the single query cannot evaluate (here a singular test) makes the incremental
    build run its data tests through ``dbt test``; a failure there fails the transform with the
    number of failing rows."""
    project = tmp_path / "dbt_project"
    shutil.copytree(
        transformation.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs")
    )
    monkeypatch.setattr(transformation, "DBT_PROJECT_DIR", project)
    singular = project / "tests" / "assert_no_payment_after_the_first_build.sql"
    singular.write_text("select payment_id from {{ ref('fct_payments') }} where 1 = 0\n")

    source, warehouse, settings, target, _ = built_tiny_warehouse(tmp_path)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute("select max(payment_id) from core.fct_payments").fetchone()
    assert row is not None
    last_payment_id = row[0]
    # From now on the test fails for every payment the next loads add.
    singular.write_text(
        f"select payment_id from {{{{ ref('fct_payments') }}}} where payment_id > {last_payment_id}\n"
    )

    cli(tmp_path, "generate", "--mutate", "--volume", "0.05", "--source", source)
    cli(tmp_path, "extract", "--source", source, "--warehouse", str(warehouse))
    incremental = transform(settings, incremental=True, target_path=target, quiet=True)

    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute(
            "select count(*) from core.fct_payments where payment_id > ?", [last_payment_id]
        ).fetchone()
    assert row is not None
    new_payments = row[0]
    assert new_payments > 0
    assert not incremental.success
    assert incremental.statuses.get("fail") == 1
    [failure] = incremental.failures
    assert failure.startswith("test.platform_warehouse.assert_no_payment_after_the_first_build")
    assert f"Got {new_payments} result" in failure
    assert incremental.statuses.get("pass", 0) > 0  # the generic tests ran through dbt too


def test_incremental_transform_builds_changed_code_without_a_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no load since the last build, `--incremental` still builds what a code change
    touched: a new view, a changed table and everything downstream of them; an incremental
    model whose code changed is rebuilt from scratch. Nothing else runs. A macro change
    rebuilds everything. A failing data test fails the build and records nothing."""
    project = tmp_path / "dbt_project"
    shutil.copytree(
        transformation.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs")
    )
    monkeypatch.setattr(transformation, "DBT_PROJECT_DIR", project)
    _, warehouse, settings, target, _ = built_tiny_warehouse(tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        # A stray row only a rebuild from scratch removes.
        con.execute(
            "insert into core.fct_learning_activity select * from core.fct_learning_activity limit 1"
        )
        row = con.execute(
            "select count(*) from intermediate.int_payments_converted where is_revenue"
        ).fetchone()
    assert row is not None
    revenue_payments = row[0]

    (project / "models" / "intermediate" / "finance" / "int_revenue_payments.sql").write_text(
        "select payment_id from {{ ref('int_payments_converted') }} where is_revenue\n"
    )
    currency = project / "models" / "marts" / "core" / "dim_currency.sql"
    currency.write_text(currency.read_text() + "-- a reviewed comment\n")
    activity = project / "models" / "marts" / "core" / "fct_learning_activity.sql"
    activity.write_text(activity.read_text() + "-- a reviewed comment\n")

    changed = transform(settings, incremental=True, target_path=target, quiet=True)
    assert changed.success, changed.failures
    assert changed.changed_tables == []
    # dbt found the schemas it writes to (adapter_fixes.sql): it created none of them again.
    log = (project / "logs" / "dbt.log").read_text()
    last_run = log[log.rindex("Running with dbt=") :]
    assert "create schema if not exists" in log  # the first build created them
    assert "create schema if not exists" not in last_run
    built = {unique_id.split(".")[-1] for unique_id in changed.built}
    assert {"int_revenue_payments", "dim_currency", "fct_learning_activity"} <= built
    assert "int_course_activity_aggregated" in built  # downstream of a changed model
    assert not built & {"fct_payments", "fct_refunds", "snap_platform__users", "mart_data_quality"}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        view = con.execute("select count(*) from intermediate.int_revenue_payments").fetchone()
        duplicates = con.execute(
            "select count(*) - count(distinct activity_id) from core.fct_learning_activity"
        ).fetchone()
    assert view == (revenue_payments,)
    assert duplicates == (0,)

    # Built and recorded: the next run has nothing to do.
    idle = transform(settings, incremental=True, target_path=target, quiet=True)
    assert idle.skipped

    # A macro's code is in no model's dbt checksum: a change to one rebuilds everything.
    fx = project / "macros" / "fx.sql"
    fx.write_text(fx.read_text().replace("{%- endmacro %}", "{# reviewed #}{%- endmacro %}", 1))
    everything = transform(settings, incremental=True, target_path=target, quiet=True)
    assert everything.success, everything.failures
    rebuilt = {unique_id.split(".")[-1] for unique_id in everything.built}
    assert {
        "fct_payments",
        "fct_learning_activity",
        "snap_platform__users",
        "dim_currency",
    } <= rebuilt

    # A generic data test that fails runs in the single query on dbt's still-open database:
    # the build fails with dbt's message and count, and records nothing (the next run retries).
    (project / "models" / "intermediate" / "finance" / "_revenue__models.yml").write_text(
        "version: 2\nmodels:\n  - name: int_revenue_payments\n    columns:\n"
        "      - name: payment_id\n        data_tests:\n"
        "          - accepted_values:\n              arguments:\n                values: [-1]\n"
    )
    revenue = project / "models" / "intermediate" / "finance" / "int_revenue_payments.sql"
    revenue.write_text(revenue.read_text() + "-- a reviewed comment\n")
    calls: list[tuple[object, str, int]] = []
    evaluate = transformation.run_data_tests

    def spied(*args: Any, **kwargs: Any) -> tuple[dict[str, int], list[str]]:
        connection = args[3] if len(args) > 3 else kwargs.get("connection")
        calls.append((connection, threading.current_thread().name, len(args[2])))
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(transformation, "run_data_tests", spied)
    failing = transform(settings, incremental=True, target_path=target, quiet=True)
    # They ran on dbt's open database while dbt built (the data-tests thread), each test once.
    assert calls and all(connection is not None for connection, _, _ in calls)
    assert {thread for _, thread, _ in calls} == {"data-tests"}
    assert sum(count for _, _, count in calls) == failing.statuses.get("pass", 0) + 1
    assert not failing.success
    assert "model.platform_warehouse.int_revenue_payments" in failing.built
    assert failing.statuses.get("fail") == 1
    [failure] = failing.failures
    assert failure.startswith("test.platform_warehouse.accepted_values_int_revenue_payments_")
    assert f"Got {revenue_payments} results, configured to fail if != 0" in failure
    retried = transform(settings, incremental=True, target_path=target, quiet=True)
    assert not retried.skipped and not retried.success


def test_a_selected_build_leaves_the_loads_for_the_next_incremental_one(tmp_path: Path) -> None:
    """`warehouse transform --select` builds part of the project: the loads it did not build
    from stay pending, so the next `--incremental` run still builds what they changed."""
    source, warehouse, settings, target, _ = built_tiny_warehouse(tmp_path)
    cli(tmp_path, "generate", "--mutate", "--volume", "0.05", "--source", source)
    cli(tmp_path, "extract", "--source", source, "--warehouse", str(warehouse))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute("select max(id) from raw.activity_logs").fetchone()
        built_before = con.execute(
            "select max(activity_id) from core.fct_learning_activity"
        ).fetchone()
    assert row is not None and built_before is not None
    newest_activity = row[0]
    assert built_before[0] < newest_activity  # the load brought activity not yet built

    selected = transform(settings, select=["dim_currency"], target_path=target, quiet=True)
    assert selected.success, selected.failures
    incremental = transform(settings, incremental=True, target_path=target, quiet=True)
    assert incremental.success, incremental.failures
    assert incremental.changed_tables and "activity_logs" in incremental.changed_tables
    assert "model.platform_warehouse.fct_learning_activity" in incremental.built
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute("select max(activity_id) from core.fct_learning_activity").fetchone()
    assert row == (newest_activity,)


def activity_state(warehouse: Path, activity_id: int, user_id: int, course_id: int) -> dict:
    """Where one activity row stands: in the fact or quarantined, its user's course count, the
    activity row accounting of mart_data_quality beside raw's count, the fact's size."""
    with duckdb.connect(str(warehouse), read_only=True) as con:

        def one(sql: str, *params: int) -> Any:
            row = con.execute(sql, list(params)).fetchone()
            assert row is not None
            return row if len(row) > 1 else row[0]

        return {
            "in_fact": one(
                "select count(*) from core.fct_learning_activity where activity_id = ?",
                activity_id,
            ),
            "quarantined": con.execute(
                "select quarantine_reason from quality.quarantined_rows "
                "where table_name = 'activity_logs' and source_id = ?",
                [activity_id],
            ).fetchall(),
            "course_count": con.execute(
                "select activity_count from intermediate.int_course_activity_aggregated "
                "where user_id = ? and course_id = ?",
                [user_id, course_id],
            ).fetchall(),
            "accounting": one(
                "select sum(rows_in_raw), sum(rows_used), sum(quarantined_orphan), "
                "(select count(*) from raw.activity_logs) "
                "from quality.mart_data_quality where table_name = 'activity_logs'"
            ),
            "fact_rows": one("select count(*) from core.fct_learning_activity"),
        }


def purchase_state(warehouse: Path, payment_id: int, enrollment_id: int) -> tuple:
    """(fct_payments rows of the payment, the enrollment's paid USD in fct_enrollments: None
    when it is not there)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        payments = con.execute(
            "select count(*) from core.fct_payments where payment_id = ?", [payment_id]
        ).fetchone()
        paid = con.execute(
            "select paid_amount_usd from core.fct_enrollments where enrollment_id = ?",
            [enrollment_id],
        ).fetchone()
    assert payments is not None
    return payments[0], None if paid is None else paid[0]


def service_order_rows(warehouse: Path, order_id: int) -> int:
    """How many rows fct_service_orders holds for the order."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = con.execute(
            "select count(*) from core.fct_service_orders where order_id = ?", [order_id]
        ).fetchone()
    assert found is not None
    return int(found[0])


def hold_an_orphan_until_its_user_lands(
    tmp_path: Path, source: str, settings: WarehouseSettings, target: Path
) -> None:
    """An extract can read activity_logs before the user the activity belongs to exists in raw
    (the user was created in between). That row is quarantined as an orphan, counted, and never
    dropped: once its user lands, the next incremental build adds it to the fact and to its
    user's course counts, though its id is below the highest one already built. The same holds
    for the user's enrollments, payment and service order, which do not land again with the
    user."""
    warehouse = settings.warehouse_path
    database = Path(source.removeprefix("sqlite:///"))
    with sqlite3.connect(database) as con:
        late_user = con.execute("select max(id) + 1 from users").fetchone()[0]
        orphan = con.execute("select max(id) + 1 from activity_logs").fetchone()[0]
        tenant, course = con.execute(
            "select tenant_id, id from courses where published_at is not null order by id limit 1"
        ).fetchone()
        con.execute(
            "insert into activity_logs (id, tenant_id, user_id, course_id, activity_type, "
            "occurred_at) values (?, ?, ?, ?, 'lesson_viewed', "
            "(select max(occurred_at) from activity_logs))",
            (orphan, tenant, late_user, course),
        )
        # A later row of a known user: the orphan's id ends up below the fact's highest.
        newest = con.execute(
            "select tenant_id, user_id, course_id, activity_type, occurred_at "
            "from activity_logs where course_id is not null and id < ? order by id desc limit 1",
            (orphan,),
        ).fetchone()
        con.execute(
            "insert into activity_logs (id, tenant_id, user_id, course_id, activity_type, "
            "occurred_at) values (?, ?, ?, ?, ?, ?)",
            (orphan + 1, *newest),
        )
        # The late user's enrollment and its payment, extracted before the user too.
        enrollment = con.execute("select max(id) + 1 from enrollments").fetchone()[0]
        payment = con.execute("select max(id) + 1 from payments").fetchone()[0]
        con.execute(
            "insert into enrollments (id, tenant_id, user_id, course_id, status, "
            "acquisition_channel, progress_pct, enrolled_at, created_at, updated_at) "
            "select ?, ?, ?, ?, 'active', 'organic', 0, max(enrolled_at), max(created_at), "
            "max(updated_at) from enrollments",
            (enrollment, tenant, late_user, course),
        )
        # And one more, unpaid, in another course of the tenant.
        con.execute(
            "insert into enrollments (id, tenant_id, user_id, course_id, status, "
            "acquisition_channel, progress_pct, enrolled_at, created_at, updated_at) "
            "select ?, ?, ?, max(courses.id), 'active', 'organic', 0, max(enrolled_at), "
            "max(enrollments.created_at), max(enrollments.updated_at) from enrollments, courses "
            "where courses.tenant_id = ? and courses.id <> ?",
            (enrollment + 1, tenant, late_user, tenant, course),
        )
        con.execute(
            "insert into payments (id, tenant_id, user_id, product_type, product_id, "
            "enrollment_id, amount, currency, processor, processor_fee, status, created_at, "
            "updated_at) select ?, ?, ?, 'course', ?, ?, 25.00, 'USD', 'stripe', 1.03, "
            "'succeeded', max(created_at), max(updated_at) from payments",
            (payment, tenant, late_user, course, enrollment),
        )
        order = con.execute("select max(id) + 1 from field_service_orders").fetchone()[0]
        con.execute(
            "insert into field_service_orders (id, tenant_id, customer_id, provider_id, "
            "service_type, region, status, quoted_amount, currency, metadata, requested_at, "
            "updated_at) select ?, ?, ?, min(provider_id), 'cleaning', 'west', 'requested', "
            "120.00, 'USD', '{}', max(requested_at), max(updated_at) from field_service_orders",
            (order, tenant, late_user),
        )
    cli(tmp_path, "extract", "--source", source, "--warehouse", str(warehouse))
    held = transform(settings, incremental=True, target_path=target, quiet=True)
    assert held.success, held.failures
    assert purchase_state(warehouse, payment, enrollment) == (0, None)
    assert purchase_state(warehouse, payment, enrollment + 1)[1] is None
    assert service_order_rows(warehouse, order) == 0
    before = activity_state(warehouse, orphan, late_user, course)
    assert before["in_fact"] == 0
    assert before["quarantined"] == [("orphan",)]
    assert before["course_count"] == []
    raw, used, orphans, raw_rows = before["accounting"]
    assert raw == raw_rows and orphans == 1 and used == raw - 1
    assert before["fact_rows"] == used  # every usable row is in the fact, no other

    with sqlite3.connect(database) as con:
        con.execute(
            "insert into users (id, tenant_id, email, full_name, role, marketing_consent, "
            "created_at, updated_at) values (?, ?, ?, 'Late Arrival', 'learner', 0, "
            "(select max(updated_at) from users), datetime((select max(updated_at) from users), "
            "'+1 day'))",
            (late_user, tenant, f"late.arrival.{late_user}@mail.example.org"),
        )
    cli(tmp_path, "extract", "--source", source, "--warehouse", str(warehouse))
    landed = transform(settings, incremental=True, target_path=target, quiet=True)
    assert landed.success, landed.failures
    assert "model.platform_warehouse.fct_learning_activity" in landed.built
    # Its enrollments, payment and service order, which did not land again, leave quarantine
    # with it.
    assert purchase_state(warehouse, payment, enrollment) == (1, 25)
    assert purchase_state(warehouse, payment, enrollment + 1)[1] == 0
    assert service_order_rows(warehouse, order) == 1
    after = activity_state(warehouse, orphan, late_user, course)
    assert after["in_fact"] == 1
    assert after["quarantined"] == []
    assert after["course_count"] == [(1,)]
    raw, used, orphans, raw_rows = after["accounting"]
    assert raw == raw_rows and orphans == 0 and used == raw
    assert after["fact_rows"] == used == before["fact_rows"] + 1


def differences_from_a_full_rebuild(
    tmp_path: Path, settings: WarehouseSettings
) -> dict[str, tuple[int, int]]:
    """The tables of the warehouse as it is that differ from a full rebuild of a copy of it."""
    copy = tmp_path / "rebuilt" / "warehouse.duckdb"
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(settings.warehouse_path, copy)
    rebuilt = transform(
        settings.model_copy(update={"path": copy}),
        full_refresh=True,
        target_path=copy.parent / "dbt_target",
        quiet=True,
    )
    assert rebuilt.success, rebuilt.failures
    differences = table_differences(settings.warehouse_path, copy)
    return {table: d for table, d in differences.items() if d != (0, 0)}


def move_parents_under_unchanged_rows(
    tmp_path: Path, source: str, settings: WarehouseSettings, target: Path
) -> None:
    """Rows that did not land still change when their parents do: a tenant's new time zone and
    default currency move its payments' and enrollments' local dates; a course that becomes
    free and changes instructor, and an ebook that changes instructor, move their payments'
    instructor and the course's enrollments; a payment moved to another enrollment leaves the
    first one's purchase and joins the second's; a community moved to another tenant takes its
    posts' and members' events with it; a member who rejoins loses the event of leaving. The incremental build (which finds these
    rows from what landed, not by comparing every row) equals a full rebuild."""
    warehouse = settings.warehouse_path
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = con.execute(
            """
            select
                moved.payment_id, moved.enrollment_id, other.enrollment_id, moved.tenant_id
            from core.fct_enrollments as moved
            inner join core.fct_enrollments as other
                on other.tenant_id = moved.tenant_id and other.enrollment_id <> moved.enrollment_id
            where moved.payment_id is not null and other.payment_id is null
                and not other.is_free_enrollment
            order by 1, 3
            limit 1
            """
        ).fetchone()
        assert found is not None, "the tiny source has no paid enrollment beside an unpaid one"
        payment, first_enrollment, second_enrollment, payment_tenant = found
        # The changed tenant is not the payment's, the course is in neither, and the ebook's
        # payments are not in the changed tenant: each change must be found on its own, not
        # because a change beside it rebuilt the same rows.
        tenant = con.execute(
            "select min(tenant_id) from core.fct_enrollments where tenant_id <> ?",
            [payment_tenant],
        ).fetchone()[0]
        course = con.execute(
            "select min(course_id) from core.fct_enrollments where not is_free_enrollment "
            "and tenant_id not in (?, ?)",
            [payment_tenant, tenant],
        ).fetchone()[0]
        ebook = con.execute(
            "select min(product_id) from core.fct_payments where product_type = 'ebook' "
            "and tenant_id <> ?",
            [tenant],
        ).fetchone()[0]
        community, community_tenant = con.execute(
            "select community_id, tenant_id from core.fct_community_activity "
            "where tenant_id <> ? order by community_id limit 1",
            [tenant],
        ).fetchone()
        new_community_tenant = con.execute(
            "select min(tenant_id) from staging.stg_platform__tenants where tenant_id not in (?, ?)",
            [tenant, community_tenant],
        ).fetchone()[0]
        # Rebuilding its events cannot remove an event that is no longer produced: wherever it
        # is, only the post-hook does.
        rejoined = con.execute(
            "select min(source_id) from core.fct_community_activity "
            "where activity_type = 'member_left'"
        ).fetchone()[0]
        assert None not in (tenant, course, ebook, new_community_tenant, rejoined)
        paid_before = con.execute(
            "select paid_amount_usd from core.fct_enrollments where enrollment_id = ?",
            [first_enrollment],
        ).fetchone()[0]
    database = Path(source.removeprefix("sqlite:///"))
    with sqlite3.connect(database) as con:
        bump = "updated_at = datetime((select max(updated_at) from {}), '+1 day')"
        con.execute(
            "update tenants set reporting_timezone = case when reporting_timezone = "
            "'Pacific/Auckland' then 'America/Los_Angeles' else 'Pacific/Auckland' end, "
            "default_currency = case when default_currency = 'EUR' then 'GBP' else 'EUR' end "
            "where id = ?",
            (tenant,),
        )
        con.execute(
            "update courses set price_amount = 0, instructor_id = (select max(instructor_id) "
            f"from courses), {bump.format('courses')} where id = ?",
            (course,),
        )
        con.execute(
            "update ebooks set instructor_id = (select min(instructor_id) from ebooks), "
            f"{bump.format('ebooks')} where id = ?",
            (ebook,),
        )
        con.execute(
            f"update payments set enrollment_id = ?, {bump.format('payments')} where id = ?",
            (second_enrollment, payment),
        )
        con.execute(
            f"update communities set tenant_id = ?, {bump.format('communities')} where id = ?",
            (new_community_tenant, community),
        )
        con.execute("update community_members set left_at = null where id = ?", (rejoined,))
    cli(tmp_path, "extract", "--source", source, "--warehouse", str(warehouse))
    moved = transform(settings, incremental=True, target_path=target, quiet=True)
    assert moved.success, moved.failures
    assert {"tenants", "courses", "ebooks", "payments", "communities"} <= set(moved.changed_tables)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        purchases = dict(
            con.execute(
                "select enrollment_id, payment_id from core.fct_enrollments "
                "where enrollment_id in (?, ?)",
                [first_enrollment, second_enrollment],
            ).fetchall()
        )
        paid_after = con.execute(
            "select paid_amount_usd from core.fct_enrollments where enrollment_id = ?",
            [first_enrollment],
        ).fetchone()[0]
        free = con.execute(
            "select bool_and(is_free_enrollment) from core.fct_enrollments where course_id = ?",
            [course],
        ).fetchone()[0]
        left = con.execute(
            "select count(*) from core.fct_community_activity where source_id = ? "
            "and activity_type like 'member_%'",
            [rejoined],
        ).fetchone()[0]
        community_tenants = con.execute(
            "select distinct tenant_id from core.fct_community_activity where community_id = ?",
            [community],
        ).fetchall()
    assert purchases[second_enrollment] == payment
    assert purchases[first_enrollment] != payment and paid_after < paid_before
    assert free is True
    assert community_tenants == [(new_community_tenant,)]
    assert left == 1  # joined, no longer left
    assert differences_from_a_full_rebuild(tmp_path, settings) == {}


def part_a_duplicate_from_its_person(
    tmp_path: Path, source: str, settings: WarehouseSettings, target: Path
) -> None:
    """When the canonical account of a duplicated email changes its email, the duplicate
    becomes a person of its own although its own row does not change (so the users snapshot
    keeps it as a duplicate). The incremental build still succeeds: dim_person has the new
    person, and the duplicate's activity, built before, now carries that person's key."""
    warehouse = settings.warehouse_path
    with duckdb.connect(str(warehouse), read_only=True) as con:
        pair = con.execute(
            "select users.person_id, users.user_id from staging.stg_platform__users as users "
            "where users.quarantine_reason = 'duplicate_person' and exists (select 1 from "
            "core.fct_learning_activity as activity where activity.user_id = users.user_id) "
            "order by users.user_id limit 1"
        ).fetchone()
    assert pair is not None, "the tiny source plants no duplicate account with activity"
    canonical, duplicate = pair
    database = Path(source.removeprefix("sqlite:///"))
    with sqlite3.connect(database) as con:
        con.execute(
            "update users set email = 'renamed.' || email, "
            "updated_at = datetime((select max(updated_at) from users), '+1 day') where id = ?",
            (canonical,),
        )
    cli(tmp_path, "extract", "--source", source, "--warehouse", str(warehouse))
    parted = transform(settings, incremental=True, target_path=target, quiet=True)
    assert parted.success, parted.failures
    with duckdb.connect(str(warehouse), read_only=True) as con:
        people = con.execute(
            "select person_id, count(*) from core.dim_person where person_id in (?, ?) "
            "and is_current group by 1 order by 1",
            [canonical, duplicate],
        ).fetchall()
        activity = con.execute(
            "select count(*), count(people.person_id) from core.fct_learning_activity as activity "
            "left join (select distinct person_key, person_id from core.dim_person) as people "
            "on activity.person_key = people.person_key and people.person_id = ? "
            "where activity.user_id = ?",
            [duplicate, duplicate],
        ).fetchone()
    assert people == [(canonical, 1), (duplicate, 1)]
    assert activity is not None and activity[0] > 0 and activity[1] == activity[0]
