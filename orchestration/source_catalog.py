"""The extracted source tables as orchestration sees them: key, cursor and money column.

The tables are the extractor's table specs (``ingestion.specs``); their columns come
from the platform schema (``ingestion.generator.schema``, the contract of
``docs/source.md``), so Dagster can describe and observe the source without a
database connection. The cursor is the spec's (the primary key for tables re-read
whole); the money column is the one whose sum the reconciliation check compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import Numeric, Table


@dataclass(frozen=True)
class SourceTable:
    """One extracted source table."""

    name: str
    columns: tuple[str, ...]
    cursor: str
    money_column: str | None

    @property
    def raw_relation(self) -> str:
        """Its table in the warehouse's raw layer."""
        return f"raw.{self.name}"


def _money_column(table: Table) -> str | None:
    money = [
        c.name
        for c in table.columns
        if isinstance(c.type, Numeric) and (c.type.precision, c.type.scale) == (12, 2)
    ]
    return money[0] if money else None


@cache
def source_tables() -> tuple[SourceTable, ...]:
    """Every extracted table, in the source's load order."""
    from ingestion.generator.schema import metadata
    from ingestion.specs import TABLE_SPECS

    tables = []
    for spec in TABLE_SPECS.values():
        table = metadata.tables[spec.name]
        cursor = spec.cursor or spec.primary_key
        tables.append(
            SourceTable(
                name=table.name,
                columns=tuple(c.name for c in table.columns),
                cursor=cursor,
                money_column=_money_column(table),
            )
        )
    return tuple(tables)


def source_table(name: str) -> SourceTable:
    """One extracted table by name."""
    for table in source_tables():
        if table.name == name:
            return table
    raise KeyError(name)
