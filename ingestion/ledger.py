"""The extractor's own bookkeeping in the warehouse, written so that a crash at any point
leaves it true.

- ``raw._extract_log``: one row per table per load, with the run it belongs to. Rows are written with status
  ``loading`` once a load package is extracted, before dlt loads it, and turned ``ok``
  (or ``failed``) once dlt has committed the load; a run that finds ``loading`` rows
  (its predecessor died) completes that package first and then settles them.
- Cursors are not kept anywhere: each table's cursor is the newest cursor value among
  the rows raw holds (rows of a mutable table's failed partial read excluded), so it can
  never run ahead of the data, whatever was interrupted.
- Duplicate keys: a load job dlt re-executes after a crash appends its rows a second
  time; ``remove_duplicate_keys`` keeps one row per key (the newest live one).
- ``raw._extract_columns``: the source type of every column after the last read, so a
  type change at the source is reported even when raw needs nothing for it.
- ``raw._pii_key``: the fingerprint of the PII key raw's hashes were made with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from ingestion.transaction import transaction

EXTRACT_LOG = "_extract_log"
EXTRACT_COLUMNS = "_extract_columns"
PII_KEY_TABLE = "_pii_key"
DLT_LOADS = "_dlt_loads"

LOG_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("load_id", pa.string(), "varchar"),
    ("table_name", pa.string(), "varchar"),
    ("mode", pa.string(), "varchar"),
    ("started_at", pa.timestamp("us"), "timestamp"),
    ("finished_at", pa.timestamp("us"), "timestamp"),
    ("rows_read", pa.int64(), "bigint"),
    ("rows_landed", pa.int64(), "bigint"),
    ("zero_dates_nulled", pa.int64(), "bigint"),
    ("deletes_detected", pa.int64(), "bigint"),
    ("changed_rows_detected", pa.int64(), "bigint"),
    ("status", pa.string(), "varchar"),
    ("error", pa.string(), "varchar"),
    ("duplicates_removed", pa.int64(), "bigint"),
    ("note", pa.string(), "varchar"),
    ("run_id", pa.string(), "varchar"),
)


@dataclass(frozen=True)
class LogRow:
    """One row of ``raw._extract_log``."""

    load_id: str
    table_name: str
    mode: str
    started_at: datetime | None
    finished_at: datetime | None
    rows_read: int | None
    rows_landed: int | None
    zero_dates_nulled: int
    deletes_detected: int
    changed_rows_detected: int
    status: str
    error: str | None
    duplicates_removed: int = 0
    note: str | None = None
    # The extract run the load belongs to: its first load's id (a reconcile run writes two
    # loads, its incremental pass and what reconciling landed; NULL before the column existed).
    run_id: str | None = None


def now() -> datetime:
    """UTC wall time without a zone, as raw stores times."""
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_log(conn: duckdb.DuckDBPyConnection, dataset: str) -> None:
    """Create ``_extract_log`` (or add the columns an older warehouse lacks)."""
    conn.execute(f"create schema if not exists {dataset}")
    columns = ", ".join(f"{name} {sql}" for name, _, sql in LOG_COLUMNS)
    conn.execute(f"create table if not exists {dataset}.{EXTRACT_LOG} ({columns})")
    present = {
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [dataset, EXTRACT_LOG],
        ).fetchall()
    }
    for name, _, sql in LOG_COLUMNS:
        if name not in present:  # a warehouse from before the column existed
            conn.execute(f"alter table {dataset}.{EXTRACT_LOG} add column {name} {sql}")


def write_log(
    conn: duckdb.DuckDBPyConnection, dataset: str, rows: Sequence[LogRow], replace: bool = True
) -> None:
    """Write ``rows``, replacing the rows of the same (load, table) in one transaction."""
    if not rows:
        return
    ensure_log(conn, dataset)
    table = pa.table(
        [pa.array([getattr(r, n) for r in rows], t) for n, t, _ in LOG_COLUMNS],
        names=[n for n, _, _ in LOG_COLUMNS],
    )
    with transaction(conn):
        conn.register("extract_log_rows", table)
        if replace:
            conn.execute(
                f"delete from {dataset}.{EXTRACT_LOG} l using extract_log_rows r "
                "where l.load_id = r.load_id and l.table_name = r.table_name"
            )
        # One insert from Arrow: DuckDB's executemany pays its overhead on every row.
        conn.execute(f"insert into {dataset}.{EXTRACT_LOG} by name select * from extract_log_rows")
        conn.unregister("extract_log_rows")


def unsettled_loads(conn: duckdb.DuckDBPyConnection, dataset: str) -> list[str]:
    """Load ids with rows still ``loading``: their run died before the load was settled."""
    try:
        rows = conn.execute(
            f"select distinct load_id from {dataset}.{EXTRACT_LOG} where status = 'loading' "
            "order by load_id"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    return [r[0] for r in rows]


def log_rows(conn: duckdb.DuckDBPyConnection, dataset: str, load_id: str) -> list[LogRow]:
    """The log rows of one load."""
    names = ", ".join(n for n, _, _ in LOG_COLUMNS)
    ensure_log(conn, dataset)  # a warehouse from before a column existed
    try:
        rows = conn.execute(
            f"select {names} from {dataset}.{EXTRACT_LOG} where load_id = ?", [load_id]
        ).fetchall()
    except duckdb.CatalogException:
        return []
    return [LogRow(*r) for r in rows]


def committed_loads(
    conn: duckdb.DuckDBPyConnection, dataset: str, load_ids: Iterable[str]
) -> set[str]:
    """The ones of ``load_ids`` dlt recorded as fully loaded (``_dlt_loads``, status 0)."""
    ids = list(load_ids)
    if not ids:
        return set()
    try:
        rows = conn.execute(
            f"select load_id from {dataset}.{DLT_LOADS} where status = 0 and load_id in "
            f"({', '.join('?' for _ in ids)})",
            ids,
        ).fetchall()
    except duckdb.CatalogException:
        return set()
    return {r[0] for r in rows}


def rows_of_load(
    conn: duckdb.DuckDBPyConnection, dataset: str, tables: Iterable[str], load_id: str
) -> dict[str, int]:
    """Rows each raw table holds from one load."""
    counts: dict[str, int] = {}
    for table in tables:
        try:
            row = conn.execute(
                f'select count(*) from {dataset}."{table}" where _dlt_load_id = ?', [load_id]
            ).fetchone()
        except duckdb.Error:
            continue
        counts[table] = int(row[0]) if row else 0
    return counts


def landed_cursors(
    conn: duckdb.DuckDBPyConnection,
    dataset: str,
    cursors: Mapping[str, tuple[str, bool]],
    raw_tables: set[str],
) -> dict[str, Any]:
    """Each table's cursor as raw holds it: the newest value of its cursor column.

    ``cursors``: table -> (raw cursor column, append-only). A mutable table's rows from a
    load whose read of it failed part-way are left out (they were read in key order, not
    cursor order, so rows below their newest cursor may not have been read yet); an
    append-only table is read in key order, so what landed is a contiguous prefix.
    """
    found: dict[str, Any] = {}
    has_log = f"{EXTRACT_LOG}" in raw_tables
    for table, (column, append_only) in cursors.items():
        if table not in raw_tables:
            continue
        where = ""
        params: list[Any] = []
        if has_log and not append_only:
            where = (
                f" where _dlt_load_id not in (select load_id from {dataset}.{EXTRACT_LOG} "
                "where table_name = ? and status <> 'ok')"
            )
            params = [table]
        try:
            row = conn.execute(
                f'select max("{column}") from {dataset}."{table}"{where}', params
            ).fetchone()
        except duckdb.Error:
            continue
        if row and row[0] is not None:
            found[table] = row[0]
    return found


def remove_duplicate_keys(
    conn: duckdb.DuckDBPyConnection, dataset: str, table: str, keys: Sequence[str]
) -> int:
    """Keep one row per key of ``table`` (the live one of the newest load); return how many
    rows were removed. Rows with a NULL key are left alone (they have no identity)."""
    if not keys:
        return 0
    key_list = ", ".join(f'"{k}"' for k in keys)
    not_null = " and ".join(f'"{k}" is not null' for k in keys)
    relation = f'{dataset}."{table}"'
    try:
        found = conn.execute(
            f"select count(*) from (select 1 from {relation} where {not_null} "
            f"group by {key_list} having count(*) > 1)"
        ).fetchone()
    except duckdb.Error:
        return 0
    if not found or not found[0]:
        return 0
    live_first = (
        "(_source_deleted_at is null) desc, "
        if _has_column(conn, dataset, table, "_source_deleted_at")
        else ""
    )
    with transaction(conn):
        removed = conn.execute(
            f"delete from {relation} where rowid in (select rowid from ("
            f"select rowid, row_number() over (partition by {key_list} "
            f"order by {live_first}_dlt_load_id desc, rowid desc) as n "
            f"from {relation} where {not_null}) where n > 1)"
        ).fetchone()
    return int(removed[0]) if removed else 0


def _has_column(conn: duckdb.DuckDBPyConnection, dataset: str, table: str, column: str) -> bool:
    row = conn.execute(
        "select count(*) from information_schema.columns where table_schema = ? "
        "and table_name = ? and column_name = ?",
        [dataset, table, column],
    ).fetchone()
    return bool(row and row[0])


# -- source column types -------------------------------------------------------------------------


def stored_source_types(conn: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, dict[str, str]]:
    """table -> column -> source type, as stored after the last read of each table."""
    try:
        rows = conn.execute(
            f"select table_name, column_name, source_type from {dataset}.{EXTRACT_COLUMNS}"
        ).fetchall()
    except duckdb.CatalogException:
        return {}
    stored: dict[str, dict[str, str]] = {}
    for table, column, source_type in rows:
        stored.setdefault(table, {})[column] = source_type
    return stored


def save_source_types(
    conn: duckdb.DuckDBPyConnection, dataset: str, types: Mapping[str, Mapping[str, str]]
) -> None:
    """Replace the stored source types of the tables in ``types``."""
    if not types:
        return
    conn.execute(f"create schema if not exists {dataset}")
    conn.execute(
        f"create table if not exists {dataset}.{EXTRACT_COLUMNS} "
        "(table_name varchar, column_name varchar, source_type varchar)"
    )
    rows = [(t, c, s) for t, columns in types.items() for c, s in columns.items()]
    table = pa.table(
        {
            "table_name": [r[0] for r in rows],
            "column_name": [r[1] for r in rows],
            "source_type": [r[2] for r in rows],
        },
        schema=pa.schema(
            [
                ("table_name", pa.string()),
                ("column_name", pa.string()),
                ("source_type", pa.string()),
            ]
        ),
    )
    with transaction(conn):
        conn.execute(
            f"delete from {dataset}.{EXTRACT_COLUMNS} where table_name in "
            f"({', '.join('?' for _ in types)})",
            list(types),
        )
        conn.register("source_type_rows", table)
        conn.execute(f"insert into {dataset}.{EXTRACT_COLUMNS} select * from source_type_rows")
        conn.unregister("source_type_rows")


# -- the PII key -----------------------------------------------------------------------------------


def key_fingerprint(key: bytes) -> str:
    """A fingerprint of the PII key: tells keys apart, and reveals nothing usable about one
    (a slow, salted derivation, not the key's plain hash)."""
    derived = hashlib.pbkdf2_hmac("sha256", key, b"platform-warehouse/pii-key-fingerprint", 20_000)
    return derived.hex()[:16]


def stored_key_fingerprint(conn: duckdb.DuckDBPyConnection, dataset: str) -> str | None:
    """The fingerprint of the key raw's hashes were made with (None before the first run)."""
    try:
        row = conn.execute(
            f"select fingerprint from {dataset}.{PII_KEY_TABLE} order by since desc limit 1"
        ).fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def store_key_fingerprint(conn: duckdb.DuckDBPyConnection, dataset: str, fingerprint: str) -> None:
    """Record that raw's hashes are made with the key of ``fingerprint`` from now on."""
    conn.execute(f"create schema if not exists {dataset}")
    conn.execute(
        f"create table if not exists {dataset}.{PII_KEY_TABLE} (fingerprint varchar, since timestamp)"
    )
    conn.execute(f"insert into {dataset}.{PII_KEY_TABLE} values (?, ?)", [fingerprint, now()])
