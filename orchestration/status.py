"""What is served, as of when, is it fresh, what failed last: ``warehouse status``.

Read from what the project already records, without the source and without writing: the
serving file's metadata (the served version, its data as-of time and check counts), the
warehouse's extract log (each raw table's last successful load), build log (each mart's last
build) and check ledger (the last verdict of every check), and the Dagster instance (the last
run of each job). Freshness is judged against ``WAREHOUSE_FRESHNESS_SLA_HOURS``: a raw table
is fresh when its last successful load, a mart when its last build, is younger than the SLA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from ingestion.context import DATASET
from ingestion.erasure import erasure_log
from orchestration.build_state import BUILD_LOG
from orchestration.check_ledger import VERDICTS
from serving.publish import VersionSummary, current_version, list_versions, version_summary
from serving.settings import ServingSettings

#: The jobs whose last run the status reports, in the order they run.
JOBS = ("land", "incremental", "transform", "reconcile", "report")


@dataclass(frozen=True)
class Freshness:
    """One raw table's last load, or one mart's last build, against the SLA."""

    name: str
    at: datetime | None
    fresh: bool


@dataclass(frozen=True)
class FailedCheck:
    asset: str
    check: str
    severity: str
    description: str


@dataclass(frozen=True)
class Erasure:
    """One `warehouse forget` request, from raw._erasure_log."""

    request_id: str
    requested_at: datetime | None
    accounts: int
    rows: int
    status: str


@dataclass(frozen=True)
class LastRun:
    job: str
    status: str | None
    started: datetime | None
    run_id: str | None


@dataclass
class Status:
    """Everything ``warehouse status`` prints."""

    now: datetime
    sla: timedelta
    served: VersionSummary | None = None
    warehouse_note: str | None = None  # why the warehouse could not be read, if it could not
    sources: list[Freshness] = field(default_factory=list)
    marts: list[Freshness] = field(default_factory=list)
    checks_passed: int = 0
    failed: list[FailedCheck] = field(default_factory=list)
    runs: list[LastRun] = field(default_factory=list)
    erasures: list[Erasure] = field(default_factory=list)

    @property
    def stale(self) -> list[str]:
        """Every raw table and mart outside the SLA."""
        return [f.name for f in (*self.sources, *self.marts) if not f.fresh]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def served_version(serving: ServingSettings) -> VersionSummary | None:
    """The version the serving file holds (None when nothing is published)."""
    current = current_version(serving)
    for path in list_versions(serving):
        if path.stem == current:
            return version_summary(path, serving.serving_schema)
    path = serving.resolved_serving_path
    return version_summary(path, serving.serving_schema) if path.exists() else None


def _has(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def read_warehouse(status: Status, warehouse_path: Path) -> None:
    """Raw tables' last loads, marts' last builds and the checks' last verdicts."""
    if not warehouse_path.exists():
        status.warehouse_note = f"no warehouse at {warehouse_path}: run `warehouse run` first"
        return
    try:
        con = duckdb.connect(str(warehouse_path), read_only=True)
    except duckdb.Error:
        status.warehouse_note = "the warehouse is being written by a run: its state shows after it"
        return
    with con:
        if _has(con, "raw", "_extract_log"):
            for table, at in con.execute(
                "select table_name, max(finished_at) from raw._extract_log "
                "where status = 'ok' group by table_name order by table_name"
            ).fetchall():
                at = _utc(at)
                status.sources.append(
                    Freshness(table, at, at is not None and status.now - at <= status.sla)
                )
        schema, table = BUILD_LOG.split(".")
        if _has(con, schema, table):
            for unique_id, at in con.execute(
                f"select unique_id, built_at from {BUILD_LOG} "
                "where unique_id like 'model.%.mart\\_%' escape '\\' order by unique_id"
            ).fetchall():
                at = _utc(at)
                status.marts.append(
                    Freshness(
                        unique_id.split(".")[-1],
                        at,
                        at is not None and status.now - at <= status.sla,
                    )
                )
        for request_id, at, _, accounts, _, rows, _, state in erasure_log(con, DATASET):
            status.erasures.append(Erasure(request_id, _utc(at), accounts, rows, state))
        schema, table = VERDICTS.split(".")
        if _has(con, schema, table):
            for asset, check, passed, severity, description in con.execute(
                f"select asset_key, split_part(check_key, ':', -1), passed, severity, description "
                f"from {VERDICTS} order by asset_key, check_key"
            ).fetchall():
                if passed:
                    status.checks_passed += 1
                else:
                    status.failed.append(
                        FailedCheck(asset, check, str(severity), (description or "").strip())
                    )


def last_runs(instance: dg.DagsterInstance, jobs: Sequence[str] = JOBS) -> list[LastRun]:
    """The newest run of each job, as the Dagster instance recorded it."""
    runs = []
    for job in jobs:
        records = instance.get_run_records(dg.RunsFilter(job_name=job), limit=1)
        if not records:
            runs.append(LastRun(job, None, None, None))
            continue
        record = records[0]
        started = record.start_time or record.create_timestamp.timestamp()
        runs.append(
            LastRun(
                job,
                record.dagster_run.status.value,
                datetime.fromtimestamp(started, UTC),
                record.dagster_run.run_id,
            )
        )
    return runs


def warehouse_status(
    warehouse_path: Path,
    serving: ServingSettings,
    instance: dg.DagsterInstance,
    sla_hours: float,
    now: datetime | None = None,
) -> Status:
    """Gather the status (``now``: the clock to judge freshness by; default the current time)."""
    status = Status(now=now or datetime.now(UTC), sla=timedelta(hours=sla_hours))
    status.served = served_version(serving)
    read_warehouse(status, warehouse_path)
    status.runs = last_runs(instance)
    return status
