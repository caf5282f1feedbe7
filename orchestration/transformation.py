"""Run the dbt project (``dbt_project/``) against the DuckDB warehouse, from Python.

``transform(settings, ...)`` is the one entry point: ``warehouse transform`` calls it and the
Dagster definitions may reuse it. It uses dbt's programmatic ``dbtRunner`` (no subprocess).

Incremental runs: after every successful build of the whole project the loads it consumed
and the code it built are recorded (``meta.transform_loads``, ``meta.transform_nodes``);
``incremental=True`` then builds what ``dbt_plan.incremental_plan`` says changed since: the
tables and snapshots downstream of the raw tables whose loads actually changed rows
(``raw._extract_log``: rows landed, deletes or changed rows detected; a re-read that landed
nothing changes nothing), the data-quality mart, which reads the log itself, and every node
whose code changed with everything downstream of it (the same plan as the hourly Dagster
build). Their data tests run in DuckDB queries (``run_data_tests``) on dbt's own database
while dbt builds, each as soon as the nodes it reads are built (``_TestsAsBuilt``), instead
of one dbt node each: at `small` and `medium` dbt's fixed cost per test node, not the data,
was most of them.
"""

from __future__ import annotations

import gc
import json
import os
import queue
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion.settings import PROJECT_ROOT, WarehouseSettings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
STATE_SCHEMA = "meta"
STATE_TABLE = f"{STATE_SCHEMA}.transform_loads"
_ENV_LOCK = threading.Lock()


class TransformError(RuntimeError):
    """dbt could not run, or one of its nodes failed."""


@dataclass
class TransformResult:
    """What one transform did: the dbt command, its node outcomes and wall time."""

    args: list[str]
    success: bool
    seconds: float
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    changed_tables: list[str] | None = None
    skipped: bool = False
    built: list[str] = field(default_factory=list)
    # dbt's in-memory manifest of the run (None when dbt's layout hid it from run_dbt).
    manifest: Any = field(default=None, repr=False)


@contextmanager
def _warehouse_env(warehouse_path: Path) -> Iterator[None]:
    """dbt's profile reads WAREHOUSE_PATH at parse time; set it for this run only."""
    with _ENV_LOCK:
        previous = os.environ.get("WAREHOUSE_PATH")
        os.environ["WAREHOUSE_PATH"] = str(warehouse_path)
        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("WAREHOUSE_PATH", None)
            else:
                os.environ["WAREHOUSE_PATH"] = previous


def run_dbt(
    args: list[str],
    warehouse_path: Path,
    target_path: Path | None = None,
    quiet: bool = False,
    manifest: Any = None,
    write_json: bool = True,
    selected: set[str] | None = None,
    then: Callable[[TransformResult], None] | None = None,
    callbacks: list[Callable[[Any], None]] | None = None,
) -> TransformResult:
    """Run one dbt command (e.g. ``["build"]``) on the warehouse and summarise its results.

    ``manifest``: a manifest parsed already (``parse_project``), so dbt does not parse again.
    The manifest of the run is returned either way (``result.manifest``, None when dbt's
    layout hid it). ``write_json=False``: do not serialise ``manifest.json`` (twice: after
    parsing and after the run; at this project's size a second or more of every build);
    ``run_results.json`` is still written. ``selected``: the exact unique ids that ``args``
    select, so dbt need not match its selectors against every node (``_exact_selection``).
    ``then(result)``: called after the command, before dbt's in-process DuckDB database
    closes (the incremental build's data tests run on it: ``_TestsAsBuilt``).
    ``callbacks``: dbt's event callbacks (``dbtRunner(callbacks=...)``), called with every
    event dbt fires, in the thread that fires it.
    """
    from dbt.cli.main import dbtRunner

    common = _common_args(target_path)
    full_args = [*(["--quiet"] if quiet else []), *args, *common]
    if not write_json:
        full_args.append("--no-write-json")
    started = time.perf_counter()
    run_results = (target_path or DBT_PROJECT_DIR / "target") / "run_results.json"
    durations = _last_durations(run_results)
    with _warehouse_env(warehouse_path), _critical_path_first(durations), _lazy_flat_graph():
        try:
            with _long_lived_frozen(), _parsed_manifest() as parsed, _exact_selection(selected):
                outcome = dbtRunner(manifest=manifest, callbacks=callbacks).invoke(full_args)
            if manifest is None and parsed:
                manifest = parsed[0]
            if outcome.exception is not None and outcome.result is None:
                raise TransformError(f"dbt {' '.join(args)} could not run: {outcome.exception}")
            result = _summary(outcome, full_args, manifest)
            if then is not None:
                then(result)
        finally:
            _release_duckdb()
    if not write_json and outcome.result is not None and hasattr(outcome.result, "write"):
        outcome.result.write(str(run_results))
    result.seconds = time.perf_counter() - started
    return result


