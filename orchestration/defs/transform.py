"""Transform assets: the dbt project, built by dagster-dbt. This is the only place dbt runs.

dbt sources resolve to the dlt assets' keys (``raw/<table>``), so the graph runs
source -> raw -> staging -> intermediate -> marts without a gap; dbt tests load as asset
checks. The one ``dbt_build`` multi-asset runs ``dbt build`` through ``DbtCliResource`` on
what the run selected: every model, or the subset ``plan_incremental_build`` chose (what
the warehouse does not hold current, see ``orchestration/build_state.py``), or a subset
picked by hand in the UI. dbt's own eager test selection also runs the tests of unselected
models that read a rebuilt one (a relationships test to a rebuilt dimension).

After dbt exits, the build state, every test's verdict (``orchestration/check_ledger.py``)
and the row counts are recorded, then the outputs and check results go to Dagster in
dependency order, each failed test with dbt's message.
"""

import contextlib
import io
import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster import AssetExecutionContext
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    build_dbt_asset_selection,
    dbt_assets,
)

from ingestion.settings import PROJECT_ROOT, WarehouseSettings
from orchestration.build_state import (
    RAW_PREFIX,
    BuildState,
    Graph,
    NodeOutcome,
    Plan,
    pending_loads,
    plan_build,
    project_fingerprint,
    read_facts,
    record_build,
    record_loads,
    relation_identities,
    state_folder,
)
from orchestration.check_ledger import Verdict, read_verdicts, record_verdicts, verdict
from orchestration.config import (
    AS_OF_TAG,
    DBT_LOG_TAG,
    FULL_REFRESH_TAG,
    PLANNED_TAG,
    WRITER_POOL,
)
from orchestration.keys import raw_key
from orchestration.relations import ModelRelation
from serving.catalog import is_served_name

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
#: What the relation holds (``build_state.relation_identities``): equal means unchanged.
IDENTITY_METADATA = "warehouse/identity"
_ENV_LOCK = threading.Lock()
#: The group of the star schema and the business marts: what BI reads.
MARTS_GROUP = "marts"


