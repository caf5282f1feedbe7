"""The dlt pipeline behind ``warehouse extract``: platform database -> DuckDB ``raw``.

``platform_source`` is the dlt source: one resource per spec'd table (and, when
asked, one per unspecified table), built without touching any database, so Dagster
can load its definitions anywhere; every resource reflects its table only when it
runs (dlt's ``defer_table_reflect``, done here by the resource itself, at full
precision). ``run_extract`` runs it, reconciles when asked, and writes
``raw._extract_log``.

Each resource reads its table in primary-key ranges with the next range prefetched
while dlt writes the current one, masks PII, checks schema drift against the dlt
schema, and keeps its cursor in dlt's resource state, which dlt commits together
with the load package: a run that dies leaves the cursor where the landed data is.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import dlt
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.destination.exceptions import DestinationTransientException
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema.typing import TColumnSchema
from dlt.destinations.exceptions import DatabaseTransientException
from dlt.extract.resource import DltResource
from dlt.pipeline.exceptions import PipelineStepFailed

from ingestion.drift import BOOKKEEPING, Drift, LandedType, TableDriftError, detect_drift
from ingestion.pii import mask_pii, resolve_pii_key
from ingestion.probe import Probe, probe_tables, save_probes, stored_probes
from ingestion.settings import WarehouseSettings
from ingestion.source_reader import (
    TRANSIENT_MARKERS,
    ReadStats,
    SourceColumn,
    SourceError,
    SourceReader,
)
from ingestion.specs import EXCLUDED_TABLES, TABLE_SPECS, PiiTreatment, TableSpec

log = logging.getLogger("ingestion.extract")

DATASET = "raw"
SOURCE_NAME = "platform"
EXTRACT_LOG = "_extract_log"
DEFAULT_CHUNK_ROWS = 200_000
DUCKDB_MEMORY_LIMIT = "512MB"
LOAD_RETRIES = 3
LOAD_BACKOFF_SECONDS = 1.0
Mode = Literal["full", "incremental", "reconcile", "replace"]
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

_naming = NamingConvention()


class ExtractError(RuntimeError):
    """A one-line reason the extract could not run at all."""


# -- reports ---------------------------------------------------------------------------------------


@dataclass
class TableReport:
    """What happened to one table in one run: the row of ``raw._extract_log``."""

    table: str
    mode: Mode = "full"
    specified: bool = True
    started_at: datetime | None = None
    finished_at: datetime | None = None
    rows_read: int = 0
    rows_landed: int = 0
    zero_dates_nulled: int = 0
    deletes_detected: int = 0
    changed_rows_detected: int = 0
    retries: int = 0
    # The probe found nothing new since the last run: the table was not read at all.
    unchanged: bool = False
    masked_columns: list[str] = field(default_factory=list)
    new_columns: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    skipped_columns: dict[str, str] = field(default_factory=dict)
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None

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
    if report.new_columns:
        parts.append("new columns " + ",".join(report.new_columns))
    if report.dropped_columns:
        parts.append("dropped columns " + ",".join(report.dropped_columns))
    if report.skipped_columns:
        parts.append("skipped " + ",".join(f"{c} ({r})" for c, r in report.skipped_columns.items()))
    if report.retries:
        parts.append(f"{report.retries} retries")
    if report.status == "failed":
        parts.append(f"FAILED: {report.error}")
    return "; ".join(parts)


# -- the run context shared by the resources ---------------------------------------------------------


class ExtractContext:
    """Settings, source reader, reports and tuning shared by the resources of one run.

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
        self.warehouse: duckdb.DuckDBPyConnection | None = None
        self.deleted: dict[str, Any] = {}  # table -> keys found hard-deleted by reconcile
        self.schema: Any = None  # the pipeline's dlt schema as the run started
        self.schema_looked_up = False
        self.load_retries = 0  # load steps repeated after a transient failure

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
            self._reader = self._reader_factory(resolve_source_url(self.settings))
        return self._reader

    @property
    def pii_key(self) -> bytes:
        """The HMAC key for PII (an error for a real source without one)."""
        if self._pii_key is None:
            self._pii_key = resolve_pii_key(self.settings)
        return self._pii_key

    def remember_schema(self, pipeline: dlt.Pipeline) -> None:
        """Keep a copy of the pipeline's dlt schema as the run starts: what raw already holds.

        A copy, because dlt updates its own as it extracts, in the main thread, while the
        resources run in its worker pool.
        """
        schema = pipeline.schemas.get(SOURCE_NAME, None)
        self.schema = schema.clone() if schema is not None else None
        self.schema_looked_up = True

    def report(self, table: str, specified: bool = True) -> TableReport:
        """The report of ``table`` in this run, created on first use."""
        if table not in self.reports:
            self.reports[table] = TableReport(table=table, specified=specified)
        return self.reports[table]


