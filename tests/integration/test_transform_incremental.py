"""`warehouse transform --incremental` (the Dagster transform job, as the CLI runs it) after
the source moves on: only what is not current is built, with its data tests; activity
extracted before its user waits in quarantine until the user lands, a duplicate account whose
canonical one changes its email becomes a person of its own, code changes rebuild what they
touch, and every table it leaves equals, row for row and to the cent, what a full rebuild
makes."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from ingestion.settings import WarehouseSettings
from orchestration.cli import app
from orchestration.defs.transform import DBT_PROJECT_DIR
from tests.orchestration_support import transform

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


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A tiny generated source, extracted and built once in full, for every test of the module
    to start from a copy of: (its folder, the nodes the full build built)."""
    root = tmp_path_factory.mktemp("incremental_template")
    source = f"sqlite:///{root / 'platform.sqlite'}"
    cli(root, "generate", "--scale", "tiny", "--source", source, "--replace")
    cli(root, "extract", "--source", source, "--warehouse", str(root / "warehouse.duckdb"))
    first = transform(settings_for(root), root / "dbt_target")
    assert first.success, first.failures
    return root, first.built


def settings_for(root: Path) -> WarehouseSettings:
    return WarehouseSettings(
        data_dir=root,
        source_url=f"sqlite:///{root / 'platform.sqlite'}",
        path=root / "warehouse.duckdb",
        pii_key="incremental-test-key",
    )


def built_tiny_warehouse(
    tmp_path: Path, template: tuple[Path, set[str]]
) -> tuple[str, Path, WarehouseSettings, Path, set[str]]:
    """A copy of the template (source, warehouse, build state, dlt's pipeline state, dbt's
    artefacts) in ``tmp_path``: (source URL, warehouse file, settings, dbt target folder, the
    nodes the full build built)."""
    root, built = template
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    settings = settings_for(tmp_path)
    return (
        str(settings.source_url),
        settings.warehouse_path,
        settings,
        tmp_path / "dbt_target",
        built,
    )


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
    tmp_path: Path, template: tuple[Path, set[str]]
) -> None:
    source, warehouse, settings, target, first_built = built_tiny_warehouse(tmp_path, template)
    activity_before = totals(warehouse)[2]

    # Nothing was loaded since: nothing to do.
    idle = transform(settings, target, incremental=True)
    assert idle.skipped

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
    incremental = transform(settings, target, incremental=True)
    assert incremental.success, incremental.failures
    assert "fct_learning_activity" in incremental.built
    # Re-read tables that landed no row changed nothing: what reads only them is current.
    assert "dim_tenant" not in incremental.built
    assert 0 < len(incremental.built) < len(first_built)
    assert incremental.summary.checks_passed > 0  # the data tests of what it built ran
    after_incremental = totals(warehouse)
    assert after_incremental[2] > activity_before  # new activity appended
    full = rebuilt_from_scratch(warehouse, tmp_path / "rebuilt-final")
    assert totals(full) == after_incremental
    differences = table_differences(warehouse, full)
    assert all(d == (0, 0) for d in differences.values()), {
        table: d for table, d in differences.items() if d != (0, 0)
    }


