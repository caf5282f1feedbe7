"""``warehouse extract --reconcile``: what a cursor cannot see.

After the incremental pass, every spec'd table's primary keys are compared with
raw, range by range, without re-copying rows:

- duplicate keys in raw (a load job re-executed after a crash appends its rows twice)
  are removed first, keeping the newest live row of each key;
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
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from ingestion import ledger
from ingestion.context import (
    DATASET,
    DLT_CONFIG,
    ExtractContext,
    ExtractError,
    TablePlan,
    TableReport,
    landed_columns,
)
from ingestion.drift import BOOKKEEPING
from ingestion.reading import (
    column_hints,
    hand_over,
    load_with_retries,
    make_plan,
    prepare_batch,
    raw_names,
    raw_tables_present,
    root_cause,
    row_hash,
)
from ingestion.settings import redact
from ingestion.source_reader import ReadStats, SourceError, snake_case
from ingestion.specs import TableSpec

IN_LIST_SIZE = 1_000


def _reconcile_rows(plan: TablePlan, ctx: ExtractContext, key_limit: int | None) -> Iterator[Any]:
    """Rows to land for ``plan``'s table (missing or changed); records hard deletes in ``ctx``."""
    assert plan.spec is not None
    spec = plan.spec
    report = ctx.report(plan.table)
    stats = ReadStats()
    reader = ctx.reader
    assert ctx.warehouse is not None
    cur = ctx.warehouse.cursor()
    key = spec.primary_key
    raw_key = snake_case(key)
    relation = f'{DATASET}."{plan.raw_table}"'
    try:
        columns = plan.columns
        key_column = [c for c in columns if c.name == key]
        raw_columns = {
            r[0]
            for r in cur.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [DATASET, plan.raw_table],
            ).fetchall()
        }
        compared = [
            n for n in landed_columns(columns, spec) if n in raw_columns and n not in BOOKKEEPING
        ]
        live = f'(select "{raw_key}" as k from {relation} where _source_deleted_at is null'
        live += f' and "{raw_key}" <= {key_limit})' if key_limit is not None else ")"
        cur.execute("create or replace temp table reconcile_source_keys (k bigint)")
        limit = f"{reader.quote(key)} <= {key_limit}" if key_limit is not None else None
        _, ranges = reader.key_ranges(plan.table, key, limit, ctx.chunk_rows, stats)
        hints = dlt.mark.make_hints(columns=column_hints(columns))
        first = True
        for lo, hi in ranges:
            bounds = f"{reader.quote(key)} > {lo} AND {reader.quote(key)} <= {hi}"
            batch = reader.read(
                plan.table, columns if spec.stale_cursor else key_column, bounds, stats
            )
            keyed = batch.select([key])
            if ctx.erasures and key in spec.people:
                keyed, _ = ctx.erasures.apply(keyed, spec)  # raw holds erased accounts' new ids
            keys = pa.table({"k": pc.cast(keyed.column(key), pa.int64())})
            cur.register("reconcile_batch_keys", keys)
            cur.execute("insert into reconcile_source_keys select k from reconcile_batch_keys")
            cur.unregister("reconcile_batch_keys")
            if not spec.stale_cursor or batch.num_rows == 0:
                continue
            prepared = prepare_batch(batch, plan, ctx, report)
            cur.register("reconcile_batch", prepared.rename_columns(raw_names(prepared, plan)))
            changed = cur.sql(
                f'select s."{raw_key}" from reconcile_batch s '
                f'join {relation} r on r."{raw_key}" = s."{raw_key}" '
                f"where r._source_deleted_at is null "
                f"and {row_hash('s', compared)} <> {row_hash('r', compared)}"
            ).to_arrow_table()
            cur.unregister("reconcile_batch")
            ids = changed.column(0) if changed.num_rows else pa.array([], pa.int64())
            if len(ids):
                report.changed_rows_detected += len(ids)
                rows = prepared.filter(pc.is_in(pc.cast(prepared.column(key), pa.int64()), ids))
                yield hand_over(rows, plan, ctx, report, hints, first)
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
        ctx.deleted[plan.table] = deleted
        report.deletes_detected += len(deleted)
        report.changed_rows_detected += len(missing)
        for start in range(0, len(missing), IN_LIST_SIZE):
            chunk = missing[start : start + IN_LIST_SIZE]
            batch = reader.read(
                plan.table,
                columns,
                f"{reader.quote(key)} IN ({', '.join(str(int(k)) for k in chunk)})",
                stats,
            )
            yield hand_over(
                prepare_batch(batch, plan, ctx, report), plan, ctx, report, hints, first
            )
            first = False
    except Exception as exc:
        report.fail(f"reconcile: {str(exc).splitlines()[0]}")
    finally:
        cur.execute("drop table if exists reconcile_source_keys")
        cur.close()
        report.absorb(stats)
        report.mode = "reconcile"


