"""``warehouse transform``: build the dbt project (staging, star schema, marts) and its tests."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestration.cli import SourceOption, WarehouseOption, app, build_settings, console, fail


@app.command()
def transform(
    source: SourceOption = None,
    warehouse: WarehouseOption = None,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="Build only the tables downstream of raw tables whose loads changed rows since "
            "the last build, and the nodes whose code changed; their data tests run in one query.",
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
    """Run `dbt build` (seeds, snapshots, models and every dbt test) on the warehouse."""
    from orchestration.transformation import TransformError
    from orchestration.transformation import transform as run_transform

    settings = build_settings(source, warehouse)
    try:
        result = run_transform(
            settings,
            select=select,
            full_refresh=full_refresh,
            incremental=incremental,
            as_of=as_of,
        )
    except TransformError as exc:
        fail(str(exc))
        return
    if result.skipped:
        console.print(
            "Nothing to transform: no raw table was loaded and no model changed since the last build."
        )
        return
    if result.changed_tables is not None:
        console.print(f"Changed since the last transform: {', '.join(result.changed_tables)}")
    summary = ", ".join(f"{status}={count}" for status, count in sorted(result.statuses.items()))
    console.print(f"dbt build on {settings.warehouse_path}: {summary} in {result.seconds:.1f} s")
    if not result.success:
        for failure in result.failures[:20]:
            console.print(f"  {failure}")
        fail("dbt build failed")
