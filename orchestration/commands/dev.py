"""``warehouse dev``: the Dagster UI (``dagster dev``) on this project, DAGSTER_HOME prepared."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Annotated

import typer

from orchestration.commands.common import SourceOption, WarehouseOption, console


def dev(
    source: SourceOption = None,
    warehouse: WarehouseOption = None,
    port: Annotated[int, typer.Option(help="Port of the Dagster UI.")] = 3000,
) -> None:
    """Start `dagster dev` (UI and daemon: schedules, sensors, run queue) on workspace.yaml."""
    from ingestion.settings import PROJECT_ROOT
    from orchestration.config import OrchestrationSettings
    from orchestration.instance import prepare_dagster_home

    # The Dagster processes read the same WAREHOUSE_* settings as every other stage.
    if source:
        os.environ["WAREHOUSE_SOURCE_URL"] = source
    if warehouse:
        os.environ["WAREHOUSE_PATH"] = str(warehouse)
    home = prepare_dagster_home(OrchestrationSettings())
    executable = shutil.which("dagster") or os.path.join(os.path.dirname(sys.executable), "dagster")
    console.print(f"DAGSTER_HOME={home}; the UI will be on http://127.0.0.1:{port}")
    os.chdir(PROJECT_ROOT)
    os.execv(
        executable,
        [executable, "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-p", str(port)],
    )
