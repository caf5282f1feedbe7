"""The dlt pipeline behind ``warehouse extract``: platform database -> DuckDB ``raw``.

``platform_source`` (``reading.py``) is the dlt source: one resource per spec'd table (and,
when asked, one per unspecified table), built without touching any database, so Dagster
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
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import dlt
import duckdb

from ingestion import ledger
from ingestion.context import (
    DATASET,
    DEFAULT_CHUNK_ROWS,
    DLT_CONFIG,
    EXTRACT_LOG,
    STAGING_DATASET,
    ExtractContext,
    ExtractError,
    ExtractProgress,
    ExtractSummary,
    LogProgress,
    RunMode,
    TablePlan,
    TableReport,
    landed_name,
)
from ingestion.drift import (
    BOOKKEEPING,
    TableDriftError,
    raw_columns,
    widen_raw,
)
from ingestion.erasure import Erasures, register_file, sync_register
from ingestion.errors import describe_warehouse_error
from ingestion.pii import PiiKeyError
from ingestion.privacy import probable_rename
from ingestion.probe import Probe, probe_tables, save_probes, stored_probes
from ingestion.reading import (
    cursor_state_text,
    load_with_retries,
    make_plan,
    open_warehouse,
    platform_pipeline,
    platform_source,
    raw_tables_present,
    root_cause,
    table_has_rows,
)
from ingestion.reconcile import reconcile_tables
from ingestion.retention import prune_load_packages
from ingestion.settings import WarehouseSettings, redact
from ingestion.source_reader import (
    SourceError,
    SourceReader,
    snake_case,
)
from ingestion.specs import (
    EXCLUDED_TABLES,
    TABLE_SPECS,
    PiiTreatment,
    TableSpec,
    contract_columns,
    contract_integer_keys,
)

log = logging.getLogger("ingestion.extract")


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
    reader: SourceReader,
    requested: Sequence[str] | None,
    include_views: bool = False,
    withheld: Sequence[str] = (),
) -> TablePlanList:
    """What this run reads: spec'd tables present, unspecified tables (and views when asked),
    spec'd tables missing (failures unless the source has none of them: a foreign database).
    ``withheld`` tables are never read (the erasure requests: source ids in clear)."""
    if requested and set(requested) & set(withheld):
        raise ExtractError(
            f"{', '.join(sorted(set(requested) & set(withheld)))} holds erasure requests "
            "(WAREHOUSE_ERASURE_TABLE): it is never extracted"
        )
    present = set(reader.table_names()) - set(withheld)
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
    planned = plan_tables(
        reader, tables, include_views, [settings.erasure_table] if settings.erasure_table else []
    )
    specified, unspecified = planned.specified, planned.unspecified
    ctx.pii_key  # noqa: B018 - fail before any work when a real source has no key
    # The probe queries the source while DuckDB and dlt's pipeline open.
    prober = ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract-probe")
    probing = prober.submit(_probe, ctx, specified)
    prober.shutdown(wait=False)
    conn = open_warehouse(settings.warehouse_path)
    ctx.warehouse = conn
    try:
        sync_register(conn, DATASET, register_file(settings.warehouse_path))
        ctx.erasures = Erasures.load(conn, DATASET, ctx.pii_key)
        pipeline = platform_pipeline(settings, conn, ctx.faults.collector())
        with dlt.config.values(DLT_CONFIG):
            pipeline.sync_destination()
        ctx.faults.reached("state_sync")
        recovered = recover_interrupted_loads(pipeline, ctx, drop_pending_load)
        fingerprint = _check_pii_key(conn, ctx, rehash_pii, [*specified, *unspecified])
        raw_tables = raw_tables_present(conn)
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
            if TABLE_SPECS[name].write_disposition == "merge" and not table_has_rows(
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
        prune_load_packages(pipeline, settings.keep_load_packages, settings.keep_load_packages_days)
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
    if stored is not None and ctx.erasures:
        raise PiiKeyError(
            f"WAREHOUSE_PII_KEY is not the key raw's hashes were made with, and raw holds "
            f"{len(ctx.erasures.tokens)} erased accounts whose anonymous ids come from that key: "
            "set the original key (rotating it would bring erased people back)"
        )
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
        cursor = cursor_state_text(cursors.get(name)) if spec.cursor else None
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
            raw_tables_present(conn),
        )
        if candidates
        else {}
    )
    keep = {
        n: before[n]
        for n in candidates
        if after.get(n) == before[n]
        and (not TABLE_SPECS[n].cursor or cursor_state_text(cursors.get(n)) == before[n].cursor)
    }
    save_probes(conn, DATASET, load_id, keep, [n for n in read if n not in keep])


# -- loading, and completing what an interrupted run left ------------------------------------------


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
        data_tables = {t for t in raw_tables_present(conn) if not t.startswith("_")}
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
    raw_tables = raw_tables_present(conn)
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
    "LogProgress",
    "RunMode",
    "TableReport",
    "inventory",
    "platform_pipeline",
    "platform_source",
    "root_cause",
    "run_extract",
]
