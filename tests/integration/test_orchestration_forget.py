"""`warehouse forget` on the tiny warehouse the orchestration group builds: a person with two
merged accounts is forgotten in every copy the project keeps, finance's totals do not move,
and a later incremental extract, a reconcile and a re-extract from nothing do not bring
them back.

What "them" is comes from the SQLite source, not from the code under test: the two accounts
share a tenant and an email; their email hash is read from raw before the request.
"""

from __future__ import annotations

import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import psycopg
import pytest

from ingestion.erasure import register_file
from ingestion.pipeline import run_extract
from orchestration.config import DBT_LOG_TAG
from orchestration.forgetting import forget_people
from serving.checks import CheckSummary
from serving.publish import list_versions, publish_warehouse
from tests.integration.test_orchestration_pipeline import (  # noqa: F401 - the group's fixture
    built,
    serving_settings,
)
from tests.orchestration_support import (
    XDIST_GROUP,
    dbt_target_dir,
    orchestration_settings,
    warehouse_settings,
)
from tests.serving_support import pg_available, require, scratch_database

pytestmark = [pytest.mark.xdist_group(XDIST_GROUP), pytest.mark.slow]

# Columns that hold a users.id wherever they appear (raw, snapshots, staging, marts, serving).
PERSON_COLUMNS = {
    "user_id",
    "person_id",
    "customer_id",
    "author_id",
    "owner_id",
    "moderator_id",
    "instructor_id",
}
MONEY_SCHEMAS = ("finance", "marketplace", "core")


def _merged_person(source: Path) -> tuple[int, int]:
    """Two accounts of one person in the source (same tenant, same email) that paid."""
    with sqlite3.connect(source) as con:
        row = con.execute(
            "select min(u.id), max(u.id) from users u "
            "where exists (select 1 from payments p where p.user_id = u.id) "
            "group by u.tenant_id, lower(trim(u.email)) having count(*) = 2 "
            "order by min(u.id) limit 1"
        ).fetchone()
    assert row, "the tiny source has no person with two accounts"
    return int(row[0]), int(row[1])


def _text_hits(con, hashes: set[str], ids: set[int], schemas: str, mark: str = "?") -> list[str]:
    """Every text column holding one of ``hashes`` and every users.id column holding one of
    ``ids``, in the tables of ``schemas`` (a SQL predicate on table_schema); ``mark`` is the
    driver's parameter placeholder."""
    hits = []
    columns = con.execute(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        f"where {schemas}"
    ).fetchall()
    for schema, table, column, kind in columns:
        relation = f'"{schema}"."{table}"'
        if kind.upper() in ("VARCHAR", "TEXT", "CHARACTER VARYING"):
            found = con.execute(
                f'select count(*) from {relation} where "{column}" in ({", ".join([mark] * len(hashes))})',
                list(hashes),
            ).fetchone()[0]
            if found:
                hits.append(f"{schema}.{table}.{column}: {found} email hash(es)")
        elif column in PERSON_COLUMNS or (table in ("users", "dim_person") and column == "id"):
            found = con.execute(
                f'select count(*) from {relation} where "{column}" in ({", ".join(map(str, ids))})'
            ).fetchone()[0]
            if found:
                hits.append(f"{schema}.{table}.{column}: {found} source id(s)")
    return hits


def _duckdb_hits(path: Path, hashes: set[str], ids: set[int]) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return _text_hits(
            con, hashes, ids, "table_schema not in ('information_schema', 'pg_catalog')"
        )


def _file_hits(root: Path, hashes: set[str]) -> list[str]:
    """Files under ``root`` whose bytes contain one of ``hashes`` (logs, JSON, HTML, pickles)."""
    needles = [h.encode() for h in hashes]
    return [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and any(n in p.read_bytes() for n in needles)
    ]


def _money(path: Path) -> dict[str, Decimal]:
    """The sum of every amount column of every mart and fact, to the cent."""
    totals = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for schema, table, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            f"where table_schema in {MONEY_SCHEMAS} and (column_name like '%usd%' "
            "or column_name like '%amount%' or column_name like '%revenue%')"
            "and data_type not in ('VARCHAR', 'BOOLEAN')"
        ).fetchall():
            (total,) = con.execute(f'select sum("{column}") from "{schema}"."{table}"').fetchone()
            totals[f"{schema}.{table}.{column}"] = round(Decimal(str(total or 0)), 2)
    return totals


