"""What an incremental dbt build must run, from the manifest and the warehouse's state.

A build is needed for every table and snapshot downstream of a raw table whose loads since
the last build changed rows, for everything downstream of the extract log (the data-quality
mart reads it), and for every node whose code changed since the last build and everything
downstream of it (its view, table or seed is re-created; incremental models among them
from scratch, ``--full-refresh``). The rest is current: views read
raw as it is, tables whose inputs did not change hold what a rebuild would produce.

Code changes are found by the checksum dbt computes of each node's SQL, CSV or YAML
config, recorded in ``meta.transform_nodes`` after each successful build. dbt's checksum
of a model does not cover the macros it calls (and calls through ``adapter.dispatch`` are
not even recorded), so one digest of every macro of the project's own packages is folded
into every node's recorded checksum: a macro change rebuilds everything, as a full build
after it would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestration.transformation import STATE_SCHEMA

NODES_TABLE = f"{STATE_SCHEMA}.transform_nodes"
_BUILDABLE = {"model", "snapshot", "seed"}


@dataclass(frozen=True)
class IncrementalPlan:
    """The dbt nodes (unique ids) an incremental build runs (``built``), the models,
    snapshots and seeds it leaves as they are (``current``), the dbt node names to exclude
    from a full selection to get there (``excluded``, tests and unit tests too), and
    whether its incremental models must be rebuilt from scratch (``full_refresh``)."""

    built: frozenset[str]
    current: frozenset[str]
    excluded: tuple[str, ...]
    changed_tables: tuple[str, ...]
    modified: frozenset[str]
    full_refresh: bool = False


def _descendants(manifest: Mapping[str, Any], roots: Iterable[str]) -> set[str]:
    children = manifest["child_map"]
    found: set[str] = set()
    frontier = list(roots)
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def macros_digest(manifest: Mapping[str, Any]) -> str:
    """One checksum of the SQL of every macro in the packages the buildable nodes belong to
    (the project's own macros; dbt's and the adapter's change only with an upgrade)."""
    import hashlib

    packages = {
        node.get("package_name")
        for node in manifest["nodes"].values()
        if node["resource_type"] in _BUILDABLE
    }
    digest = hashlib.sha256()
    for unique_id, macro in sorted(manifest.get("macros", {}).items()):
        if macro.get("package_name") in packages:
            digest.update(f"{unique_id}\0{macro['macro_sql']}\0".encode())
    return digest.hexdigest()[:16]


def node_checksums(manifest: Mapping[str, Any]) -> dict[str, str]:
    """dbt's checksum of every buildable node's code (SQL, CSV, config), with the digest of
    the project's macros (``macros_digest``) appended."""
    macros = macros_digest(manifest)
    return {
        unique_id: f"{node['checksum']['checksum']}+macros:{macros}"
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in _BUILDABLE
    }


def modified_nodes(manifest: Mapping[str, Any], recorded: Mapping[str, str] | None) -> set[str]:
    """Buildable nodes whose code differs from the last successful build's (every node when
    nothing was recorded: the last build predates the record)."""
    checksums = node_checksums(manifest)
    if recorded is None:
        return set(checksums)
    return {u for u, checksum in checksums.items() if recorded.get(u) != checksum}


def incremental_plan(
    manifest: Mapping[str, Any],
    changed_tables: Iterable[str],
    modified: Iterable[str] = (),
    *,
    logged: bool = True,
) -> IncrementalPlan:
    """The nodes to build after loads that changed ``changed_tables`` and code changes of
    ``modified``; data tests run when any node they read is built, unit tests never (they
    check logic, which a full build tests). ``logged``: loads were recorded in the extract
    log since the last build (even loads that changed nothing), so what reads it is built."""
    changed = sorted(changed_tables)
    modified = set(modified)
    nodes = manifest["nodes"]
    read = {*changed, *(["_extract_log"] if logged else [])}
    sources = {
        unique_id
        for unique_id, source in manifest["sources"].items()
        if source["source_name"] == "platform"
        and (source.get("identifier") or source["name"]) in read
    }
    buildable = {
        unique_id
        for unique_id, node in nodes.items()
        if node["resource_type"] in _BUILDABLE and node["config"].get("enabled", True)
    }
    loaded = {
        unique_id
        for unique_id in buildable & _descendants(manifest, sources)
        if nodes[unique_id]["config"].get("materialized") != "view"
    }
    recoded = buildable & (modified | _descendants(manifest, modified))
    built = loaded | recoded
    tests = {
        unique_id
        for unique_id, node in nodes.items()
        if node["resource_type"] == "test" and built.intersection(node["depends_on"]["nodes"])
    }
    excluded = sorted(
        node["name"]
        for unique_id, node in nodes.items()
        if node["resource_type"] in {*_BUILDABLE, "test"} and unique_id not in built | tests
    )
    return IncrementalPlan(
        built=frozenset(built),
        current=frozenset(buildable - built),
        excluded=tuple(excluded),
        changed_tables=tuple(changed),
        modified=frozenset(modified & buildable),
        # An incremental model folds new input into its stored rows: after a code change
        # upstream of it (or in it) the stored rows are stale, so it is rebuilt from scratch.
        full_refresh=any(
            nodes[unique_id]["config"].get("materialized") == "incremental" for unique_id in recoded
        ),
    )


def recorded_checksums(warehouse_path: Path) -> dict[str, str] | None:
    """The node checksums of the last successful build, None when none was recorded."""
    import duckdb

    with duckdb.connect(str(warehouse_path)) as con:
        found = con.execute(
            "select count(*) from information_schema.tables "
            f"where table_schema = '{STATE_SCHEMA}' and table_name = 'transform_nodes'"
        ).fetchall()
        if not found[0][0]:
            return None
        return dict(con.execute(f"select unique_id, checksum from {NODES_TABLE}").fetchall())


def record_checksums(warehouse_path: Path, manifest: Mapping[str, Any]) -> None:
    """Record every buildable node's checksum after a successful build."""
    import duckdb

    with duckdb.connect(str(warehouse_path)) as con:
        con.execute(f"create schema if not exists {STATE_SCHEMA}")
        con.execute(
            f"create or replace table {NODES_TABLE} "
            "(unique_id varchar primary key, checksum varchar, recorded_at timestamp)"
        )
        con.executemany(
            f"insert into {NODES_TABLE} values (?, ?, current_timestamp)",
            sorted(node_checksums(manifest).items()),
        )