def _summary(outcome: Any, full_args: list[str], manifest: Any) -> TransformResult:
    """A ``TransformResult`` of dbt's outcome (its wall time is set by the caller)."""
    statuses: dict[str, int] = {}
    failures: list[str] = []
    built: list[str] = []
    for node_result in getattr(outcome.result, "results", None) or []:
        status = str(node_result.status)
        statuses[status] = statuses.get(status, 0) + 1
        if status in {"error", "fail"}:
            failures.append(f"{node_result.node.unique_id}: {node_result.message}")
        elif status == "success":
            built.append(node_result.node.unique_id)
    return TransformResult(
        args=full_args,
        success=bool(outcome.success),
        seconds=0.0,
        statuses=statuses,
        failures=failures,
        built=built,
        manifest=manifest,
    )


def _common_args(target_path: Path | None) -> list[str]:
    return [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        *(["--target-path", str(target_path)] if target_path is not None else []),
    ]


def parse_project(
    warehouse_path: Path, target_path: Path | None = None, as_of: str | None = None
) -> Any:
    """dbt's manifest of the project (a partial parse when the target folder holds one)."""
    from dbt.cli.main import dbtRunner

    args = ["--quiet", "parse", "--no-write-json", *_vars(as_of), *_common_args(target_path)]
    with _warehouse_env(warehouse_path), _lazy_flat_graph(), _long_lived_frozen():
        outcome = dbtRunner().invoke(args)
    if not outcome.success or outcome.result is None:
        raise TransformError(f"dbt could not parse the project: {outcome.exception}")
    return outcome.result


def _vars(as_of: str | None) -> list[str]:
    return ["--vars", f"{{as_of: '{as_of}'}}"] if as_of else []


@contextmanager
def _parsed_manifest() -> Iterator[list[Any]]:
    """Collect the manifest dbt parses for a command (``dbt.cli.requires`` calls
    ``parse_manifest`` once per command): a second ``dbt parse`` to get it would cost a second
    start-up. Nothing is collected when dbt's layout differs; the caller then parses."""
    parsed: list[Any] = []
    try:
        from dbt.cli import requires
    except ImportError:  # pragma: no cover - another dbt layout
        yield parsed
        return
    original = getattr(requires, "parse_manifest", None)
    if original is None:  # pragma: no cover
        yield parsed
        return

    def parse_and_keep(*args: Any, **kwargs: Any) -> Any:
        manifest = original(*args, **kwargs)
        parsed.append(manifest)
        gc.freeze()  # the manifest lives as long as the run: see _long_lived_frozen
        return manifest

    # Called inside _warehouse_env, whose lock keeps concurrent runs in this process apart.
    requires.parse_manifest = parse_and_keep  # type: ignore[attr-defined]
    try:
        yield parsed
    finally:
        requires.parse_manifest = original  # type: ignore[attr-defined]


