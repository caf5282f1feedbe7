"""The dbt models other Dagster definitions refer to: their asset key and where they live."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetKey


@dataclass(frozen=True)
class ModelRelation:
    """A dbt model's Dagster key, the DuckDB relation dbt builds it into and its unique id."""

    name: str
    key: AssetKey
    schema: str
    table: str
    unique_id: str = ""

    @property
    def relation(self) -> str:
        """``schema.table`` as the checks read it."""
        return f"{self.schema}.{self.table}"
