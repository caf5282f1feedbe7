"""The Dagster code location: merges ``orchestration.defs.*`` and nothing else.

``dagster dev`` (via ``workspace.yaml``) and ``warehouse run`` both load ``defs``; tests
call :func:`build_definitions` with their own settings. Settings are resolved when the
definitions load, never at import.
"""

import dagster as dg

from ingestion.settings import WarehouseSettings
from orchestration.config import OrchestrationSettings
from orchestration.defs import automation, ingestion, quality, transform
from orchestration.defs.quality import RECONCILIATION
from orchestration.keys import raw_key


def build_definitions(
    warehouse: WarehouseSettings | None = None,
    orchestration: OrchestrationSettings | None = None,
) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor of the warehouse, bound to the settings."""
    warehouse = warehouse or WarehouseSettings()
    orchestration = orchestration or OrchestrationSettings()
    transform_defs, marts = transform.build_defs(
        warehouse, orchestration.dbt_target_dir, orchestration.dbt_column_lineage
    )
    ingestion_defs = ingestion.build_defs(warehouse)
    reconciliation = [
        dg.AssetCheckKey(raw_key(name), RECONCILIATION) for name in ingestion.extracted_tables()
    ]
    return dg.Definitions.merge(
        ingestion_defs,
        transform_defs,
        quality.build_defs(warehouse, orchestration, marts),
        automation.build_defs(orchestration, reconciliation, quality.mart_check_keys(marts)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location ``dagster dev`` and ``warehouse run`` load."""
    return build_definitions()