def resolve_source_url(settings: WarehouseSettings) -> str:
    """``--source``/``WAREHOUSE_SOURCE_URL``, else ``sources.platform.credentials`` from
    ``.dlt/secrets.toml`` (or ``SOURCES__PLATFORM__CREDENTIALS``), else the demo file."""
    if settings.source_url:
        return settings.source_url
    with contextlib.suppress(Exception):
        configured: Any = dlt.secrets.get("sources.platform.credentials")
        if configured:
            return str(configured)
    return settings.resolved_source_url


# -- the source ----------------------------------------------------------------------------------------


def landed_columns(
    columns: Sequence[SourceColumn], spec: TableSpec | None
) -> dict[str, LandedType]:
    """Normalized raw column name -> type, after PII treatment."""
    landed: dict[str, LandedType] = {}
    for c in columns:
        rule = spec.pii.get(c.name) if spec else None
        if rule and rule.treatment is PiiTreatment.HASH:
            landed[_naming.normalize_identifier(rule.landed_as or c.name)] = LandedType("text")
        elif rule and rule.treatment is PiiTreatment.BIRTH_YEAR:
            landed[_naming.normalize_identifier(rule.landed_as or c.name)] = LandedType(
                "bigint", 32
            )
        elif rule and rule.treatment is PiiTreatment.PREFIX3:
            landed[_naming.normalize_identifier(rule.landed_as or c.name)] = LandedType("text")
        else:
            precision = c.precision if c.kind == "decimal" else 64 if c.kind == "integer" else None
            landed[_naming.normalize_identifier(c.name)] = LandedType(
                c.dlt_type, precision, c.scale if c.kind == "decimal" else None
            )
    return landed


def _existing_columns(table: str, ctx: ExtractContext) -> dict[str, LandedType]:
    """The columns raw already holds for ``table``, per the pipeline's dlt schema."""
    # The pipeline's stored schema: what earlier runs landed (the source's own schema object
    # is only available while the source function runs, not while its resources do). Looked
    # up once per run: dlt.current.pipeline() resolves configuration (~70 ms) on every call.
    if not ctx.schema_looked_up:
        try:
            ctx.remember_schema(dlt.current.pipeline())
        except Exception:
            ctx.schema, ctx.schema_looked_up = None, True
    schema = ctx.schema
    if schema is None:
        return {}
    if table not in schema.tables:
        return {}
    existing: dict[str, LandedType] = {}
    for name, column in schema.get_table_columns(table).items():
        data_type = column.get("data_type")
        if not data_type:
            continue
        # Only integer width and decimal shape can lose values; timestamps are all microseconds.
        precision = None
        if data_type == "bigint":
            precision = column.get("precision") or 64
        elif data_type == "decimal":
            precision = column.get("precision")
        existing[name] = LandedType(
            data_type, precision, column.get("scale") if data_type == "decimal" else None
        )
    return existing


def _column_hints(columns: Sequence[SourceColumn]) -> list[TColumnSchema]:
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
                    "name": _naming.normalize_identifier(c.name),
                    "data_type": "timestamp",
                    "timezone": False,
                    "precision": 6,
                }
            )
    return hints


def _with_bookkeeping(batch: pa.Table) -> pa.Table:
    """Append ``_source_deleted_at`` (NULL: the row exists in the source).

    A real Arrow column, so the file dlt writes already has the table's column order (dlt
    appends ``_dlt_load_id`` last) and its normalize step imports the file as is instead
    of rewriting every row (measured: ~5 s of 20 on medium). No ``_dlt_id``: the primary
    key identifies a row, and a text copy of it cost a fifth of the full-load time
    (writing unique strings to parquet and storing them in DuckDB).
    """
    return batch.append_column(
        pa.field("_source_deleted_at", pa.timestamp("us")),
        pa.nulls(batch.num_rows, pa.timestamp("us")),
    )


