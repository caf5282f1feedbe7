"""Helpers for the orchestration tests: settings under tmp_path and the definitions built once.

Every test that loads the Dagster definitions shares one xdist group, so the dbt project is
parsed once per session (into a tmp folder: nothing is written into the working tree).
"""

from __future__ import annotations

from collections.abc import Callable
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
