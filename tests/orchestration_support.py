"""Helpers for the orchestration tests: settings under tmp_path and the definitions built once.

Every test that loads the Dagster definitions shares one xdist group, so the dbt project is
parsed once per session (into a tmp folder: nothing is written into the working tree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from ingestion.settings import WarehouseSettings
from orchestration.config import OrchestrationSettings

XDIST_GROUP = "orchestration"
PII_KEY = "orchestration-test-key"
_DBT_TARGET: list[Path] = []
_CACHE: dict[str, Any] = {}


def once(key: str, make: Callable[[], Any]) -> Any:
    """``make()`` the first time in this test process, its result afterwards (the expensive
    fixtures survive pytest re-running a session fixture when a worker's queue runs dry)."""
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def dbt_target_dir(factory) -> Path:
    """One dbt artefacts folder per test process, so the project is parsed once."""
    if not _DBT_TARGET:
        _DBT_TARGET.append(factory.mktemp("dbt_target"))
    return _DBT_TARGET[0]


def warehouse_settings(root: Path, source_url: str | None = None) -> WarehouseSettings:
    """Source (default: the demo SQLite file) and warehouse under ``root``."""
    return WarehouseSettings(data_dir=root / "data", source_url=source_url, pii_key=PII_KEY)


def orchestration_settings(
    root: Path, dbt_target: Path, **overrides: object
) -> OrchestrationSettings:
    """Every file the orchestration writes goes under ``root`` (the dbt artefacts to ``dbt_target``)."""
    values: dict[str, object] = {
        "alert_log": root / "alerts.jsonl",
        "gx_site_dir": root / "gx_site",
        "dbt_target_dir": dbt_target,
        "dagster_home": root / "dagster_home",
        "timezone": "Europe/Berlin",
    }
    values.update(overrides)
    return OrchestrationSettings(**values)  # type: ignore[arg-type]


def build(
    root: Path, dbt_target: Path, **overrides: object
) -> tuple[dg.Definitions, WarehouseSettings, OrchestrationSettings]:
    """The real definitions bound to settings under ``root``."""
    from orchestration.definitions import build_definitions

    warehouse = warehouse_settings(root)
    orchestration = orchestration_settings(root, dbt_target, **overrides)
    return build_definitions(warehouse, orchestration), warehouse, orchestration


@dataclass
class Transformed:
    """What one `warehouse transform` run did, as the tests read it."""

    summary: Any

    @property
    def success(self) -> bool:
        return bool(self.summary.success)

    @property
    def skipped(self) -> bool:
        """Nothing was built: every model was current."""
        return not self.summary.run_id

    @property
    def built(self) -> set[str]:
        """The dbt nodes (by name) the run rebuilt."""
        return {asset.split("/")[-1] for asset in self.summary.materialized}

    @property
    def failures(self) -> list[str]:
        """Each failed check and the failed step, one line each."""
        lines = [f"{c.asset} {c.check}: {c.description}" for c in self.summary.checks_failed]
        return [*lines, *([self.summary.failure] if self.summary.failure else [])]


def transform(
    settings: WarehouseSettings,
    dbt_target: Path,
    project_dir: Path | None = None,
    **options: Any,
) -> Transformed:
    """`warehouse transform` as the CLI runs it (the Dagster transform job, in this process, on
    an ephemeral instance), every artefact under the warehouse's data folder. ``project_dir``:
    a copy of the dbt project to build instead of the repository's; ``options``:
    ``incremental``, ``full_refresh``, ``as_of`` or ``select`` (a dbt selection string)."""
    from orchestration.definitions import build_definitions
    from orchestration.defs.transform import dbt_asset_keys
    from orchestration.runner import run_transform

    root = settings.data_dir
    extra = {"dbt_project_dir": project_dir} if project_dir else {}
    orchestration = orchestration_settings(root, dbt_target, **extra)
    definitions = build_definitions(settings, orchestration)
    select = options.pop("select", None)
    if select:
        options["selection"] = dbt_asset_keys(definitions, select)
    with dg.DagsterInstance.ephemeral() as instance:
        summary = run_transform(settings, orchestration, instance, definitions, **options)
    return Transformed(summary)
