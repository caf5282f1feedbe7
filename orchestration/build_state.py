"""The change detector: which dbt nodes the warehouse holds current, and what to build next.

A node (model, seed, snapshot) is *current* only when all of these hold:

- the code it was last built with is the project's code now: dbt's own ``state:modified``
  against the state manifest, which holds, node by node, the code of the last build that
  succeeded (``manifest.json`` in the state folder);
- that build is the one the warehouse holds: every node's post-hook writes the dbt
  invocation that built it into ``meta.dbt_builds`` in the node's own transaction, so a
  hand-run dbt command or a restored warehouse file shows up as another build;
- its tests passed on that build;
- its inputs are what they were then: every parent's identity (``relation_identities``:
  a raw table's last changing load, a table's build, a view's build and inputs).

Everything else is *dirty* and is rebuilt with everything downstream of it. The record of
what was verified (``nodes.json`` beside the state manifest) is written after each build
from dbt's run results, and is checked against the warehouse before it is trusted, so a
killed run, a failed test, a hand-run ``dbt build`` or a restored file can only make more
nodes dirty, never fewer.

No Dagster import: ``orchestration/defs/transform.py`` drives it from the dbt asset.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

STATE_SCHEMA = "meta"
BUILD_LOG = f"{STATE_SCHEMA}.dbt_builds"
LOADS_TABLE = f"{STATE_SCHEMA}.transform_loads"
BUILDABLE = frozenset({"model", "seed", "snapshot"})
#: Files dbt reads: a change to any of them may change what a node builds.
PROJECT_FILES = ("models", "macros", "seeds", "snapshots", "tests", "analyses")
PROJECT_CONFIGS = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml")
RAW_PREFIX = "raw:"
#: A load that landed rows, or marked deletes or changed rows, changes its raw table (one
#: that only re-read rows to compare them changes nothing).
LANDING_LOAD = """(
    status = 'ok'
    and (
        coalesce(rows_landed, 0) > 0
        or coalesce(deletes_detected, 0) > 0
        or coalesce(changed_rows_detected, 0) > 0
    )
)"""
#: What mart_data_quality reports of the extract log: the loads that changed raw, and the
#: failed ones (its extract_log CTE keeps the runs holding such a load).
REPORTED_LOAD = f"({LANDING_LOAD} or status <> 'ok')"


# -- the project's graph, from dbt's manifest --------------------------------------------


@dataclass(frozen=True)
class Node:
    """One dbt node as the change detector sees it."""

    unique_id: str
    name: str
    resource_type: str
    materialized: str | None
    parents: tuple[str, ...]
    schema: str
    alias: str

    @property
    def relation(self) -> str:
        """``"schema"."alias"`` (without the database, which names the file it was parsed for)."""
        return f'"{self.schema}"."{self.alias}"'


@dataclass(frozen=True)
class Graph:
    """The dbt project's nodes and sources (``raw:<table>`` for each platform source)."""

    nodes: Mapping[str, Node]
    sources: Mapping[str, str]  # source unique_id -> raw:<table>
    tests: Mapping[str, tuple[str, ...]]  # test unique_id -> the nodes it reads

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> Graph:
        """The graph of ``manifest.json`` (a dict)."""
        nodes: dict[str, Node] = {}
        tests: dict[str, tuple[str, ...]] = {}
        for unique_id, node in manifest["nodes"].items():
            parents = tuple(node.get("depends_on", {}).get("nodes", []))
            if node["resource_type"] == "test":
                tests[unique_id] = parents
                continue
            if node["resource_type"] not in BUILDABLE:
                continue
            if not node.get("config", {}).get("enabled", True):
                continue
            nodes[unique_id] = Node(
                unique_id=unique_id,
                name=node["name"],
                resource_type=node["resource_type"],
                materialized=node.get("config", {}).get("materialized"),
                parents=parents,
                schema=node.get("schema", ""),
                alias=node.get("alias") or node["name"],
            )
        sources = {
            unique_id: RAW_PREFIX + (source.get("identifier") or source["name"])
            for unique_id, source in manifest["sources"].items()
        }
        return cls(nodes, sources, tests)

    @classmethod
    def load(cls, manifest_path: Path) -> Graph:
        """The graph of the manifest file at ``manifest_path``."""
        return cls.from_manifest(json.loads(manifest_path.read_text()))

    def topological(self) -> list[str]:
        """Every node, parents before children."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(unique_id: str) -> None:
            if unique_id in seen or unique_id not in self.nodes:
                return
            seen.add(unique_id)
            for parent in self.nodes[unique_id].parents:
                visit(parent)
            order.append(unique_id)

        for unique_id in sorted(self.nodes):
            visit(unique_id)
        return order

    def descendants(self, roots: Iterable[str]) -> set[str]:
        """Every node downstream of ``roots`` (not the roots themselves)."""
        children: dict[str, list[str]] = {}
        for node in self.nodes.values():
            for parent in node.parents:
                children.setdefault(parent, []).append(node.unique_id)
        found: set[str] = set()
        frontier = list(roots)
        while frontier:
            for child in children.get(frontier.pop(), []):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
        return found

    def ref_of(self, unique_id: str) -> str:
        """The identity key of a dbt unique id: ``raw:<table>`` for a source."""
        return self.sources.get(unique_id, unique_id)


# -- what the warehouse holds --------------------------------------------------------------


@dataclass(frozen=True)
class WarehouseFacts:
    """The build of every dbt node the warehouse holds and the identity of every raw table."""

    builds: Mapping[str, str]  # unique_id -> dbt invocation id
    raw: Mapping[str, str]  # raw:<table> -> identity


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    ((count,),) = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(count)


def read_facts(con: duckdb.DuckDBPyConnection) -> WarehouseFacts:
    """The build log and each raw table's identity: its last load that changed something
    (``raw._extract_log``) and its row count, so rows written without a log entry count too."""
    builds: dict[str, str] = {}
    if _has_table(con, STATE_SCHEMA, "dbt_builds"):
        builds = dict(con.execute(f"select unique_id, build_id from {BUILD_LOG}").fetchall())
    loads: dict[str, str] = {}
    logged = _has_table(con, "raw", "_extract_log")
    if logged:
        loads = {
            table: f"{last}/{count}"
            for table, last, count in con.execute(
                f"select table_name, max(load_id), count(*) from raw._extract_log "
                f"where {LANDING_LOAD} group by table_name"
            ).fetchall()
        }
    tables = [
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).fetchall()
    ]
    raw: dict[str, str] = {}
    for table in tables:
        if table == "_extract_log":
            ((count, last),) = con.execute(
                f"select count(*), max(load_id) from raw._extract_log where {REPORTED_LOAD}"
            ).fetchall()
            raw[RAW_PREFIX + table] = f"log:{count}:{last}"
            continue
        ((rows,),) = con.execute(f'select count(*) from raw."{table}"').fetchall()
        raw[RAW_PREFIX + table] = f"load:{loads.get(table, '-')}:rows:{rows}"
    return WarehouseFacts(builds, raw)


def warehouse_facts(warehouse_path: Path) -> WarehouseFacts:
    """``read_facts`` of the warehouse file (read-only; empty when it does not exist)."""
    if not warehouse_path.exists():
        return WarehouseFacts({}, {})
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        return read_facts(con)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def relation_identities(graph: Graph, facts: WarehouseFacts) -> dict[str, str]:
    """An identity of what every relation holds now, by unique id (and ``raw:<table>``).

    A raw table's is its last changing load and row count; a table's, seed's or snapshot's
    the build that wrote it; a view's its build and its parents' identities (a view holds
    what its parents hold). Equal identities mean equal contents, as far as dlt and dbt
    wrote them."""
    identities: dict[str, str] = dict(facts.raw)
    for source_id, ref in graph.sources.items():
        identities[source_id] = facts.raw.get(ref, "missing")
    for unique_id in graph.topological():
        node = graph.nodes[unique_id]
        build = facts.builds.get(unique_id, "unbuilt")
        if node.materialized in ("view", "ephemeral"):
            parents = [identities.get(p, "missing") for p in node.parents]
            identities[unique_id] = "view:" + _digest(build, *parents)
        else:
            identities[unique_id] = "build:" + build
    return identities


def inputs_of(graph: Graph, unique_id: str, identities: Mapping[str, str]) -> dict[str, str]:
    """The identities of a node's parents."""
    return {p: identities.get(p, "missing") for p in graph.nodes[unique_id].parents}


