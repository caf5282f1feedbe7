"""The dlt pipeline behind ``warehouse extract``: platform database -> DuckDB ``raw``.

``platform_source`` is the dlt source: one resource per spec'd table (and, when
asked, one per unspecified table), built without touching any database, so Dagster
can load its definitions anywhere. ``run_extract`` runs it step by step:

1. dlt's state is synced, and a load package an earlier run left behind (it died) is
   loaded first, its duplicate keys removed and its ``_extract_log`` rows settled;
2. every table to read is planned in the main thread: columns (privacy rules applied),
   drift against raw's own columns (widened types evolve raw first), the cursor (the
   newest value raw holds), and whether the probe found it unchanged;
3. dlt extracts (the resources read in primary-key ranges, the next range prefetched
   while dlt writes the current one), the log records the package as ``loading``,
   dlt normalizes and loads it, and the log rows are settled ``ok``;
4. ``--reconcile`` compares keys with the source, and DuckDB is checkpointed: a failed
   checkpoint (a full disk) fails the run.

Whatever step a run dies in, the next run's first step repairs it (ingestion/README.md).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import dlt
import duckdb

# Imported here, in the main thread, before any worker exists: pyarrow imports pandas lazily
# on first use, and two extract workers doing so at once let dlt's main thread see a partly
# initialized module ("partially initialized module 'pandas' has no attribute 'DataFrame'").
import pandas  # noqa: F401
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.destination.exceptions import DestinationTransientException
from dlt.common.schema.typing import TColumnSchema
from dlt.destinations.exceptions import DatabaseTransientException
from dlt.extract.resource import DltResource
from dlt.pipeline.exceptions import PipelineStepFailed

from ingestion import ledger
from ingestion.drift import (
    BOOKKEEPING,
    Drift,
    LandedType,
    TableDriftError,
    detect_drift,
    raw_columns,
    widen_raw,
)
from ingestion.errors import describe_warehouse_error
from ingestion.faults import FaultPoints
from ingestion.pii import PiiKeyError, mask_pii, resolve_pii_key
from ingestion.privacy import held_back, probable_rename, redact_batch, rules_for_rename
from ingestion.probe import Probe, probe_tables, save_probes, stored_probes
from ingestion.settings import WarehouseSettings, redact
from ingestion.source_reader import (
    TRANSIENT_MARKERS,
    ReadStats,
    SourceColumn,
    SourceError,
    SourceReader,
    arrow_schema,
    snake_case,
)
from ingestion.specs import (
    CLEARED_COLUMNS,
    EXCLUDED_TABLES,
    TABLE_SPECS,
    PiiTreatment,
    TableSpec,
    contract_columns,
    contract_integer_keys,
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

    def plan(self, table: str) -> TablePlan:
        """The plan of ``table`` (made here, without a warehouse, outside ``run_extract``)."""
        if table not in self.plans:
            raw = snake_case(table)
            self.plans[table] = make_plan(self, table, raw, {}, None)
        return self.plans[table]


def make_plan(
    ctx: ExtractContext,
    table: str,
    raw_table: str,
    existing: dict[str, LandedType],
    cursor: Any,
) -> TablePlan:
    """Plan one table: its columns (privacy rules applied), drift against ``existing`` (raw's
    columns) and what to compare. Raises ``SourceError`` or ``TableDriftError``."""
    reader = ctx.reader
    spec = TABLE_SPECS.get(table)
    report = ctx.report(table, specified=spec is not None)
    report.raw_table = raw_table
    cleared = CLEARED_COLUMNS.get(table, frozenset())
    if spec is not None:
        classified: set[str] = set(contract_columns(table) | cleared)
        columns, skipped = reader.columns(
            table,
            spec.never_selected,
            spec.booleans,
            spec.primary_key,
            contract_integer_keys(table),
        )
    else:
        keys = reader.primary_key(table)
        names = reader.column_names(table)
        contracts = {t: contract_columns(t) for t in TABLE_SPECS}
        rename = probable_rename(names, contracts)
        if rename is not None:
            spec = rules_for_rename(TABLE_SPECS[rename[0]], table)
            report.rename_of = rename[0]
            log.warning(
                "%s looks like %s renamed (%.0f%% of its columns): %s's PII rules applied",
                table,
                rename[0],
                rename[1] * 100,
                rename[0],
            )
        classified = set(cleared)
        columns, skipped = reader.columns(
            table,
            spec.never_selected if spec else frozenset(),
            spec.booleans if spec else (),
            primary_key=keys[0] if len(keys) == 1 else None,
        )
        for name, reason in skipped.items():
            log.warning("%s.%s skipped: %s", table, name, reason)
        if not columns:
            raise SourceError(f"{table} has no column with a supported type")
    masked = set(spec.pii) if spec else set()
    withheld = held_back(columns, classified | masked)
    report.held_back_columns = withheld
    for name, reason in withheld.items():
        log.warning("%s.%s held back: %s", table, name, reason)
    columns = [c for c in columns if c.name not in withheld]
    report.skipped_columns = skipped
    report.masked_columns = [
        c for c in (spec.masked_columns if spec else ()) if any(x.name == c for x in columns)
    ]
    report.renamed_columns = {c.name: c.landed_as for c in columns if c.landed_as}
    redacted = [
        c.name
        for c in columns
        if c.kind == "text" and not c.as_text and c.name not in classified and c.name not in masked
    ]
    landed = landed_columns(columns, spec)
    drift = detect_drift(table, existing, landed)
    report.new_columns, report.dropped_columns = drift.new_columns, drift.dropped_columns
    report.widened_columns = {
        c: f"{o.describe()} -> {n.describe()}" for c, (o, n) in drift.widened.items()
    }
    report.narrowed_columns = {
        c: f"{n.describe()} into {o.describe()}" for c, (o, n) in drift.narrowed.items()
    }
    plan = TablePlan(table, raw_table, spec, report.specified, columns, drift, cursor, [], redacted)
    # Re-read rows (lookback window, whole small tables) that raw already holds unchanged are
    # not landed again: a merge of nothing costs dlt a staging table per run. Not while columns
    # drift (every re-read row must land then), nor when the PII is being re-hashed.
    if (
        ctx.warehouse is not None
        and report.specified
        and TABLE_SPECS[table].write_disposition == "merge"
        and existing
        and not drift.changes_columns
        and table not in ctx.rehash
    ):
        plan.compared = [n for n in landed if n in existing]
    return plan


# -- the rows of each table --------------------------------------------------------------------------


def _column_hints(
    columns: Sequence[SourceColumn], widened: dict[str, LandedType] | None = None
) -> list[TColumnSchema]:
    # Arrow's naive timestamps would otherwise land as TIMESTAMPTZ: raw keeps wall values.
    hints: list[TColumnSchema] = [
        {
            "name": "_source_deleted_at",
            "data_type": "timestamp",
            "timezone": False,
            "nullable": True,
        }
    ]
    for c in columns:
        if c.kind == "timestamp":
            hints.append(
                {
                    "name": landed_name(c),
                    "data_type": "timestamp",
                    "timezone": False,
                    "precision": 6,
                }
            )
    for name, landed in (widened or {}).items():
        hint: TColumnSchema = {"name": name, "data_type": landed.data_type}  # type: ignore[typeddict-item]
        if landed.precision is not None:
            hint["precision"] = landed.precision
        if landed.scale is not None:
            hint["scale"] = landed.scale
        hints.append(hint)
    return hints


def _with_bookkeeping(batch: pa.Table, columns: Sequence[SourceColumn] = ()) -> pa.Table:
    """Give colliding columns their distinct raw names and append ``_source_deleted_at``
    (NULL: the row exists in the source).

    A real Arrow column, so the file dlt writes already has the table's column order (dlt
    appends ``_dlt_load_id`` last) and its normalize step imports the file as is instead
    of rewriting every row (measured: ~5 s of 20 on medium). No ``_dlt_id``: the primary
    key identifies a row, and a text copy of it cost a fifth of the full-load time
    (writing unique strings to parquet and storing them in DuckDB).
    """
    renamed = {c.name: c.landed_as for c in columns if c.landed_as}
    if renamed:
        batch = batch.rename_columns([renamed.get(n, n) for n in batch.column_names])
    return batch.append_column(
        pa.field("_source_deleted_at", pa.timestamp("us")),
        pa.nulls(batch.num_rows, pa.timestamp("us")),
    )


def _empty_batch(columns: Sequence[SourceColumn]) -> pa.Table:
    return arrow_schema(columns).empty_table()


def row_hash(alias: str, columns: Sequence[str]) -> str:
    """SQL for an md5 of ``columns`` of ``alias``, the same text whichever side it reads."""
    # chr(31) (unit separator) cannot occur in the values' text by accident; NULL gets a marker.
    parts = ", ".join(f"coalesce(cast({alias}.\"{c}\" as varchar), '\\N')" for c in columns)
    return f"md5(concat_ws(chr(31), {parts}))"


def raw_names(batch: pa.Table, plan: TablePlan) -> list[str]:
    """The raw names of ``batch``'s columns (masked PII columns already carry theirs)."""
    landed = {c.name: landed_name(c) for c in plan.columns}
    return [landed.get(n, snake_case(n)) for n in batch.column_names]


