"""``warehouse extract``: land the platform database in the warehouse's ``raw`` schema."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestration.cli import SourceOption, WarehouseOption, app, build_settings, console, fail


class TerminalProgress:
    """A progress bar per table on a terminal."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, object] = {}

    def table_started(self, table: str, mode: str, rows_expected: int | None) -> None:
        """Add the table's bar."""
        self.tasks[table] = self.progress.add_task(f"{table} ({mode})", total=rows_expected or None)

    def rows_read(self, table: str, rows: int) -> None:
        """Advance the table's bar."""
        if table in self.tasks:
            self.progress.advance(self.tasks[table], rows)  # type: ignore[arg-type]

    def table_finished(self, report: object) -> None:
        """Complete the table's bar."""
        task = self.tasks.get(report.table)  # type: ignore[attr-defined]
        if task is not None:
            self.progress.update(task, completed=report.rows_read, total=report.rows_read or 1)  # type: ignore[attr-defined,arg-type]


@app.command()
def extract(
    source: SourceOption = None,
    warehouse: WarehouseOption = None,
    reconcile: Annotated[
        bool,
        typer.Option(
            "--reconcile",
            help="After the incremental pass, compare primary keys (and row hashes of "
            "stale-cursor tables) with the source: mark hard deletes, land missed rows.",
        ),
    ] = False,
    show_inventory: Annotated[
        bool,
        typer.Option(
            "--inventory",
            help="Print every source table and what happens to it (spec'd, excluded, unspecified); load nothing.",
        ),
    ] = False,
    tables: Annotated[
        list[str] | None,
        typer.Option("--tables", help="Only these tables (repeatable, or comma-separated)."),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(help="Rows per key-range read: bounds memory, not throughput.")
    ] = 200_000,
) -> None:
    """Extract the platform database into raw: incremental by cursor, PII masked, nothing lost."""
    from ingestion.pii import PiiKeyError
    from ingestion.pipeline import ExtractError, LogProgress, RunMode, inventory, run_extract
    from ingestion.source_reader import SourceError

    settings = build_settings(source, warehouse)
    if chunk_rows < 1:
        fail(f"--chunk-rows {chunk_rows} must be at least 1")
    names = [n.strip() for item in tables or [] for n in item.split(",") if n.strip()] or None
    if show_inventory:
        try:
            rows = inventory(settings)
        except SourceError as exc:
            fail(str(exc))
        table = Table(title="Source inventory")
        for column in ("table", "fate", "detail"):
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    mode: RunMode = "reconcile" if reconcile else "incremental"
    try:
        if console.is_terminal:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bars:
                summary = run_extract(
                    settings,
                    mode=mode,
                    tables=names,
                    progress=TerminalProgress(bars),
                    chunk_rows=chunk_rows,
                )
        else:
            summary = run_extract(
                settings,
                mode=mode,
                tables=names,
                progress=LogProgress(typer.echo),
                chunk_rows=chunk_rows,
            )
    except (ExtractError, SourceError, PiiKeyError) as exc:
        fail(str(exc))
    print_summary(summary)
    if not summary.ok:
        raise typer.Exit(code=1)


def print_summary(summary: object) -> None:
    """The final summary: one row per table, then the totals."""
    s = summary  # an ingestion.pipeline.ExtractSummary
    table = Table(title=f"Extract {s.mode} {s.source} -> {s.warehouse} (load {s.load_id})")  # type: ignore[attr-defined]
    for column in (
        "table",
        "mode",
        "read",
        "landed",
        "zero dates",
        "masked",
        "deletes",
        "changed",
        "s",
        "status",
    ):
        table.add_column(
            column,
            justify="right"
            if column in {"read", "landed", "zero dates", "deletes", "changed", "s"}
            else "left",
        )
    for r in s.tables.values():  # type: ignore[attr-defined]
        table.add_row(
            r.table + ("" if r.specified else " (unspecified)"),
            r.mode,
            f"{r.rows_read:,}",
            f"{r.rows_landed:,}",
            f"{r.zero_dates_nulled:,}",
            ",".join(r.masked_columns),
            f"{r.deletes_detected:,}",
            f"{r.changed_rows_detected:,}",
            f"{r.seconds:.1f}",
            r.status,
        )
    # A narrow (or non-) terminal would squeeze the ten columns into ellipses.
    wide = console if console.width >= 150 else Console(width=150, highlight=False)
    wide.print(table)
    for r in s.tables.values():  # type: ignore[attr-defined]
        if r.status != "ok":
            console.print(f"{r.table} failed: {r.error}", soft_wrap=True)
        for column in r.new_columns:
            console.print(f"{r.table}: new source column {column} landed", soft_wrap=True)
        for column in r.dropped_columns:
            console.print(
                f"{r.table}: column {column} gone from the source, NULL from now on", soft_wrap=True
            )
        for column, reason in r.skipped_columns.items():
            console.print(f"{r.table}: column {column} skipped: {reason}", soft_wrap=True)
    reports = list(s.tables.values())  # type: ignore[attr-defined]
    console.print(
        f"{sum(r.rows_read for r in reports):,} rows read, {sum(r.rows_landed for r in reports):,} landed "
        f"in {s.seconds:.1f} s; unspecified: {', '.join(s.unspecified) or 'none'}; "  # type: ignore[attr-defined]
        f"failed: {', '.join(s.failed) or 'none'}"  # type: ignore[attr-defined]
    )
