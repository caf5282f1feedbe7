"""The extracted source tables as orchestration sees them: key, cursor and money column.

Everything comes from the extractor's table specs (``ingestion.specs``, the source
contract), so Dagster can describe and observe the source without a database connection.
The cursor is the spec's (the primary key for tables re-read whole); the money column is
the one whose sum the reconciliation check compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ingestion.specs import TABLE_SPECS


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


@cache
def source_tables() -> tuple[SourceTable, ...]:
    """Every extracted table, in the source's load order."""
    return tuple(
        SourceTable(
            name=spec.name,
            columns=spec.columns,
            cursor=spec.cursor or spec.primary_key,
            money_column=spec.money,
        )
        for spec in TABLE_SPECS.values()
    )


def source_table(name: str) -> SourceTable:
    """One extracted table by name."""
    for table in source_tables():
        if table.name == name:
            return table
    raise KeyError(name)
