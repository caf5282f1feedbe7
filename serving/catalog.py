"""Which warehouse tables are served: the marts, dimensions and facts, found not listed.

dbt's manifest is the first source (it knows which models are marts and where dbt put
them); the DuckDB catalog is the fallback and the authority on what actually exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

SERVED_PREFIXES = ("mart_", "dim_", "fct_")
#: The table of each published version that says what it holds (version, data as-of, checks).
METADATA_TABLE = "_publish_metadata"


@dataclass(frozen=True)
class ServedTable:
    """One table to publish: where it lives in the warehouse and its column names."""

    schema: str
    name: str
    columns: tuple[str, ...]

    @property
    def has_tenant(self) -> bool:
        """Whether row-level security by tenant applies."""
        return "tenant_id" in self.columns

    @property
    def kind(self) -> str:
        """``mart``, ``dim`` or ``fct``."""
        return self.name.split("_", 1)[0]


def is_served_name(name: str) -> bool:
    """A mart, dimension or fact by the dbt naming convention."""
    return name.startswith(SERVED_PREFIXES)


def manifest_relations(manifest_path: Path) -> dict[str, str]:
    """Served model name -> schema, from dbt's manifest; empty when there is no manifest."""
    if not manifest_path.exists():
        return {}
    manifest = json.loads(manifest_path.read_text())
    relations: dict[str, str] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        name = node.get("alias") or node["name"]
        if is_served_name(name) and node.get("config", {}).get("enabled", True):
            relations[name] = node["schema"]
    return relations


def discover_served_tables(
    con: duckdb.DuckDBPyConnection, database: str, manifest_path: Path | None = None
) -> list[ServedTable]:
    """Every mart, dim and fact table or view in ``database``, sorted by name.

    A name found in several schemas is resolved by the manifest; without one it is an
    error rather than a guess.
    """
    rows = con.execute(
        """
        select table_schema, table_name
        from information_schema.tables
        where table_catalog = ? and table_schema not in ('information_schema', 'pg_catalog')
        """,
        [database],
    ).fetchall()
    by_name: dict[str, list[str]] = {}
    for schema, name in rows:
        if is_served_name(name):
            by_name.setdefault(name, []).append(schema)
    wanted = manifest_relations(manifest_path) if manifest_path else {}
    tables = []
    for name in sorted(by_name):
        schemas = by_name[name]
        if wanted and name not in wanted:
            continue  # a leftover relation dbt no longer builds
        if len(schemas) > 1:
            if wanted.get(name) in schemas:
                schemas = [wanted[name]]
            else:
                raise ValueError(f"{name} exists in several schemas {sorted(schemas)}")
        columns = con.execute(
            """
            select column_name from information_schema.columns
            where table_catalog = ? and table_schema = ? and table_name = ?
            order by ordinal_position
            """,
            [database, schemas[0], name],
        ).fetchall()
        tables.append(ServedTable(schemas[0], name, tuple(c[0] for c in columns)))
    return tables
