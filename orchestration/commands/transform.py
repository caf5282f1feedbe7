"""``warehouse transform``: the dbt build (staging, star schema, marts) and its checks.

It runs the Dagster ``transform`` job in this process, the same dbt asset the hourly job
runs: one code path for the CLI, the schedule and the bench. The run is recorded in
DAGSTER_HOME, so it shows in the job's run history in the UI.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orchestration.commands.common import (
    SourceOption,
    WarehouseOption,
    build_settings,
    console,
    fail,
    progress_lines,
)


def transform(
    source: SourceOption = None,
    warehouse: WarehouseOption = None,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="Build only what the warehouse does not hold current: nodes whose code, "
            "inputs or tests changed since their last build, with everything downstream.",
        ),
    ] = False,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild incremental models from scratch.")
    ] = False,
    select: Annotated[
        list[str] | None,
        typer.Option(
            "--select", "-s", help="dbt node selection, e.g. marts.finance+ (repeatable)."
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The metrics' as-of time (ISO UTC). Default: the latest source timestamp in raw.",
        ),
    ] = None,
) -> None:
    """Run `dbt build` (seeds, snapshots, models, every dbt test) and the checks on the models,
    through the Dagster `transform` job."""
    import dagster as dg
    import duckdb

    from orchestration.commands.run import print_summary
    from orchestration.config import DBT_LOG_TAG, OrchestrationSettings
    from orchestration.definitions import build_definitions
    from orchestration.defs.transform import dbt_asset_keys
    from orchestration.instance import prepare_dagster_home
    from orchestration.runner import run_transform

    settings = build_settings(source, warehouse)
    if not settings.warehouse_path.exists():
        fail(f"warehouse {settings.warehouse_path} does not exist: run `warehouse extract` first")
    duckdb.connect(str(settings.warehouse_path)).close()  # a damaged or read-only file: one line
    if incremental and (full_refresh or select):
        fail("--incremental picks its own selection: no --full-refresh or --select with it")
    orchestration = OrchestrationSettings()
    prepare_dagster_home(orchestration)
    definitions = build_definitions(settings, orchestration)
    selection = None
    if select:
        selection = dbt_asset_keys(definitions, " ".join(select))
        if not selection:
            fail(f"--select {' '.join(select)} matches no dbt model, seed or snapshot")
    dbt_log = orchestration.alert_log.parent / "dbt.log"
    with dg.DagsterInstance.get() as instance, progress_lines() as progress:
        summary = run_transform(
            settings,
            orchestration,
            instance,
            definitions,
            incremental=incremental,
            full_refresh=full_refresh,
            as_of=as_of,
            selection=selection,
            tags={DBT_LOG_TAG: str(dbt_log)},
            progress=progress,
        )
    if not summary.run_id:
        console.print("Nothing to transform: every model is current.")
        return
    print_summary(summary, orchestration, summary.seconds)
    console.print(f"dbt's output: {dbt_log}")
    if not summary.success:
        fail(f"transform failed: {summary.failure or 'a blocking check failed'}")
