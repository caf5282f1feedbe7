"""``warehouse forget``: carry an erasure request to every copy the warehouse keeps.

In order, each step safe to repeat (a request run again finds its work done and finishes
the rest):

1. raw and the dbt snapshots: the accounts (and the accounts merged into the same person)
   get an anonymous id, their personal columns are erased, the request is registered so
   that extraction keeps applying it (``ingestion/erasure.py``); dlt's staging tables are
   emptied;
2. dlt's completed load packages are deleted (a pending one stops the request: its rows
   predate the erasure, and loading them would bring the person back);
3. Great Expectations' kept results and their Data Docs pages (failed expectations list
   sample values);
4. a full rebuild of every model and its checks (the Dagster ``transform`` job, with
   ``--full-refresh``), then the warehouse file is rewritten table by table, so no freed
   block keeps an old value;
5. a new published version, then every other kept version and PostgreSQL's rollback schema
   are dropped, and the leadership report is rendered again from the new version (older
   report files are deleted);
6. the request's row in ``raw._erasure_log`` records what was touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from expectations.validation import forget_results
from ingestion.context import DATASET, STAGING_DATASET
from ingestion.erasure import ErasureError, ErasureResult, finish, forget, register_file
from ingestion.errors import describe_warehouse_error
from ingestion.pii import resolve_pii_key
from ingestion.reading import platform_pipeline
from ingestion.retention import purge_load_packages
from ingestion.settings import WarehouseSettings
from ingestion.source_reader import ReadStats, SourceReader
from orchestration.config import OrchestrationSettings
from orchestration.definitions import build_definitions, publication_gate
from orchestration.runner import Progress, run_transform
from serving.checks import CheckSummary
from serving.postgres import drop_rollback_schema
from serving.publish import drop_versions_except, publish_warehouse
from serving.report.render import build_report
from serving.settings import ServingSettings


class ForgetIncomplete(RuntimeError):
    """The request reached raw but not every later copy; running it again finishes it."""


@dataclass
class ForgetOutcome:
    """What one ``warehouse forget`` did, step by step."""

    erasure: ErasureResult
    load_packages_deleted: int = 0
    validation_results_deleted: int = 0
    transform_seconds: float = 0.0
    version: str | None = None
    versions_dropped: int = 0
    postgres: str | None = None
    compacted: bool = False
    reports_deleted: int = 0
    report: Path | None = None
    touched: dict[str, object] = field(default_factory=dict)


def request_ids(settings: WarehouseSettings, given: Sequence[int], file: Path | None) -> list[int]:
    """The user ids of the request: given, read from ``file`` (one per line, ``#`` comments),
    or, with neither, from the source's request table (``WAREHOUSE_ERASURE_TABLE``)."""
    ids = [int(i) for i in given]
    if file is not None:
        if not file.exists():
            raise ErasureError(f"{file} does not exist: give a file with one user id per line")
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            if not text.isdigit():
                raise ErasureError(
                    f"{file}:{number}: {text!r} is not a user id (one source users.id per line)"
                )
            ids.append(int(text))
    if not ids and file is None and settings.erasure_table:
        reader = SourceReader(settings.resolved_source_url)
        try:
            if settings.erasure_table not in reader.table_names():
                raise ErasureError(
                    f"WAREHOUSE_ERASURE_TABLE={settings.erasure_table} is not a table of the "
                    "source: create it (a user_id column) or unset the setting"
                )
            if "user_id" not in reader.column_names(settings.erasure_table):
                raise ErasureError(
                    f"{settings.erasure_table} has no user_id column: the request table needs one"
                )
            table = reader.quote(settings.erasure_table)
            rows = reader.rows(
                f"select distinct {reader.quote('user_id')} from {table} "
                f"where {reader.quote('user_id')} is not null",
                settings.erasure_table,
                ReadStats(),
            )
        finally:
            reader.close()
        ids = [int(r[0]) for r in rows]
    if not ids:
        raise ErasureError(
            "no user id to forget: give --user-id, --file, or set WAREHOUSE_ERASURE_TABLE"
        )
    return ids


def require_warehouse(settings: WarehouseSettings) -> None:
    """Stop, in one line, when there is no warehouse to forget anything in."""
    if not settings.warehouse_path.exists():
        raise ErasureError(
            f"warehouse {settings.warehouse_path} does not exist: nothing to forget yet "
            "(run `warehouse run` first, or give --warehouse)"
        )


def _compact(path: Path) -> None:
    """Rewrite the warehouse file table by table: DuckDB reuses freed blocks but does not
    clear them, so values an UPDATE replaced could otherwise still be read off the disk."""
    fresh = path.with_name(path.name + ".compact")
    fresh.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(path)) as conn:
            name = conn.execute("select current_database()").fetchone()[0]  # type: ignore[index]
            conn.execute(f"attach '{fresh}' as compacted")
            conn.execute(f'copy from database "{name}" to compacted')
            conn.execute("detach compacted")
        os.replace(fresh, path)
    finally:
        fresh.unlink(missing_ok=True)


