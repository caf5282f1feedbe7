"""Which spec'd tables have nothing new: one source query for all of them, before dlt runs.

An incremental run re-reads each mutable table's lookback window and every small
table without a cursor. When nothing in those rows changed since the last run, the
re-read lands nothing, yet costs a read, a comparison with raw and a dlt resource.
A probe says so up front, so those tables never enter the dlt pipeline:

- append-only tables (cursor ``id``, no lookback): nothing new when the source's
  ``MAX(id)`` is not above the stored cursor, exactly what the read would find;
- tables with an ``updated_at`` cursor: the newest cursor, and a fingerprint (row count
  and the XOR of 64 bits of an MD5 of every selected column of each row) of the lookback
  window below it, i.e. of the rows the next read would return;
- small tables without a cursor: the same fingerprint over the whole table.

A fingerprint is stored in ``raw._extract_probes`` only when the table was read in
full by a run that landed and the probe taken after the load equals the one taken
before it (nothing changed while it was read). The next run skips the table only
when the newest cursor, the selected columns (and the spec) and the fingerprint are
all unchanged. MySQL/MariaDB only: the SQLite demo is always read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from ingestion.source_reader import ReadStats, SourceColumn, SourceReader
from ingestion.specs import TableSpec
from ingestion.transaction import transaction

PROBES_TABLE = "_extract_probes"


@dataclass(frozen=True)
class Probe:
    """What a read of one table would return, summarised."""

    cursor: str | None  # the newest cursor value in the source (dlt state form)
    signature: str  # the selected columns, the spec and the PII key: a change means re-read
    fingerprint: str  # count and XOR of row hashes of the rows a re-read would return


def signature(spec: TableSpec, columns: Sequence[SourceColumn], pii_key: bytes = b"") -> str:
    """A digest of the columns read, the spec they are read by and the PII key that masks
    them: a change to any of them changes what would land, so the table is read again."""
    text = repr((spec, list(columns), hashlib.sha256(pii_key).hexdigest()))
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _state_form(spec: TableSpec, value: object) -> str | None:
    # UNION ALL turns every column into text: parse it back into the cursor's state form.
    if value is None:
        return None
    if spec.write_disposition == "append":
        return str(int(str(value)))
    return datetime.fromisoformat(str(value)).isoformat()


def _probe_sql(reader: SourceReader, spec: TableSpec, columns: Sequence[SourceColumn]) -> str:
    table = reader.quote(spec.name)
    name = spec.name.replace("'", "''")
    if spec.write_disposition == "append" and spec.cursor:
        # MAX of the key is one index lookup; a COUNT(*) would scan the table.
        return f"SELECT '{name}', MAX({reader.quote(spec.cursor)}), 0, 0, 0 FROM {table}"
    values = ", ".join(f"IFNULL(CAST({reader.quote(c.name)} AS CHAR), CHAR(30))" for c in columns)
    # 64 bits of an MD5 per row: one MD5 per row (a derived table would be materialized).
    fingerprint = (
        "COUNT(*), BIT_XOR(CAST(CONV(LEFT(MD5(CONCAT_WS(CHAR(31), "
        f"{values})), 16), 16, 10) AS UNSIGNED)), 0"
    )
    if spec.cursor is None:
        return f"SELECT '{name}', NULL, {fingerprint} FROM {table}"
    cursor = reader.quote(spec.cursor)
    newest = f"(SELECT MAX({cursor}) FROM {table})"
    # The window the next incremental read starts from: the newest cursor minus the lag.
    return (
        f"SELECT '{name}', {newest}, {fingerprint} FROM {table} "
        f"WHERE {cursor} >= {newest} - INTERVAL {int(spec.lag_seconds)} SECOND"
    )


def probe_tables(
    reader: SourceReader,
    tables: Iterable[tuple[TableSpec, Sequence[SourceColumn]]],
    pii_key: bytes = b"",
) -> dict[str, Probe]:
    """One probe per table, from a single UNION query (empty on a non-MySQL source)."""
    tables = list(tables)
    if reader.dialect != "mysql" or not tables:
        return {}
    selects = [f"({_probe_sql(reader, spec, columns)})" for spec, columns in tables]
    specs = {spec.name: (spec, signature(spec, columns, pii_key)) for spec, columns in tables}
    rows = reader.rows(" UNION ALL ".join(selects), "probe", ReadStats())
    probes: dict[str, Probe] = {}
    for name, newest, count, low, high in rows:
        spec, digest = specs[str(name)]
        probes[spec.name] = Probe(_state_form(spec, newest), digest, f"{count}:{low}:{high}")
    return probes


PROBES_DDL = f"""
create table if not exists {{dataset}}.{PROBES_TABLE} (
    table_name varchar,
    cursor varchar,
    signature varchar,
    fingerprint varchar,
    load_id varchar
)
"""


def stored_probes(conn: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, Probe]:
    """The probes the last runs stored, by table (empty before the first)."""
    try:
        rows = conn.execute(
            f"select table_name, cursor, signature, fingerprint from {dataset}.{PROBES_TABLE}"
        ).fetchall()
    except duckdb.CatalogException:
        return {}
    return {t: Probe(c, s, f) for t, c, s, f in rows}


def save_probes(
    conn: duckdb.DuckDBPyConnection,
    dataset: str,
    load_id: str,
    keep: dict[str, Probe],
    forget: Iterable[str],
) -> None:
    """Store ``keep`` (replacing older probes of those tables) and drop ``forget``'s."""
    names = sorted(set(keep) | set(forget))
    if not names:
        return
    conn.execute(f"create schema if not exists {dataset}")
    conn.execute(PROBES_DDL.format(dataset=dataset))
    with transaction(conn):
        conn.execute(
            f"delete from {dataset}.{PROBES_TABLE} where table_name in "
            f"({', '.join('?' for _ in names)})",
            names,
        )
        if keep:
            kept = sorted(keep.items())
            conn.register(
                "probe_rows",
                pa.table(
                    {
                        "table_name": [t for t, _ in kept],
                        "cursor": pa.array([p.cursor for _, p in kept], pa.string()),
                        "signature": [p.signature for _, p in kept],
                        "fingerprint": [p.fingerprint for _, p in kept],
                        "load_id": [load_id] * len(kept),
                    }
                ),
            )
            conn.execute(f"insert into {dataset}.{PROBES_TABLE} by name select * from probe_rows")
            conn.unregister("probe_rows")