def _changed_rows(ctx: ExtractContext, plan: TablePlan, batch: pa.Table) -> pa.Table:
    """The rows of ``batch`` that raw lacks, holds as deleted, or holds with other values."""
    assert ctx.warehouse is not None and plan.spec is not None
    key = plan.spec.primary_key
    raw_key = snake_case(key)
    cur = ctx.warehouse.cursor()
    try:
        cur.register("incoming_rows", batch.rename_columns(raw_names(batch, plan)))
        changed = (
            cur.sql(
                f'select s."{raw_key}" from incoming_rows s '
                f'left join {DATASET}."{plan.raw_table}" r on r."{raw_key}" = s."{raw_key}" '
                f'where r."{raw_key}" is null or r._source_deleted_at is not null '
                f"or {row_hash('s', plan.compared)} <> {row_hash('r', plan.compared)}"
            )
            .to_arrow_table()
            .column(0)
        )
    except duckdb.Error:
        return batch  # raw cannot be compared (e.g. table gone): land everything
    finally:
        cur.close()
    keys = pc.cast(batch.column(key), pa.int64())
    return batch.filter(pc.is_in(keys, value_set=pc.cast(changed, pa.int64())))


def _apply_casts(batch: pa.Table, plan: TablePlan) -> pa.Table:
    if not plan.drift.casts:
        return batch
    names = raw_names(batch, plan)
    for i, name in enumerate(names):
        old = plan.drift.casts.get(name)
        if old is not None:
            batch = batch.set_column(
                i,
                batch.schema.field(i).with_type(old.arrow_type()),
                pc.cast(batch.column(i), old.arrow_type()),
            )
    return batch


def _prepare(
    batch: pa.Table, plan: TablePlan, ctx: ExtractContext, report: TableReport
) -> pa.Table:
    """Mask PII, redact personal-looking values of unclassified text, cast narrowed columns."""
    if plan.spec is not None and plan.spec.pii:
        batch = mask_pii(batch, plan.spec, ctx.pii_key)
    if plan.redacted:
        batch, counts = redact_batch(batch, plan.redacted)
        for column, n in counts.items():
            report.redacted_values[column] = report.redacted_values.get(column, 0) + n
    return _apply_casts(batch, plan)


def _literal(value: Any) -> str:
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return f"'{text}.{value.microsecond:06d}'" if value.microsecond else f"'{text}'"
    if isinstance(value, int):
        return str(value)
    raise ExtractError(f"unsupported cursor value {value!r}")


