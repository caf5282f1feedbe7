"""``warehouse generate``: build (or mutate) the platform source database."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from orchestration.commands.common import (
    SourceOption,
    WarehouseOption,
    build_settings,
    console,
    fail,
)


def generate(
    source: SourceOption = None,
    warehouse: WarehouseOption = None,
    scale: Annotated[str, typer.Option(help="tiny | small | medium | large")] = "small",
    seed: Annotated[int, typer.Option(help="Same seed and scale give identical data.")] = 42,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Drop and recreate the generator's own tables if present."),
    ] = False,
    mutate: Annotated[
        bool,
        typer.Option(
            "--mutate",
            help="Instead of generating, simulate the platform running on "
            "(inserts, updates, soft and hard deletes) against an existing generated database.",
        ),
    ] = False,
    volume: Annotated[
        float, typer.Option(help="With --mutate: share of rows touched, e.g. 0.01.")
    ] = 0.01,
    rate: Annotated[
        list[str] | None,
        typer.Option(
            "--rate",
            help="Override a defect rate, e.g. --rate null_currency=0.1 (repeatable). With "
            "--mutate: revenue_hard_delete=R hard-deletes a share R of the revenue payments.",
        ),
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="Manifest path. Default: beside the data.")
    ] = None,
) -> None:
    """Build the platform's transactional database (defects included) and its manifest."""
    from generator import SCALES, DefectRates, TargetError, manifest_path_for
    from generator import generate as run_generate

    settings = build_settings(source, warehouse)
    url = settings.resolved_source_url
    manifest_path = manifest or manifest_path_for(url, settings.data_dir)
    try:
        rates = DefectRates.parse(rate or [])
    except ValueError as exc:
        fail(str(exc))
    if mutate:
        from generator.mutate import MutationError, mutate_source

        if not 0 < volume <= 0.5:
            fail(f"--volume {volume} must be within (0, 0.5]")
        generation_only = sorted(rates.changed() - DefectRates.MUTATION_RATES)
        if generation_only:
            fail(
                f"--rate {', '.join(generation_only)} shapes a new database, not --mutate "
                f"(which takes {', '.join(sorted(DefectRates.MUTATION_RATES))})"
            )
        try:
            record = mutate_source(
                url, manifest_path, volume=volume, revenue_hard_delete=rates.revenue_hard_delete
            )
        except (TargetError, MutationError) as exc:
            fail(str(exc))
        print_mutation(record, manifest_path)
        return
    mutation_only = sorted(rates.changed() & DefectRates.MUTATION_RATES)
    if mutation_only:
        fail(f"--rate {', '.join(mutation_only)} applies to --mutate only: add --mutate")
    if scale not in SCALES:
        fail(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}")
    started = time.perf_counter()
    try:
        result = run_generate(
            url, seed=seed, scale=scale, rates=rates, replace=replace, manifest_path=manifest_path
        )
    except TargetError as exc:
        fail(str(exc))
    print_generation(result, manifest_path, time.perf_counter() - started)


def print_generation(manifest: dict, manifest_path: Path, seconds: float) -> None:
    table = Table(
        title=f"Generated {manifest['target']} (scale={manifest['scale']}, seed={manifest['seed']})"
    )
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, info in manifest["tables"].items():
        table.add_row(name, f"{info['rows']:,}")
    console.print(table)
    defects = Table(title="Planted defects")
    defects.add_column("defect")
    defects.add_column("where")
    defects.add_column("rows", justify="right")
    for defect, where in manifest["defects"].items():
        for place, info in where.items():
            defects.add_row(defect, place, f"{info['count']:,}")
    for name, info in manifest["hard_deleted"].items():
        defects.add_row("hard_delete", name, f"{info['count']:,}")
    console.print(defects)
    total = manifest["total_rows"]
    console.print(
        f"{total:,} rows in {seconds:.1f} s ({total / max(seconds, 1e-9):,.0f} rows/s); "
        f"manifest: {manifest_path}"
    )


def print_mutation(record: dict, manifest_path: Path) -> None:
    table = Table(title=f"Mutation #{record['index']} (volume={record['volume']})")
    for column in ("table", "inserted", "updated", "stale updates", "soft deleted", "hard deleted"):
        table.add_column(column, justify="right" if column != "table" else "left", no_wrap=True)
    for name, info in record["tables"].items():
        table.add_row(
            name,
            *(
                f"{len(info.get(k, [])):,}"
                for k in ("inserted", "updated", "updated_stale", "soft_deleted", "hard_deleted")
            ),
        )
    console.print(table)
    console.print(
        f"clock {record['clock_start']} -> {record['clock_end']}; manifest: {manifest_path}"
    )
