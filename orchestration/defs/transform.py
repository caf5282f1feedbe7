"""Transform assets: the dbt project (sources, models, seeds, snapshots, tests).

dbt sources resolve to the dlt assets' keys (``raw/<table>``), so the graph runs
source -> raw -> staging -> intermediate -> marts without a gap. dbt tests load as
asset checks; models get their column schema from the manifest and, after a build,
row counts and column lineage (dagster-dbt waits for dbt to release the DuckDB file).
"""

import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from ingestion.settings import PROJECT_ROOT, WarehouseSettings
from orchestration.config import (
    DBT_LOG_TAG,
    EXTRACT_MODE_TAG,
    FULL_REFRESH_TAG,
    REBUILT_METADATA,
    WRITER_POOL,
)
from orchestration.dbt_plan import (
    IncrementalPlan,
    incremental_plan,
    modified_nodes,
    record_checksums,
    recorded_checksums,
)
from orchestration.defs.quality import ModelRelation
from orchestration.keys import raw_key

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
_ENV_LOCK = threading.Lock()


class WarehouseDbtTranslator(DagsterDbtTranslator):
    """dbt sources become ``raw/<table>``; models are grouped by layer (staging, marts, ...)."""

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
        return spec.replace_attributes(group_name=layer)


def translator() -> WarehouseDbtTranslator:
    """The translator with dbt tests as asset checks."""
    return WarehouseDbtTranslator(
        settings=DagsterDbtTranslatorSettings(
            enable_asset_checks=True, enable_code_references=False
        )
    )


def dbt_project(target_dir: Path) -> DbtProject:
    """The project, its artefacts under ``target_dir`` (git-ignored, or a test's tmp_path)."""
    return DbtProject(
        project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=target_dir
    )