def _state_form(value: Any) -> str | None:
    """A cursor value in the probe's text form."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(int(value))


def _prefetched(
    ranges: Sequence[tuple[int, int]], read: Callable[[int, int], pa.Table]
) -> Iterator[pa.Table]:
    """Read each range while the previous one is being written by dlt."""
    if not ranges:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract-read") as pool:
        pending = pool.submit(read, *ranges[0])
        for following in [*ranges[1:], None]:
            batch = pending.result()
            if following is not None:
                pending = pool.submit(read, *following)
            yield batch


# How much wider than the last one the next key range may grow.
RANGE_GROWTH = 4


def _read_whole_key_span(
    low: int,
    high: int,
    chunk_rows: int,
    read: Callable[[int, int], pa.Table],
    key_after: Callable[[int], int | None],
) -> Iterator[pa.Table]:
    """Every row with a key in ``[low, high]``, in ranges of about ``chunk_rows`` rows, each
    read while dlt writes the previous one.

    The key is a unique integer, so the first range of ``chunk_rows`` keys holds at most
    ``chunk_rows`` rows; each next one is sized from the key density the last one showed
    (growing at most ``RANGE_GROWTH`` times), and an empty range jumps to the next key
    (``key_after``, one index lookup) instead of widening across the gap. No ``COUNT(*)``
    up front: on InnoDB that scans the table (0.4 s of a ~3 s read of medium's 1.5 M
    activity_logs). Like any plan made without counting, a sparse run of keys followed by a
    dense one can put more than ``chunk_rows`` rows into one range.
    """
    if high < low:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract-read") as pool:
        lo, hi = low - 1, min(low - 1 + chunk_rows, high)
        pending: Any = pool.submit(read, lo, hi)
        while pending is not None:
            batch = pending.result()
            width, lo, pending = hi - lo, hi, None
            if batch.num_rows == 0 and lo < high:
                following = key_after(lo)
                lo = high if following is None else following - 1
            elif batch.num_rows:
                width = max(1, min(width * RANGE_GROWTH, width * chunk_rows // batch.num_rows))
            if lo < high:
                hi = min(lo + width, high)
                pending = pool.submit(read, lo, hi)
            yield batch


def _key_range_batches(
    reader: SourceReader,
    table: str,
    key: str,
    where: str | None,
    chunk_rows: int,
    stats: ReadStats,
    read: Callable[[int, int], pa.Table],
) -> tuple[int | None, Iterator[pa.Table]]:
    """(rows expected, the batches) of the rows of ``table`` matching ``where``, read in
    primary-key ranges; ``read(-1, -1)`` reads everything ``where`` matches at once."""
    if where is None:
        bounds = reader.key_bounds(table, key, stats)
        if bounds is None:
            return 0, iter(())
        batches = _read_whole_key_span(
            *bounds, chunk_rows, read, lambda after: reader.key_after(table, key, after, stats)
        )
        return reader.estimated_rows(table), batches
    count, ranges = reader.key_ranges(table, key, where, chunk_rows, stats)
    if 0 < count <= chunk_rows:
        ranges = [(-1, -1)]  # one read through the cursor's index beats key ranges
    return count, _prefetched(ranges, read)


def _hand_over(
    batch: pa.Table,
    plan: TablePlan,
    ctx: ExtractContext,
    report: TableReport,
    hints: Any,
    first: bool,
) -> Any:
    """``batch`` as dlt receives it: raw names, bookkeeping, hints on the first one."""
    batch = _with_bookkeeping(batch, plan.columns)
    report.rows_landed += batch.num_rows
    report.in_package = True
    return dlt.mark.with_hints(batch, hints) if first else batch


def _table_rows(table: str, ctx: ExtractContext) -> Iterator[Any]:
    """The rows of one spec'd table for this run: full, or the delta since raw's cursor."""
    report = ctx.report(table)
    report.started_at = ledger.now()
    stats = ReadStats()
    spec = TABLE_SPECS[table]
    try:
        plan = ctx.plan(table)
        cursor_value = plan.cursor if spec.cursor and table not in ctx.rehash else None
        report.mode = "incremental" if cursor_value is not None else "full"
        reader = ctx.reader
        where = None
        if spec.cursor and cursor_value is not None:
            q = reader.quote(spec.cursor)
            if isinstance(cursor_value, datetime):
                since = cursor_value - timedelta(seconds=spec.lag_seconds)
                where = f"{q} >= {_literal(since)}"
            else:
                where = f"{q} > {_literal(int(cursor_value) - int(spec.lag_seconds))}"
        key = reader.quote(spec.primary_key)

        def read(lo: int, hi: int) -> pa.Table:
            bounds = None if lo == hi == -1 else f"{key} > {lo} AND {key} <= {hi}"
            condition = " AND ".join(p for p in (where, bounds) if p)
            return reader.read(table, plan.columns, condition or None, stats)

        expected, batches = _key_range_batches(
            reader, table, spec.primary_key, where, ctx.chunk_rows, stats, read
        )
        ctx.progress.table_started(table, report.mode, expected)
        hints = dlt.mark.make_hints(
            columns=_column_hints(plan.columns, {c: n for c, (_, n) in plan.drift.widened.items()})
        )
        first = True
        for batch in batches:
            if batch.num_rows == 0:
                continue
            ctx.progress.rows_read(table, batch.num_rows)
            batch = _prepare(batch, plan, ctx, report)
            if plan.compared:
                batch = _changed_rows(ctx, plan, batch)
                if batch.num_rows == 0:
                    continue
            yield _hand_over(batch, plan, ctx, report, hints, first)
            first = False
            ctx.faults.reached("read")
        if first and plan.cursor is None:
            # An empty source table still gets its raw table: dbt's sources must exist.
            empty = _prepare(_empty_batch(plan.columns), plan, ctx, report)
            yield _hand_over(empty, plan, ctx, report, hints, True)
    except (SourceError, TableDriftError) as exc:
        # What was yielded lands. The next run's cursor comes from raw: for an append-only
        # table (read in key order) what landed is a contiguous prefix; a mutable table's rows
        # of this failed read are left out of its cursor (ingestion/ledger.py).
        report.fail(str(exc))
    finally:
        report.absorb(stats)
        report.finished_at = ledger.now()
        ctx.progress.table_finished(report)


def _unspecified_rows(table: str, ctx: ExtractContext) -> Iterator[Any]:
    """Any other table: reflected and loaded whole (replace), columns without a mapping skipped."""
    report = ctx.report(table, specified=False)
    report.mode = "replace"
    report.started_at = ledger.now()
    stats = ReadStats()
    try:
        plan = ctx.plan(table)
        reader = ctx.reader
        columns = plan.columns
        keys = reader.primary_key(table)
        kinds = {c.name: c for c in columns}
        key = (
            keys[0]
            if len(keys) == 1
            and keys[0] in kinds
            and (
                kinds[keys[0]].kind == "integer"
                or (kinds[keys[0]].unsigned and kinds[keys[0]].scale == 0)
            )
            else None
        )
        batches: Iterator[pa.Table]
        expected = reader.estimated_rows(table)
        if key is not None:
            quoted = reader.quote(key)

            def read(lo: int, hi: int) -> pa.Table:
                return reader.read(table, columns, f"{quoted} > {lo} AND {quoted} <= {hi}", stats)

            expected, batches = _key_range_batches(
                reader, table, key, None, ctx.chunk_rows, stats, read
            )
        elif keys and all(k in kinds and kinds[k].kind in SourceReader.KEYSET_KINDS for k in keys):
            # Composite or non-integer key: pages of chunk_rows rows in key order.
            batches = reader.keyset_batches(table, columns, keys, ctx.chunk_rows, stats)
        else:
            # No key to page on: one server-side cursor, chunk_rows rows at a time.
            batches = reader.stream_batches(table, columns, ctx.chunk_rows, stats)
        ctx.progress.table_started(table, report.mode, expected)
        hints = dlt.mark.make_hints(
            columns=_column_hints(columns, {c: n for c, (_, n) in plan.drift.widened.items()})
        )
        first = True
        for batch in batches:
            if batch.num_rows == 0:
                continue
            ctx.progress.rows_read(table, batch.num_rows)
            batch = _prepare(batch, plan, ctx, report)
            yield _hand_over(batch, plan, ctx, report, hints, first)
            first = False
            ctx.faults.reached("read")
        if first:
            empty = _prepare(_empty_batch(columns), plan, ctx, report)
            yield _hand_over(empty, plan, ctx, report, hints, True)
    except (SourceError, TableDriftError) as exc:
        report.fail(str(exc))
    finally:
        report.absorb(stats)
        report.finished_at = ledger.now()
        ctx.progress.table_finished(report)


def table_resource(spec: TableSpec, ctx: ExtractContext) -> DltResource:
    """The dlt resource of one spec'd table (nothing is read until it runs)."""

    def rows() -> Iterator[Any]:
        yield from _table_rows(spec.name, ctx)

    return dlt.resource(
        rows,
        name=spec.name,
        primary_key=spec.primary_key,
        write_disposition=spec.write_disposition,
        columns=_column_hints([]),
        file_format="parquet",
        parallelized=True,
    )