def _empty_batch(columns: Sequence[SourceColumn]) -> pa.Table:
    return pa.table({c.name: pa.array([], c.arrow_type) for c in columns})


def row_hash(alias: str, columns: Sequence[str]) -> str:
    """SQL for an md5 of ``columns`` of ``alias``, the same text whichever side it reads."""
    # chr(31) (unit separator) cannot occur in the values' text by accident; NULL gets a marker.
    parts = ", ".join(f"coalesce(cast({alias}.\"{c}\" as varchar), '\\N')" for c in columns)
    return f"md5(concat_ws(chr(31), {parts}))"


def _changed_rows(
    ctx: ExtractContext, table: str, key: str, batch: pa.Table, compared: Sequence[str]
) -> pa.Table:
    """The rows of ``batch`` that raw lacks, holds as deleted, or holds with other values."""
    assert ctx.warehouse is not None
    raw_key = _naming.normalize_identifier(key)
    cur = ctx.warehouse.cursor()
    try:
        cur.register(
            "incoming_rows",
            batch.rename_columns([_naming.normalize_identifier(n) for n in batch.column_names]),
        )
        changed = (
            cur.sql(
                f'select s."{raw_key}" from incoming_rows s '
                f'left join {DATASET}."{table}" r on r."{raw_key}" = s."{raw_key}" '
                f'where r."{raw_key}" is null or r._source_deleted_at is not null '
                f"or {row_hash('s', compared)} <> {row_hash('r', compared)}"
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


def _apply_casts(batch: pa.Table, drift: Drift) -> pa.Table:
    for name, old in drift.casts.items():
        for i, column_name in enumerate(batch.column_names):
            if _naming.normalize_identifier(column_name) == name:
                batch = batch.set_column(i, column_name, pc.cast(batch.column(i), old.arrow_type()))
    return batch


def _literal(value: Any) -> str:
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return f"'{text}.{value.microsecond:06d}'" if value.microsecond else f"'{text}'"
    if isinstance(value, int):
        return str(value)
    raise ExtractError(f"unsupported cursor value {value!r}")


def _cursor_from_state(value: Any) -> Any:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _cursor_to_state(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return int(value)


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


def _table_rows(spec: TableSpec, ctx: ExtractContext) -> Iterator[Any]:
    """The rows of one spec'd table for this run: full, or the delta since the cursor."""
    report = ctx.report(spec.name)
    report.started_at = datetime.now(UTC).replace(tzinfo=None)
    stats = ReadStats()
    state = dlt.current.resource_state(spec.name)  # by name: this runs in dlt's worker pool
    cursor_value = _cursor_from_state(state.get("cursor")) if spec.cursor else None
    report.mode = "incremental" if cursor_value is not None else "full"
    newest: Any = cursor_value
    try:
        reader = ctx.reader
        columns, skipped = reader.columns(
            spec.name, spec.never_selected, spec.booleans, spec.primary_key
        )
        report.skipped_columns = skipped
        report.masked_columns = [
            c for c in spec.masked_columns if any(x.name == c for x in columns)
        ]
        existing = _existing_columns(spec.name, ctx)
        landed = landed_columns(columns, spec)
        drift = detect_drift(spec.name, existing, landed)
        # Re-read rows (lookback window, whole small tables) that raw already holds unchanged
        # are not landed again: a merge of nothing costs dlt a staging table per run. Skipped
        # while columns drift (every re-read row must land then) and outside run_extract.
        compared: list[str] = []
        if (
            ctx.warehouse is not None
            and spec.write_disposition == "merge"
            and existing
            and not drift.new_columns
            and not drift.dropped_columns
            and not drift.casts
        ):
            compared = [n for n in landed if n in existing]
        report.new_columns, report.dropped_columns = drift.new_columns, drift.dropped_columns
        where = None
        if spec.cursor and cursor_value is not None:
            q = reader.quote(spec.cursor)
            if isinstance(cursor_value, datetime):
                since = cursor_value - timedelta(seconds=spec.lag_seconds)
                where = f"{q} >= {_literal(since)}"
            else:
                where = f"{q} > {_literal(cursor_value - int(spec.lag_seconds))}"
        key = reader.quote(spec.primary_key)

        def read(lo: int, hi: int) -> pa.Table:
            bounds = None if lo == hi == -1 else f"{key} > {lo} AND {key} <= {hi}"
            condition = " AND ".join(p for p in (where, bounds) if p)
            return reader.read(spec.name, columns, condition or None, stats)

        expected, batches = _key_range_batches(
            reader, spec.name, spec.primary_key, where, ctx.chunk_rows, stats, read
        )
        ctx.progress.table_started(spec.name, report.mode, expected)
        hints = dlt.mark.make_hints(columns=_column_hints(columns))
        first = True
        for batch in batches:
            if batch.num_rows == 0:
                continue
            if spec.cursor:
                top = pc.max(batch.column(spec.cursor)).as_py()
                if top is not None and (newest is None or top > newest):
                    newest = top
            ctx.progress.rows_read(spec.name, batch.num_rows)
            batch = _apply_casts(mask_pii(batch, spec, ctx.pii_key), drift)
            if compared:
                batch = _changed_rows(ctx, spec.name, spec.primary_key, batch, compared)
                if batch.num_rows == 0:
                    continue
            batch = _with_bookkeeping(batch)
            yield dlt.mark.with_hints(batch, hints) if first else batch
            first = False
        if first and not existing:
            # An empty source table still gets its raw table: dbt's sources must exist.
            empty = mask_pii(_empty_batch(columns), spec, ctx.pii_key)
            yield dlt.mark.with_hints(_with_bookkeeping(empty), hints)
        if spec.cursor and newest is not None:
            state["cursor"] = _cursor_to_state(newest)
    except (SourceError, TableDriftError) as exc:
        report.status, report.error = "failed", str(exc)
        # Append-only tables are read in ascending key order: what was yielded is contiguous,
        # so the cursor may move up to it without a gap, and a rerun appends no duplicate.
        if spec.write_disposition == "append" and newest is not None and newest != cursor_value:
            state["cursor"] = _cursor_to_state(newest)
    finally:
        report.absorb(stats)
        report.finished_at = datetime.now(UTC).replace(tzinfo=None)
        ctx.progress.table_finished(report)


def _unspecified_rows(table: str, ctx: ExtractContext) -> Iterator[Any]:
    """Any other table: reflected and loaded whole (replace), columns without a mapping skipped."""
    report = ctx.report(table, specified=False)
    report.mode = "replace"
    report.started_at = datetime.now(UTC).replace(tzinfo=None)
    stats = ReadStats()
    try:
        reader = ctx.reader
        keys = reader.primary_key(table)
        columns, skipped = reader.columns(table, primary_key=keys[0] if len(keys) == 1 else None)
        report.skipped_columns = skipped
        for name, reason in skipped.items():
            log.warning("%s.%s skipped: %s", table, name, reason)
        if not columns:
            raise SourceError(f"{table} has no column with a supported type")
        key = (
            keys[0]
            if len(keys) == 1 and any(c.name == keys[0] and c.kind == "integer" for c in columns)
            else None
        )
        kinds = {c.name: c.kind for c in columns}
        batches: Iterator[pa.Table]
        expected = reader.estimated_rows(table)
        if key is not None:
            quoted = reader.quote(key)

            def read(lo: int, hi: int) -> pa.Table:
                return reader.read(table, columns, f"{quoted} > {lo} AND {quoted} <= {hi}", stats)

            expected, batches = _key_range_batches(
                reader, table, key, None, ctx.chunk_rows, stats, read
            )
        elif keys and all(kinds.get(k) in SourceReader.KEYSET_KINDS for k in keys):
            # Composite or non-integer key: pages of chunk_rows rows in key order.
            batches = reader.keyset_batches(table, columns, keys, ctx.chunk_rows, stats)
        else:
            # No key to page on: one server-side cursor, chunk_rows rows at a time.
            batches = reader.stream_batches(table, columns, ctx.chunk_rows, stats)
        ctx.progress.table_started(table, report.mode, expected)
        hints = dlt.mark.make_hints(columns=_column_hints(columns))
        first = True
        for batch in batches:
            if batch.num_rows == 0:
                continue
            batch = _with_bookkeeping(batch)
            ctx.progress.rows_read(table, batch.num_rows)
            yield dlt.mark.with_hints(batch, hints) if first else batch
            first = False
        if first:
            yield dlt.mark.with_hints(_with_bookkeeping(_empty_batch(columns)), hints)
    except SourceError as exc:
        report.status, report.error = "failed", str(exc)
    finally:
        report.absorb(stats)
        report.finished_at = datetime.now(UTC).replace(tzinfo=None)
        ctx.progress.table_finished(report)


def table_resource(spec: TableSpec, ctx: ExtractContext) -> DltResource:
    """The dlt resource of one spec'd table (nothing is read until it runs)."""

    def rows() -> Iterator[Any]:
        yield from _table_rows(spec, ctx)

    return dlt.resource(
        rows,
        name=spec.name,
        primary_key=spec.primary_key,
        write_disposition=spec.write_disposition,
        columns=_column_hints([]),
        file_format="parquet",
        parallelized=True,
    )


def unspecified_resource(table: str, ctx: ExtractContext) -> DltResource:
    """The dlt resource of an unspecified table: full replace."""

    def rows() -> Iterator[Any]:
        yield from _unspecified_rows(table, ctx)

    return dlt.resource(
        rows,
        name=table,
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
    ``unspecified``. Reflection happens when a resource runs, so Dagster's
    ``@dlt_assets`` can load this in an environment without the database.
    """
    context = ctx or ExtractContext(settings)
    names = list(tables) if tables is not None else list(TABLE_SPECS)

    @dlt.source(name=SOURCE_NAME, max_table_nesting=0, root_key=False)
    def platform() -> list[DltResource]:
        resources = [table_resource(TABLE_SPECS[n], context) for n in names if n in TABLE_SPECS]
        resources += [unspecified_resource(n, context) for n in unspecified]
        return resources

    return platform()


def platform_pipeline(
    settings: WarehouseSettings, connection: duckdb.DuckDBPyConnection | None = None
) -> dlt.Pipeline:
    """The dlt pipeline into ``raw`` of the warehouse file; its state lives beside the file."""
    warehouse = settings.warehouse_path
    destination = dlt.destinations.duckdb(connection if connection is not None else str(warehouse))
    _resolve_capabilities_once(destination)
    return dlt.pipeline(
        pipeline_name="platform_" + re.sub(r"[^A-Za-z0-9_]", "_", warehouse.stem),
        pipelines_dir=str(warehouse.parent / ".dlt_pipelines"),
        destination=destination,
        dataset_name=DATASET,
    )


def _resolve_capabilities_once(destination: Any) -> None:
    """Memoize the destination's capabilities on this instance, per naming convention.

    dlt asks for them dozens of times per run and resolves the whole destination
    configuration each time (~20-50 ms apiece, a sixth of a small incremental run); they
    depend only on the factory's arguments and the naming, fixed for the pipeline's life.
    Each caller gets its own copy: dlt adjusts the one it is given.
    """
    compute = destination.capabilities
    resolved: dict[tuple[Any, Any], Any] = {}

    def capabilities(config: Any = None, naming: Any = None) -> Any:
        if config is not None:
            return compute(config, naming)  # cheap: nothing to resolve
        # dlt builds a new naming object per call: the same convention has the same key.
        key = (type(naming), getattr(naming, "max_length", None))
        if key not in resolved:
            resolved[key] = compute(None, naming)
        return copy.copy(resolved[key])

    destination.capabilities = capabilities


# -- running -------------------------------------------------------------------------------------------


def _open_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # DuckDB's buffer pool would otherwise grow towards 80% of RAM with the table being
        # loaded; a fixed cap keeps the extractor's memory independent of table size.
        return duckdb.connect(str(path), config={"memory_limit": DUCKDB_MEMORY_LIMIT})
    except duckdb.IOException as exc:
        raise ExtractError(
            f"cannot open the warehouse {path}: {str(exc).splitlines()[0]} "
            "(DuckDB allows one writing process per file; wait for the other one to finish)"
        ) from None


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


def plan_tables(
    reader: SourceReader, requested: Sequence[str] | None
) -> tuple[list[str], list[str], list[str]]:
    """(spec'd tables present in the source, unspecified tables, spec'd tables missing)."""
    present = set(reader.table_names())
    if requested:
        unknown = [t for t in requested if t not in present and t not in TABLE_SPECS]
        if unknown:
            raise ExtractError(f"no such table in the source: {', '.join(unknown)}")
        excluded = [t for t in requested if t in EXCLUDED_TABLES]
        if excluded:
            reasons = "; ".join(f"{t} ({EXCLUDED_TABLES[t]})" for t in excluded)
            raise ExtractError(f"excluded on purpose: {reasons}")
        wanted = list(requested)
    else:
        wanted = sorted(present | set(TABLE_SPECS))
    specified = [t for t in TABLE_SPECS if t in wanted and t in present]
    missing = [t for t in TABLE_SPECS if t in wanted and t not in present]
    unspecified = sorted(
        t for t in wanted if t in present and t not in TABLE_SPECS and t not in EXCLUDED_TABLES
    )
    return specified, unspecified, missing


def run_extract(
    settings: WarehouseSettings,
    mode: RunMode = "incremental",
    tables: Sequence[str] | None = None,
    progress: ExtractProgress | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    reader_factory: Callable[[str], SourceReader] | None = None,
) -> ExtractSummary:
    """Extract the platform database into ``raw`` and return what happened per table.

    ``mode="incremental"`` reads each table's delta since its cursor (everything on the
    first run); ``mode="reconcile"`` does that, then compares primary keys (and row
    hashes for stale-cursor tables) with the source, lands what was missed and marks
    hard-deleted rows with ``_source_deleted_at``.
    """
    started = time.perf_counter()
    ctx = ExtractContext(settings, chunk_rows, progress, reader_factory)
    reader = ctx.reader
    specified, unspecified, missing = plan_tables(reader, tables)
    ctx.pii_key  # noqa: B018 - fail before any work when a real source has no key
    # The probe queries the source while DuckDB and dlt's pipeline open (~50 ms each).
    prober = ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract-probe")
    probing = prober.submit(_probe, ctx, specified)
    prober.shutdown(wait=False)
    conn = _open_warehouse(settings.warehouse_path)
    ctx.warehouse = conn
    try:
        pipeline = platform_pipeline(settings, conn)
        ctx.remember_schema(pipeline)
        raw_tables = _raw_tables(conn)
        probes = probing.result()
        unchanged = _unchanged_tables(pipeline, conn, probes, raw_tables)
        for name in specified:
            ctx.report(name)  # the summary lists tables in spec order, read or not
            if name in unchanged:
                _report_unchanged(ctx, TABLE_SPECS[name])
        to_read = [n for n in specified if n not in unchanged]
        source = platform_source(settings, to_read, unspecified, ctx)
        for name in to_read:
            # A first load into an empty table needs no merge: append skips dlt's staging copy.
            if TABLE_SPECS[name].write_disposition == "merge" and not _table_has_rows(
                conn, name, raw_tables
            ):
                source.resources[name].apply_hints(write_disposition="append")
        for name in missing:
            report = ctx.report(name)
            report.status, report.error = "failed", f"{name} is spec'd but not in the source"
        load_id = f"failed_{int(time.time() * 1e6)}"

        def summarize() -> ExtractSummary:
            return ExtractSummary(
                load_id=load_id,
                mode=mode,
                source=reader.display_url,
                warehouse=settings.warehouse_path,
                tables=ctx.reports,
                seconds=time.perf_counter() - started,
                load_retries=ctx.load_retries,
            )

        try:
            with _quiet_expected_dlt_warnings():
                if to_read or unspecified or pipeline.has_pending_data:
                    load_id = _run_pipeline(pipeline, source, ctx)
                else:
                    load_id = f"unchanged_{int(time.time() * 1e6)}"
                if mode == "reconcile":
                    from ingestion.reconcile import reconcile_tables

                    specs = [TABLE_SPECS[n] for n in specified]
                    load_id = reconcile_tables(pipeline, ctx, specs) or load_id
        except ExtractError:
            write_extract_log(conn, summarize())  # the failed run is on record too
            raise
        _remember_probes(ctx, pipeline, conn, load_id, probes, to_read)
        summary = summarize()
        write_extract_log(conn, summary)
        return summary
    finally:
        conn.close()
        reader.close()


def _probe(ctx: ExtractContext, names: Sequence[str]) -> dict[str, Probe]:
    """Probes of the tables that can be probed (none when the probe itself fails)."""
    probed = []
    for name in names:
        spec = TABLE_SPECS[name]
        try:
            columns, _ = ctx.reader.columns(
                name, spec.never_selected, spec.booleans, spec.primary_key
            )
        except SourceError:
            continue  # the table's own read reports it
        probed.append((spec, columns))
    try:
        return probe_tables(ctx.reader, probed, ctx.pii_key)
    except SourceError as exc:
        log.warning("probing the source failed, reading every table: %s", exc)
        return {}


def _state_cursor(pipeline: dlt.Pipeline, table: str) -> str | None:
    resources = pipeline.state.get("sources", {}).get(SOURCE_NAME, {}).get("resources", {})
    value = resources.get(table, {}).get("cursor")
    return None if value is None else str(value)


def _unchanged_tables(
    pipeline: dlt.Pipeline,
    conn: duckdb.DuckDBPyConnection,
    probes: dict[str, Probe],
    raw_tables: set[str],
) -> set[str]:
    """Tables whose read would land nothing: no new append-only row, or the same newest
    cursor, columns and fingerprint of the re-read rows as when raw last read them."""
    stored = stored_probes(conn, DATASET)
    unchanged: set[str] = set()
    for name, probe in probes.items():
        if name not in raw_tables:
            continue
        spec = TABLE_SPECS[name]
        cursor = _state_cursor(pipeline, name) if spec.cursor else None
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
    report.started_at = report.finished_at = datetime.now(UTC).replace(tzinfo=None)
    ctx.progress.table_started(spec.name, report.mode, 0)
    ctx.progress.table_finished(report)


def _remember_probes(
    ctx: ExtractContext,
    pipeline: dlt.Pipeline,
    conn: duckdb.DuckDBPyConnection,
    load_id: str,
    before: dict[str, Probe],
    read: Sequence[str],
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
    keep = {
        n: before[n]
        for n in candidates
        if after.get(n) == before[n]
        and (not TABLE_SPECS[n].cursor or _state_cursor(pipeline, n) == before[n].cursor)
    }
    save_probes(conn, DATASET, load_id, keep, [n for n in read if n not in keep])


class _HintOverrideFilter(logging.Filter):
    """Drops dlt's warning that our column hints override Arrow's: they do so on purpose
    (naive timestamps, declared precision)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "several column hints were different" not in record.getMessage()


@contextlib.contextmanager
def _quiet_expected_dlt_warnings() -> Iterator[None]:
    dlt_log = logging.getLogger("dlt")
    quiet = _HintOverrideFilter()
    dlt_log.addFilter(quiet)
    try:
        yield
    finally:
        dlt_log.removeFilter(quiet)


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


def _normalized_counts(pipeline: dlt.Pipeline) -> dict[str, int]:
    normalized = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    return dict(normalized.row_counts) if normalized else {}


def run_with_load_retries(
    pipeline: dlt.Pipeline, source: Any, ctx: ExtractContext
) -> tuple[Any, dict[str, int]]:
    """``pipeline.run(source)``, its load step repeated with backoff on a transient error.

    The package is extracted and normalized by then (the resources' state in it), so only
    its load runs again. Returns dlt's load info and the rows normalized per table.
    """
    counts: dict[str, int] = {}
    attempt = 0
    load_only = False
    with dlt.config.values(DLT_CONFIG):
        while True:
            try:
                if load_only:
                    info = pipeline.load()
                else:
                    info = pipeline.run(source, loader_file_format="parquet")
                return info, _normalized_counts(pipeline) or counts
            except PipelineStepFailed as exc:
                if (
                    exc.step != "load"
                    or attempt >= LOAD_RETRIES
                    or not pipeline.has_pending_data
                    or not _transient_load_error(exc)
                ):
                    raise
                counts = counts or _normalized_counts(pipeline)
                attempt += 1
                ctx.load_retries += 1
                delay = LOAD_BACKOFF_SECONDS * 2 ** (attempt - 1)
                message = str(exc.__cause__ or exc).strip().splitlines()[0]
                log.warning(
                    "load into %s: %s; retry %d/%d in %.1f s",
                    pipeline.dataset_name,
                    message,
                    attempt,
                    LOAD_RETRIES,
                    delay,
                )
                time.sleep(delay)
                load_only = True


def _run_pipeline(pipeline: dlt.Pipeline, source: Any, ctx: ExtractContext) -> str:
    """Run dlt and record rows landed per table; a failed load fails every table in it."""
    try:
        info, counts = run_with_load_retries(pipeline, source, ctx)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0]
        for report in ctx.reports.values():
            if report.status == "ok":
                report.status, report.error = "failed", f"load failed: {message}"
        raise ExtractError(f"the load into {pipeline.dataset_name} failed: {message}") from exc
    for table, rows in counts.items():
        if table in ctx.reports:
            ctx.reports[table].rows_landed += rows
    return info.loads_ids[-1] if info.loads_ids else f"noload_{int(time.time() * 1e6)}"


EXTRACT_LOG_DDL = f"""
create table if not exists {DATASET}.{EXTRACT_LOG} (
    load_id varchar,
    table_name varchar,
    mode varchar,
    started_at timestamp,
    finished_at timestamp,
    rows_read bigint,
    rows_landed bigint,
    zero_dates_nulled bigint,
    deletes_detected bigint,
    changed_rows_detected bigint,
    status varchar,
    error varchar
)
"""


def write_extract_log(conn: duckdb.DuckDBPyConnection, summary: ExtractSummary) -> None:
    """Append one row per table of this run to ``raw._extract_log``."""
    conn.execute(f"create schema if not exists {DATASET}")
    conn.execute(EXTRACT_LOG_DDL)
    rows = [
        (
            summary.load_id,
            r.table,
            r.mode,
            r.started_at,
            r.finished_at,
            r.rows_read,
            r.rows_landed,
            r.zero_dates_nulled,
            r.deletes_detected,
            r.changed_rows_detected,
            r.status,
            r.error,
        )
        for r in summary.tables.values()
    ]
    if rows:
        # One insert from Arrow: DuckDB's executemany costs ~10 ms a row.
        names = [
            "load_id", "table_name", "mode", "started_at", "finished_at", "rows_read",
            "rows_landed", "zero_dates_nulled", "deletes_detected", "changed_rows_detected",
            "status", "error",
        ]  # fmt: skip
        types = [
            pa.string(), pa.string(), pa.string(), pa.timestamp("us"), pa.timestamp("us"),
            pa.int64(), pa.int64(), pa.int64(), pa.int64(), pa.int64(), pa.string(), pa.string(),
        ]  # fmt: skip
        log_rows = pa.table(
            [
                pa.array(list(values), type)
                for values, type in zip(zip(*rows, strict=True), types, strict=True)
            ],
            names=names,
        )
        conn.register("extract_log_rows", log_rows)
        conn.execute(f"insert into {DATASET}.{EXTRACT_LOG} by name select * from extract_log_rows")
        conn.unregister("extract_log_rows")


def inventory(settings: WarehouseSettings) -> list[tuple[str, str, str]]:
    """Every source table and what happens to it: (table, fate, detail)."""
    reader = SourceReader(resolve_source_url(settings))
    present = reader.table_names()
    rows: list[tuple[str, str, str]] = []
    for table in sorted(set(present) | set(TABLE_SPECS)):
        spec = TABLE_SPECS.get(table)
        if table in EXCLUDED_TABLES:
            rows.append((table, "excluded", EXCLUDED_TABLES[table]))
        elif spec and table not in present:
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
            rows.append((table, "spec'd", detail))
        else:
            rows.append((table, "unspecified", "loaded whole (replace), types reflected"))
    return rows


__all__ = [
    "BOOKKEEPING",
    "DLT_CONFIG",
    "ExtractError",
    "ExtractSummary",
    "TableReport",
    "inventory",
    "platform_pipeline",
    "platform_source",
    "run_extract",
]