class WarehouseDbtTranslator(DagsterDbtTranslator):
    """dbt sources become ``raw/<table>``; models are grouped by layer (staging, marts, ...);
    marts carry the freshness policy, when one is given."""

    def __init__(
        self,
        settings: DagsterDbtTranslatorSettings | None = None,
        freshness: dg.FreshnessPolicy | None = None,
    ) -> None:
        super().__init__(settings=settings)
        self.freshness = freshness

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        """The default spec, re-keyed for sources and grouped by the model's top folder."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec.replace_attributes(key=raw_key(props.get("identifier") or props["name"]))
        fqn = props.get("fqn", [])
        layer = (
            fqn[1] if props["resource_type"] == "model" and len(fqn) > 2 else props["resource_type"]
        )
        spec = spec.replace_attributes(group_name=layer)
        if layer == MARTS_GROUP and self.freshness is not None:
            spec = dg.apply_freshness_policy(spec, self.freshness)
        return spec


def translator(freshness: dg.FreshnessPolicy | None = None) -> WarehouseDbtTranslator:
    """The translator with dbt tests as asset checks (and ``freshness`` on the marts)."""
    return WarehouseDbtTranslator(
        settings=DagsterDbtTranslatorSettings(
            enable_asset_checks=True, enable_code_references=False
        ),
        freshness=freshness,
    )


def dbt_project(target_dir: Path, project_dir: Path = DBT_PROJECT_DIR) -> DbtProject:
    """The project (``project_dir``: this repository's, or a test's copy), its artefacts under
    ``target_dir`` (git-ignored, or a test's tmp_path)."""
    return DbtProject(project_dir=project_dir, profiles_dir=project_dir, target_path=target_dir)


def _project_changed_since(project_dir: Path, moment: float) -> bool:
    """Whether any file of the dbt project (models, macros, seeds, config) is newer."""
    for folder in ("models", "macros", "seeds", "snapshots", "tests"):
        for path in (project_dir / folder).rglob("*"):
            if path.is_file() and path.stat().st_mtime > moment:
                return True
    return any(
        (project_dir / name).stat().st_mtime > moment
        for name in ("dbt_project.yml", "profiles.yml")
        if (project_dir / name).exists()
    )


def dbt_resource(project: DbtProject) -> DbtCliResource:
    """dagster-dbt's dbt runner, on the ``dbt`` installed beside this Python: a scheduler or
    cron job that starts ``.venv/bin/warehouse`` by its path has no virtualenv on PATH, and
    dagster-dbt would otherwise look for ``dbt`` there only."""
    beside = Path(sys.executable).parent / "dbt"
    return DbtCliResource(
        project_dir=project, dbt_executable=str(beside) if beside.exists() else "dbt"
    )


def ensure_manifest(project: DbtProject, warehouse: WarehouseSettings) -> Path:
    """``dbt parse`` when the manifest is missing or older than the project's files, so the
    definitions load on a fresh clone and never describe a stale project."""
    manifest = project.manifest_path
    project_dir = Path(project.project_dir)
    if not manifest.exists() or _project_changed_since(project_dir, manifest.stat().st_mtime):
        with warehouse_env(warehouse):
            dbt_resource(project).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project.manifest_path


# profiles.yml's default warehouse, relative to the dbt project (dbt runs there).
PROFILE_DEFAULT_WAREHOUSE = "../data/warehouse.duckdb"


def profile_warehouse_path(warehouse: WarehouseSettings, environ: Mapping[str, str]) -> str | None:
    """What dbt's profile gets as ``WAREHOUSE_PATH`` for ``warehouse``: what the shell already
    says when it names this file, nothing (the profile's default) when that is the file, else
    its absolute path. dbt re-parses the whole project when the profile's text changes, so the
    CLI must hand dbt the profile plain `dbt` in dbt_project/ sees."""
    target = warehouse.warehouse_path.resolve()
    current = environ.get("WAREHOUSE_PATH")
    if current and Path(current).is_absolute() and Path(current).resolve() == target:
        return current
    if not current and (DBT_PROJECT_DIR / PROFILE_DEFAULT_WAREHOUSE).resolve() == target:
        return None
    return str(target)


@contextmanager
def warehouse_env(warehouse: WarehouseSettings) -> Iterator[None]:
    """Point dbt's profile (``WAREHOUSE_PATH``) at this run's warehouse for one invocation
    (dagster-dbt hands the process environment to dbt)."""
    with _ENV_LOCK:
        previous = os.environ.get("WAREHOUSE_PATH")
        wanted = profile_warehouse_path(warehouse, os.environ)
        if wanted is None:
            os.environ.pop("WAREHOUSE_PATH", None)
        else:
            os.environ["WAREHOUSE_PATH"] = wanted
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("WAREHOUSE_PATH", None)
            else:
                os.environ["WAREHOUSE_PATH"] = previous


# -- what a run asks the dbt step for ------------------------------------------------------


@dataclass(frozen=True)
class BuildRequest:
    """The run's tags, read: from scratch or not, the as-of time, and whether its selection
    is an incremental plan's."""

    full_refresh: bool = False
    as_of: str | None = None
    planned: bool = False

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> "BuildRequest":
        """Read the tags (defaults: incremental models folded in, as of the data)."""
        return cls(
            full_refresh=tags.get(FULL_REFRESH_TAG) == "true",
            as_of=tags.get(AS_OF_TAG) or None,
            planned=tags.get(PLANNED_TAG) == "true",
        )

    @property
    def dbt_vars(self) -> dict[str, str]:
        """dbt's ``--vars``."""
        return {"as_of": self.as_of} if self.as_of else {}


def _vars_args(request: BuildRequest) -> list[str]:
    return ["--vars", json.dumps(request.dbt_vars)] if request.dbt_vars else []


def modified_nodes(dbt: DbtCliResource, project: DbtProject, state: BuildState) -> list[str]:
    """The nodes dbt's ``state:modified+`` selects against the recorded state (``dbt ls``)."""
    invocation = dbt.cli(
        [
            "ls",
            "--select",
            "state:modified+",
            "--state",
            str(state.folder),
            "--resource-type",
            "model",
            "seed",
            "snapshot",
            "--output",
            "json",
            "--output-keys",
            "unique_id",
        ],
        target_path=Path(project.target_path),
        raise_on_error=False,
    )
    found = []
    # dagster-dbt echoes every event of the invocation to stdout: the node list is data
    # here, not something the operator should read among the run's output
    with contextlib.redirect_stdout(io.StringIO()):
        for event in invocation.stream_raw_events():
            if event.raw_event["info"]["name"] == "PrintEvent":
                try:
                    found.append(json.loads(event.raw_event["data"]["msg"])["unique_id"])
                except (ValueError, KeyError, TypeError):
                    continue
    if not invocation.is_successful():
        raise dg.Failure("dbt could not compare the project with the last build's state")
    return found


@dataclass(frozen=True)
class ProjectIndex:
    """dbt's manifest with each node's asset key and each test's check key."""

    manifest: Mapping[str, Any]
    graph: Graph
    keys: Mapping[str, dg.AssetKey]  # unique_id -> asset key, for models, seeds, snapshots
    check_keys: Mapping[str, dg.AssetCheckKey]  # test unique_id -> check key

    @classmethod
    def load(cls, project: DbtProject) -> "ProjectIndex":
        """The index of the project's manifest (``project.manifest_path``)."""
        manifest = json.loads(project.manifest_path.read_text())
        graph = Graph.from_manifest(manifest)
        t = translator()
        keys = {uid: t.get_asset_spec(manifest, uid, project).key for uid in graph.nodes}
        return cls(manifest, graph, keys, _check_keys(manifest, project))


@dataclass(frozen=True)
class IncrementalBuild:
    """What an incremental build must run: these dbt nodes (with their tests and checks),
    from scratch or not, and why."""

    unique_ids: frozenset[str]
    keys: tuple[dg.AssetKey, ...]
    full_refresh: bool
    description: str


def plan_incremental_build(
    project: DbtProject,
    warehouse: WarehouseSettings,
    required: Sequence[str] = (),
    request: "BuildRequest | None" = None,
) -> IncrementalBuild:
    """The dbt nodes the warehouse does not hold current (``build_state.plan_build``), with
    everything downstream, those with a test or a ``required`` check that has no verdict on
    what they hold now, and, when the project's files changed, what dbt's
    ``state:modified+`` selects (``dbt ls`` against the recorded state)."""
    request = request or BuildRequest()
    index = ProjectIndex.load(project)
    graph = index.graph
    state = BuildState.load(state_folder(warehouse.warehouse_path))
    fingerprint = project_fingerprint(
        Path(project.project_dir), request.dbt_vars, version("dbt-core")
    )
    with duckdb.connect(str(warehouse.warehouse_path), read_only=True) as con:
        facts = read_facts(con)
        verdicts = read_verdicts(con)
    plan = plan_build(graph, state, facts, fingerprint)
    plan = _with_unjudged_tests(plan, graph, facts, verdicts, index.check_keys)
    plan = _with_unjudged_checks(plan, index, facts, verdicts, required)
    if plan.everything:
        build = set(graph.nodes)
        return IncrementalBuild(frozenset(build), _keys(index, build), True, _describe(plan, []))
    modified: list[str] = []
    if plan.code_changed:
        with warehouse_env(warehouse):
            modified = modified_nodes(dbt_resource(project), project, state)
    build = set(plan.dirty) | graph.descendants(plan.dirty) | set(modified)
    recoded = set(modified) | graph.descendants(modified)
    full_refresh = (
        request.full_refresh
        or plan.full_refresh
        or any(graph.nodes[u].materialized == "incremental" for u in recoded if u in graph.nodes)
    )
    build = {u for u in build if u in graph.nodes}
    description = _describe(plan, modified) if build else "dbt: every model is current"
    return IncrementalBuild(frozenset(build), _keys(index, build), full_refresh, description)


def _keys(index: ProjectIndex, unique_ids: set[str]) -> tuple[dg.AssetKey, ...]:
    return tuple(sorted((index.keys[u] for u in unique_ids), key=lambda k: k.to_user_string()))


def _with_unjudged_checks(
    plan: Plan,
    index: ProjectIndex,
    facts,
    verdicts: Mapping[str, Verdict],
    required: Sequence[str],
) -> Plan:
    """The plan, with every dbt node that a ``required`` check (a Great Expectations suite,
    the row accounting) has no current verdict on made dirty: its check runs with it."""
    if plan.everything or not required:
        return plan
    identities = relation_identities(index.graph, facts)
    by_key = {key.to_user_string(): uid for uid, key in index.keys.items()}
    dirty = dict(plan.dirty)
    for check in required:
        asset = check.rsplit(":", 1)[0]
        unique_id = by_key.get(asset)
        if unique_id is None or unique_id in dirty:
            continue
        found = verdicts.get(check)
        if found is None or not found.is_current(identities):
            dirty[unique_id] = (
                f"its check {check.rsplit(':', 1)[1]} has no verdict on what it holds"
            )
    return Plan(plan.everything, plan.full_refresh, plan.code_changed, dirty)


# -- the dbt asset -----------------------------------------------------------------------


def dbt_build_assets(
    project: DbtProject,
    warehouse: WarehouseSettings,
    freshness: dg.FreshnessPolicy | None = None,
) -> dg.AssetsDefinition:
    """The whole dbt project as one multi-asset, in the warehouse writers' pool."""

    @dbt_assets(
        # the manifest's contents, not its path: dagster-dbt caches a path's manifest for the
        # life of the process, which would describe the project as it was when first read
        manifest=json.loads(project.manifest_path.read_text()),
        project=project,
        dagster_dbt_translator=translator(freshness),
        name="dbt_build",
        pool=WRITER_POOL,
    )
    def dbt_build(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        """``dbt build`` of what the run asks for (all, or only what is not current, or the
        hand-picked subset), then the record of what it built and verified."""
        yield from _BuildStep(context, dbt, project, warehouse).run()

    return dbt_build


class _BuildStep:
    """One execution of the dbt asset."""

    def __init__(
        self,
        context: AssetExecutionContext,
        dbt: DbtCliResource,
        project: DbtProject,
        warehouse: WarehouseSettings,
    ) -> None:
        self.context = context
        self.dbt = dbt
        self.project = project
        self.warehouse = warehouse
        self.request = BuildRequest.from_tags(context.run.tags)
        index = ProjectIndex.load(project)
        self.manifest = index.manifest
        self.graph = index.graph
        self.keys = index.keys
        self.check_keys = index.check_keys
        self.state = BuildState.load(state_folder(warehouse.warehouse_path))
        self.fingerprint = project_fingerprint(
            Path(project.project_dir), self.request.dbt_vars, version("dbt-core")
        )
        self.selected = {
            uid for uid, key in self.keys.items() if key in context.selected_asset_keys
        }
        self.subset = self.selected != set(self.graph.nodes)

    def run(self) -> Iterator[Any]:
        with duckdb.connect(str(self.warehouse.warehouse_path)) as con:
            loads = pending_loads(con)
            changing = pending_loads(con, changing=True)
        args = ["build", *(["--full-refresh"] if self.request.full_refresh else [])]
        if self.request.planned and self.fingerprint == self.state.fingerprint:
            args += ["--exclude", "test_type:unit"]  # no code changed: nothing to unit test
        args += _vars_args(self.request)
        with (
            warehouse_env(self.warehouse),
            _dbt_console(self.context.run.tags.get(DBT_LOG_TAG), self.context),
        ):
            invocation = self.dbt.cli(
                args,
                context=self.context,
                target_path=Path(self.project.target_path),
                raise_on_error=False,
            )
            events = list(invocation.stream())
            success = invocation.is_successful()
        run_results = _artifact(invocation, "run_results.json")
        outcomes = [
            NodeOutcome(r["unique_id"], str(r["status"])) for r in run_results.get("results", [])
        ]
        built_manifest = _artifact(invocation, "manifest.json") or self.manifest
        with duckdb.connect(str(self.warehouse.warehouse_path)) as con:
            after = read_facts(con)
            # A build of everything it was asked for that succeeded moves the whole state on:
            # the whole project, or the subset an incremental plan chose.
            complete = success and (self.request.planned or not self.subset) and bool(outcomes)
            record_build(
                self.state, self.graph, built_manifest, outcomes, after, self.fingerprint, complete
            )
            record_verdicts(con, self._test_verdicts(run_results, after))
            record_loads(con, consumed_loads(self.graph, loads, changing, outcomes))
            row_counts = _row_counts(con, self.graph, {o.unique_id for o in outcomes})
        identities = relation_identities(self.graph, after)
        checks = _check_events(events, _messages(run_results))
        for unique_id in self.graph.topological():  # Dagster wants parents' outputs first
            for event in events:
                if isinstance(event, dg.Output) and self._unique_id(event) == unique_id:
                    metadata: dict[str, Any] = dict(event.metadata)
                    if unique_id in row_counts:
                        metadata["dagster/row_count"] = row_counts[unique_id]
                    metadata[IDENTITY_METADATA] = identities.get(unique_id, "unbuilt")
                    yield dg.Output(None, event.output_name, metadata=metadata)
                    key = self.keys[unique_id]
                    mine = sorted((k for k in checks if k.asset_key == key), key=str)
                    yield from (checks.pop(k) for k in mine)
        yield from checks.values()  # checks of assets outside the models (tests of sources)
        for event in events:  # tests dbt ran on models outside this selection
            if isinstance(event, dg.AssetObservation):
                yield event
        if not success:
            raise dg.Failure(_failure_line(run_results, invocation))

    def _unique_id(self, output: dg.Output) -> str | None:
        unique_id = output.metadata.get("unique_id")
        return str(getattr(unique_id, "value", unique_id)) if unique_id is not None else None

    def _test_verdicts(self, run_results: Mapping[str, Any], facts) -> list[Verdict]:
        identities = relation_identities(self.graph, facts)
        verdicts = []
        for result in run_results.get("results", []):
            unique_id = result["unique_id"]
            check = self.check_keys.get(unique_id)
            status = str(result["status"])
            if check is None or status == "skipped":
                continue
            verdicts.append(
                verdict(
                    check.to_user_string(),
                    check.asset_key.to_user_string(),
                    [self.graph.ref_of(p) for p in self.graph.tests.get(unique_id, ())],
                    identities,
                    passed=status in ("pass", "warn"),
                    severity="WARN"
                    if status == "warn"
                    else _test_severity(self.manifest, unique_id),
                    description=_test_description(result),
                    run_id=self.context.run_id,
                )
            )
        return verdicts


def _with_unjudged_tests(
    plan: Plan,
    graph: Graph,
    facts,
    verdicts: Mapping[str, Verdict],
    check_keys: Mapping[str, dg.AssetCheckKey],
) -> Plan:
    """The plan, with every node that has a test without a current verdict made dirty (a
    test added, or a ledger lost): a check that never ran is run, never assumed."""
    if plan.everything:
        return plan
    identities = relation_identities(graph, facts)
    dirty = dict(plan.dirty)
    for test_id, parents in graph.tests.items():
        check = check_keys.get(test_id)
        if check is None:
            continue
        found = verdicts.get(check.to_user_string())
        if found is not None and found.is_current(identities):
            continue
        for parent in parents:
            if parent in graph.nodes and parent not in dirty:
                dirty[parent] = f"its test {check.name} has no verdict on what it holds"
    return Plan(plan.everything, plan.full_refresh, plan.code_changed, dirty)


def _describe(plan: Plan, modified: Sequence[str]) -> str:
    if plan.everything:
        return "dbt: no recorded build state, building every node from scratch"
    reasons: dict[str, int] = {}
    for reason in plan.dirty.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    parts = [f"{count} nodes: {reason}" for reason, count in sorted(reasons.items())]
    if plan.code_changed:
        parts.append(f"{len(modified)} nodes with changed code or downstream of it")
    return "dbt: building " + "; ".join(parts) + ", with everything downstream"


def _check_keys(manifest: Mapping[str, Any], project: DbtProject) -> dict[str, dg.AssetCheckKey]:
    """Each dbt test's asset check key."""
    t = translator()
    keys: dict[str, dg.AssetCheckKey] = {}
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] != "test":
            continue
        attached = node.get("attached_node") or next(iter(node["depends_on"]["nodes"]), None)
        if attached is None or attached not in manifest["nodes"]:
            continue
        spec = t.get_asset_check_spec(
            t.get_asset_spec(manifest, attached, project), manifest, unique_id, project
        )
        if spec is not None:
            keys[unique_id] = spec.key
    return keys


def _test_severity(manifest: Mapping[str, Any], unique_id: str) -> str:
    severity = manifest["nodes"][unique_id].get("config", {}).get("severity") or "error"
    return "ERROR" if str(severity).lower() == "error" else "WARN"


def _test_description(result: Mapping[str, Any]) -> str:
    status = str(result["status"])
    message = (result.get("message") or "").strip()
    if status == "pass":
        return "passed"
    return message or status


def consumed_loads(
    graph: Graph,
    loads: Mapping[str, list[str]],
    changing: Mapping[str, list[str]],
    outcomes: Sequence[NodeOutcome],
) -> dict[str, list[str]]:
    """The loads a build consumed: every load that changed nothing, and those of each raw
    table every node downstream of which it built (a node that failed, or was not in the
    run, still has to see them)."""
    built = {o.unique_id for o in outcomes if o.status == "success"}
    consumed = {}
    for table, table_loads in loads.items():
        sources = [uid for uid, ref in graph.sources.items() if ref == RAW_PREFIX + table]
        if graph.descendants(sources) <= built:
            consumed[table] = table_loads
        else:
            idle = [load for load in table_loads if load not in changing.get(table, [])]
            if idle:
                consumed[table] = idle
    return consumed


def _messages(run_results: Mapping[str, Any]) -> dict[str, str]:
    """dbt's message of each test that did not pass, by unique id ("Got 3 results, ...")."""
    return {
        r["unique_id"]: _test_description(r)
        for r in run_results.get("results", [])
        if str(r["status"]) not in ("pass", "success")
    }


def _check_events(
    events: Sequence[Any], messages: Mapping[str, str]
) -> dict[dg.AssetCheckKey, dg.AssetCheckResult]:
    """dbt's check results by key, a failed one described with dbt's message."""
    found = {}
    for event in events:
        if not isinstance(event, dg.AssetCheckResult):
            continue
        unique_id = event.metadata.get("unique_id")
        message = messages.get(str(getattr(unique_id, "value", unique_id)))
        if message and not event.description:
            event = dg.AssetCheckResult(
                asset_key=event.asset_key,
                check_name=event.check_name,
                passed=event.passed,
                severity=event.severity,
                metadata=event.metadata,
                description=message,
            )
        found[dg.AssetCheckKey(event.asset_key, event.check_name)] = event  # type: ignore[arg-type]
    return found


def _row_counts(con: duckdb.DuckDBPyConnection, graph: Graph, built: set[str]) -> dict[str, int]:
    """Rows of every table, seed and snapshot ``built`` (a view's count would run it)."""
    counts = {}
    for unique_id in built:
        node = graph.nodes.get(unique_id)
        if node is None or node.materialized in ("view", "ephemeral"):
            continue
        try:
            ((rows,),) = con.execute(f"select count(*) from {node.relation}").fetchall()
        except duckdb.Error:
            continue
        counts[unique_id] = int(rows)
    return counts


def _artifact(invocation: Any, name: str) -> dict[str, Any]:
    try:
        return invocation.get_artifact(name)
    except (OSError, ValueError):
        return {}


def _failure_line(run_results: Mapping[str, Any], invocation: Any) -> str:
    """One line: how many nodes failed and the first one's reason."""
    failed = [r for r in run_results.get("results", []) if str(r["status"]) in ("error", "fail")]
    if not failed:
        error = invocation.get_error()
        return f"dbt failed before building anything: {str(error).splitlines()[0] if error else 'see logs/dbt.log'}"
    first = failed[0]
    message = (first.get("message") or str(first["status"])).strip().splitlines()[0]
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    return f"dbt: {first['unique_id']} {first['status']}: {message}{more}"


@contextmanager
def _dbt_console(log_path: str | None, context: AssetExecutionContext) -> Iterator[None]:
    """dagster-dbt echoes every dbt log line to stdout; with a log file named, append them
    there instead (the step's own logs still go to Dagster's event log)."""
    if not log_path:
        yield
        return
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log, redirect_stdout(log):
        print(f"== dbt in run {context.run_id} ({context.job_name}) ==", flush=True)
        yield


# -- the relations other definitions need ------------------------------------------------------


def model_relations(project: DbtProject, prefix: str) -> dict[str, ModelRelation]:
    """Every model named ``<prefix><name>``, by ``<name>``: its asset key, the relation dbt
    builds it into and its unique id."""
    manifest = json.loads(project.manifest_path.read_text())
    t = translator()
    models = {}
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] == "model" and node["name"].startswith(prefix):
            key = t.get_asset_spec(manifest, unique_id, project).key
            models[node["name"].removeprefix(prefix)] = ModelRelation(
                node["name"], key, node["schema"], node.get("alias") or node["name"], unique_id
            )
    return models