def test_forget_reaches_every_copy_and_stays_forgotten(built, tmp_path: Path) -> None:  # noqa: F811
    require("PostgreSQL on 127.0.0.1:5432", pg_available())
    _, original, _, _ = built
    root = tmp_path / "copy"
    shutil.copytree(original.data_dir.parent, root, symlinks=True)
    dbt_target = dbt_target_dir(None)
    warehouse = warehouse_settings(root)
    orchestration = orchestration_settings(root, dbt_target)
    first, second = _merged_person(warehouse.demo_source_path)
    ids = {first, second}
    with duckdb.connect(str(warehouse.warehouse_path), read_only=True) as con:
        hashes = {
            r[0]
            for r in con.execute(
                f"select email_hash from raw.users where id in ({first}, {second})"
            ).fetchall()
        }
    assert len(hashes) == 1
    assert _duckdb_hits(warehouse.warehouse_path, hashes, ids)  # the scan sees them before
    money_before = _money(warehouse.warehouse_path)
    assert sum(money_before.values()) > 0

    with scratch_database("forget") as (url, roles):
        serving = serving_settings(
            root,
            dbt_target,
            pg_url=url,
            pg_bi_role=roles["bi"],
            pg_tenant_role_prefix=roles["tenant_prefix"],
        )
        # the person is served in PostgreSQL too, in the live schema and the rollback one
        for _ in range(2):
            publish_warehouse(warehouse.warehouse_path, serving, CheckSummary(passed=1, failed=0))
        assert len(list_versions(serving)) >= 3
        with duckdb.connect(str(warehouse.warehouse_path)) as con:
            con.execute("create schema if not exists raw_staging")
            con.execute(
                "create table raw_staging.users as select * from raw.users where id in "
                f"({first}, {second})"
            )

        with dg.DagsterInstance.ephemeral() as instance:
            outcome = forget_people(
                warehouse,
                orchestration,
                serving,
                [second],  # one account named: its merged account goes too
                instance,
                {DBT_LOG_TAG: str(root / "logs" / "dbt.log")},
            )
        assert (outcome.erasure.accounts, outcome.erasure.accounts_in_warehouse) == (2, 2)
        assert outcome.erasure.rows_rewritten["raw.payments"] > 0
        assert outcome.versions_dropped >= 2
        assert [v.stem for v in list_versions(serving)] == [outcome.version]

        with psycopg.connect(url) as pg:
            schemas = [r[0] for r in pg.execute("select nspname from pg_namespace").fetchall()]
            assert "analytics" in schemas and "analytics__previous" not in schemas
            assert _text_hits(pg.cursor(), hashes, ids, "table_schema = 'analytics'", "%s") == []

    assert _duckdb_hits(warehouse.warehouse_path, hashes, ids) == []
    assert _duckdb_hits(serving.resolved_serving_path, hashes, ids) == []
    assert _file_hits(root, hashes) == []
    assert _money(warehouse.warehouse_path) == money_before
    with duckdb.connect(str(warehouse.warehouse_path), read_only=True) as con:
        people = con.execute(
            "select id, birth_year, postal_prefix, country_code from raw.users where id < 0"
        ).fetchall()
        assert len(people) == 2 and all(p[1:] == (None, None, None) for p in people)
        assert con.execute(
            "select count(*) from core.dim_person where person_id < 0 and birth_year is not null"
        ).fetchone() == (0,)
        # still one person, who keeps their payments
        assert con.execute(
            "select count(distinct person_id) from staging.stg_platform__users where user_id < 0"
        ).fetchone() == (1,)
        assert con.execute(
            "select count(*) from raw._erasure_log where status = 'complete'"
        ).fetchone() == (1,)
        erased_rows = con.execute(
            "select sum(erased_person_rows) from quality.mart_data_quality "
            "where table_name = 'payments'"
        ).fetchone()[0]
        assert erased_rows == outcome.erasure.rows_rewritten["raw.payments"]

    # The source changes the person's rows: an incremental extract reads them again, and a
    # reconcile compares every key with the source; neither brings them back.
    with sqlite3.connect(warehouse.demo_source_path) as con:
        latest = con.execute("select max(updated_at) from users").fetchone()[0]
        con.execute(
            "update users set updated_at = ?, postal_code = '99999' where id in (?, ?)",
            [latest, first, second],
        )
    incremental = run_extract(warehouse)
    assert incremental.ok and incremental.tables["users"].rows_landed >= 2
    assert _duckdb_hits(warehouse.warehouse_path, hashes, ids) == []
    reconciled = run_extract(warehouse, mode="reconcile")
    assert reconciled.ok and reconciled.tables["users"].deletes_detected == 0
    with duckdb.connect(str(warehouse.warehouse_path), read_only=True) as con:
        assert con.execute(
            "select count(*), count(_source_deleted_at), max(postal_prefix) "
            "from raw.users where id < 0"
        ).fetchone() == (2, 0, None)
    assert _duckdb_hits(warehouse.warehouse_path, hashes, ids) == []

    # A warehouse extracted again from nothing (the file lost, the register file beside it
    # kept): every model is built from raw, so raw is where they must not come back.
    assert register_file(warehouse.warehouse_path).exists()
    warehouse.warehouse_path.unlink()
    shutil.rmtree(warehouse.data_dir / ".dlt_pipelines")
    assert run_extract(warehouse).ok
    assert _duckdb_hits(warehouse.warehouse_path, hashes, ids) == []
    with duckdb.connect(str(warehouse.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from raw.users where id < 0").fetchone() == (2,)
