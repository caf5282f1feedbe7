"""The dlt resources of ``warehouse extract``: planning each table and reading it.

``make_plan`` decides what to read of a table (columns with privacy rules applied, drift
against raw, the cursor); the resources read it in primary-key ranges, the next range
prefetched while dlt writes the current one, and hand dlt only rows raw does not hold
unchanged. ``platform_source`` and ``platform_pipeline`` build dlt's source and pipeline
without touching any database, so Dagster can load its definitions anywhere.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

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
from ingestion.context import (
    DATASET,
    DLT_CONFIG,
    DUCKDB_MEMORY_LIMIT,
    LOAD_BACKOFF_SECONDS,
    LOAD_RETRIES,
    SOURCE_NAME,
    ExtractContext,
    ExtractError,
    TablePlan,
    TableReport,
    landed_columns,
    landed_name,
)
from ingestion.drift import (
    LandedType,
    TableDriftError,
    detect_drift,
)
from ingestion.errors import describe_warehouse_error
from ingestion.pii import mask_pii
from ingestion.privacy import held_back, probable_rename, redact_batch, rules_for_rename
from ingestion.settings import WarehouseSettings
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
    TABLE_SPECS,
    TableSpec,
    contract_columns,
    contract_integer_keys,
)

log = logging.getLogger("ingestion.extract")


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


def plan_of(ctx: ExtractContext, table: str) -> TablePlan:
    """The plan of ``table`` in this run (made here, without a warehouse, when ``run_extract``
    did not make it)."""
    if table not in ctx.plans:
        ctx.plans[table] = make_plan(ctx, table, snake_case(table), {}, None)
    return ctx.plans[table]


def column_hints(
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


def prepare_batch(
    batch: pa.Table, plan: TablePlan, ctx: ExtractContext, report: TableReport
) -> pa.Table:
    """Mask PII, rewrite erased people, redact personal-looking values of unclassified text,
    cast narrowed columns."""
    if plan.spec is not None and plan.spec.pii:
        batch = mask_pii(batch, plan.spec, ctx.pii_key)
    if ctx.erasures:
        batch, _ = ctx.erasures.apply(batch, plan.spec)
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


def cursor_state_text(value: Any) -> str | None:
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


def hand_over(
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


@contextmanager
def _reading(ctx: ExtractContext, report: TableReport, stats: ReadStats) -> Iterator[None]:
    """Around one table's read: its times and read statistics on the report, whatever
    happens; a source error or a drift that stops the table recorded on it, not raised."""
    report.started_at = ledger.now()
    try:
        yield
    except (SourceError, TableDriftError) as exc:
        # What was yielded lands. The next run's cursor comes from raw: for an append-only
        # table (read in key order) what landed is a contiguous prefix; a mutable table's rows
        # of this failed read are left out of its cursor (ingestion/ledger.py).
        report.fail(str(exc))
    finally:
        report.absorb(stats)
        report.finished_at = ledger.now()
        ctx.progress.table_finished(report)


def _hints(plan: TablePlan) -> Any:
    """dlt's column hints for the table's first batch (types, and columns widened in raw)."""
    widened = {c: n for c, (_, n) in plan.drift.widened.items()}
    return dlt.mark.make_hints(columns=column_hints(plan.columns, widened))


def _handed_over(
    plan: TablePlan,
    ctx: ExtractContext,
    report: TableReport,
    batches: Iterator[pa.Table],
    empty_table: bool,
) -> Iterator[Any]:
    """Each batch read, prepared (masked, erased, redacted, cast), kept only where raw does not
    hold it unchanged (for a table compared with raw), and handed to dlt; with
    ``empty_table`` and nothing handed over, an empty batch, so raw has the table all the same
    (dbt's sources must exist)."""
    hints, first = _hints(plan), True
    for batch in batches:
        if batch.num_rows == 0:
            continue
        ctx.progress.rows_read(plan.table, batch.num_rows)
        batch = prepare_batch(batch, plan, ctx, report)
        if plan.compared:
            batch = _changed_rows(ctx, plan, batch)
            if batch.num_rows == 0:
                continue
        yield hand_over(batch, plan, ctx, report, hints, first)
        first = False
        ctx.faults.reached("read")
    if first and empty_table:
        empty = prepare_batch(_empty_batch(plan.columns), plan, ctx, report)
        yield hand_over(empty, plan, ctx, report, hints, True)


def _since_cursor(spec: TableSpec, cursor: Any, reader: SourceReader) -> str | None:
    """The WHERE of an incremental read: rows at or after the cursor less the spec's lag (a
    timestamp), or after it less the lag (a key); None reads the whole table."""
    if not spec.cursor or cursor is None:
        return None
    column = reader.quote(spec.cursor)
    if isinstance(cursor, datetime):
        return f"{column} >= {_literal(cursor - timedelta(seconds=spec.lag_seconds))}"
    return f"{column} > {_literal(int(cursor) - int(spec.lag_seconds))}"


def _table_rows(table: str, ctx: ExtractContext) -> Iterator[Any]:
    """The rows of one spec'd table for this run: full, or the delta since raw's cursor."""
    report, stats, spec = ctx.report(table), ReadStats(), TABLE_SPECS[table]
    with _reading(ctx, report, stats):
        plan = plan_of(ctx, table)
        cursor = plan.cursor if spec.cursor and table not in ctx.rehash else None
        report.mode = "incremental" if cursor is not None else "full"
        reader = ctx.reader
        where = _since_cursor(spec, cursor, reader)
        key = reader.quote(spec.primary_key)

        def read(lo: int, hi: int) -> pa.Table:
            bounds = None if lo == hi == -1 else f"{key} > {lo} AND {key} <= {hi}"
            condition = " AND ".join(p for p in (where, bounds) if p)
            return reader.read(table, plan.columns, condition or None, stats)

        expected, batches = _key_range_batches(
            reader, table, spec.primary_key, where, ctx.chunk_rows, stats, read
        )
        ctx.progress.table_started(table, report.mode, expected)
        yield from _handed_over(plan, ctx, report, batches, empty_table=plan.cursor is None)


def _integer_key(reader: SourceReader, table: str, columns: Sequence[SourceColumn]) -> str | None:
    """The table's primary key when it is one integer column (read in key ranges)."""
    keys = reader.primary_key(table)
    kinds = {c.name: c for c in columns}
    if len(keys) != 1 or keys[0] not in kinds:
        return None
    column = kinds[keys[0]]
    return keys[0] if column.kind == "integer" or (column.unsigned and column.scale == 0) else None


def _unspecified_rows(table: str, ctx: ExtractContext) -> Iterator[Any]:
    """Any other table: reflected and loaded whole (replace), columns without a mapping skipped."""
    report, stats = ctx.report(table, specified=False), ReadStats()
    report.mode = "replace"
    with _reading(ctx, report, stats):
        plan = plan_of(ctx, table)
        reader, columns = ctx.reader, plan.columns
        key = _integer_key(reader, table, columns)
        keys = reader.primary_key(table)
        kinds = {c.name: c for c in columns}
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
        yield from _handed_over(plan, ctx, report, batches, empty_table=True)


def table_resource(spec: TableSpec, ctx: ExtractContext) -> DltResource:
    """The dlt resource of one spec'd table (nothing is read until it runs)."""

    def rows() -> Iterator[Any]:
        yield from _table_rows(spec.name, ctx)

    return dlt.resource(
        rows,
        name=spec.name,
        primary_key=spec.primary_key,
        write_disposition=spec.write_disposition,
        columns=column_hints([]),
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
        columns=column_hints([]),
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


def open_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
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


def raw_tables_present(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute(
        "select table_name from information_schema.tables where table_schema = ?", [DATASET]
    ).fetchall()
    return {r[0] for r in rows}


def table_has_rows(
    conn: duckdb.DuckDBPyConnection, table: str, raw_tables: set[str] | None = None
) -> bool:
    if table not in (raw_tables_present(conn) if raw_tables is None else raw_tables):
        return False
    row = conn.execute(f'select exists(select 1 from {DATASET}."{table}")').fetchone()
    return bool(row and row[0])


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