def test_incremental_transform_builds_changed_code_without_a_load(
    tmp_path: Path, template: tuple[Path, set[str]]
) -> None:
    """With no load since the last build, `--incremental` still builds what a code change
    touched (dbt's `state:modified+` against the state of the last build): a new view, a
    changed table and everything downstream of them; an incremental model whose code changed
    is rebuilt from scratch. Nothing else runs. A macro change rebuilds the models that call
    it. A failing data test fails the build, and the next run builds its model again."""
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    _, warehouse, settings, target, _ = built_tiny_warehouse(tmp_path, template)
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

    changed = transform(settings, target, project, incremental=True)
    assert changed.success, changed.failures
    assert {"int_revenue_payments", "dim_currency", "fct_learning_activity"} <= changed.built
    assert "int_course_activity_aggregated" in changed.built  # downstream of a changed model
    assert not changed.built & {
        "fct_payments",
        "fct_refunds",
        "snap_platform__users",
        "mart_data_quality",
    }
    with duckdb.connect(str(warehouse), read_only=True) as con:
        view = con.execute("select count(*) from intermediate.int_revenue_payments").fetchone()
        duplicates = con.execute(
            "select count(*) - count(distinct activity_id) from core.fct_learning_activity"
        ).fetchone()
    assert view == (revenue_payments,)
    assert duplicates == (0,)

    # Built and recorded: the next run has nothing to do.
    assert transform(settings, target, project, incremental=True).skipped

    # A macro's change rebuilds every model that calls it, and what is downstream of them.
    fx = project / "macros" / "fx.sql"
    fx.write_text(fx.read_text().replace("{%- endmacro %}", "{# reviewed #}{%- endmacro %}", 1))
    recomputed = transform(settings, target, project, incremental=True)
    assert recomputed.success, recomputed.failures
    assert {"int_payments_converted", "fct_payments", "mart_learner_ltv"} <= recomputed.built
    assert not recomputed.built & {"snap_platform__users", "fct_learning_activity"}

    # A failing data test fails the build with dbt's count; the next run builds it again.
    (project / "models" / "intermediate" / "finance" / "_revenue__models.yml").write_text(
        "version: 2\nmodels:\n  - name: int_revenue_payments\n    columns:\n"
        "      - name: payment_id\n        data_tests:\n"
        "          - accepted_values:\n              arguments:\n                values: [-1]\n"
    )
    failing = transform(settings, target, project, incremental=True)
    assert not failing.success
    assert "int_revenue_payments" in failing.built
    [failure] = [f for f in failing.failures if "accepted_values" in f and "dbt:" not in f]
    assert f"Got {revenue_payments} results, configured to fail if != 0" in failure
    retried = transform(settings, target, project, incremental=True)
    assert not retried.skipped and not retried.success
    assert "int_revenue_payments" in retried.built


def test_a_selected_build_leaves_the_loads_for_the_next_incremental_one(
    tmp_path: Path, template: tuple[Path, set[str]]
) -> None:
    """`warehouse transform --select` builds exactly what it selects: what the loads changed
    elsewhere stays not current, so the next `--incremental` run still builds it."""
    source, warehouse, settings, target, _ = built_tiny_warehouse(tmp_path, template)
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

    selected = transform(settings, target, select="dim_currency")
    assert selected.success, selected.failures
    assert selected.built == {"dim_currency"}
    incremental = transform(settings, target, incremental=True)
    assert incremental.success, incremental.failures
    assert "fct_learning_activity" in incremental.built
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
    held = transform(settings, target, incremental=True)
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
    landed = transform(settings, target, incremental=True)
    assert landed.success, landed.failures
    assert "fct_learning_activity" in landed.built
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


def rebuilt_from_scratch(warehouse: Path, folder: Path) -> Path:
    """The oracle: a copy of ``warehouse`` rebuilt by plain dbt, every model from scratch (no
    tests: only the tables are compared). Independent of the change detector under test."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "warehouse.duckdb"
    shutil.copy(warehouse, copy)
    subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "build",
            "--full-refresh",
            "--exclude",
            "resource_type:test",
            "resource_type:unit_test",
            "--quiet",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(folder / "target"),
            "--log-path",
            str(folder / "logs"),
        ],
        env={**os.environ, "WAREHOUSE_PATH": str(copy)},
        check=True,
        capture_output=True,
    )
    return copy


def differences_from_a_full_rebuild(
    tmp_path: Path, settings: WarehouseSettings
) -> dict[str, tuple[int, int]]:
    """The tables of the warehouse as it is that differ from a full rebuild of a copy of it."""
    rebuilt = rebuilt_from_scratch(settings.warehouse_path, tmp_path / "rebuilt")
    differences = table_differences(settings.warehouse_path, rebuilt)
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
    moved = transform(settings, target, incremental=True)
    assert moved.success, moved.failures
    assert {
        "dim_tenant",
        "dim_course",
        "dim_product",
        "fct_payments",
        "dim_community",
    } <= moved.built
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
    parted = transform(settings, target, incremental=True)
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