def unspecified_resource(
    table: str, ctx: ExtractContext, raw_table: str | None = None
) -> DltResource:
    """The dlt resource of an unspecified table: full replace into ``raw.<raw_table>``."""

    def rows() -> Iterator[Any]:
        yield from _unspecified_rows(table, ctx)

    return dlt.resource(
        rows,
        name=table,
        table_name=raw_table or snake_case(table),
        write_disposition="replace",
        columns=_column_hints([]),
        file_format="parquet",
        parallelized=True,
    )


def platform_source(
    settings: WarehouseSettings | None = None,
    tables: Sequence[str] | None = None,
    unspecified: Sequence[str] = (),
    ctx: ExtractContext | None = None,
) -> Any:
    """The dlt source of the platform database, built without connecting to anything.

    One resource per spec'd table (``tables`` narrows them) plus one per name in
    ``unspecified``. Reflection happens when a resource runs (or in ``run_extract``'s
    plan), so Dagster's ``@dlt_assets`` can load this in an environment without the database.
    """
    context = ctx or ExtractContext(settings)
    names = list(tables) if tables is not None else list(TABLE_SPECS)

    @dlt.source(name=SOURCE_NAME, max_table_nesting=0, root_key=False)
    def platform() -> list[DltResource]:
        resources = [table_resource(TABLE_SPECS[n], context) for n in names if n in TABLE_SPECS]
        resources += [
            unspecified_resource(
                n, context, context.plans[n].raw_table if n in context.plans else None
            )
            for n in unspecified
        ]
        return resources

    return platform()


def platform_pipeline(
    settings: WarehouseSettings,
    connection: duckdb.DuckDBPyConnection | None = None,
    progress: Any = None,
) -> dlt.Pipeline:
    """The dlt pipeline into ``raw`` of the warehouse file; its state lives beside the file."""
    warehouse = settings.warehouse_path
    destination = dlt.destinations.duckdb(connection if connection is not None else str(warehouse))
    options: dict[str, Any] = {"progress": progress} if progress is not None else {}
    return dlt.pipeline(
        pipeline_name="platform_" + re.sub(r"[^A-Za-z0-9_]", "_", warehouse.stem),
        pipelines_dir=str(warehouse.parent / ".dlt_pipelines"),
        destination=destination,
        dataset_name=DATASET,
        **options,
    )


# -- running -------------------------------------------------------------------------------------------


def _open_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise ExtractError(
            f"cannot create the warehouse folder {path.parent}: permission denied "
            f"({exc.strerror}); make it writable, or choose another --warehouse"
        ) from None
    except OSError as exc:
        raise ExtractError(
            f"cannot create the warehouse folder {path.parent}: {exc.strerror or exc}; "
            "choose another --warehouse"
        ) from None
    try:
        # DuckDB's buffer pool would otherwise grow towards 80% of RAM with the table being
        # loaded; a fixed cap keeps the extractor's memory independent of table size.
        return duckdb.connect(str(path), config={"memory_limit": DUCKDB_MEMORY_LIMIT})
    except duckdb.Error as exc:
        raise ExtractError(describe_warehouse_error(path, exc)) from None


def _raw_tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute(
        "select table_name from information_schema.tables where table_schema = ?", [DATASET]
    ).fetchall()
    return {r[0] for r in rows}


def _table_has_rows(
    conn: duckdb.DuckDBPyConnection, table: str, raw_tables: set[str] | None = None
) -> bool:
    if table not in (_raw_tables(conn) if raw_tables is None else raw_tables):
        return False
    row = conn.execute(f'select exists(select 1 from {DATASET}."{table}")').fetchone()
    return bool(row and row[0])


@dataclass
class TablePlanList:
    """Which source tables this run extracts, and what it says about the others."""

    specified: list[str]
    unspecified: list[str]
    missing: list[str]  # spec'd tables absent from the source (failures)
    not_in_source: list[str]  # spec'd tables absent from a foreign source (no failure)
    views: list[str]  # views: skipped unless asked for (then in ``unspecified``)
    raw_names: dict[str, str]  # source table -> raw table


def raw_table_names(tables: Sequence[str]) -> dict[str, str]:
    """Source table -> raw table: dlt's snake_case, made distinct where two collide
    (``Mixed Case Tbl`` and ``mixed_case_tbl``): a spec'd table, else the one already named
    so, else the first keeps it; the others get ``_2``, ``_3``..."""
    groups: dict[str, list[str]] = {}
    for table in sorted(tables):
        groups.setdefault(snake_case(table), []).append(table)
    names: dict[str, str] = {}
    taken = set(groups)
    for normalized, group in groups.items():
        keeper = next(
            (t for t in group if t in TABLE_SPECS),
            next((t for t in group if t == normalized), group[0]),
        )
        names[keeper] = normalized
        n = 1
        for table in group:
            if table == keeper:
                continue
            n += 1
            while f"{normalized}_{n}" in taken:
                n += 1
            names[table] = f"{normalized}_{n}"
            taken.add(names[table])
    return names