def mart_relations(project: DbtProject) -> dict[str, ModelRelation]:
    """Every ``mart_*`` model, by its full name."""
    return {relation.name: relation for relation in model_relations(project, "mart_").values()}


def staging_relations(project: DbtProject) -> dict[str, ModelRelation]:
    """The staging model of each platform table, by table name."""
    return model_relations(project, "stg_platform__")


def served_model_keys(project: DbtProject) -> list[dg.AssetKey]:
    """The asset keys of every model the serving stage publishes (marts, dims, facts)."""
    manifest = json.loads(project.manifest_path.read_text())
    t = translator()
    return sorted(
        (
            t.get_asset_spec(manifest, unique_id, project).key
            for unique_id, node in manifest["nodes"].items()
            if node["resource_type"] == "model"
            and is_served_name(node.get("alias") or node["name"])
            and node.get("config", {}).get("enabled", True)
        ),
        key=lambda key: key.to_user_string(),
    )


def dbt_asset_keys(definitions: dg.Definitions, select: str) -> list[dg.AssetKey]:
    """The dbt models, seeds and snapshots a dbt selection string selects."""
    (dbt,) = [
        a
        for a in definitions.assets or []
        if isinstance(a, dg.AssetsDefinition) and a.node_def.name == "dbt_build"
    ]
    selection = build_dbt_asset_selection([dbt], dbt_select=select)
    return sorted(selection.resolve([dbt]), key=lambda key: key.to_user_string())


def build_defs(
    warehouse: WarehouseSettings,
    target_dir: Path,
    project_dir: Path = DBT_PROJECT_DIR,
    freshness: dg.FreshnessPolicy | None = None,
) -> tuple[dg.Definitions, dict[str, ModelRelation], dict[str, ModelRelation]]:
    """The dbt assets (the marts held to ``freshness``), the marts they build and the staging
    models of the platform tables (for the quality checks and the jobs)."""
    project = dbt_project(target_dir, project_dir)
    ensure_manifest(project, warehouse)
    defs = dg.Definitions(
        assets=[dbt_build_assets(project, warehouse, freshness)],
        resources={"dbt": dbt_resource(project)},
    )
    return defs, mart_relations(project), staging_relations(project)
