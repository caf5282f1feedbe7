"""The Dagster code location: merges ``orchestration.defs.*`` and nothing else.

``dagster dev`` (via ``workspace.yaml``) and ``warehouse run`` both load ``defs``; tests
call :func:`build_definitions` with their own settings. Settings are resolved when the
definitions load, never at import.
"""

from collections.abc import Iterable
from datetime import timedelta

import dagster as dg

from ingestion.settings import WarehouseSettings
from orchestration.check_ledger import GateVerdict, gate
from orchestration.config import OrchestrationSettings
from orchestration.defs import automation, ingestion, quality, serving, transform
from orchestration.defs.quality import RAW_SUITE, RECONCILIATION
from orchestration.keys import raw_key
from serving.settings import ServingSettings


def required_checks(definitions: Iterable[dg.Definitions]) -> list[str]:
    """The checks every publication needs a current, passing verdict from: each blocking
    check, but reconciliation, which judges the source and runs nightly only."""
    specs: list[dg.AssetCheckSpec] = []
    for defs in definitions:
        for asset in defs.assets or []:
            if isinstance(asset, dg.AssetsDefinition):
                specs += asset.check_specs
        for checks in defs.asset_checks or []:
            specs += checks.check_specs
    return sorted(
        spec.key.to_user_string() for spec in specs if spec.blocking and spec.name != RECONCILIATION
    )


def build_definitions(
    warehouse: WarehouseSettings | None = None,
    orchestration: OrchestrationSettings | None = None,
    serving_settings: ServingSettings | None = None,
) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor of the warehouse, bound to the settings.

    The serving settings default to the environment's, with the warehouse's data folder
    and the orchestration's dbt artefacts (so the serving file sits beside the warehouse).
    """
    warehouse = warehouse or WarehouseSettings()
    orchestration = orchestration or OrchestrationSettings()
    serving_settings = serving_settings or ServingSettings(
        data_dir=warehouse.data_dir, dbt_target_dir=orchestration.dbt_target_dir
    )
    # The freshness SLA, in the UI's asset health as in `warehouse status`: each raw table
    # must have landed and each mart been built within it (a warning at three quarters).
    sla = timedelta(hours=orchestration.freshness_sla_hours)
    freshness = dg.FreshnessPolicy.time_window(fail_window=sla, warn_window=sla * 0.75)
    transform_defs, marts, staging = transform.build_defs(
        warehouse, orchestration.dbt_target_dir, orchestration.dbt_project_dir, freshness
    )
    project = transform.dbt_project(orchestration.dbt_target_dir, orchestration.dbt_project_dir)
    ingestion_defs = ingestion.build_defs(warehouse, freshness)
    quality_defs = quality.build_defs(
        warehouse, orchestration, marts, staging, project.manifest_path
    )
    tables = ingestion.extracted_tables()
    reconciliation = [dg.AssetCheckKey(raw_key(name), RECONCILIATION) for name in tables]
    raw_suites = [dg.AssetCheckKey(raw_key(name), RAW_SUITE) for name in tables]
    (dbt,) = [a for a in transform_defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    served = transform.served_model_keys(project)
    required = required_checks([transform_defs, quality_defs])
    land = sorted(
        (
            k
            for a in ingestion_defs.assets or []
            if isinstance(a, dg.AssetsDefinition)
            for k in a.keys
        ),
        key=lambda key: key.to_user_string(),
    )

    def decide() -> automation.BuildDecision:
        return automation.decide_build(
            required, dbt.keys, warehouse, orchestration, serving_settings
        )

    return dg.Definitions.merge(
        ingestion_defs,
        transform_defs,
        quality_defs,
        serving.build_defs(served, serving_settings, required, project.manifest_path),
        automation.build_defs(orchestration, reconciliation, dbt, raw_suites, land, decide),
    )


def publication_gate(
    warehouse: WarehouseSettings, orchestration: OrchestrationSettings
) -> GateVerdict:
    """The gate ``warehouse publish`` asks: the publish step's, on the same required checks."""
    transform_defs, marts, staging = transform.build_defs(
        warehouse, orchestration.dbt_target_dir, orchestration.dbt_project_dir
    )
    manifest = transform.dbt_project(
        orchestration.dbt_target_dir, orchestration.dbt_project_dir
    ).manifest_path
    quality_defs = quality.build_defs(warehouse, orchestration, marts, staging, manifest)
    required = required_checks([transform_defs, quality_defs])
    return gate(warehouse.warehouse_path, manifest, required)


@dg.definitions
def defs() -> dg.Definitions:
    """The code location ``dagster dev`` and ``warehouse run`` load."""
    return build_definitions()
