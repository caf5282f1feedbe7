"""One DuckDB transaction around the statements of a ``with`` block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Commit what the block executed on ``conn``, or roll it all back if the block raises
    (a kill between the two leaves nothing half-written: DuckDB discards the open one)."""
    conn.execute("begin")
    try:
        yield conn
    except BaseException:
        conn.execute("rollback")
        raise
    conn.execute("commit")