def plan_tables(
    reader: SourceReader, requested: Sequence[str] | None, include_views: bool = False
) -> TablePlanList:
    """What this run reads: spec'd tables present, unspecified tables (and views when asked),
    spec'd tables missing (failures unless the source has none of them: a foreign database)."""
    present = set(reader.table_names())
    views = set(reader.view_names())
    readable = present | (views if include_views else set())
    if requested:
        unknown = [t for t in requested if t not in readable and t not in TABLE_SPECS]
        if unknown:
            hint = " (a view: add --include-views)" if set(unknown) & views else ""
            raise ExtractError(f"no such table in the source: {', '.join(unknown)}{hint}")
        excluded = [t for t in requested if t in EXCLUDED_TABLES]
        if excluded:
            reasons = "; ".join(f"{t} ({EXCLUDED_TABLES[t]})" for t in excluded)
            raise ExtractError(f"excluded on purpose: {reasons}")
        wanted = list(requested)
    else:
        wanted = sorted(readable | set(TABLE_SPECS))
    specified = [t for t in TABLE_SPECS if t in wanted and t in present]
    absent = [t for t in TABLE_SPECS if t in wanted and t not in present]
    foreign = not (set(TABLE_SPECS) & present)
    unspecified = sorted(
        t for t in wanted if t in readable and t not in TABLE_SPECS and t not in EXCLUDED_TABLES
    )
    return TablePlanList(
        specified=specified,
        unspecified=unspecified,
        missing=[] if foreign else absent,
        not_in_source=absent if foreign else [],
        views=sorted(views - set(unspecified)) if not include_views else [],
        raw_names=raw_table_names([*specified, *unspecified]),
    )


def run_extract(
    settings: WarehouseSettings,
    mode: RunMode = "incremental",
    tables: Sequence[str] | None = None,
    progress: ExtractProgress | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    reader_factory: Callable[[str], SourceReader] | None = None,
    include_views: bool = False,
    rehash_pii: bool = False,
    drop_pending_load: bool = False,
) -> ExtractSummary:
    """Extract the platform database into ``raw`` and return what happened per table.

    ``mode="incremental"`` reads each table's delta since its cursor (everything on the
    first run); ``mode="reconcile"`` does that, then compares primary keys (and row
    hashes for stale-cursor tables) with the source, lands what was missed, marks
    hard-deleted rows with ``_source_deleted_at`` and removes duplicate keys.
    ``include_views`` lands views like unspecified tables; ``rehash_pii`` accepts a new
    ``WAREHOUSE_PII_KEY`` and re-hashes raw with it; ``drop_pending_load`` discards a load
    an interrupted run left that cannot be completed (its rows are read again).
    """
    started = time.perf_counter()
    ctx = ExtractContext(settings, chunk_rows, progress, reader_factory)
    reader = ctx.reader
    planned = plan_tables(reader, tables, include_views)
    specified, unspecified = planned.specified, planned.unspecified
    ctx.pii_key  # noqa: B018 - fail before any work when a real source has no key
    # The probe queries the source while DuckDB and dlt's pipeline open (~50 ms each).
    prober = ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract-probe")
    probing = prober.submit(_probe, ctx, specified)
    prober.shutdown(wait=False)
    conn = _open_warehouse(settings.warehouse_path)
    ctx.warehouse = conn
    try:
        pipeline = platform_pipeline(settings, conn, ctx.faults.collector())
        with dlt.config.values(DLT_CONFIG):
            pipeline.sync_destination()
        ctx.faults.reached("state_sync")
        recovered = recover_interrupted_loads(pipeline, ctx, drop_pending_load)
        fingerprint = _check_pii_key(conn, ctx, rehash_pii, [*specified, *unspecified])
        raw_tables = _raw_tables(conn)
        existing = raw_columns(conn, DATASET)
        cursors = ledger.landed_cursors(
            conn,
            DATASET,
            {
                n: (
                    snake_case(TABLE_SPECS[n].cursor or ""),
                    TABLE_SPECS[n].write_disposition == "append",
                )
                for n in specified
                if TABLE_SPECS[n].cursor
            },
            raw_tables,
        )
        probes = probing.result()
        unchanged = _unchanged_tables(conn, probes, raw_tables, cursors) - ctx.rehash
        for name in specified:
            ctx.report(name)  # the summary lists tables in spec order, read or not
            if name in unchanged:
                _report_unchanged(ctx, TABLE_SPECS[name])
        to_read = [n for n in specified if n not in unchanged]
        stored_types = ledger.stored_source_types(conn, DATASET)
        for name in [*to_read, *unspecified]:
            raw_name = planned.raw_names.get(name, snake_case(name))
            try:
                plan = make_plan(ctx, name, raw_name, existing.get(raw_name, {}), cursors.get(name))
                _report_source_changes(ctx, plan, stored_types.get(raw_name, {}))
                widen_raw(conn, (DATASET, STAGING_DATASET), raw_name, plan.drift.widened)
                ctx.plans[name] = plan
            except (SourceError, TableDriftError) as exc:
                ctx.report(name, specified=name in TABLE_SPECS).fail(str(exc))
                ctx.progress.table_finished(ctx.reports[name])
        to_read = [n for n in to_read if n in ctx.plans]
        unspecified = [n for n in unspecified if n in ctx.plans]
        source = platform_source(settings, to_read, unspecified, ctx)
        for name in to_read:
            # A first load into an empty table needs no merge: append skips dlt's staging copy.
            if TABLE_SPECS[name].write_disposition == "merge" and not _table_has_rows(
                conn, name, raw_tables
            ):
                source.resources[name].apply_hints(write_disposition="append")
        for name in planned.missing:
            ctx.report(name).fail(
                f"{name} is spec'd but not in the source (renamed or dropped?): "
                "restore it, or update ingestion/specs.py"
            )
        load_id = f"unchanged_{int(time.time() * 1e6)}"
        if to_read or unspecified:
            try:
                load_id = _load(pipeline, source, ctx)
            except ExtractError:
                # On record too: the tables of the package stay 'loading' (the next run
                # completes it), the others get their row now.
                failed_id = f"failed_{int(time.time() * 1e6)}"
                ledger.write_log(
                    conn,
                    DATASET,
                    [
                        r.log_row(failed_id, run_id=ctx.run_id)
                        for r in ctx.reports.values()
                        if not r.in_package
                    ],
                )
                raise
        first_pass: dict[str, TableReport] = {}
        if mode == "reconcile":
            from ingestion.reconcile import reconcile_tables

            first_pass = {n: replace(r) for n, r in ctx.reports.items() if r.in_package}
            specs = [TABLE_SPECS[n] for n in specified if n in ctx.plans or n in unchanged]
            load_id = (
                reconcile_tables(pipeline, ctx, specs, first_pass)
                or f"reconcile_{int(time.time() * 1e6)}"
            )
        _remember_probes(ctx, conn, load_id, probes, to_read, cursors)
        ledger.write_log(
            conn,
            DATASET,
            [
                r.log_row(load_id, since=first_pass.get(n), run_id=ctx.run_id)
                for n, r in ctx.reports.items()
            ],
        )
        ledger.save_source_types(
            conn,
            DATASET,
            {
                p.raw_table: _source_types(p)
                for p in ctx.plans.values()
                if ctx.reports[p.table].status == "ok"
            },
        )
        if fingerprint is not None and not any(
            ctx.reports[n].status == "failed" for n in ctx.rehash if n in ctx.reports
        ):
            ledger.store_key_fingerprint(conn, DATASET, fingerprint)
        summary = ExtractSummary(
            load_id=load_id,
            mode=mode,
            source=reader.display_url,
            warehouse=settings.warehouse_path,
            tables=ctx.reports,
            seconds=time.perf_counter() - started,
            load_retries=ctx.load_retries,
            recovered=recovered,
            views_skipped=planned.views,
            not_in_source=planned.not_in_source,
        )
        ctx.faults.reached("checkpoint")
        _checkpoint(conn, settings.warehouse_path)
        return summary
    finally:
        conn.close()
        reader.close()


