"""Read-only probes of the platform database: row counts, max cursors and money sums.

Used by the observable source assets and by the reconciliation and freshness checks.
Everything goes through SQLAlchemy, so the embedded SQLite demo and a real MySQL
behave the same; the engine is created per call and disposed of right after.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, create_engine, text

from orchestration.source_catalog import SourceTable


@dataclass(frozen=True)
class TableProfile:
    """What the source holds for one table right now."""

    table: str
    row_count: int
    max_cursor: Any
    money_sum: Decimal | None

    @property
    def data_version(self) -> str:
        """Changes whenever rows are added, removed or (with a fresh cursor) updated."""
        return f"{self.row_count}:{self.max_cursor}"


@contextmanager
def source_connection(url: str) -> Iterator[Connection]:
    """A connection to the platform database, disposed of on exit."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _quote(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def profile_table(connection: Connection, table: SourceTable, money: bool = True) -> TableProfile:
    """Row count, max cursor and (with ``money``) money-column sum of one source table."""
    q = lambda name: _quote(connection, name)  # noqa: E731
    money_sum = f"sum({q(table.money_column)})" if money and table.money_column else "null"
    row = connection.execute(
        text(f"select count(*), max({q(table.cursor)}), {money_sum} from {q(table.name)}")
    ).one()
    max_cursor = row[1]
    if isinstance(max_cursor, str):  # SQLite returns DATETIME as text
        max_cursor = datetime.fromisoformat(max_cursor)
    total = Decimal(str(row[2])).quantize(Decimal("0.01")) if row[2] is not None else None
    return TableProfile(table.name, int(row[0]), max_cursor, total)


def profile_tables(
    url: str, tables: Iterable[SourceTable], money: bool = True
) -> list[TableProfile]:
    """Profiles of several tables over one connection (``money``: with their money sums, which
    only the reconciliation needs)."""
    with source_connection(url) as connection:
        return [profile_table(connection, table, money) for table in tables]
