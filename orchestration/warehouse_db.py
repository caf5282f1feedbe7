"""Read-only access to the DuckDB warehouse for checks and summaries.

DuckDB allows one writer process per file; checks only read, and open the file for
the shortest time so they never hold it while dlt or dbt write.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb


@contextmanager
def warehouse_connection(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse file, closed on exit."""
    if not path.exists():
        raise FileNotFoundError(f"the warehouse {path} does not exist yet: run an extract first")
    connection = duckdb.connect(str(path), read_only=True)
    try:
        yield connection
    finally:
        connection.close()


def relation_exists(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """Whether ``schema.name`` is a table or view of the warehouse."""
    rows = connection.execute(
        "select 1 from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchall()
    return bool(rows)


def relation_columns(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> list[str]:
    """Column names of ``schema.name`` in order."""
    rows = connection.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()
    return [r[0] for r in rows]