def judged_identity(refs: Iterable[str], identities: Mapping[str, str]) -> str:
    """One identity for a set of relations (what a check judged)."""
    return _digest(*(f"{ref}={identities.get(ref, 'missing')}" for ref in sorted(set(refs))))


# -- the record of verified builds ----------------------------------------------------------


@dataclass
class NodeRecord:
    """What the last build of a node produced: its build, its parents' identities then, and
    whether it built and its tests passed."""

    build_id: str | None
    inputs: dict[str, str]
    verified: bool


@dataclass
class BuildState:
    """The state folder: dbt's state manifest and the record of each node's last build."""

    folder: Path
    fingerprint: str = ""
    nodes: dict[str, NodeRecord] = field(default_factory=dict)

    @property
    def manifest_path(self) -> Path:
        """dbt's ``--state`` manifest: each node as the build that the warehouse holds had it."""
        return self.folder / "manifest.json"

    @property
    def exists(self) -> bool:
        """Whether a build was ever recorded here."""
        return self.manifest_path.exists() and (self.folder / "nodes.json").exists()

    @classmethod
    def load(cls, folder: Path) -> BuildState:
        """The state in ``folder`` (empty when there is none or it cannot be read)."""
        state = cls(folder)
        try:
            data = json.loads((folder / "nodes.json").read_text())
            state.fingerprint = data["fingerprint"]
            state.nodes = {uid: NodeRecord(**record) for uid, record in data["nodes"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return cls(folder)
        return state

    def save(self, manifest: Mapping[str, Any]) -> None:
        """Write the state manifest, then the node records (each file replaced atomically;
        the records last, so a kill in between leaves records that no longer match)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.manifest_path, json.dumps(manifest))
        payload = {
            "fingerprint": self.fingerprint,
            "nodes": {uid: asdict(record) for uid, record in sorted(self.nodes.items())},
        }
        _write_atomically(self.folder / "nodes.json", json.dumps(payload, indent=1))


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def state_folder(warehouse_path: Path) -> Path:
    """The state folder of a warehouse file (beside it)."""
    return warehouse_path.with_name(warehouse_path.stem + ".dbt-state")


def project_fingerprint(project_dir: Path, dbt_vars: Mapping[str, Any], dbt_version: str) -> str:
    """A digest of every file dbt reads, the vars and dbt's version: when it is unchanged,
    no node's code can have changed since the state was recorded."""
    digest = hashlib.sha256(f"{dbt_version}\0{json.dumps(dbt_vars, sort_keys=True)}".encode())
    paths = [project_dir / name for name in PROJECT_CONFIGS]
    for folder in PROJECT_FILES:
        paths += sorted(p for p in (project_dir / folder).rglob("*") if p.is_file())
    for path in paths:
        if path.is_file():
            digest.update(f"\0{path.relative_to(project_dir)}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What an incremental build runs.

    ``everything``: no usable state, build all (``full_refresh``: incremental models from
    scratch). Otherwise ``dirty`` nodes (with why) are rebuilt with everything downstream,
    plus dbt's ``state:modified+`` when the project's files changed (``code_changed``)."""

    everything: bool
    full_refresh: bool
    code_changed: bool
    dirty: Mapping[str, str] = field(default_factory=dict)  # unique_id -> reason

    @property
    def nothing(self) -> bool:
        """True when nothing needs building."""
        return not (self.everything or self.code_changed or self.dirty)


def plan_build(graph: Graph, state: BuildState, facts: WarehouseFacts, fingerprint: str) -> Plan:
    """The nodes whose build the warehouse does not hold current (see the module's doc)."""
    if not state.exists:
        return Plan(everything=True, full_refresh=True, code_changed=True)
    identities = relation_identities(graph, facts)
    dirty: dict[str, str] = {}
    foreign: set[str] = set()
    for unique_id in graph.topological():
        if graph.nodes[unique_id].materialized == "ephemeral":
            continue  # never built: its identity is its parents'
        record = state.nodes.get(unique_id)
        built = facts.builds.get(unique_id)
        if record is None:
            dirty[unique_id] = "never built by this project's runner"
        elif record.build_id != built:
            dirty[unique_id] = (
                "the warehouse holds another build (dbt run by hand, or a restored file)"
            )
            foreign.add(unique_id)
        elif not record.verified:
            dirty[unique_id] = "its last build failed or its tests did not pass"
        elif record.inputs != inputs_of(graph, unique_id, identities):
            dirty[unique_id] = "its inputs changed"
    code_changed = fingerprint != state.fingerprint
    # An incremental model keeps rows it folded in earlier: rows from other code, or from
    # parents that a foreign build replaced, are only cleared by building it from scratch.
    touched = foreign | graph.descendants(foreign)
    full_refresh = any(graph.nodes[u].materialized == "incremental" for u in touched)
    return Plan(everything=False, full_refresh=full_refresh, code_changed=code_changed, dirty=dirty)


# -- recording a build --------------------------------------------------------------------


@dataclass(frozen=True)
class NodeOutcome:
    """One node of a dbt invocation: its status (success, error, skipped, pass, fail, ...)."""

    unique_id: str
    status: str


def record_build(
    state: BuildState,
    graph: Graph,
    manifest: Mapping[str, Any],
    outcomes: Iterable[NodeOutcome],
    facts: WarehouseFacts,
    fingerprint: str,
    complete: bool,
) -> BuildState:
    """The state after a dbt invocation: each node it ran recorded as built (and verified
    when every test of it passed), the state manifest given its code. ``complete``: the
    invocation covered every node the plan asked for and every node succeeded, so the
    project-wide parts of the manifest (macros, sources) and the fingerprint move on too."""
    results = {o.unique_id: o.status for o in outcomes}
    failed_tests = {
        unique_id
        for unique_id, status in results.items()
        if unique_id.startswith("test.") and status not in ("pass", "warn")
    }
    untested = {parent for test in failed_tests for parent in graph.tests.get(test, ())}
    identities = relation_identities(graph, facts)
    previous: dict[str, Any] = {}
    if state.manifest_path.exists():
        previous = json.loads(state.manifest_path.read_text())
    state_manifest = dict(manifest) if complete or not previous else dict(previous)
    state_nodes = dict(previous.get("nodes", {})) if previous else {}
    if not previous:
        state_nodes = {}
    for unique_id, status in results.items():
        if unique_id.startswith("test.") and status != "skipped":
            state_nodes[unique_id] = manifest["nodes"][unique_id]
        if unique_id not in graph.nodes:
            continue
        if status == "success":
            state_nodes[unique_id] = manifest["nodes"][unique_id]
            state.nodes[unique_id] = NodeRecord(
                build_id=facts.builds.get(unique_id),
                inputs=inputs_of(graph, unique_id, identities),
                verified=unique_id not in untested,
            )
        else:
            record = state.nodes.get(unique_id)
            state.nodes[unique_id] = NodeRecord(
                build_id=record.build_id if record else facts.builds.get(unique_id),
                inputs=record.inputs if record else {},
                verified=False,
            )
    state_manifest["nodes"] = state_nodes
    if complete:
        state.fingerprint = fingerprint
    state.nodes = {uid: r for uid, r in state.nodes.items() if uid in graph.nodes}
    state.save(state_manifest)
    return state


# -- the loads each complete build consumed (read by the incremental models) ---------------


def pending_loads(
    con: duckdb.DuckDBPyConnection, *, changing: bool = False
) -> dict[str, list[str]]:
    """Successful loads per raw table that no complete build has consumed yet (with
    ``changing``, only those that changed their raw table)."""
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(
        f"create table if not exists {LOADS_TABLE} "
        "(table_name varchar, load_id varchar, transformed_at timestamp)"
    )
    if not _has_table(con, "raw", "_extract_log"):
        return {}
    rows = con.execute(
        f"""
        select log.table_name, log.load_id
        from raw._extract_log as log
        left join {LOADS_TABLE} as seen
            on log.table_name = seen.table_name and log.load_id = seen.load_id
        where seen.load_id is null and log.status = 'ok'{f" and {LANDING_LOAD}" if changing else ""}
        order by log.table_name, log.load_id
        """
    ).fetchall()
    pending: dict[str, list[str]] = {}
    for table, load_id in rows:
        pending.setdefault(table, []).append(load_id)
    return pending


def record_loads(con: duckdb.DuckDBPyConnection, loads: Mapping[str, list[str]]) -> None:
    """Mark ``loads`` consumed: the incremental models' ``landed_since_last_build`` skips them."""
    rows = [(table, load) for table, table_loads in loads.items() for load in table_loads]
    if rows:  # one statement: executemany costs a query a row
        consumed = pa.table({"table_name": [r[0] for r in rows], "load_id": [r[1] for r in rows]})
        con.register("consumed_loads", consumed)
        try:
            con.execute(
                f"insert into {LOADS_TABLE} select table_name, load_id, current_timestamp "
                "from consumed_loads"
            )
        finally:
            con.unregister("consumed_loads")