@contextmanager
def _long_lived_frozen() -> Iterator[None]:
    """Keep Python's cyclic garbage collector off the objects that outlive a build.

    A build allocates fast (dbt's manifest, its Jinja contexts and events), so the collector
    runs its full collection every second or so, and each one walks every object in the
    process, dbt's parsed manifest included, with the GIL held: dbt's threads stop meanwhile.
    Measured at `medium`: 1.5-1.9 s of a full build's ~11 s and 0.24-0.30 s of an incremental
    build's ~3 s went to collections. So each dbt command runs with what exists frozen
    (``gc.freeze()``: imports, an earlier parse's manifest), frozen again once dbt has parsed
    the project (``_parsed_manifest``: the manifest lives until the command ends); what the
    command allocates besides is collected as usual. Afterwards everything is handed back to
    the collector (``gc.unfreeze()``), so a long-lived process (Dagster's) frees it as before.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _last_durations(run_results: Path) -> dict[str, float]:
    """How long each node took in the last dbt command written to ``run_results`` (seconds),
    empty when there is none or it cannot be read: the weights of ``_critical_path_first``."""
    try:
        results = json.loads(run_results.read_text())["results"]
        return {result["unique_id"]: float(result["execution_time"]) for result in results}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@contextmanager
def _critical_path_first(durations: Mapping[str, float] | None = None) -> Iterator[None]:
    """Start the nodes with the longest chain of dependents first.

    dbt orders ready nodes by their depth in the graph, then by unique_id: every snapshot
    (``snapshot.*`` sorts after ``model.*``) waited for all the depth-0 tables, although
    snap -> dim_person -> fct_payments -> marts is the longest chain of an incremental build.
    Scoring by the longest path to a leaf instead (critical-path list scheduling) starts that
    chain at once and fills the other threads with the rest. Only the order changes, never
    what runs; if dbt's queue no longer looks as expected, dbt's own order stays.

    A path is as long as its nodes took in the last run (``durations``, from the target
    folder's ``run_results.json``: an incremental build runs the same nodes each time); a
    node without a figure counts as the median of those with one, so without any history
    the longest path is the one with the most nodes. Counting nodes alone left a long node
    with no dependents (quarantined_rows, 0.2-0.3 s at `medium`) to the end of an incremental
    build, alone on one thread while the other idled.

    The order only holds if a node is taken off the queue when a thread is free to run it:
    dbt's main loop takes every ready node at once and hands it to the thread pool, whose own
    queue is first in, first out. A node that became ready a moment later (dim_person, once
    its snapshot is done) then waited behind every table that was ready at the start. So the
    queue here gives out a node only while fewer nodes than the pool has threads are running.
    """
    try:
        from dbt.graph.queue import GraphQueue
        from dbt.task.runnable import GraphRunnableTask
    except ImportError:  # pragma: no cover - another dbt layout
        yield
        return
    original = getattr(GraphQueue, "_get_scores", None)
    original_get = getattr(GraphQueue, "get", None)
    original_run_queue = getattr(GraphRunnableTask, "run_queue", None)
    if original is None or original_get is None or original_run_queue is None:  # pragma: no cover
        yield
        return
    known = dict(durations or {})
    default = statistics.median(known.values()) if known else 1.0

    def scores(self: object, graph: object) -> dict[str, int]:
        lengths = _path_lengths(graph, known, default)
        return {node: -round(length * 1e6) for node, length in lengths.items()}

    def run_queue(self: Any, pool: Any) -> None:
        if self.job_queue is not None:
            self.job_queue.warehouse_threads = getattr(pool, "max_threads", None)
        original_run_queue(self, pool)

    def get(self: Any, block: bool = True, timeout: float | None = None) -> Any:
        threads = getattr(self, "warehouse_threads", None)
        if threads and block and timeout is None:
            with self.lock:  # mark_done notifies some_task_done under this lock
                while len(self.in_progress) >= threads:
                    self.some_task_done.wait()
        return original_get(self, block=block, timeout=timeout)

    # Called inside _warehouse_env, whose lock keeps concurrent runs in this process apart.
    GraphQueue._get_scores = scores  # type: ignore[method-assign]
    GraphQueue.get = get  # type: ignore[method-assign]
    GraphRunnableTask.run_queue = run_queue  # type: ignore[method-assign]
    try:
        yield
    finally:
        GraphQueue._get_scores = original  # type: ignore[method-assign]
        GraphQueue.get = original_get  # type: ignore[method-assign]
        GraphRunnableTask.run_queue = original_run_queue  # type: ignore[method-assign]


def _path_lengths(graph: Any, durations: Mapping[str, float], default: float) -> dict[str, float]:
    """Each node's longest path to a leaf of ``graph`` (a networkx DiGraph), in seconds, the
    node included; a node missing from ``durations`` takes ``default``."""
    import networkx as nx

    length: dict[str, float] = {}
    for node in reversed(list(nx.topological_sort(graph))):
        children = graph.successors(node)
        length[node] = durations.get(node, default) + max(
            (length[c] for c in children), default=0.0
        )
    return length


class _LazyFlatGraph(dict):  # type: ignore[type-arg]
    """dbt's ``graph`` context variable, filled by ``fill`` the first time a template reads it.

    Building it (``Manifest.build_flat_graph``: every node, source and exposure serialised to
    a dict) costs ~0.15-0.2 s of every run of this project, and no macro or model of ours, nor
    any of dbt's or dbt-duckdb's that this project calls, reads it (dbt-duckdb's foreign-key
    and external-model macros do). A macro that reads ``graph`` gets it in full, built once.
    Upstream proposal of the same idea: dbt-labs/dbt-core#15525 ("no-copy views for
    flat_graph")."""

    def __init__(self, fill: Callable[[], dict]) -> None:
        super().__init__()
        self._fill: Callable[[], dict] | None = fill
        self._lock = threading.Lock()

    def _filled(self) -> dict:
        with self._lock:
            if self._fill is not None:
                fill, self._fill = self._fill, None
                super().update(fill())
        return self

    def __getitem__(self, key: Any) -> Any:
        return dict.__getitem__(self._filled(), key)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self._filled(), key)

    def __iter__(self) -> Iterator[Any]:
        return dict.__iter__(self._filled())

    def __len__(self) -> int:
        return dict.__len__(self._filled())

    def __eq__(self, other: object) -> bool:
        return dict.__eq__(self._filled(), other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return dict.__repr__(self._filled())

    def __reduce__(self) -> Any:  # pickled (dbt's manifest is) as the plain dict it stands for
        return (dict, (dict(self._filled()),))

    def get(self, key: Any, default: Any = None) -> Any:
        return dict.get(self._filled(), key, default)

    def keys(self) -> Any:
        return dict.keys(self._filled())

    def values(self) -> Any:
        return dict.values(self._filled())

    def items(self) -> Any:
        return dict.items(self._filled())

    def copy(self) -> dict:
        return dict(self._filled())


@contextmanager
def _lazy_flat_graph() -> Iterator[None]:
    """While dbt parses, make the manifest's ``flat_graph`` a ``_LazyFlatGraph``."""
    try:
        from dbt.contracts.graph.manifest import Manifest
    except ImportError:  # pragma: no cover - another dbt layout
        yield
        return
    original = getattr(Manifest, "build_flat_graph", None)
    if original is None:  # pragma: no cover
        yield
        return

    def build_lazily(manifest: Any) -> None:
        def fill() -> dict:
            original(manifest)
            built, manifest.flat_graph = manifest.flat_graph, lazy
            return built

        lazy = _LazyFlatGraph(fill)
        manifest.flat_graph = lazy

    # Called inside _warehouse_env, whose lock keeps concurrent runs in this process apart.
    Manifest.build_flat_graph = build_lazily  # type: ignore[method-assign]
    try:
        yield
    finally:
        Manifest.build_flat_graph = original  # type: ignore[method-assign]


@contextmanager
def _exact_selection(selected: set[str] | None) -> Iterator[None]:
    """Make dbt's node selection return ``selected`` (unique ids) without matching selectors.

    dbt matches every selector against every node of the project, three times per ``build``
    (with and without unit tests, then for the queue): ~0.15 s for the ~20 nodes an
    incremental build names among ~330. The caller passes the same nodes as selectors too, so
    a dbt whose layout differs selects them itself. Nothing else is selected: no unit test, no
    data test (the incremental build excludes both)."""
    try:
        from dbt.graph.selector import NodeSelector
    except ImportError:  # pragma: no cover - another dbt layout
        yield
        return
    original = getattr(NodeSelector, "get_selected", None)
    if selected is None or original is None:
        yield
        return

    def get_selected(self: Any, spec: Any, warn_on_no_nodes: bool = True) -> set[str]:
        return {unique_id for unique_id in selected if unique_id in self.full_graph.graph}

    # Called inside _warehouse_env, whose lock keeps concurrent runs in this process apart.
    NodeSelector.get_selected = get_selected  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        NodeSelector.get_selected = original  # type: ignore[method-assign]


def _open_duckdb_cursor() -> Any:
    """A cursor on dbt-duckdb's in-process database while it is open, else None."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter
        return None
    connection = getattr(DuckDBConnectionManager._ENV, "conn", None)
    return connection.cursor() if connection is not None else None


def _release_duckdb() -> None:
    """Close dbt-duckdb's cached in-process database, so the file can be opened again here."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing cached in this process
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if environment is not None:
            environment.close()


def pending_loads(warehouse_path: Path) -> dict[str, tuple[list[str], bool]]:
    """Unconsumed successful loads per raw table, and whether any of them changed raw: landed
    rows, or marked hard deletes or changed rows (ingestion/README.md, the extract log)."""
    import duckdb

    with duckdb.connect(str(warehouse_path)) as con:
        con.execute(f"create schema if not exists {STATE_SCHEMA}")
        con.execute(
            f"create table if not exists {STATE_TABLE} "
            "(table_name varchar, load_id varchar, transformed_at timestamp)"
        )
        rows = con.execute(
            f"""
            select
                log.table_name,
                log.load_id,
                coalesce(log.rows_landed, 1) > 0
                or coalesce(log.deletes_detected, 0) > 0
                or coalesce(log.changed_rows_detected, 0) > 0
            from raw._extract_log as log
            left join {STATE_TABLE} as seen
                on log.table_name = seen.table_name and log.load_id = seen.load_id
            where seen.load_id is null and log.status = 'ok'
            order by log.table_name, log.load_id
            """
        ).fetchall()
    pending: dict[str, tuple[list[str], bool]] = {}
    for table_name, load_id, changed in rows:
        loads, any_change = pending.get(table_name, ([], False))
        pending[table_name] = ([*loads, load_id], any_change or bool(changed))
    return pending


def has_transformed(warehouse_path: Path) -> bool:
    import duckdb

    with duckdb.connect(str(warehouse_path)) as con:
        found = con.execute(
            f"select count(*) from information_schema.tables "
            f"where table_schema = '{STATE_SCHEMA}' and table_name = 'transform_loads'"
        ).fetchone()
        if not found or not found[0]:
            return False
        done = con.execute(f"select count(*) from {STATE_TABLE}").fetchone()
        return bool(done and done[0])


def record_loads(warehouse_path: Path, pending: dict[str, list[str]]) -> None:
    import duckdb

    if not pending:
        return
    with duckdb.connect(str(warehouse_path)) as con:
        con.executemany(
            f"insert into {STATE_TABLE} values (?, ?, current_timestamp)",
            [(table, load) for table, loads in pending.items() for load in loads],
        )


# Generic data tests the single pass can evaluate (all the project uses); any other test in
# an incremental selection makes dbt run the data tests itself, as nodes.
_GENERIC_TESTS = {
    "not_null",
    "unique",
    "accepted_values",
    "relationships",
    "expression_is_true",
    "unique_combination_of_columns",
}


def _failing_rows_sql(test: dict, nodes: dict) -> str:
    """``select count(*)`` of the rows dbt's generic test would return (its failures)."""
    meta = test["test_metadata"]
    kwargs = meta["kwargs"]
    model = nodes[test["attached_node"]]["relation_name"]
    column = kwargs.get("column_name") or test.get("column_name")
    name = meta["name"]
    if name == "not_null":
        body = f"select 1 from {model} where {column} is null"
    elif name == "unique":
        body = (
            f"select {column} from {model} where {column} is not null "
            f"group by {column} having count(*) > 1"
        )
    elif name == "accepted_values":
        quote = kwargs.get("quote", True)
        values = ", ".join(
            "'" + str(v).replace("'", "''") + "'" if quote else str(v) for v in kwargs["values"]
        )
        body = (
            f"select value_field from (select {column} as value_field from {model} "
            f"group by {column}) as all_values where value_field not in ({values})"
        )
    elif name == "relationships":
        others = [n for n in test["depends_on"]["nodes"] if n != test["attached_node"]]
        parent = nodes[others[0] if others else test["attached_node"]]["relation_name"]
        body = (
            f"select child.from_field from (select {column} as from_field from {model} "
            f"where {column} is not null) as child left join (select {kwargs['field']} "
            f"as to_field from {parent}) as parent on child.from_field = parent.to_field "
            "where parent.to_field is null"
        )
    elif name == "expression_is_true":
        body = f"select 1 from {model} where not coalesce({kwargs['expression']}, false)"
    elif name == "unique_combination_of_columns":
        columns = ", ".join(kwargs["columns"])
        body = f"select {columns} from {model} group by {columns} having count(*) > 1"
    else:  # pragma: no cover - _single_pass_tests filters these out
        raise TransformError(f"no single-pass SQL for the generic test {name}")
    return f"select count(*) from ({body}) as failing"


def _manifest_dict(manifest: Any, tests: bool = True) -> dict:
    """The part of dbt's in-memory manifest that the incremental plan (``dbt_plan``) and the
    single-pass tests read, shaped like ``manifest.json``: every data test in full (or, with
    ``tests=False``, only its type and parents); of every other node its name, package,
    type, relation, code checksum, materialization and parents; every source's relation and
    name; the child map; the SQL of the project's own macros."""
    nodes: dict[str, dict] = {}
    children: dict[str, list[str]] = {}
    for unique_id, node in manifest.nodes.items():
        parents = list(getattr(node.depends_on, "nodes", []))  # seeds depend on macros only
        for parent in parents:
            children.setdefault(parent, []).append(unique_id)
        if str(node.resource_type) == "test":
            if tests:
                nodes[unique_id] = node.to_dict()
            else:
                nodes[unique_id] = {"resource_type": "test", "depends_on": {"nodes": parents}}
            continue
        nodes[unique_id] = {
            "name": node.name,
            "package_name": node.package_name,
            "fqn": list(node.fqn),
            "resource_type": str(node.resource_type),
            "relation_name": getattr(node, "relation_name", None),
            "database": node.database,
            "checksum": {"checksum": node.checksum.checksum},
            "config": {
                "materialized": node.config.materialized,
                "enabled": node.config.enabled,
            },
            "depends_on": {"nodes": parents},
        }
    sources = {
        unique_id: {
            "relation_name": source.relation_name,
            "database": source.database,
            "source_name": source.source_name,
            "name": source.name,
            "identifier": source.identifier,
        }
        for unique_id, source in manifest.sources.items()
    }
    packages = {node["package_name"] for node in nodes.values() if "package_name" in node}
    macros = {
        unique_id: {"package_name": macro.package_name, "macro_sql": macro.macro_sql}
        for unique_id, macro in manifest.macros.items()
        if macro.package_name in packages
    }
    return {"nodes": nodes, "sources": sources, "child_map": children, "macros": macros}


def _single_pass_tests(manifest: dict, built: set[str]) -> list[dict] | None:
    """The data tests dbt would attach to the ``built`` nodes (a test runs when any node it
    reads was built), or None when one of them is not a plain generic test."""
    tests = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
        and node["config"].get("enabled", True)
        and built.intersection(node["depends_on"]["nodes"])
    ]
    for test in tests:
        meta = test.get("test_metadata") or {}
        config = test["config"]
        if (
            not test.get("attached_node")
            or meta.get("name") not in _GENERIC_TESTS
            or meta.get("namespace") not in (None, "dbt")
            or config.get("where")
            or config.get("limit")
            or config.get("severity", "ERROR").upper() != "ERROR"
            or config.get("fail_calc", "count(*)") != "count(*)"
            or config.get("error_if", "!= 0") != "!= 0"
        ):
            return None
    return tests


