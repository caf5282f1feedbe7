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
    manifest = write_manifest(tmp_path / "target" / "manifest.json", warehouse)
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
            # a table without tenant_id is for the all-tenant BI role only
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("select count(*) from analytics.dim_date")
    for tenant in (1, 2):
        for table, counts in seen[tenant].items():
            assert counts == [(tenant, sum(1 for r in rows[table] if r["tenant_id"] == tenant))]
    assert seen[1] != seen[2]


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
