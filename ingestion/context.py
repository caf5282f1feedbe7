"""What one ``warehouse extract`` run shares: its settings, reports, plans and constants.

``ExtractContext`` holds the run's settings, source reader, plans and reports; the
resources (``ingestion/reading.py``), the run (``ingestion/pipeline.py``) and the
reconciliation (``ingestion/reconcile.py``) all work on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import duckdb

from ingestion import ledger
from ingestion.drift import (
    Drift,
    LandedType,
)
from ingestion.erasure import Erasures
from ingestion.faults import FaultPoints
from ingestion.pii import resolve_pii_key
from ingestion.settings import WarehouseSettings
from ingestion.source_reader import (
    ReadStats,
    SourceColumn,
    SourceReader,
    snake_case,
)
from ingestion.specs import (
    PiiTreatment,
    TableSpec,
)

log = logging.getLogger("ingestion.extract")


DATASET = "raw"
STAGING_DATASET = f"{DATASET}_staging"  # dlt's default: where merges load before they merge
SOURCE_NAME = "platform"
EXTRACT_LOG = ledger.EXTRACT_LOG
DEFAULT_CHUNK_ROWS = 200_000
DUCKDB_MEMORY_LIMIT = "512MB"
LOAD_RETRIES = 3
LOAD_BACKOFF_SECONDS = 1.0
Mode = Literal["full", "incremental", "reconcile", "replace", "recovered"]
RunMode = Literal["incremental", "reconcile"]

# dlt settings the raw contract depends on: _dlt_load_id on Arrow rows; tables taken in
# order (fifo), two at a time (below). No _dlt_id: the primary
# key identifies a row (dlt's merge uses it), and a per-row text id costs ~20% throughput.
DLT_CONFIG: dict[str, Any] = {
    "normalize.parquet_normalizer.add_dlt_load_id": True,
    "normalize.parquet_normalizer.add_dlt_id": False,
    "extract.next_item_mode": "fifo",
    # The parquet files only carry rows from the extractor to DuckDB on the same disk:
    # compressing them cost more time than it saved, and nothing reads them once loaded.
    "data_writer.compression": "none",
    "load.delete_completed_jobs": True,
    # dlt's staging copy of each merged table is emptied once merged: no row outlives its load
    # there (an erasure would otherwise have a copy to chase).
    "load.truncate_staging_dataset": True,
    # Resources are parallelized (each step of a table's generator runs in dlt's pool) on two
    # workers: the next table's count and first read overlap the current one's parquet write;
    # memory follows two tables' chunks.
    "extract.workers": 2,
}


class ExtractError(RuntimeError):
    """A one-line reason the extract could not run at all."""


# -- reports ---------------------------------------------------------------------------------------


@dataclass
class TableReport:
    """What happened to one table in one run: the row of ``raw._extract_log``."""

    table: str
    mode: Mode = "full"
    specified: bool = True
    raw_table: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    rows_read: int = 0
    rows_landed: int = 0
    zero_dates_nulled: int = 0
    deletes_detected: int = 0
    changed_rows_detected: int = 0
    duplicates_removed: int = 0
    retries: int = 0
    # The probe found nothing new since the last run: the table was not read at all.
    unchanged: bool = False
    # Rows of this table are in this run's load package (read, and handed to dlt).
    in_package: bool = False
    masked_columns: list[str] = field(default_factory=list)
    new_columns: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    widened_columns: dict[str, str] = field(default_factory=dict)
    narrowed_columns: dict[str, str] = field(default_factory=dict)
    skipped_columns: dict[str, str] = field(default_factory=dict)
    held_back_columns: dict[str, str] = field(default_factory=dict)
    redacted_values: dict[str, int] = field(default_factory=dict)
    renamed_columns: dict[str, str] = field(default_factory=dict)
    rename_of: str | None = None
    note: str | None = None
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None

    def __post_init__(self) -> None:
        self.raw_table = self.raw_table or self.table

    @property
    def seconds(self) -> float:
        """Wall time spent reading the table."""
        if not self.started_at or not self.finished_at:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()

    def absorb(self, stats: ReadStats) -> None:
        """Add one read's statistics."""
        self.rows_read += stats.rows_read
        self.zero_dates_nulled += stats.zero_dates_nulled
        self.retries += stats.retries

    def fail(self, error: str) -> None:
        """Mark the table failed with a one-line reason."""
        self.status, self.error = "failed", error

    def log_row(
        self,
        load_id: str,
        status: str | None = None,
        since: TableReport | None = None,
        run_id: str | None = None,
    ) -> ledger.LogRow:
        """This report as a row of ``raw._extract_log`` (counting only what happened after
        ``since``, an earlier copy of it, when given: one row per load, not per run) of the
        run ``run_id`` (default: the load is the run's first)."""
        base = since or TableReport(self.table)
        return ledger.LogRow(
            load_id=load_id,
            run_id=run_id or load_id,
            table_name=self.raw_table,
            mode=self.mode,
            started_at=self.started_at,
            finished_at=self.finished_at,
            rows_read=self.rows_read - base.rows_read,
            rows_landed=self.rows_landed - base.rows_landed,
            zero_dates_nulled=self.zero_dates_nulled - base.zero_dates_nulled,
            deletes_detected=self.deletes_detected - base.deletes_detected,
            changed_rows_detected=self.changed_rows_detected - base.changed_rows_detected,
            status=status or self.status,
            error=self.error,
            duplicates_removed=self.duplicates_removed - base.duplicates_removed,
            note=self.note,
        )


