"""``warehouse extract --reconcile``: what a cursor cannot see.

After the incremental pass, every spec'd table's primary keys are compared with
raw, range by range, without re-copying rows:

- keys in raw but no longer in the source are hard deletes: the raw row stays with
  its last-seen values and ``_source_deleted_at`` set to the time it was detected;
- keys in the source but not (or no longer live) in raw were committed late or came
  back: those rows are fetched and landed;
- tables whose cursor is stale (enrollments) are also compared row by row with a hash
  of every landed column, computed by DuckDB on both sides with the same expression;
  only rows that differ are landed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.drift import BOOKKEEPING
from ingestion.pii import mask_pii
from ingestion.pipeline import (
    DATASET,
    ExtractContext,
    ExtractError,
    _column_hints,
    _naming,
    _raw_tables,
    _with_bookkeeping,
    landed_columns,
    row_hash,
    run_with_load_retries,
)
from ingestion.source_reader import ReadStats
from ingestion.specs import TableSpec

IN_LIST_SIZE = 1_000


def _append_cursor(pipeline: dlt.Pipeline, table: str) -> int | None:
    resources = pipeline.state.get("sources", {}).get("platform", {}).get("resources", {})
    value = resources.get(table, {}).get("cursor")
    return int(value) if value is not None else None


def _reconcile_rows(spec: TableSpec, ctx: ExtractContext, key_limit: int | None) -> Iterator[Any]:
    """Rows to land for ``spec`` (missing or changed); records hard deletes in ``ctx``."""
    report = ctx.report(spec.name)
    stats = ReadStats()
    reader = ctx.reader
    assert ctx.warehouse is not None
    cur = ctx.warehouse.cursor()
    key = spec.primary_key
    raw_key = _naming.normalize_identifier(key)
    try:
        columns, _ = reader.columns(spec.name, spec.never_selected, spec.booleans, key)
        key_column = [c for c in columns if c.name == key]
        raw_columns = {
            r[0]
            for r in cur.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [DATASET, spec.name],
            ).fetchall()
        }
        compared = [
            n for n in landed_columns(columns, spec) if n in raw_columns and n not in BOOKKEEPING
        ]
        live = f'(select "{raw_key}" as k from {DATASET}."{spec.name}" where _source_deleted_at is null'
        live += f' and "{raw_key}" <= {key_limit})' if key_limit is not None else ")"
        cur.execute("create or replace temp table reconcile_source_keys (k bigint)")
        limit = f"{reader.quote(key)} <= {key_limit}" if key_limit is not None else None
        _, ranges = reader.key_ranges(spec.name, key, limit, ctx.chunk_rows, stats)
        hints = dlt.mark.make_hints(columns=_column_hints(columns))
        first = True
        for lo, hi in ranges:
            bounds = f"{reader.quote(key)} > {lo} AND {reader.quote(key)} <= {hi}"
            batch = reader.read(
                spec.name, columns if spec.stale_cursor else key_column, bounds, stats
            )
            keys = pa.table({"k": pc.cast(batch.column(key), pa.int64())})
            cur.register("reconcile_batch_keys", keys)
            cur.execute("insert into reconcile_source_keys select k from reconcile_batch_keys")
            cur.unregister("reconcile_batch_keys")
            if not spec.stale_cursor or batch.num_rows == 0:
                continue
            masked = mask_pii(batch, spec, ctx.pii_key)
            renamed = masked.rename_columns(
                [_naming.normalize_identifier(n) for n in masked.column_names]
            )
            cur.register("reconcile_batch", renamed)
            changed = cur.sql(
                f'select s."{raw_key}" from reconcile_batch s '
                f'join {DATASET}."{spec.name}" r on r."{raw_key}" = s."{raw_key}" '
                f"where r._source_deleted_at is null "
                f"and {row_hash('s', compared)} <> {row_hash('r', compared)}"
            ).to_arrow_table()
            cur.unregister("reconcile_batch")
            ids = changed.column(0) if changed.num_rows else pa.array([], pa.int64())
            if len(ids):
                report.changed_rows_detected += len(ids)
                rows = masked.filter(pc.is_in(pc.cast(masked.column(key), pa.int64()), ids))
                yield (
                    dlt.mark.with_hints(_with_bookkeeping(rows), hints)
                    if first
                    else _with_bookkeeping(rows)
                )
                first = False
        deleted = (
            cur.sql(f"select k from {live} l anti join reconcile_source_keys s using (k)")
            .to_arrow_table()
            .column(0)
        )
        missing = (
            cur.sql(
                f"select k from reconcile_source_keys s anti join {live} l using (k) order by k"
            )
            .to_arrow_table()
            .column(0)
            .to_pylist()
        )
        ctx.deleted[spec.name] = deleted
        report.deletes_detected += len(deleted)
        report.changed_rows_detected += len(missing)
        for start in range(0, len(missing), IN_LIST_SIZE):
            chunk = missing[start : start + IN_LIST_SIZE]
            batch = reader.read(
                spec.name,
                columns,
                f"{reader.quote(key)} IN ({', '.join(str(int(k)) for k in chunk)})",
                stats,
            )
            rows = _with_bookkeeping(mask_pii(batch, spec, ctx.pii_key))
            yield dlt.mark.with_hints(rows, hints) if first else rows
            first = False
    except Exception as exc:
        report.status, report.error = "failed", f"reconcile: {str(exc).splitlines()[0]}"
    finally:
        cur.execute("drop table if exists reconcile_source_keys")
        cur.close()
        report.absorb(stats)
        report.mode = "reconcile"


def reconcile_tables(
    pipeline: dlt.Pipeline, ctx: ExtractContext, specs: Sequence[TableSpec]
) -> str | None:
    """Reconcile ``specs`` with the source; return the load id of what was landed."""
    assert ctx.warehouse is not None
    present = _raw_tables(ctx.warehouse)
    ctx.deleted = {}
    resources = []
    for spec in specs:
        if spec.name not in present or ctx.report(spec.name).status == "failed":
            continue
        limit = _append_cursor(pipeline, spec.name) if spec.write_disposition == "append" else None
        if spec.write_disposition == "append" and limit is None:
            continue

        def rows(spec: TableSpec = spec, limit: int | None = limit) -> Iterator[Any]:
            yield from _reconcile_rows(spec, ctx, limit)

        resources.append(
            dlt.resource(
                rows,
                name=f"{spec.name}__reconcile",
                table_name=spec.name,
                primary_key=spec.primary_key,
                write_disposition=spec.write_disposition,
                columns=_column_hints([]),
                file_format="parquet",
            )
        )

    @dlt.source(name="platform", max_table_nesting=0, root_key=False)
    def platform() -> list[Any]:
        return resources

    load_id = None
    try:
        info, counts = run_with_load_retries(pipeline, platform(), ctx)
        load_id = info.loads_ids[-1] if info.loads_ids else None
    except Exception as exc:
        raise ExtractError(f"the reconcile load failed: {str(exc).splitlines()[0]}") from exc
    for table, n in counts.items():
        if table in ctx.reports:
            ctx.reports[table].rows_landed += n
    detected_at = datetime.now(UTC).replace(tzinfo=None)
    for table, keys in ctx.deleted.items():
        if not len(keys):
            continue
        key = _naming.normalize_identifier(next(s.primary_key for s in specs if s.name == table))
        ctx.warehouse.register("reconcile_deleted", pa.table({"k": keys}))
        ctx.warehouse.execute(
            f'update {DATASET}."{table}" set _source_deleted_at = ? '
            f'where "{key}" in (select k from reconcile_deleted)',
            [detected_at],
        )
        ctx.warehouse.unregister("reconcile_deleted")
    return load_id
