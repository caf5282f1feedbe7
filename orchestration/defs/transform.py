"""Transform assets: the dbt project (sources, models, seeds, snapshots, tests).

dbt sources resolve to the dlt assets' keys (``raw/<table>``), so the graph runs
source -> raw -> staging -> intermediate -> marts without a gap. dbt tests load as
asset checks; models get their column schema from the manifest and, after a build,
row counts and column lineage (dagster-dbt waits for dbt to release the DuckDB file).
"""

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
from orchestration.config import FULL_REFRESH_TAG, WRITER_POOL
from orchestration.defs.quality import MartRelation
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


def ensure_manifest(project: DbtProject, warehouse: WarehouseSettings) -> Path:
    """``dbt parse`` when the manifest is missing or older than the project's files, so the
    definitions load on a fresh clone and never describe a stale project."""
    manifest = project.manifest_path
    if not manifest.exists() or _project_changed_since(manifest.stat().st_mtime):
        with warehouse_env(warehouse):
            DbtCliResource(project_dir=project).cli(
                ["parse", "--quiet"], target_path=project.target_path
            ).wait()
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
        """``dbt build`` of the selected models, seeds, snapshots and tests (full refresh on
        reconcile runs), with row counts and column lineage attached."""
        args = ["build"]
        if context.run.tags.get(FULL_REFRESH_TAG) == "true":
            args.append("--full-refresh")
        with warehouse_env(warehouse):
            # The parse's target folder: dbt re-parses only what changed (one writer at a time,
            # so runs never share it concurrently).
            invocation = dbt.cli(args, context=context, target_path=Path(project.target_path))
            events = invocation.stream().fetch_row_counts()
            if column_lineage:
                events = events.fetch_column_metadata()
            try:
                yield from events
            finally:
                release_duckdb()

    return dbt_build


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


def mart_relations(project: DbtProject) -> dict[str, MartRelation]:
    """Every ``mart_*`` model: its asset key and the relation dbt builds it into."""
    import json

    manifest = json.loads(project.manifest_path.read_text())
    t = translator()
    marts = {}
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] == "model" and node["name"].startswith("mart_"):
            key = t.get_asset_spec(manifest, unique_id, project).key
            marts[node["name"]] = MartRelation(
                node["name"], key, node["schema"], node.get("alias") or node["name"]
            )
    return marts


def served_model_keys(project: DbtProject) -> list[dg.AssetKey]:
    """The asset keys of every model the serving stage publishes (marts, dims, facts)."""
    import json

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
) -> tuple[dg.Definitions, dict[str, MartRelation]]:
    """The dbt assets and the marts they build (for the quality checks and the jobs)."""
    project = dbt_project(target_dir)
    ensure_manifest(project, warehouse)
    defs = dg.Definitions(
        assets=[dbt_build_assets(project, warehouse, column_lineage)],
        resources={"dbt": DbtCliResource(project_dir=project)},
    )
    return defs, mart_relations(project)