def run_data_tests(
    warehouse_path: Path, manifest: dict, tests: list[dict], connection: Any = None
) -> tuple[dict[str, int], list[str]]:
    """Evaluate the generic data tests in one query: (statuses, failures) as dbt reports them.

    ``connection``: a DuckDB connection that already has the warehouse attached under dbt's
    name for it (a cursor on dbt's own, see ``_TestsAsBuilt``); by default the file is opened read-only.
    """
    import duckdb

    if not tests:
        return {}, []
    nodes = {**manifest["nodes"], **manifest.get("sources", {})}
    query = "\nunion all\n".join(
        f"select {index} as test_index, ({_failing_rows_sql(test, nodes)}) as failures"
        for index, test in enumerate(tests)
    )
    if connection is not None:
        counts = dict(connection.execute(query).fetchall())
    else:
        # The relations are named in dbt's catalog (the profile's database): attach it as that.
        database = nodes[tests[0]["attached_node"]]["database"]
        with duckdb.connect() as con:
            con.execute(f"attach '{warehouse_path}' as \"{database}\" (read_only)")
            counts = dict(con.execute(query).fetchall())
    failures = [
        f"{test['unique_id']}: Got {counts[index]} results, configured to fail if != 0"
        for index, test in enumerate(tests)
        if counts[index]
    ]
    statuses = {"pass": len(tests) - len(failures)}
    if failures:
        statuses["fail"] = len(failures)
    return statuses, failures


