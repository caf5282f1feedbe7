"""Which warehouse tables are served: the marts, dimensions and facts, found not listed.

dbt's manifest is the first source (it knows which models are marts and where dbt put
them); the DuckDB catalog is the fallback and the authority on what actually exists.
"""

from __future__ import annotations

import json
import re
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


def column_types(database_path: Path, schema: str) -> dict[str, dict[str, str]]:
    """Table -> column -> DuckDB type of every table in ``schema`` of a DuckDB file, in the
    tables' column order (a published version: what it holds, whatever the manifest says)."""
    with duckdb.connect(str(database_path), read_only=True) as con:
        rows = con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = ? order by table_name, ordinal_position",
            [schema],
        ).fetchall()
    types: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        types.setdefault(table, {})[column] = data_type
    return types


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


@dataclass(frozen=True)
class ForeignKey:
    """A column of a served model that references a key column of another (dbt's
    ``relationships`` test)."""

    column: str
    table: str
    target_column: str


@dataclass(frozen=True)
class ModelDocs:
    """What BI tools should know of a served model: its descriptions and its keys, from dbt's
    manifest."""

    description: str
    columns: dict[str, str]
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()

    @property
    def keys(self) -> set[tuple[str, ...]]:
        """Every column set known unique: the primary key and the other unique ones."""
        return {k for k in (self.primary_key, *self.unique) if k}


_REF = re.compile(r"""ref\(\s*['"]([^'"]+)['"]\s*\)""")


def model_docs(manifest_path: Path | None) -> dict[str, ModelDocs]:
    """Served model name -> its descriptions and keys, from dbt's manifest (empty without one).

    Only ERROR-severity tests without a ``where`` filter count (a WARN test does not gate
    publication, a filtered one proves nothing of the whole table). The primary key is the
    first column, in the model's column order, with both a ``unique`` and a ``not_null``
    test, else a tested unique combination of not-null columns; the other unique columns are
    unique keys. Foreign keys come from ``relationships`` tests.
    """
    if manifest_path is None or not manifest_path.exists():
        return {}
    nodes = json.loads(manifest_path.read_text()).get("nodes", {})
    names = {
        uid: node.get("alias") or node["name"]
        for uid, node in nodes.items()
        if node.get("resource_type") == "model"
        and is_served_name(node.get("alias") or node["name"])
    }
    unique: dict[str, list[tuple[str, ...]]] = {}
    not_null: dict[str, set[str]] = {}
    references: dict[str, list[ForeignKey]] = {}
    for node in nodes.values():
        meta = node.get("test_metadata") or {}
        config = node.get("config") or {}
        model = names.get(node.get("attached_node") or "")
        if node.get("resource_type") != "test" or model is None or config.get("where"):
            continue
        if str(config.get("severity", "error")).lower() != "error":
            continue
        kwargs = meta.get("kwargs") or {}
        column = node.get("column_name") or kwargs.get("column_name")
        test = meta.get("name")
        if test == "unique" and column:
            unique.setdefault(model, []).append((column,))
        elif test == "unique_combination_of_columns" and kwargs.get("columns"):
            unique.setdefault(model, []).append(tuple(kwargs["columns"]))
        elif test == "not_null" and column:
            not_null.setdefault(model, set()).add(column)
        elif test == "relationships" and column:
            target = _REF.search(str(kwargs.get("to", "")))
            if target and kwargs.get("field"):
                references.setdefault(model, []).append(
                    ForeignKey(column, target.group(1), kwargs["field"])
                )
    docs: dict[str, ModelDocs] = {}
    for uid, name in names.items():
        node = nodes[uid]
        order = list(node.get("columns", {}))
        keys = sorted(
            unique.get(name, []),
            key=lambda k: (len(k), order.index(k[0]) if k[0] in order else len(order)),
        )
        primary = next((k for k in keys if set(k) <= not_null.get(name, set())), ())
        docs[name] = ModelDocs(
            description=node.get("description") or "",
            columns={c: (v.get("description") or "") for c, v in node.get("columns", {}).items()},
            primary_key=primary,
            unique=tuple(k for k in dict.fromkeys(keys) if k != primary),
            foreign_keys=tuple(dict.fromkeys(references.get(name, []))),
        )
    return docs