def _reconcile_resource(plan: TablePlan, ctx: ExtractContext, limit: int | None) -> Any:
    spec = plan.spec
    assert spec is not None

    def rows() -> Iterator[Any]:
        yield from _reconcile_rows(plan, ctx, limit)

    return dlt.resource(
        rows,
        name=f"{spec.name}__reconcile",
        table_name=plan.raw_table,
        primary_key=spec.primary_key,
        write_disposition=spec.write_disposition,
        columns=column_hints([]),
        file_format="parquet",
    )


def reconcile_tables(
    pipeline: dlt.Pipeline,
    ctx: ExtractContext,
    specs: Sequence[TableSpec],
    first_pass: dict[str, TableReport] | None = None,
) -> str | None:
    """Reconcile ``specs`` with the source; return the load id of what was landed.

    ``first_pass``: the reports as the run's incremental load left them (that load has its
    own log rows; this one's count only what reconcile did)."""
    conn = ctx.warehouse
    assert conn is not None
    present = raw_tables_present(conn)
    ctx.deleted = {}
    for report in ctx.reports.values():
        report.in_package = False
    resources = []
    cursors = ledger.landed_cursors(
        conn,
        DATASET,
        {
            s.name: (snake_case(s.cursor or ""), True)
            for s in specs
            if s.write_disposition == "append" and s.cursor
        },
        present,
    )
    for spec in specs:
        if spec.name not in present or ctx.report(spec.name).status == "failed":
            continue
        report = ctx.report(spec.name)
        removed = ledger.remove_duplicate_keys(
            conn, DATASET, spec.name, [snake_case(spec.primary_key)]
        )
        report.duplicates_removed += removed
        limit = cursors.get(spec.name) if spec.write_disposition == "append" else None
        if spec.write_disposition == "append" and limit is None:
            continue
        try:
            plan = ctx.plans.get(spec.name) or make_plan(ctx, spec.name, spec.name, {}, None)
        except SourceError as exc:
            report.fail(f"reconcile: {exc}")
            continue
        plan.compared = []
        report.in_package = False

        resources.append(_reconcile_resource(plan, ctx, int(limit) if limit is not None else None))

    @dlt.source(name="platform", max_table_nesting=0, root_key=False)
    def platform() -> list[Any]:
        return resources

    before = first_pass or {}
    try:
        with dlt.config.values(DLT_CONFIG):
            extracted = pipeline.extract(platform(), loader_file_format="parquet")
        load_id = extracted.loads_ids[-1] if extracted.loads_ids else None
        if load_id is not None:
            ctx.run_id = ctx.run_id or load_id
            in_package = [(n, r) for n, r in ctx.reports.items() if r.in_package]
            ledger.write_log(
                conn,
                DATASET,
                [
                    r.log_row(
                        load_id,
                        "loading" if r.status == "ok" else None,
                        before.get(n),
                        run_id=ctx.run_id,
                    )
                    for n, r in in_package
                ],
            )
            load_with_retries(pipeline, ctx)
    except Exception as exc:
        raise ExtractError(
            f"the reconcile load failed: {redact(root_cause(exc), ctx.settings.secrets())}"
        ) from exc
    detected_at = ledger.now()
    for table, keys in ctx.deleted.items():
        if not len(keys):
            continue
        spec = next(s for s in specs if s.name == table)
        key = snake_case(spec.primary_key)
        conn.register("reconcile_deleted", pa.table({"k": keys}))
        conn.execute(
            f'update {DATASET}."{table}" set _source_deleted_at = ? '
            f'where "{key}" in (select k from reconcile_deleted)',
            [detected_at],
        )
        conn.unregister("reconcile_deleted")
    return load_id
