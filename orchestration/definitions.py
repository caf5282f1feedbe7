"""The Dagster code location: merges ``orchestration.defs.*`` and nothing else.

``dagster dev`` (via ``workspace.yaml``) and ``warehouse run`` both load ``defs``; tests
call :func:`build_definitions` with their own settings. Settings are resolved when the
definitions load, never at import.
"""

import dagster as dg

from ingestion.settings import WarehouseSettings
from orchestration.config import OrchestrationSettings
from orchestration.defs import automation, ingestion, quality, serving, transform
from orchestration.defs.quality import RECONCILIATION
from orchestration.keys import raw_key
from orchestration.serving.settings import ServingSettings


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
    transform_defs, marts, staging = transform.build_defs(
        warehouse, orchestration.dbt_target_dir, orchestration.dbt_column_lineage
    )
    ingestion_defs = ingestion.build_defs(warehouse)
    reconciliation = [
        dg.AssetCheckKey(raw_key(name), RECONCILIATION) for name in ingestion.extracted_tables()
    ]
    served = transform.served_model_keys(transform.dbt_project(orchestration.dbt_target_dir))
    return dg.Definitions.merge(
        ingestion_defs,
        transform_defs,
        quality.build_defs(warehouse, orchestration, marts, staging),
        serving.build_defs(served, serving_settings),
        automation.build_defs(orchestration, reconciliation),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location ``dagster dev`` and ``warehouse run`` load."""
    return build_definitions()
