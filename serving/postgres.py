"""Publish one sealed serving version to PostgreSQL: staging schema, audit, swap, in one transaction.

DuckDB's postgres extension is not available offline, so each table is exported to CSV
by DuckDB and streamed with psycopg 3 ``COPY``. Everything from creating the staging
schema to renaming it over the published one happens in a single transaction: a publish
killed at any point leaves the published schema exactly as it was, and BI readers never
see staging (they get ``USAGE`` on a schema only inside the swap).

Access: the BI role owns nothing and can read only the published schema. Tables with
``tenant_id`` have row-level security: the BI role sees every row, and each
tenant-scoped role ``<prefix><tenant_id>`` (member of the tenants group) only its own.
Every reader may read the reference tables (calendar, currencies) and the freshness stamp
of ``_publish_metadata`` (not its per-table row counts).

For BI tools the catalogue says what dbt knows (``serving.catalog.model_docs``): table and
column comments from the dbt docs, primary and unique keys from the ``unique`` and
``not_null`` tests, foreign keys from the ``relationships`` tests (``NOT VALID``: those tests
validated them before the gate opened). Timestamps are ``timestamptz`` in UTC; doubles are
numerics of a stated scale: money (``*_usd``) to the cent, other measures to 6 decimals.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from psycopg import sql

from serving.catalog import METADATA_TABLE, ModelDocs, column_types
from serving.settings import ServingSettings

COPY_CHUNK = 1 << 20
#: Served tables without a tenant_id that hold no tenant's data: every reader role reads them.
REFERENCE_TABLES = frozenset({"dim_date", "dim_currency"})
#: The columns of the metadata table every reader role reads: the freshness stamp.
FRESHNESS_COLUMNS = ("version", "published_at", "data_as_of", "checks_passed", "checks_failed")
METADATA_COMMENT = (
    "One row per published table of this version: version, when it was published, the data's "
    "as-of time, the checks passed and failed at publication, and the table's row count. "
    "max(data_as_of) is the freshness stamp for dashboards."
)


def _first(row: tuple | None) -> Any:
    """The first value of a one-row result (aggregates always return a row)."""
    if row is None:
        raise RuntimeError("query returned no row")
    return row[0]


_SIMPLE_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20)",
    "HUGEINT": "numeric(39)",
    "UHUGEINT": "numeric(39)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval",
    "UUID": "uuid",
    "BLOB": "bytea",
    "JSON": "jsonb",
}


@dataclass(frozen=True)
class PgColumn:
    """A column as DuckDB knows it and as PostgreSQL will store it."""

    name: str
    duckdb_type: str

    @property
    def pg_type(self) -> str:
        """The PostgreSQL type; nested types travel as text. Timestamps (UTC in the warehouse)
        become ``timestamptz``; doubles become numerics: money (``*_usd``) to the cent, other
        measures (ratios, averages of hours or days) to 6 decimals."""
        base = pg_type(self.duckdb_type)
        if base == "timestamp":
            return "timestamptz"
        if base in ("double precision", "real"):
            return "numeric(38,2)" if self.name.endswith("_usd") else "numeric(38,6)"
        return base

    @property
    def select_expr(self) -> str:
        """How DuckDB exports it: nested values are cast to text."""
        quoted = '"' + self.name.replace('"', '""') + '"'
        return quoted if self.pg_type != "text" else f"{quoted}::varchar as {quoted}"


def pg_type(duckdb_type: str) -> str:
    """Map a DuckDB type name to the PostgreSQL type it is published as."""
    upper = duckdb_type.upper()
    if upper in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[upper]
    match = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", upper)
    if match:
        return f"numeric({match[1]},{match[2]})"
    return "text"  # lists, structs, maps, enums: text keeps every value readable


def tenant_role_name(prefix: str, tenant_id: object) -> str:
    """The tenant-scoped role for a tenant id (lowercase, identifier-safe)."""
    return prefix + re.sub(r"[^a-z0-9_]", "_", str(tenant_id).lower())


def read_version_tables(version_path: Path, schema: str) -> dict[str, list[PgColumn]]:
    """Tables (metadata table included) and column types in a sealed serving file."""
    return {
        table: [PgColumn(name, data_type) for name, data_type in columns.items()]
        for table, columns in column_types(version_path, schema).items()
    }


def read_tenants(version_path: Path, schema: str, tables: dict[str, list[PgColumn]]) -> list:
    """Every tenant id present in any published table, sorted."""
    with_tenant = [t for t, cols in tables.items() if any(c.name == "tenant_id" for c in cols)]
    if not with_tenant:
        return []
    union = " union ".join(f'select tenant_id from "{schema}"."{t}"' for t in with_tenant)
    con = duckdb.connect(str(version_path), read_only=True)
    try:
        rows = con.execute(f"select distinct tenant_id from ({union}) order by 1").fetchall()
        return [r[0] for r in rows]
    finally:
        con.close()


def _role_exists(conn: psycopg.Connection, role: str) -> bool:
    return conn.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone() is not None


def _create_role(conn: psycopg.Connection, role: str, options: sql.Composable) -> None:
    if _role_exists(conn, role):
        return
    # a concurrent publish to another database may create it meanwhile
    with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        conn.execute(sql.SQL("create role {} ").format(sql.Identifier(role)) + options)


def ensure_roles(conn: psycopg.Connection, settings: ServingSettings, tenants: list) -> None:
    """Create the BI role, the tenants group and one login role per tenant; lock the database down.

    Roles are cluster-wide and created once; they own nothing. In this database,
    PUBLIC loses CREATE and TEMPORARY so the read-only roles cannot write anywhere.
    """
    group = settings.pg_tenant_group_role
    hardened = sql.SQL("nosuperuser nocreatedb nocreaterole noreplication nobypassrls")
    _create_role(conn, settings.pg_bi_role, sql.SQL("login ") + hardened)
    _create_role(conn, group, sql.SQL("nologin ") + hardened)
    for tenant in tenants:
        role = tenant_role_name(settings.pg_tenant_role_prefix, tenant)
        _create_role(
            conn,
            role,
            sql.SQL("login inherit {} in role {}").format(hardened, sql.Identifier(group)),
        )
    database = _first(conn.execute("select current_database()").fetchone())
    db = sql.Identifier(database)
    conn.execute(sql.SQL("revoke create, temporary on database {} from public").format(db))
    conn.execute(sql.SQL("revoke create on schema public from public"))
    conn.execute(
        sql.SQL("grant connect on database {} to {}, {}").format(
            db, sql.Identifier(settings.pg_bi_role), sql.Identifier(group)
        )
    )


def copy_table(
    cur: psycopg.Cursor,
    duck: duckdb.DuckDBPyConnection,
    source_schema: str,
    target: sql.Composable,
    name: str,
    columns: list[PgColumn],
    workdir: Path,
) -> None:
    """Stream one table from the serving file into PostgreSQL through a CSV export."""
    export = workdir / f"{name}.csv"
    select = ", ".join(c.select_expr for c in columns)
    duck.execute(
        f'copy (select {select} from "{source_schema}"."{name}") to \'{export}\' (header false)'
    )
    column_list = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    statement = sql.SQL("copy {} ({}) from stdin (format csv)").format(target, column_list)
    with cur.copy(statement) as copy, open(export, "rb") as handle:
        while chunk := handle.read(COPY_CHUNK):
            copy.write(chunk)
    export.unlink()


def _secure_table(
    cur: psycopg.Cursor,
    table: sql.Composable,
    name: str,
    columns: list[PgColumn],
    settings: ServingSettings,
    tenants: list,
) -> None:
    bi = sql.Identifier(settings.pg_bi_role)
    group = sql.Identifier(settings.pg_tenant_group_role)
    cur.execute(sql.SQL("grant select on {} to {}").format(table, bi))
    if name == METADATA_TABLE:
        columns_list = sql.SQL(", ").join(sql.Identifier(c) for c in FRESHNESS_COLUMNS)
        cur.execute(sql.SQL("grant select ({}) on {} to {}").format(columns_list, table, group))
        return
    if not any(c.name == "tenant_id" for c in columns):
        if name in REFERENCE_TABLES:
            cur.execute(sql.SQL("grant select on {} to {}").format(table, group))
        return  # any other table without a tenant column: the all-tenant BI role only
    cur.execute(sql.SQL("alter table {} enable row level security").format(table))
    cur.execute(
        sql.SQL("create policy bi_reads_all on {} for select to {} using (true)").format(table, bi)
    )
    cur.execute(
        sql.SQL("grant select on {} to {}").format(
            table, sql.Identifier(settings.pg_tenant_group_role)
        )
    )
    for tenant in tenants:
        role = tenant_role_name(settings.pg_tenant_role_prefix, tenant)
        cur.execute(
            sql.SQL("create policy {} on {} for select to {} using (tenant_id = {})").format(
                sql.Identifier(f"tenant_{role}"),
                table,
                sql.Identifier(role),
                sql.Literal(tenant),
            )
        )


def describe_tables(
    cur: psycopg.Cursor,
    schema: str,
    tables: dict[str, list[PgColumn]],
    docs: dict[str, ModelDocs],
) -> None:
    """Comments, primary and unique keys, then foreign keys between the tables of ``schema``.

    A key is declared only on columns the table has; a foreign key only when its target
    column set is a declared key of a published table (an SCD2 dimension's entity key is
    not unique, so facts do not reference it).
    """
    keys: dict[str, set[tuple[str, ...]]] = {}
    for name, columns in tables.items():
        table = sql.Identifier(schema, name)
        present = {c.name for c in columns}
        model = docs.get(name)
        comment = (
            METADATA_COMMENT if name == METADATA_TABLE else (model.description if model else "")
        )
        if comment:
            cur.execute(sql.SQL("comment on table {} is {}").format(table, sql.Literal(comment)))
        for column, description in model.columns.items() if model else ():
            if column in present and description:
                cur.execute(
                    sql.SQL("comment on column {} is {}").format(
                        sql.Identifier(schema, name, column), sql.Literal(description)
                    )
                )
        if model is None:
            continue
        declared: set[tuple[str, ...]] = set()
        for key in (model.primary_key, *model.unique):
            if not key or not set(key) <= present:
                continue
            kind = sql.SQL("primary key" if key == model.primary_key else "unique")
            cur.execute(
                sql.SQL("alter table {} add {} ({})").format(
                    table, kind, sql.SQL(", ").join(sql.Identifier(c) for c in key)
                )
            )
            declared.add(key)
        keys[name] = declared
    for name, columns in tables.items():
        model = docs.get(name)
        present = {c.name for c in columns}
        for fk in model.foreign_keys if model else ():
            if fk.column not in present or (fk.target_column,) not in keys.get(fk.table, set()):
                continue
            cur.execute(
                sql.SQL("alter table {} add foreign key ({}) references {} ({}) not valid").format(
                    sql.Identifier(schema, name),
                    sql.Identifier(fk.column),
                    sql.Identifier(schema, fk.table),
                    sql.Identifier(fk.target_column),
                )
            )


def publish_version(
    settings: ServingSettings,
    version_path: Path,
    version: str,
    *,
    pg_timings: dict[str, float] | None = None,
    docs: dict[str, ModelDocs] | None = None,
) -> str:
    """Copy a sealed serving version into ``<schema>__staging``, describe it for BI tools
    (``docs``: comments and keys from dbt's manifest), audit it, swap it in.

    Returns a one-line description of what was published.
    """
    assert settings.pg_url, "publish_version needs WAREHOUSE_PG_URL"
    schema = settings.serving_schema
    staging, previous = f"{schema}__staging", f"{schema}__previous"
    readers = sql.SQL(", ").join(
        [sql.Identifier(settings.pg_bi_role), sql.Identifier(settings.pg_tenant_group_role)]
    )
    timings = pg_timings if pg_timings is not None else {}
    tables = read_version_tables(version_path, schema)
    tenants = read_tenants(version_path, schema, tables)
    expected = dict.fromkeys(tables, 0)
    with duckdb.connect(str(version_path), read_only=True) as duck:
        for name in tables:
            expected[name] = _first(
                duck.execute(f'select count(*) from "{schema}"."{name}"').fetchone()
            )
    with psycopg.connect(settings.pg_url, autocommit=True) as conn:
        ensure_roles(conn, settings, tenants)
    started = time.perf_counter()
    with (
        psycopg.connect(settings.pg_url) as conn,
        conn.cursor() as cur,
        duckdb.connect(str(version_path), read_only=True) as duck,
        tempfile.TemporaryDirectory(prefix="pg-publish-") as workdir,
    ):
        duck.execute("set TimeZone = 'UTC'")
        cur.execute("set local time zone 'UTC'")  # the exported timestamps are UTC wall times
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(staging)))
        cur.execute(sql.SQL("create schema {}").format(sql.Identifier(staging)))
        for name, columns in tables.items():
            target = sql.Identifier(staging, name)
            definition = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns
            )
            cur.execute(sql.SQL("create table {} ({})").format(target, definition))
            copy_table(cur, duck, schema, target, name, columns, Path(workdir))
            _secure_table(cur, target, name, columns, settings, tenants)
        timings["postgres_staging_copy"] = round(time.perf_counter() - started, 3)
        catalogue_started = time.perf_counter()
        describe_tables(cur, staging, tables, docs or {})
        timings["postgres_catalogue"] = round(time.perf_counter() - catalogue_started, 3)
        for name, rows in expected.items():
            landed = _first(
                cur.execute(
                    sql.SQL("select count(*) from {}").format(sql.Identifier(staging, name))
                ).fetchone()
            )
            if landed != rows:
                raise RuntimeError(f"postgres staging {name}: {landed} rows, expected {rows}")
        swap_started = time.perf_counter()
        cur.execute("set local lock_timeout = '30s'")
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(previous)))
        exists = cur.execute("select 1 from pg_namespace where nspname = %s", [schema]).fetchone()
        if exists:
            cur.execute(
                sql.SQL("alter schema {} rename to {}").format(
                    sql.Identifier(schema), sql.Identifier(previous)
                )
            )
            cur.execute(
                sql.SQL("revoke usage on schema {} from {}").format(
                    sql.Identifier(previous), readers
                )
            )
        cur.execute(
            sql.SQL("alter schema {} rename to {}").format(
                sql.Identifier(staging), sql.Identifier(schema)
            )
        )
        cur.execute(
            sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(schema), readers)
        )
        conn.commit()
        timings["postgres_swap"] = round(time.perf_counter() - swap_started, 3)
    rows = sum(v for k, v in expected.items() if k != METADATA_TABLE)
    return (
        f"PostgreSQL schema {schema}: {len(tables) - 1} tables, {rows:,} rows, "
        f"{len(tenants)} tenant roles, version {version}"
    )


def drop_rollback_schema(settings: ServingSettings) -> None:
    """Drop the schema the last publish swapped out (after an erasure it still holds the
    people it erased, so no rollback may serve it again)."""
    assert settings.pg_url, "drop_rollback_schema needs WAREHOUSE_PG_URL"
    with psycopg.connect(settings.pg_url, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("drop schema if exists {} cascade").format(
                sql.Identifier(f"{settings.serving_schema}__previous")
            )
        )
