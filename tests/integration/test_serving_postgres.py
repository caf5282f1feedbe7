"""Publishing to PostgreSQL: one-transaction swap, read-only BI role, tenant row-level security,
and a publish killed midway that leaves both the serving file and PostgreSQL on the old version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict

import duckdb
import psycopg
import pytest

from serving.postgres import tenant_role_name
from serving.publish import current_version, publish_warehouse
from serving.settings import ServingSettings
from tests.serving_support import (
    build_warehouse,
    mart_rows,
    passing_checks,
    pg_available,
    require,
    scratch_database,
    write_manifest,
)

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("serving_postgres")]


@pytest.fixture
def pg(tmp_path):
    require("PostgreSQL on 127.0.0.1:5432", pg_available())
    warehouse = build_warehouse(tmp_path / "wh.duckdb", mart_rows(seed=3))
    manifest = write_manifest(tmp_path / "target" / "manifest.json", warehouse, with_tests=True)
    checks = passing_checks()
    with scratch_database("pub") as (url, roles):
        settings = ServingSettings(
            data_dir=tmp_path,
            dbt_target_dir=manifest.parent,
            pg_url=url,
            pg_bi_role=roles["bi"],
            pg_tenant_role_prefix=roles["tenant_prefix"],
        )
        yield warehouse, settings, checks, url


def as_role(url: str, role: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://{role}@")


def test_bi_and_tenant_roles_see_what_they_should(pg):
    warehouse, settings, checks, url = pg
    rows = mart_rows(seed=3)
    result = publish_warehouse(warehouse, settings, checks)
    assert "PostgreSQL schema analytics: 9 tables" in result.postgres
    assert result.timings["postgres_swap"] < 5

    with psycopg.connect(as_role(url, settings.pg_bi_role)) as bi:
        got = bi.execute(
            "select tenant_id, count(*), round(sum(net_sales_usd)::numeric, 2) "
            "from analytics.mart_instructor_pnl group by 1 order by 1"
        ).fetchall()
    expected = defaultdict(lambda: [0, 0.0])
    for r in rows["mart_instructor_pnl"]:
        expected[r["tenant_id"]][0] += 1
        expected[r["tenant_id"]][1] += r["net_sales_usd"]
    assert [(t, n, float(s)) for t, n, s in got] == [
        (t, n, pytest.approx(s, abs=0.01)) for t, (n, s) in sorted(expected.items())
    ]

    seen = {}
    for tenant in (1, 2):
        role = tenant_role_name(settings.pg_tenant_role_prefix, tenant)
        with psycopg.connect(as_role(url, role)) as conn:
            seen[tenant] = {
                table: conn.execute(
                    f"select tenant_id, count(*) from analytics.{table} group by 1"
                ).fetchall()
                for table in ("mart_learner_ltv", "mart_instructor_pnl", "dim_instructor")
            }
            # a tenant role cannot widen its scope by setting anything
            conn.execute("set app.tenant_id = '1'")
            assert {
                t
                for (t,) in conn.execute("select tenant_id from analytics.fct_payments").fetchall()
            } == {tenant}
            # reference data and the freshness stamp are for every reader...
            assert conn.execute("select count(*) from analytics.dim_date").fetchone() == (40,)
            (stamp,) = conn.execute(
                "select max(data_as_of) from analytics._publish_metadata"
            ).fetchone()
            assert stamp is not None and stamp.utcoffset() is not None
            # ...but not the platform's row counts, nor any other table without tenant_id
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("select sum(row_count) from analytics._publish_metadata")
            conn.rollback()
    for tenant in (1, 2):
        for table, counts in seen[tenant].items():
            assert counts == [(tenant, sum(1 for r in rows[table] if r["tenant_id"] == tenant))]
    assert seen[1] != seen[2]


def test_bi_reads_a_described_catalogue_with_keys_and_typed_columns(pg):
    """What Metabase and Looker read from pg_catalog, as the BI role: a comment on every table
    and column (dbt's docs), primary and unique keys from the unique/not_null tests, foreign
    keys from the relationships tests whose target is a key, timestamps with a time zone, and
    money and averages as numerics of a stated scale."""
    warehouse, settings, checks, url = pg
    publish_warehouse(warehouse, settings, checks)
    with psycopg.connect(as_role(url, settings.pg_bi_role)) as bi:
        tables = dict(
            bi.execute(
                "select c.relname, obj_description(c.oid, 'pg_class') from pg_class c "
                "join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = 'analytics' and c.relkind = 'r'"
            ).fetchall()
        )
        columns = bi.execute(
            "select table_name, column_name, data_type, numeric_scale, "
            "col_description(format('analytics.%I', table_name)::regclass, ordinal_position) "
            "from information_schema.columns where table_schema = 'analytics'"
        ).fetchall()
        keys = bi.execute(
            """
            select c.conrelid::regclass::text, c.contype, c.convalidated,
                   array(select a.attname from unnest(c.conkey) with ordinality k(n, i)
                         join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n
                         order by k.i),
                   c.confrelid::regclass::text,
                   array(select a.attname from unnest(c.confkey) with ordinality k(n, i)
                         join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n
                         order by k.i)
            from pg_constraint c join pg_namespace n on n.oid = c.connamespace
            where n.nspname = 'analytics'
            """
        ).fetchall()
        (first,) = bi.execute(
            "select created_at from analytics.fct_payments order by payment_id limit 1"
        ).fetchone()
    served = set(tables) - {"_publish_metadata"}
    assert {t: d for t, d in tables.items() if t in served} == {
        t: f"The {t} model." for t in served
    }
    assert "freshness stamp" in tables["_publish_metadata"]
    assert [(t, c) for t, c, _, _, d in columns if t in served and d != f"{c} of {t}"] == []

    def local(name: str) -> str:
        return name.removeprefix("analytics.")

    primary = {local(t): tuple(cols) for t, kind, _, cols, _, _ in keys if kind == "p"}
    assert primary == {
        "dim_tenant": ("tenant_id",),
        "dim_date": ("date_day",),
        "fct_payments": ("payment_id",),
        "mart_learner_ltv": ("person_id",),
        "mart_ltv_cohorts": ("tenant_id", "cohort_month"),
    }
    foreign = {
        (local(t), cols[0], local(target), ref[0], valid)
        for t, kind, valid, cols, target, ref in keys
        if kind == "f"
    }
    assert foreign == {
        ("fct_payments", "tenant_id", "dim_tenant", "tenant_id", False),
        ("mart_learner_ltv", "tenant_id", "dim_tenant", "tenant_id", False),
        ("fct_payments", "person_id", "mart_learner_ltv", "person_id", False),
    }
    types = {(t, c): (d, s) for t, c, d, s, _ in columns}
    assert types[("fct_payments", "created_at")] == ("timestamp with time zone", None)
    assert types[("mart_ltv_cohorts", "avg_ltv_30_usd")] == ("numeric", 2)
    assert types[("mart_instructor_pnl", "take_rate")] == ("numeric", 6)
    rows = mart_rows(seed=3)
    expected = min(rows["fct_payments"], key=lambda r: r["payment_id"])["created_at"]
    assert first.utcoffset().total_seconds() == 0
    assert first == expected  # the same instant: the warehouse's UTC wall time, read as UTC


def test_bi_role_is_read_only_and_owns_nothing(pg):
    warehouse, settings, checks, url = pg
    publish_warehouse(warehouse, settings, checks)
    publish_warehouse(warehouse, settings, checks)  # leaves analytics__previous behind
    with psycopg.connect(url) as admin:
        owned = admin.execute(
            """
            select count(*) from pg_class c join pg_roles r on r.oid = c.relowner where r.rolname = %s
            union all
            select count(*) from pg_namespace n join pg_roles r on r.oid = n.nspowner where r.rolname = %s
            """,
            [settings.pg_bi_role, settings.pg_bi_role],
        ).fetchall()
        assert owned == [(0,), (0,)]
        schemas = {r[0] for r in admin.execute("select nspname from pg_namespace").fetchall()}
        assert {"analytics", "analytics__previous"} <= schemas
        assert "analytics__staging" not in schemas
        admin.execute("create table public.secret as select 1 as x")
        admin.commit()
    bi_url = as_role(url, settings.pg_bi_role)
    forbidden = [
        "create table analytics.x (a int)",
        "create table public.x (a int)",
        "create temporary table x (a int)",
        "delete from analytics.mart_learner_ltv",
        "update analytics.mart_ltv_cohorts set cohort_size = 0",
        "select * from analytics__previous.mart_learner_ltv",
        "select * from public.secret",
        "create schema y",
    ]
    for statement in forbidden:
        with psycopg.connect(bi_url) as bi, pytest.raises(psycopg.errors.InsufficientPrivilege):
            bi.execute(statement)
    with psycopg.connect(bi_url) as bi:
        assert bi.execute("select count(*) from analytics._publish_metadata").fetchone()[0] == 9


KILLED_PUBLISH = textwrap.dedent(
    """
    import pathlib, sys, time
    from serving import postgres
    from serving.checks import CheckSummary
    from serving.publish import publish_warehouse
    from serving.settings import ServingSettings

    data_dir, url, bi, prefix, warehouse, marker = sys.argv[1:]
    original = postgres.copy_table
    copied = []

    def copy_then_hang(*args, **kwargs):
        original(*args, **kwargs)
        copied.append(args[4])
        if len(copied) == 3:  # midway through the staging copy
            pathlib.Path(marker).write_text(",".join(copied))
            time.sleep(600)

    postgres.copy_table = copy_then_hang
    settings = ServingSettings(
        data_dir=data_dir, dbt_target_dir=pathlib.Path(data_dir) / "target",
        pg_url=url, pg_bi_role=bi, pg_tenant_role_prefix=prefix,
    )
    checks = CheckSummary(passed=12, failed=0)
    publish_warehouse(pathlib.Path(warehouse), settings, checks)
    """
)


def published_state(url: str, bi_role: str) -> tuple:
    with psycopg.connect(as_role(url, bi_role)) as bi:
        version = bi.execute("select distinct version from analytics._publish_metadata").fetchall()
        learners = bi.execute("select count(*) from analytics.mart_learner_ltv").fetchone()[0]
        total = bi.execute(
            "select round(sum(gross_sales_usd)::numeric, 2) from analytics.mart_instructor_pnl"
        ).fetchone()[0]
    return version, learners, float(total)


def test_publish_killed_midway_leaves_previous_version(pg, tmp_path):
    warehouse, settings, checks, url = pg
    first = publish_warehouse(warehouse, settings, checks)
    old_rows = mart_rows(seed=3)
    before = published_state(url, settings.pg_bi_role)
    assert before == (
        [(first.version,)],
        len(old_rows["mart_learner_ltv"]),
        pytest.approx(sum(r["gross_sales_usd"] for r in old_rows["mart_instructor_pnl"]), abs=0.01),
    )

    build_warehouse(warehouse, mart_rows(seed=4, scale=1.3))  # the next build differs
    marker = tmp_path / "copy-started"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_PUBLISH,
            str(tmp_path),
            url,
            settings.pg_bi_role,
            settings.pg_tenant_role_prefix,
            str(warehouse),
            str(marker),
        ],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "the publish ended before it could be killed"
        assert time.monotonic() < deadline, "the staging copy never started"
        time.sleep(0.05)
    # mid-publish: the new version is sealed on disk, staging is half-copied, nothing swapped
    sealed = [p.stem for p in settings.versions_dir.glob("2*.duckdb")]
    assert len(sealed) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert len(marker.read_text().split(",")) == 3

    assert current_version(settings) == first.version
    with duckdb.connect(str(settings.resolved_serving_path), read_only=True) as served:
        assert served.execute("select count(*) from analytics.mart_learner_ltv").fetchone()[
            0
        ] == len(old_rows["mart_learner_ltv"])
    assert published_state(url, settings.pg_bi_role) == before
    with psycopg.connect(url) as admin:
        for _ in range(50):  # the server notices the dead client and rolls back its transaction
            staging = admin.execute(
                "select count(*) from pg_namespace where nspname = 'analytics__staging'"
            ).fetchone()[0]
            if staging == 0:
                break
            time.sleep(0.1)
        assert staging == 0

    # the next publish cleans up after the killed one and goes through
    second = publish_warehouse(warehouse, settings, checks)
    assert current_version(settings) == second.version
    version, learners, _ = published_state(url, settings.pg_bi_role)
    assert version == [(second.version,)]
    assert learners == len(mart_rows(seed=4, scale=1.3)["mart_learner_ltv"])