def _checkpoint(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Write everything from DuckDB's WAL into the file: a failure here (a full disk) fails
    the run instead of passing unnoticed when the connection closes."""
    try:
        conn.execute("checkpoint")
    except duckdb.Error as exc:
        raise ExtractError(
            describe_warehouse_error(path, exc).replace("cannot write", "could not checkpoint", 1)
            + " (the loaded rows are kept in the write-ahead log and are checkpointed by the next run)"
        ) from None


def _source_types(plan: TablePlan) -> dict[str, str]:
    return {c.name: c.source_type for c in plan.columns}


def _report_source_changes(ctx: ExtractContext, plan: TablePlan, stored: dict[str, str]) -> None:
    """Report source type changes raw needed nothing for (e.g. VARCHAR(32) to VARCHAR(64))."""
    report = ctx.reports[plan.table]
    for column in plan.columns:
        old = stored.get(column.name)
        new = column.source_type
        name = landed_name(column)
        if old is None or old == new or name in plan.drift.widened or name in plan.drift.narrowed:
            continue
        plan.drift.source_changes[column.name] = (old, new)
        report.widened_columns[name] = f"{old} -> {new} at the source; raw's type holds it"


def _check_pii_key(
    conn: duckdb.DuckDBPyConnection, ctx: ExtractContext, rehash: bool, tables: Sequence[str]
) -> str | None:
    """The fingerprint to store after this run (None: nothing to store). Stops when the key
    is not the one raw's hashes were made with, unless ``rehash`` (then the tables with hashed
    PII are re-read whole, and their rows no longer in the source lose their old hashes)."""
    fingerprint = ledger.key_fingerprint(ctx.pii_key)
    stored = ledger.stored_key_fingerprint(conn, DATASET)
    if stored == fingerprint:
        return None
    if stored is not None and not rehash:
        raise PiiKeyError(
            f"WAREHOUSE_PII_KEY is not the key raw's hashes were made with (fingerprint "
            f"{fingerprint}, raw has {stored}): set the original key, or rerun with --rehash-pii "
            "to re-hash raw with this one"
        )
    if stored is not None:
        ctx.rehash = {
            t
            for t in tables
            if any(
                r.treatment is PiiTreatment.HASH
                for r in (TABLE_SPECS[t].pii.values() if t in TABLE_SPECS else ())
            )
        }
    return fingerprint


def _probe(ctx: ExtractContext, names: Sequence[str]) -> dict[str, Probe]:
    """Probes of the tables that can be probed (none when the probe itself fails)."""
    probed = []
    for name in names:
        spec = TABLE_SPECS[name]
        try:
            columns, _ = ctx.reader.columns(
                name,
                spec.never_selected,
                spec.booleans,
                spec.primary_key,
                contract_integer_keys(name),
            )
        except SourceError:
            continue  # the table's own read reports it
        probed.append((spec, columns))
    try:
        return probe_tables(ctx.reader, probed, ctx.pii_key)
    except SourceError as exc:
        log.warning("probing the source failed, reading every table: %s", exc)
        return {}


def _unchanged_tables(
    conn: duckdb.DuckDBPyConnection,
    probes: dict[str, Probe],
    raw_tables: set[str],
    cursors: dict[str, Any],
) -> set[str]:
    """Tables whose read would land nothing: no new append-only row, or the same newest
    cursor, columns and fingerprint of the re-read rows as when raw last read them."""
    stored = stored_probes(conn, DATASET)
    unchanged: set[str] = set()
    for name, probe in probes.items():
        if name not in raw_tables:
            continue
        spec = TABLE_SPECS[name]
        cursor = _state_form(cursors.get(name)) if spec.cursor else None
        if spec.cursor and cursor is None:
            continue  # never loaded: the first read is a full one
        if spec.write_disposition == "append":
            if probe.cursor is None or int(probe.cursor) <= int(cursor or 0):
                unchanged.add(name)
        elif stored.get(name) == probe and probe.cursor == cursor:
            unchanged.add(name)
    return unchanged


def _report_unchanged(ctx: ExtractContext, spec: TableSpec) -> None:
    report = ctx.report(spec.name)
    report.mode = "incremental" if spec.cursor else "full"
    report.unchanged = True
    report.started_at = report.finished_at = ledger.now()
    ctx.progress.table_started(spec.name, report.mode, 0)
    ctx.progress.table_finished(report)


def _remember_probes(
    ctx: ExtractContext,
    conn: duckdb.DuckDBPyConnection,
    load_id: str,
    before: dict[str, Probe],
    read: Sequence[str],
    cursors_before: dict[str, Any],
) -> None:
    """Store the probe of each table read in full, when nothing changed while it was read."""
    candidates = [
        n
        for n in read
        if n in before
        and TABLE_SPECS[n].write_disposition == "merge"
        and ctx.reports.get(n) is not None
        and ctx.reports[n].status == "ok"
    ]
    after = _probe(ctx, candidates) if candidates else {}
    cursors = (
        ledger.landed_cursors(
            conn,
            DATASET,
            {
                n: (snake_case(TABLE_SPECS[n].cursor or ""), False)
                for n in candidates
                if TABLE_SPECS[n].cursor
            },
            _raw_tables(conn),
        )
        if candidates
        else {}
    )
    keep = {
        n: before[n]
        for n in candidates
        if after.get(n) == before[n]
        and (not TABLE_SPECS[n].cursor or _state_form(cursors.get(n)) == before[n].cursor)
    }
    save_probes(conn, DATASET, load_id, keep, [n for n in read if n not in keep])


# -- loading, and completing what an interrupted run left ------------------------------------------


def _transient_load_error(exc: BaseException) -> bool:
    """True when the load failed on something a later attempt may not meet (I/O, a lost
    connection, a lock), as opposed to the data or the schema."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(
            seen, (duckdb.IOException, DatabaseTransientException, DestinationTransientException)
        ):
            return True
        if any(marker in str(seen).lower() for marker in TRANSIENT_MARKERS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def root_cause(exc: BaseException) -> str:
    """The first line of the innermost error under ``exc`` that says something (dlt's step
    wrapper says only where it failed: "Pipeline execution failed at step=...")."""
    seen: BaseException | None = exc
    message = ""
    while seen is not None:
        text = "" if isinstance(seen, PipelineStepFailed) else str(seen).strip()
        if text:
            message = text.splitlines()[0]
        seen = seen.__cause__ or seen.__context__
    return message or type(exc).__name__


def load_with_retries(pipeline: dlt.Pipeline, ctx: ExtractContext) -> Any:
    """dlt's normalize and load steps over every pending package, the load repeated with
    backoff on a transient error (the normalized packages are kept, so only the load runs
    again). Returns dlt's load info."""
    attempt = 0
    with dlt.config.values(DLT_CONFIG):
        if pipeline.list_extracted_load_packages():
            pipeline.normalize()
        while True:
            try:
                return pipeline.load()
            except PipelineStepFailed as exc:
                if (
                    attempt >= LOAD_RETRIES
                    or not pipeline.has_pending_data
                    or not _transient_load_error(exc)
                ):
                    raise
                attempt += 1
                ctx.load_retries += 1
                delay = LOAD_BACKOFF_SECONDS * 2 ** (attempt - 1)
                log.warning(
                    "load into %s: %s; retry %d/%d in %.1f s",
                    pipeline.dataset_name,
                    root_cause(exc),
                    attempt,
                    LOAD_RETRIES,
                    delay,
                )
                time.sleep(delay)


def _load(pipeline: dlt.Pipeline, source: Any, ctx: ExtractContext) -> str:
    """Extract, record the package as ``loading``, normalize and load it, settle the log."""
    assert ctx.warehouse is not None
    try:
        with dlt.config.values(DLT_CONFIG):
            extracted = pipeline.extract(source, loader_file_format="parquet")
    except Exception as exc:
        message = redact(root_cause(exc), ctx.settings.secrets())
        for report in ctx.reports.values():
            if report.status == "ok" and not report.unchanged:
                report.fail(f"extract failed: {message}")
        raise ExtractError(f"the extract from the source failed: {message}") from exc
    load_id = extracted.loads_ids[-1] if extracted.loads_ids else f"noload_{int(time.time() * 1e6)}"
    ctx.run_id = ctx.run_id or load_id
    ctx.faults.reached("extract")
    in_package = [r for r in ctx.reports.values() if r.in_package]
    ledger.write_log(
        ctx.warehouse,
        DATASET,
        [
            r.log_row(load_id, "loading" if r.status == "ok" else None, run_id=ctx.run_id)
            for r in in_package
        ],
    )
    ctx.faults.reached("log_loading")
    try:
        load_with_retries(pipeline, ctx)
    except Exception as exc:
        message = redact(root_cause(exc), ctx.settings.secrets())
        for report in ctx.reports.values():
            if report.status == "ok" and not report.unchanged:
                report.fail(f"load failed: {message}")
        # The log rows stay 'loading': the package is kept and the next run completes it.
        raise ExtractError(
            f"the load into {pipeline.dataset_name} failed: {message} "
            "(the extracted rows are kept; the next run loads them first)"
        ) from exc
    ctx.faults.reached("load")
    for name in ctx.rehash:
        _forget_old_hashes(ctx, name, load_id)
    ledger.write_log(
        ctx.warehouse, DATASET, [r.log_row(load_id, run_id=ctx.run_id) for r in in_package]
    )
    ctx.faults.reached("log_settled")
    return load_id


def _forget_old_hashes(ctx: ExtractContext, table: str, load_id: str) -> None:
    """After a re-hash, rows this load did not touch (no longer in the source) still hold
    hashes made with the old key: NULL them, so no two keys' hashes mix."""
    plan = ctx.plans.get(table)
    report = ctx.reports.get(table)
    if plan is None or report is None or report.status != "ok" or not plan.hash_columns:
        return
    assert ctx.warehouse is not None
    assignments = ", ".join(f'"{c}" = null' for c in plan.hash_columns)
    ctx.warehouse.execute(
        f'update {DATASET}."{plan.raw_table}" set {assignments} where _dlt_load_id <> ?', [load_id]
    )
    report.note = "re-hashed with a new PII key; rows no longer in the source lost their old hashes"


def recover_interrupted_loads(
    pipeline: dlt.Pipeline, ctx: ExtractContext, drop: bool = False
) -> list[str]:
    """Complete what a run that died left behind, before anything new is read.

    A pending package (extracted or normalized, not fully loaded) is loaded; the tables it
    touched lose the duplicate keys a re-executed load job appended; its ``_extract_log``
    rows (written ``loading`` before the load, or missing when the run died earlier) are
    settled with what raw holds of it. ``drop`` discards pending packages instead and
    removes what they had loaded, so their rows are read again.
    """
    conn = ctx.warehouse
    assert conn is not None
    pending = sorted(
        {*pipeline.list_extracted_load_packages(), *pipeline.list_normalized_load_packages()}
    )
    unsettled = ledger.unsettled_loads(conn, DATASET)
    if not pending and not unsettled:
        return []
    touched: dict[str, set[str]] = {
        load_id: _package_tables(pipeline, load_id) for load_id in pending
    }
    dropped_ids: set[str] = set()
    if pending and drop:
        pipeline.drop_pending_packages()
        dropped_ids = set(pending)
        data_tables = {t for t in _raw_tables(conn) if not t.startswith("_")}
        for load_id in pending:
            for table in data_tables & touched[load_id]:
                conn.execute(f'delete from {DATASET}."{table}" where _dlt_load_id = ?', [load_id])
            dropped = ledger.log_rows(conn, DATASET, load_id)
            ledger.write_log(
                conn,
                DATASET,
                [
                    ledger.LogRow(
                        **{
                            **r.__dict__,
                            "status": "failed",
                            "rows_landed": 0,
                            "note": "interrupted load dropped (--drop-pending-load); its rows are read again",
                        }
                    )
                    for r in dropped
                ],
            )
        pending = []
    elif pending:
        log.warning(
            "completing %d load(s) an interrupted run left: %s", len(pending), ", ".join(pending)
        )
        try:
            load_with_retries(pipeline, ctx)
        except Exception as exc:
            raise ExtractError(
                f"a load an interrupted run left ({', '.join(pending)}) cannot be completed: "
                f"{redact(root_cause(exc), ctx.settings.secrets())}; fix the cause and rerun, or "
                "rerun with --drop-pending-load to discard it (its rows are read again)"
            ) from exc
    committed = ledger.committed_loads(conn, DATASET, [*pending, *unsettled])
    recovered: list[str] = []
    raw_tables = _raw_tables(conn)
    for load_id in sorted({*pending, *unsettled} - dropped_ids):
        rows = {r.table_name: r for r in ledger.log_rows(conn, DATASET, load_id)}
        tables = (touched.get(load_id, set()) | set(rows)) & raw_tables
        complete = load_id in committed
        settled: list[ledger.LogRow] = []
        for table in sorted(tables):
            removed = ledger.remove_duplicate_keys(conn, DATASET, table, _raw_key(ctx, table))
            if removed:
                log.warning(
                    "%s: removed %d duplicate keys left by an interrupted load", table, removed
                )
            landed_now = ledger.rows_of_load(conn, DATASET, [table], load_id).get(table, 0)
            row = rows.get(table)
            note = (
                "completed by a later run after the extractor stopped during this load"
                if complete
                else "the extractor stopped during this load; what it loaded is kept"
            )
            if row is None:
                # The run died before it logged this load: what raw holds of it is the record.
                settled.append(
                    ledger.LogRow(
                        load_id=load_id,
                        table_name=table,
                        mode="recovered",
                        started_at=None,
                        finished_at=ledger.now(),
                        rows_read=None,
                        rows_landed=landed_now,
                        zero_dates_nulled=0,
                        deletes_detected=0,
                        changed_rows_detected=0,
                        status="ok" if complete else "failed",
                        error=None if complete else "interrupted before its load completed",
                        duplicates_removed=removed,
                        note=note,
                    )
                )
            else:
                status = row.status
                if status == "loading":
                    status = "ok" if complete else "failed"
                settled.append(
                    ledger.LogRow(
                        **{
                            **row.__dict__,
                            "status": status,
                            "rows_landed": landed_now,
                            "duplicates_removed": (row.duplicates_removed or 0) + removed,
                            "error": row.error
                            if status != "failed" or row.error
                            else "interrupted before its load completed",
                            "note": note,
                        }
                    )
                )
        ledger.write_log(conn, DATASET, settled)
        recovered.append(load_id)
    return recovered


def _package_tables(pipeline: dlt.Pipeline, load_id: str) -> set[str]:
    """The data tables a pending load package writes."""
    try:
        info = pipeline.get_load_package_info(load_id)
    except Exception:
        return set()
    tables = {job.job_file_info.table_name for jobs in info.jobs.values() for job in jobs}
    return {t for t in tables if not t.startswith("_dlt")}


def _raw_key(ctx: ExtractContext, raw_table: str) -> list[str]:
    """The raw key columns of a raw table (empty when it has none to dedupe on)."""
    spec = TABLE_SPECS.get(raw_table)
    if spec is not None:
        return [snake_case(spec.primary_key)]
    try:
        names = raw_table_names(ctx.reader.table_names())
        source = next((s for s, r in names.items() if r == raw_table), None)
        if source is None:
            return []
        keys = ctx.reader.primary_key(source)
        columns, _ = ctx.reader.columns(source, primary_key=keys[0] if len(keys) == 1 else None)
    except SourceError:
        return []
    landed = {c.name: landed_name(c) for c in columns}
    return [landed[k] for k in keys if k in landed] if all(k in landed for k in keys) else []


# -- the inventory ----------------------------------------------------------------------------------


def inventory(
    settings: WarehouseSettings, include_views: bool = False
) -> list[tuple[str, str, str]]:
    """Every source table (and view) and what happens to it: (table, fate, detail)."""
    reader = SourceReader(settings.resolved_source_url)
    try:
        present = reader.table_names()
        views = reader.view_names()
        foreign = not (set(TABLE_SPECS) & set(present))
        raw_names = raw_table_names([t for t in present if t not in EXCLUDED_TABLES])
        contracts = {t: contract_columns(t) for t in TABLE_SPECS}
        rows: list[tuple[str, str, str]] = []
        for table in sorted(set(present) | set(TABLE_SPECS) | set(views)):
            spec = TABLE_SPECS.get(table)
            if table in views:
                rows.append(
                    (
                        table,
                        "view",
                        "landed whole (replace), --include-views"
                        if include_views
                        else "skipped (a view; --include-views lands it)",
                    )
                )
            elif table in EXCLUDED_TABLES:
                rows.append((table, "excluded", EXCLUDED_TABLES[table]))
            elif spec and table not in present:
                if foreign:
                    rows.append(
                        (
                            table,
                            "not in source",
                            "a spec'd table this (foreign) source does not have",
                        )
                    )
                else:
                    rows.append((table, "missing", "spec'd but absent from the source"))
            elif spec:
                cursor = spec.cursor or "none (re-read whole)"
                detail = f"{spec.write_disposition} on {spec.primary_key}, cursor {cursor}"
                if spec.lag_seconds and spec.cursor:
                    detail += f", lag {spec.lag_seconds / 3600:g} h"
                if spec.pii:
                    detail += ", PII " + ",".join(
                        f"{c}:{r.treatment.value}" for c, r in spec.pii.items()
                    )
                if spec.secret:
                    detail += ", never selected " + ",".join(spec.secret)
                if spec.local_columns:
                    detail += ", LOCAL " + ",".join(spec.local_columns)
                if spec.stale_cursor:
                    detail += ", stale cursor (reconcile by row hash)"
                unclassified = [
                    c for c in reader.column_names(table) if c not in contract_columns(table)
                ]
                if unclassified:
                    detail += ", unclassified " + ",".join(unclassified)
                rows.append((table, "spec'd", detail))
            else:
                detail = (
                    "loaded whole (replace), types reflected, personal-looking columns held back"
                )
                rename = probable_rename(reader.column_names(table), contracts)
                if rename:
                    detail += f"; probable rename of {rename[0]} ({rename[1]:.0%} of its columns): its PII rules apply"
                if raw_names.get(table, table) != table and raw_names.get(table) != snake_case(
                    table
                ):
                    detail += f"; lands as raw.{raw_names[table]} (its snake_case name is taken)"
                rows.append((table, "unspecified", detail))
        return rows
    finally:
        reader.close()


__all__ = [
    "BOOKKEEPING",
    "DLT_CONFIG",
    "EXTRACT_LOG",
    "ExtractError",
    "ExtractSummary",
    "TableReport",
    "inventory",
    "platform_pipeline",
    "platform_source",
    "run_extract",
]