def forget_people(
    settings: WarehouseSettings,
    orchestration: OrchestrationSettings,
    serving: ServingSettings,
    ids: Sequence[int],
    instance: dg.DagsterInstance,
    tags: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> ForgetOutcome:
    """Carry out one erasure request end to end (see the module's docstring)."""
    require_warehouse(settings)
    pipeline = platform_pipeline(settings)
    if pipeline.has_pending_data:
        raise ErasureError(
            "an interrupted extract left a load whose rows are not in raw yet: run "
            "`warehouse extract` (it completes the load), then `warehouse forget` again"
        )
    key = resolve_pii_key(settings)
    try:
        conn = duckdb.connect(str(settings.warehouse_path))
    except duckdb.Error as exc:
        raise ErasureError(describe_warehouse_error(settings.warehouse_path, exc)) from exc
    try:
        erasure = forget(
            conn, DATASET, ids, key, register_file(settings.warehouse_path), STAGING_DATASET
        )
    finally:
        conn.close()
    outcome = ForgetOutcome(erasure)
    outcome.load_packages_deleted = len(purge_load_packages(pipeline))
    outcome.validation_results_deleted = forget_results(orchestration.gx_site_dir)
    definitions = build_definitions(settings, orchestration)
    summary = run_transform(
        settings,
        orchestration,
        instance,
        definitions,
        full_refresh=True,
        tags=tags,
        progress=progress,
    )
    outcome.transform_seconds = summary.seconds
    if not summary.success:
        _record(settings, outcome, "rebuild failed")
        raise ForgetIncomplete(
            "raw and the snapshots forget them, but the rebuild failed "
            f"({summary.failure or 'a blocking check failed'}): the served version still "
            "holds them; fix it, then run `warehouse forget` again with the same ids"
        )
    # Only now does no table hold them: every model was rebuilt from the rewritten raw.
    _compact(settings.warehouse_path)
    outcome.compacted = True
    verdict = publication_gate(settings, orchestration)
    if not verdict.open:
        _record(settings, outcome, "not published")
        raise ForgetIncomplete(
            f"rebuilt, but not published ({verdict.reason()}): the served version still holds "
            "them; fix it, then run `warehouse forget` again with the same ids"
        )
    result = publish_warehouse(settings.warehouse_path, serving, verdict.summary())
    outcome.version = result.version
    outcome.postgres = result.postgres
    outcome.versions_dropped = len(drop_versions_except(serving, result.version))
    if serving.pg_url:
        drop_rollback_schema(serving)
    outcome.report, outcome.reports_deleted = _render_report(serving, verdict.summary())
    _record(settings, outcome, "complete")
    return outcome


def _render_report(serving: ServingSettings, checks: CheckSummary) -> tuple[Path | None, int]:
    """The leadership report again, from the new version (None when the data has no complete
    month to report); every older report file deleted either way."""
    folder = serving.resolved_report_dir
    try:
        rendered: Path | None = build_report(
            serving.resolved_serving_path, folder, checks, schema=serving.serving_schema
        ).path
    except ValueError:
        rendered = None
    older = [p for p in folder.glob("*.html") if p != rendered] if folder.exists() else []
    for path in older:
        path.unlink()
    return rendered, len(older)


def _record(settings: WarehouseSettings, outcome: ForgetOutcome, status: str) -> None:
    outcome.touched = {
        "rows_rewritten": outcome.erasure.rows_rewritten,
        "warehouse_file_rewritten": outcome.compacted,
        "dlt_load_packages_deleted": outcome.load_packages_deleted,
        "validation_results_deleted": outcome.validation_results_deleted,
        "published_version": outcome.version,
        "serving_versions_dropped": outcome.versions_dropped,
        "postgres": bool(outcome.postgres),
        "reports_deleted": outcome.reports_deleted,
    }
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        finish(conn, DATASET, outcome.erasure.request_id, json.dumps(outcome.touched), status)