def _project_changed_since(moment: float) -> bool:
    """Whether any file of the dbt project (models, macros, seeds, config) is newer."""
    for folder in ("models", "macros", "seeds", "snapshots", "tests"):
        for path in (DBT_PROJECT_DIR / folder).rglob("*"):
            if path.is_file() and path.stat().st_mtime > moment:
                return True
    return any(
        (DBT_PROJECT_DIR / name).stat().st_mtime > moment
        for name in ("dbt_project.yml", "profiles.yml")
        if (DBT_PROJECT_DIR / name).exists()
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
    if not manifest.exists() or _project_changed_since(manifest.stat().st_mtime):
        with warehouse_env(warehouse):
            dbt_resource(project).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project.manifest_path


@contextmanager
def warehouse_env(warehouse: WarehouseSettings) -> Iterator[None]:
    """Point dbt's profile (``WAREHOUSE_PATH``) at this run's warehouse for one invocation."""
    with _ENV_LOCK:
        previous = os.environ.get("WAREHOUSE_PATH")
        os.environ["WAREHOUSE_PATH"] = str(warehouse.warehouse_path)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("WAREHOUSE_PATH", None)
            else:
                os.environ["WAREHOUSE_PATH"] = previous


def dbt_build_assets(
    project: DbtProject, warehouse: WarehouseSettings, column_lineage: bool = True
) -> dg.AssetsDefinition:
    """The whole dbt project as one multi-asset, in the warehouse writers' pool."""

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=translator(),
        name="dbt_build",
        pool=WRITER_POOL,
    )
    def dbt_build(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        """``dbt build`` of the selected models, seeds, snapshots and tests, with row counts
        and column lineage attached: on reconcile runs a full refresh; in the incremental
        job only what changed since the last build (the rest is reported current); any
        other run (a materialization asked for in the UI) builds what it selected."""
        from orchestration.transformation import has_transformed, pending_loads, record_loads

        full_refresh = context.run.tags.get(FULL_REFRESH_TAG) == "true"
        hourly = context.run.tags.get(EXTRACT_MODE_TAG) == "incremental"
        args = ["build", *(["--full-refresh"] if full_refresh else [])]
        pending = pending_loads(warehouse.warehouse_path)
        manifest = json.loads(project.manifest_path.read_text())
        plan: IncrementalPlan | None = None
        if hourly and not full_refresh and has_transformed(warehouse.warehouse_path):
            changed = sorted(t for t, (_, any_change) in pending.items() if any_change)
            modified = modified_nodes(manifest, recorded_checksums(warehouse.warehouse_path))
            plan = incremental_plan(manifest, changed, modified)
            # One value: dagster-dbt reads a single argument after --exclude.
            args += ["--exclude", " ".join([*plan.excluded, "test_type:unit"])]
            if plan.full_refresh:
                args.append("--full-refresh")
            context.log.info(
                f"Incremental build: loads changed {', '.join(changed) or 'no table'}; "
                f"{len(plan.modified)} nodes' code changed; building {len(plan.built)} of "
                f"{len(plan.built) + len(plan.current)} models, snapshots and seeds"
            )
        current = _CurrentOutputs(context, manifest, project, plan) if plan else None
        with warehouse_env(warehouse), _dbt_console(context.run.tags.get(DBT_LOG_TAG), context):
            # The parse's target folder: dbt re-parses only what changed (one writer at a time,
            # so runs never share it concurrently).
            invocation = dbt.cli(args, context=context, target_path=Path(project.target_path))
            events = invocation.stream().fetch_row_counts()
            if column_lineage:
                events = events.fetch_column_metadata()
            try:
                for event in events:
                    if current is not None and isinstance(event, dg.Output):
                        yield from current.before(event.output_name)
                    yield event
            finally:
                release_duckdb()
        if not invocation.is_successful():
            return
        if current is not None:
            yield from current.remaining()
        # Only a build of the whole project (the jobs) consumes the loads and the code: after
        # a hand-launched materialization of a few models, the rest still has to see them.
        if set(context.selected_asset_keys) >= set(dbt_build.keys):  # the unsubsetted asset
            record_loads(
                warehouse.warehouse_path, {table: loads for table, (loads, _) in pending.items()}
            )
            record_checksums(warehouse.warehouse_path, manifest)

    return dbt_build


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


class _CurrentOutputs:
    """An output for each selected model an incremental build leaves as it was: nothing it
    reads changed, so its table is current. Marked ``warehouse/rebuilt = false`` (rebuilt
    models carry dbt's own metadata), so the checks and the publication downstream run on
    the current tables instead of being skipped. Dagster wants a multi-asset's outputs in
    topological order: each goes out just before the first rebuilt model that reads it, the
    rest after the build."""

    def __init__(
        self,
        context: AssetExecutionContext,
        manifest: Mapping[str, Any],
        project: DbtProject,
        plan: IncrementalPlan,
    ):
        t = translator()
        self._context = context
        self._parents = manifest["parent_map"]
        self._unique_ids = {
            t.get_asset_spec(manifest, unique_id, project).key: unique_id
            for unique_id in plan.built | plan.current
        }
        self._current = {
            unique_id
            for key, unique_id in self._unique_ids.items()
            if unique_id in plan.current and key in context.selected_asset_keys
        }
        self._keys = {unique_id: key for key, unique_id in self._unique_ids.items()}
        self._done: set[str] = set()
        self._reason = "no load since the last build changed a table it reads" + (
            f" (changed: {', '.join(plan.changed_tables)})" if plan.changed_tables else ""
        )

    def before(self, output_name: str) -> Iterator[dg.Output]:
        """The current models ``output_name``'s model reads, ancestors first, not yet out."""
        key = self._context.assets_def.keys_by_output_name[output_name]
        unique_id = self._unique_ids.get(key)
        if unique_id is not None:
            yield from self._ancestors_first(self._parents.get(unique_id, []))
            self._done.add(unique_id)

    def remaining(self) -> Iterator[dg.Output]:
        """Every current model not out yet, ancestors first."""
        yield from self._ancestors_first(sorted(self._current))

    def _ancestors_first(self, unique_ids: list[str]) -> Iterator[dg.Output]:
        for unique_id in unique_ids:
            if unique_id in self._done or unique_id not in self._current:
                continue
            self._done.add(unique_id)
            yield from self._ancestors_first(self._parents.get(unique_id, []))
            yield dg.Output(
                None,
                output_name=self._context.assets_def.get_output_name_for_asset_key(
                    self._keys[unique_id]
                ),
                metadata={REBUILT_METADATA: False, "reason": self._reason},
            )


def release_duckdb() -> None:
    """Close the DuckDB database dagster-dbt's in-process adapter opened for row counts and
    column metadata, so the checks after this step can open the file read-only."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing cached in this process
        return
    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
        if environment is not None:
            environment.close()


def model_relations(project: DbtProject, prefix: str) -> dict[str, ModelRelation]:
    """Every model named ``<prefix><name>``, by ``<name>``: its asset key and the relation
    dbt builds it into."""
    manifest = json.loads(project.manifest_path.read_text())
    t = translator()
    models = {}
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] == "model" and node["name"].startswith(prefix):
            key = t.get_asset_spec(manifest, unique_id, project).key
            models[node["name"].removeprefix(prefix)] = ModelRelation(
                node["name"], key, node["schema"], node.get("alias") or node["name"]
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
    from orchestration.serving.catalog import is_served_name

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


def build_defs(
    warehouse: WarehouseSettings, target_dir: Path, column_lineage: bool = True
) -> tuple[dg.Definitions, dict[str, ModelRelation], dict[str, ModelRelation]]:
    """The dbt assets, the marts they build and the staging models of the platform tables
    (for the quality checks and the jobs)."""
    project = dbt_project(target_dir)
    ensure_manifest(project, warehouse)
    defs = dg.Definitions(
        assets=[dbt_build_assets(project, warehouse, column_lineage)],
        resources={"dbt": dbt_resource(project)},
    )
    return defs, mart_relations(project), staging_relations(project)