class _TestsAsBuilt:
    """Run an incremental build's data tests while dbt builds: each one as soon as every node
    it reads that the build rebuilds has finished, in one query per batch (the tests one
    node released, with any released meanwhile: ``run_data_tests``), on a cursor of dbt's own
    in-process database.

    Before, the data tests ran in one query after the last node: 0.2-0.25 s added to every
    incremental build at `medium`. Now nothing runs after the last node: the tests share the
    CPU with dbt's nodes (the node phase stretches by part of that). dbt tells which node
    finished through its event callbacks (``NodeFinished``, fired after the node's transaction
    committed). A test of a node that failed or was skipped does not run; a test whose query
    fails counts as an error, with DuckDB's message.
    """

    def __init__(
        self, warehouse_path: Path, manifest: dict, tests: list[dict], planned: Iterable[str]
    ) -> None:
        self._warehouse_path = warehouse_path
        self._manifest = manifest
        self._tests = tests
        planned = set(planned)
        self._waiting = {
            index: set(test["depends_on"]["nodes"]) & planned for index, test in enumerate(tests)
        }
        self._lock = threading.Lock()
        self._ready: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._statuses: dict[str, int] = {}
        self._failures: list[str] = []
        self._no_database = False
        self._worker = threading.Thread(target=self._run, name="data-tests", daemon=True)
        self._worker.start()

    def on_event(self, message: Any) -> None:
        """dbt's event callback: a node that finished successfully releases its tests."""
        if message.info.name != "NodeFinished":
            return
        node = message.data.node_info
        released = []
        with self._lock:
            for index, parents in self._waiting.items():
                if node.unique_id in parents:
                    parents.discard(node.unique_id)
                    if node.node_status != "success":
                        parents.add(f"{node.unique_id} ({node.node_status})")  # never ready
                    elif not parents:
                        released.append(index)
        if released:
            self._ready.put(released)

    def _run(self) -> None:
        cursor = None
        try:
            while (released := self._ready.get()) is not None:
                batch = list(released)
                while True:  # what became ready meanwhile goes in the same query
                    try:
                        more = self._ready.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._ready.put(None)
                        break
                    batch += more
                if cursor is None and not self._no_database:
                    cursor = _open_duckdb_cursor()
                    self._no_database = cursor is None  # not DuckDB: dbt runs them afterwards
                if cursor is not None:
                    self._evaluate([self._tests[i] for i in batch], cursor)
        finally:
            if cursor is not None:
                cursor.close()

    def _evaluate(self, tests: list[dict], cursor: Any) -> None:
        try:
            statuses, failures = run_data_tests(self._warehouse_path, self._manifest, tests, cursor)
        except Exception as error:  # a broken query fails its tests, loudly
            statuses = {"error": len(tests)}
            failures = [f"{test['unique_id']}: could not run: {error}" for test in tests]
        with self._lock:
            for status, count in statuses.items():
                self._statuses[status] = self._statuses.get(status, 0) + count
            self._failures += failures

    def finish(self) -> tuple[dict[str, int], list[str]] | None:
        """Wait for the tests under way: (statuses, failures) of every test whose nodes all
        built, or None when there was no DuckDB database to run them on."""
        self._ready.put(None)
        self._worker.join()
        if self._no_database:
            return None
        return dict(self._statuses), list(self._failures)