@dataclass
class ExtractSummary:
    """The outcome of one ``run_extract``."""

    load_id: str
    mode: RunMode
    source: str
    warehouse: Path
    tables: dict[str, TableReport]
    seconds: float = 0.0
    load_retries: int = 0
    # loads an interrupted run left behind, completed by this one
    recovered: list[str] = field(default_factory=list)
    views_skipped: list[str] = field(default_factory=list)
    # spec'd tables absent from a source that has none of them (a foreign database)
    not_in_source: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every table loaded."""
        return all(r.status == "ok" for r in self.tables.values())

    @property
    def unspecified(self) -> list[str]:
        """Tables loaded generically because no spec names them."""
        return sorted(t for t, r in self.tables.items() if not r.specified)

    @property
    def failed(self) -> list[str]:
        """Tables that did not load."""
        return sorted(t for t, r in self.tables.items() if r.status == "failed")


class ExtractProgress(Protocol):
    """Receives per-table progress; the CLI shows bars on a terminal, log lines otherwise."""

    def table_started(self, table: str, mode: str, rows_expected: int | None) -> None: ...

    def rows_read(self, table: str, rows: int) -> None: ...

    def table_finished(self, report: TableReport) -> None: ...


class LogProgress:
    """One plain log line per table when it finishes."""

    def __init__(self, emit: Callable[[str], None] | None = None) -> None:
        self.emit = emit or log.info

    def table_started(self, table: str, mode: str, rows_expected: int | None) -> None:
        """Nothing: the finished line says it all."""

    def rows_read(self, table: str, rows: int) -> None:
        """Nothing: no per-chunk noise in logs."""

    def table_finished(self, report: TableReport) -> None:
        """Log ``table mode rows seconds`` (and the error when it failed)."""
        self.emit(describe_table(report))


def describe_table(report: TableReport) -> str:
    """One line per table: what was read and how it went."""
    parts = [
        f"{report.table}: {report.mode}",
        f"{report.rows_read:,} rows read",
        f"{report.seconds:.1f} s",
    ]
    if report.raw_table != report.table:
        parts.append(f"lands as raw.{report.raw_table}")
    if report.unchanged:
        parts.append("unchanged since the last run, not read")
    if report.zero_dates_nulled:
        parts.append(f"{report.zero_dates_nulled:,} zero dates nulled")
    if report.masked_columns:
        parts.append("masked " + ",".join(report.masked_columns))
    if report.deletes_detected:
        parts.append(f"{report.deletes_detected:,} deletes")
    if report.changed_rows_detected:
        parts.append(f"{report.changed_rows_detected:,} changed rows")
    if report.duplicates_removed:
        parts.append(f"{report.duplicates_removed:,} duplicate keys removed")
    if report.new_columns:
        parts.append("new columns " + ",".join(report.new_columns))
    if report.dropped_columns:
        parts.append("dropped columns " + ",".join(report.dropped_columns))
    if report.widened_columns:
        parts.append("widened " + ",".join(f"{c} ({t})" for c, t in report.widened_columns.items()))
    if report.narrowed_columns:
        parts.append(
            "narrowed at the source "
            + ",".join(f"{c} ({t})" for c, t in report.narrowed_columns.items())
        )
    if report.held_back_columns:
        parts.append("held back " + ",".join(report.held_back_columns))
    if report.redacted_values:
        parts.append(
            "redacted " + ",".join(f"{c} ({n:,} values)" for c, n in report.redacted_values.items())
        )
    if report.rename_of:
        parts.append(f"probable rename of {report.rename_of} (its PII rules applied)")
    if report.skipped_columns:
        parts.append("skipped " + ",".join(f"{c} ({r})" for c, r in report.skipped_columns.items()))
    if report.retries:
        parts.append(f"{report.retries} retries")
    if report.status == "failed":
        parts.append(f"FAILED: {report.error}")
    return "; ".join(parts)


# -- the plan of each table ------------------------------------------------------------------------


@dataclass
class TablePlan:
    """How one table is read in this run, decided in the main thread before dlt runs."""

    table: str  # the source table
    raw_table: str  # raw.<raw_table>
    spec: TableSpec | None  # its spec (or, for a probable rename, the renamed table's rules)
    specified: bool
    columns: list[SourceColumn]
    drift: Drift = field(default_factory=Drift)
    cursor: Any = None  # the newest cursor value raw holds (None: read everything)
    compared: list[str] = field(default_factory=list)  # raw columns compared to skip unchanged rows
    redacted: list[str] = field(default_factory=list)  # unclassified text columns

    @property
    def hash_columns(self) -> list[str]:
        """Columns landed as keyed hashes (re-hashed when the PII key changes)."""
        if self.spec is None:
            return []
        return [
            snake_case(rule.landed_as or column)
            for column, rule in self.spec.pii.items()
            if rule.treatment is PiiTreatment.HASH
        ]


def landed_name(column: SourceColumn) -> str:
    """The raw name of a source column."""
    return column.landed_as or snake_case(column.name)


def landed_columns(
    columns: Sequence[SourceColumn], spec: TableSpec | None
) -> dict[str, LandedType]:
    """Raw column name -> type, after PII treatment."""
    landed: dict[str, LandedType] = {}
    for c in columns:
        rule = spec.pii.get(c.name) if spec else None
        if rule and rule.treatment is PiiTreatment.HASH:
            landed[snake_case(rule.landed_as or c.name)] = LandedType("text")
        elif rule and rule.treatment is PiiTreatment.BIRTH_YEAR:
            landed[snake_case(rule.landed_as or c.name)] = LandedType("bigint", 32)
        elif rule and rule.treatment is PiiTreatment.PREFIX3:
            landed[snake_case(rule.landed_as or c.name)] = LandedType("text")
        else:
            precision = c.precision if c.kind == "decimal" else 64 if c.kind == "integer" else None
            landed[landed_name(c)] = LandedType(
                c.dlt_type, precision, c.scale if c.kind == "decimal" else None
            )
    return landed


# -- the run context shared by the resources ---------------------------------------------------------


class ExtractContext:
    """Settings, source reader, plans, reports and tuning shared by the resources of one run.

    Built lazily: constructing resources (e.g. for Dagster definitions) opens nothing.
    """

    def __init__(
        self,
        settings: WarehouseSettings | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        progress: ExtractProgress | None = None,
        reader_factory: Callable[[str], SourceReader] | None = None,
    ) -> None:
        self._settings = settings
        self.chunk_rows = chunk_rows
        self.progress: ExtractProgress = progress or LogProgress()
        self._reader_factory = reader_factory or (lambda url: SourceReader(url))
        self._reader: SourceReader | None = None
        self._pii_key: bytes | None = None
        self.reports: dict[str, TableReport] = {}
        self.plans: dict[str, TablePlan] = {}
        self.warehouse: duckdb.DuckDBPyConnection | None = None
        self.deleted: dict[str, Any] = {}  # table -> keys found hard-deleted by reconcile
        self.load_retries = 0  # load steps repeated after a transient failure
        self.faults = FaultPoints(self.settings.fault_at if settings is not None else None)
        self.rehash: set[str] = set()  # tables re-read whole to re-hash their PII
        self.run_id: str | None = None  # the id of the run's first load, once it has one
        # The people erased by `warehouse forget`, applied to every batch (loaded with raw).
        self.erasures: Erasures | None = None

    @property
    def settings(self) -> WarehouseSettings:
        """The run's settings (environment-resolved when none were given)."""
        if self._settings is None:
            self._settings = WarehouseSettings()
        return self._settings

    @property
    def reader(self) -> SourceReader:
        """The source reader, opened on first use."""
        if self._reader is None:
            self._reader = self._reader_factory(self.settings.resolved_source_url)
        return self._reader

    @property
    def pii_key(self) -> bytes:
        """The HMAC key for PII (an error for a real source without one)."""
        if self._pii_key is None:
            self._pii_key = resolve_pii_key(self.settings)
        return self._pii_key

    def report(self, table: str, specified: bool = True) -> TableReport:
        """The report of ``table`` in this run, created on first use."""
        if table not in self.reports:
            self.reports[table] = TableReport(table=table, specified=specified)
        return self.reports[table]
