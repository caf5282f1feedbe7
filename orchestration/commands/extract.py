"""``warehouse extract``: land the platform database in the warehouse's ``raw`` schema."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestration.commands.common import (
    SourceOption,
    WarehouseOption,
    build_settings,
    console,
    fail,
)


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
    include_views: Annotated[
        bool,
        typer.Option(
            "--include-views", help="Land the source's views too (whole, like unspecified tables)."
        ),
    ] = False,
    rehash_pii: Annotated[
        bool,
        typer.Option(
            "--rehash-pii",
            help="Accept a new WAREHOUSE_PII_KEY: re-read the tables with hashed PII and re-hash "
            "raw with it (rows no longer in the source lose their old hashes).",
        ),
    ] = False,
    drop_pending_load: Annotated[
        bool,
        typer.Option(
            "--drop-pending-load",
            help="Discard a load an interrupted run left that cannot be completed (its rows are read again).",
        ),
    ] = False,
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
            rows = inventory(settings, include_views=include_views)
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
                    include_views=include_views,
                    rehash_pii=rehash_pii,
                    drop_pending_load=drop_pending_load,
                )
        else:
            summary = run_extract(
                settings,
                mode=mode,
                tables=names,
                progress=LogProgress(typer.echo),
                chunk_rows=chunk_rows,
                include_views=include_views,
                rehash_pii=rehash_pii,
                drop_pending_load=drop_pending_load,
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
    for load_id in s.recovered:  # type: ignore[attr-defined]
        console.print(
            f"completed load {load_id}, which an interrupted run left (raw._extract_log says what it landed)",
            soft_wrap=True,
        )
    for r in s.tables.values():  # type: ignore[attr-defined]
        for line in table_notes(r):
            console.print(f"{r.table}: {line}", soft_wrap=True)
    if s.views_skipped:  # type: ignore[attr-defined]
        console.print(
            f"views skipped (--include-views lands them): {', '.join(s.views_skipped)}",  # type: ignore[attr-defined]
            soft_wrap=True,
        )
    if s.not_in_source:  # type: ignore[attr-defined]
        console.print(
            f"a source without the platform's tables: {len(s.not_in_source)} spec'd tables "  # type: ignore[attr-defined]
            "not in it, every base table landed as unspecified",
            soft_wrap=True,
        )
    reports = list(s.tables.values())  # type: ignore[attr-defined]
    console.print(
        f"{sum(r.rows_read for r in reports):,} rows read, {sum(r.rows_landed for r in reports):,} landed "
        f"in {s.seconds:.1f} s; unspecified: {', '.join(s.unspecified) or 'none'}; "  # type: ignore[attr-defined]
        f"failed: {', '.join(s.failed) or 'none'}"  # type: ignore[attr-defined]
    )


def table_notes(r: object) -> list[str]:
    """What a person should know about one table beyond its numbers."""
    notes: list[str] = []
    if r.status != "ok":  # type: ignore[attr-defined]
        notes.append(f"failed: {r.error}")  # type: ignore[attr-defined]
    if r.raw_table != r.table:  # type: ignore[attr-defined]
        notes.append(f"lands as raw.{r.raw_table} (its snake_case name is taken)")  # type: ignore[attr-defined]
    if r.rename_of:  # type: ignore[attr-defined]
        notes.append(
            f"probable rename of {r.rename_of}: its PII rules applied; rename the table back "  # type: ignore[attr-defined]
            "or give it a spec"
        )
    for column, landed in r.renamed_columns.items():  # type: ignore[attr-defined]
        notes.append(f"column {column!r} lands as {landed} (its snake_case name is taken)")
    for column in r.new_columns:  # type: ignore[attr-defined]
        notes.append(f"new source column {column} landed")
    for column in r.dropped_columns:  # type: ignore[attr-defined]
        notes.append(f"column {column} gone from the source, NULL from now on")
    for column, change in r.widened_columns.items():  # type: ignore[attr-defined]
        notes.append(f"column {column} widened: {change}")
    for column, change in r.narrowed_columns.items():  # type: ignore[attr-defined]
        notes.append(f"column {column} narrowed at the source: {change} (raw keeps its type)")
    for column, reason in r.held_back_columns.items():  # type: ignore[attr-defined]
        notes.append(f"column {column} held back: {reason}; classify it in ingestion/specs.py")
    for column, count in r.redacted_values.items():  # type: ignore[attr-defined]
        notes.append(f"column {column}: {count:,} values redacted (they looked like personal data)")
    for column, reason in r.skipped_columns.items():  # type: ignore[attr-defined]
        notes.append(f"column {column} skipped: {reason}")
    if r.duplicates_removed:  # type: ignore[attr-defined]
        notes.append(f"{r.duplicates_removed:,} duplicate keys removed")  # type: ignore[attr-defined]
    if r.note:  # type: ignore[attr-defined]
        notes.append(r.note)  # type: ignore[attr-defined]
    return notes