def transform(
    settings: WarehouseSettings,
    *,
    select: list[str] | None = None,
    full_refresh: bool = False,
    incremental: bool = False,
    as_of: str | None = None,
    target_path: Path | None = None,
    quiet: bool = False,
) -> TransformResult:
    """``dbt build`` the project on ``settings.warehouse_path``.

    ``incremental``: only what changed since the last build (``dbt_plan``: what the loads
    since then changed, and every node whose code changed; nothing when neither), its data
    tests in DuckDB queries as it builds; ``full_refresh``: rebuild incremental models from
    scratch; ``select``: dbt selectors, passed through; ``as_of``: the metrics' as-of time
    (ISO UTC), default: the latest source timestamp in raw; ``quiet``: only errors on the
    console. A build of the whole project records the loads it consumed and the code it
    built (``meta.transform_loads``, ``meta.transform_nodes``) for the next incremental one.
    """
    from orchestration.dbt_plan import record_checksums

    warehouse_path = settings.warehouse_path
    if not warehouse_path.exists():
        raise TransformError(f"warehouse {warehouse_path} does not exist: run `warehouse extract`")
    if incremental and (full_refresh or select):
        raise TransformError("--incremental picks its own selection: no --full-refresh or --select")
    pending = pending_loads(warehouse_path)
    loads = {table: table_loads for table, (table_loads, _) in pending.items()}
    if incremental and has_transformed(warehouse_path):
        result = _transform_incremental(warehouse_path, pending, as_of, target_path, quiet)
    else:
        args = ["build", *(["--select", *select] if select else [])]
        args += [*(["--full-refresh"] if full_refresh else []), *_vars(as_of)]
        result = run_dbt(args, warehouse_path, target_path, quiet=quiet)
    # Only a build of every changed node consumes the loads and the code: after a --select
    # build, what it left out still has to see them.
    if result.success and not result.skipped and not select:
        record_loads(warehouse_path, loads)
        if result.manifest is not None:
            record_checksums(warehouse_path, _manifest_dict(result.manifest, tests=False))
    return result


def _transform_incremental(
    warehouse_path: Path,
    pending: dict[str, tuple[list[str], bool]],
    as_of: str | None,
    target_path: Path | None,
    quiet: bool,
) -> TransformResult:
    """Build what ``dbt_plan`` says changed since the last build, then its data tests."""
    from orchestration.dbt_plan import incremental_plan, modified_nodes, recorded_checksums

    started = time.perf_counter()
    parsed = parse_project(warehouse_path, target_path, as_of)
    manifest = _manifest_dict(parsed)
    modified = modified_nodes(manifest, recorded_checksums(warehouse_path))
    changed = sorted(t for t, (_, any_change) in pending.items() if any_change)
    if not pending and not modified:
        return TransformResult(
            args=["build"],
            success=True,
            seconds=time.perf_counter() - started,
            changed_tables=[],
            skipped=True,
            manifest=parsed,
        )
    plan = incremental_plan(manifest, changed, modified, logged=bool(pending))
    # The planned nodes go to dbt's selector as they are (_exact_selection); the same nodes
    # also go in as selectors by their full dotted names (package.folders.name: one node each),
    # which a dbt whose layout hides the selector matches itself. Unit tests check logic a load
    # cannot change (a full build runs them); the data tests of what is built run while dbt
    # builds, in DuckDB queries on its database (_TestsAsBuilt).
    names = sorted("fqn:" + ".".join(manifest["nodes"][u]["fqn"]) for u in plan.built)
    args = ["build", "--select", *names, "--exclude", "test_type:unit", "test_type:data"]
    args += [*(["--full-refresh"] if plan.full_refresh else []), *_vars(as_of)]
    tests = _single_pass_tests(manifest, set(plan.built))
    as_built = _TestsAsBuilt(warehouse_path, manifest, tests, plan.built) if tests else None
    needs_dbt_test = False

    def fold_in_data_tests(built: TransformResult) -> None:
        """The data tests of what was built, which ran on dbt's database while it built
        (``_TestsAsBuilt``): waits for the last of them; they count when every node built."""
        nonlocal needs_dbt_test
        outcome = as_built.finish() if as_built is not None else ({}, [])
        if not built.success:
            return
        if tests is None or outcome is None:  # a test the query cannot evaluate, or no DuckDB
            needs_dbt_test = True
        else:
            statuses, failures = outcome
            _fold_tests(built, statuses, failures, success=not failures)

    try:
        result = run_dbt(
            args,
            warehouse_path,
            target_path,
            quiet=quiet,
            manifest=parsed,
            write_json=False,
            selected=set(plan.built),
            then=fold_in_data_tests,
            callbacks=[as_built.on_event] if as_built is not None else None,
        )
    finally:
        if as_built is not None:  # stopped in fold_in_data_tests, unless dbt could not run
            as_built.finish()
    if needs_dbt_test:  # a test the single query cannot evaluate: dbt runs them all, as nodes
        names = sorted({unique_id.split(".")[-1] for unique_id in result.built})
        test_args = ["test", "--select", *names, "--exclude", "test_type:unit", *_vars(as_of)]
        tested = run_dbt(test_args, warehouse_path, target_path, quiet=quiet)
        _fold_tests(result, tested.statuses, tested.failures, success=tested.success)
    result.seconds = time.perf_counter() - started
    result.changed_tables = [t for t in changed if t != "_extract_log"]
    return result


def _fold_tests(
    result: TransformResult, statuses: dict[str, int], failures: list[str], success: bool
) -> None:
    """Add the outcome of a build's data tests to the build's ``result``."""
    for status, count in statuses.items():
        result.statuses[status] = result.statuses.get(status, 0) + count
    result.failures += failures
    result.success = result.success and success
