"""Write-audit-publish: build a candidate beside the serving file, audit it, swap it in.

The pipeline's writer only ever touches the working warehouse. Publishing copies the
served tables (marts, dims, facts) into a new DuckDB file under ``versions/``, audits it,
then hard-links it over the serving file with an atomic ``rename``: a BI tool holding
the old file open keeps reading the old inode and never blocks anything. PostgreSQL,
when configured, gets the same version through a staging schema swapped in one
transaction (``postgres.py``). The last N versions stay on disk for ``rollback``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from serving.catalog import (
    METADATA_TABLE,
    ServedTable,
    column_types,
    discover_served_tables,
    model_docs,
)
from serving.checks import CheckSummary, PublishBlocked
from serving.exposures import write_exposures
from serving.lookml import write_views
from serving.postgres import publish_version
from serving.settings import ServingSettings


def _first(row: tuple | None) -> Any:
    """The first value of a one-row result (aggregates always return a row)."""
    if row is None:
        raise RuntimeError("query returned no row")
    return row[0]


class AuditFailed(RuntimeError):
    """The candidate does not match the warehouse or breaks a serving rule."""


@dataclass
class PublishResult:
    """What was published where, and how long each step took (seconds)."""

    version: str
    serving_path: Path
    version_path: Path
    row_counts: dict[str, int]
    postgres: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    pruned: list[Path] = field(default_factory=list)
    rolled_back_from: str | None = None
    artefacts: list[Path] = field(default_factory=list)
    artefact_error: str | None = None


@contextlib.contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = round(time.perf_counter() - started, 3)


@contextlib.contextmanager
def publish_lock(serving_dir: Path) -> Iterator[None]:
    """One publish or rollback at a time per serving folder (waits for the other)."""
    serving_dir.mkdir(parents=True, exist_ok=True)
    with open(serving_dir / ".publish.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_files(settings: ServingSettings) -> list[Path]:
    """Delete half-built candidates and link temporaries left by a killed publish.

    Only called under the publish lock, so nothing else can be writing them.
    """
    stale = [
        *settings.versions_dir.glob(".building-*"),
        *settings.resolved_serving_path.parent.glob(".link-*"),
    ]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def new_version(now: datetime | None = None) -> str:
    """A sortable version id: the UTC publish time to the microsecond."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def version_time(version: str) -> datetime:
    """When ``version`` was published (its id is the time)."""
    return datetime.strptime(version, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def warehouse_data_as_of(con: duckdb.DuckDBPyConnection, database: str) -> datetime | None:
    """The newest successful dlt load in the warehouse, if dlt's load table is there."""
    found = con.execute(
        "select table_schema from information_schema.tables "
        "where table_catalog = ? and table_name = '_dlt_loads'",
        [database],
    ).fetchall()
    newest = None
    for (schema,) in found:
        value = _first(
            con.execute(
                f'select max(inserted_at) from "{database}"."{schema}"._dlt_loads where status = 0'
            ).fetchone()
        )
        if value is not None and (newest is None or value > newest):
            newest = value
    return newest


def build_candidate(
    warehouse_path: Path,
    candidate: Path,
    schema: str,
    version: str,
    checks: CheckSummary,
    manifest_path: Path | None = None,
    storage_version: str = "v1.0.0",
) -> dict[str, int]:
    """Copy every served table into ``candidate`` under ``schema`` and audit the copy.

    The candidate is written in DuckDB storage format ``storage_version`` so BI drivers
    built on older DuckDB releases can open it. Audits: each table's row count equals
    the warehouse's; every mart has ``tenant_id`` and no table has a NULL ``tenant_id``.
    Returns table -> rows.
    """
    if not warehouse_path.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse_path}")
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{warehouse_path}' as wh (read_only)")
        con.execute(f"attach '{candidate}' as serving (storage_version '{storage_version}')")
        tables = discover_served_tables(con, "wh", manifest_path)
        if not any(t.kind == "mart" for t in tables):
            raise AuditFailed(f"no mart_* tables in {warehouse_path}: nothing to publish")
        target = f'serving."{schema}"'
        con.execute(f"create schema {target}")
        counts: dict[str, int] = {}
        for table in tables:
            con.execute(
                f'create table {target}."{table.name}" as '
                f'select * from wh."{table.schema}"."{table.name}"'
            )
            counts[table.name] = _audit_table(con, target, table)
        data_as_of = metrics_as_of(con, target, tables) or checks.data_as_of
        data_as_of = data_as_of or warehouse_data_as_of(con, "wh")
        _write_metadata(con, target, version, data_as_of, checks, counts)
        con.execute("detach wh")
        con.execute("checkpoint serving")
        con.execute("detach serving")
    finally:
        con.close()
    return counts


def metrics_as_of(
    con: duckdb.DuckDBPyConnection, target: str, tables: list[ServedTable]
) -> datetime | None:
    """The marts' as-of time (``as_of_at``, the metrics' cut-off), when they carry one."""
    with_as_of = [t.name for t in tables if "as_of_at" in t.columns]
    if not with_as_of:
        return None
    union = " union all ".join(f'select max(as_of_at) as a from {target}."{t}"' for t in with_as_of)
    return _first(con.execute(f"select max(a) from ({union})").fetchone())


def _audit_table(con: duckdb.DuckDBPyConnection, target: str, table: ServedTable) -> int:
    source = _first(
        con.execute(f'select count(*) from wh."{table.schema}"."{table.name}"').fetchone()
    )
    copied = _first(con.execute(f'select count(*) from {target}."{table.name}"').fetchone())
    if source != copied:
        raise AuditFailed(f"{table.name}: {copied} rows copied, {source} in the warehouse")
    if table.kind == "mart" and not table.has_tenant:
        raise AuditFailed(f"{table.name}: every mart row must carry tenant_id")
    if table.has_tenant:
        nulls = _first(
            con.execute(
                f'select count(*) from {target}."{table.name}" where tenant_id is null'
            ).fetchone()
        )
        if nulls:
            raise AuditFailed(f"{table.name}: {nulls} rows without tenant_id")
    return copied


def _write_metadata(
    con: duckdb.DuckDBPyConnection,
    target: str,
    version: str,
    data_as_of: datetime | None,
    checks: CheckSummary,
    counts: dict[str, int],
) -> None:
    con.execute(
        f"""
        create table {target}.{METADATA_TABLE} (
            version varchar, published_at timestamptz, data_as_of timestamptz,
            checks_passed integer, checks_failed integer, table_name varchar, row_count bigint,
            warehouse_state varchar
        )
        """
    )
    published_at = datetime.now(UTC)
    con.executemany(
        f"insert into {target}.{METADATA_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                version,
                published_at,
                data_as_of,
                checks.passed,
                checks.failed,
                name,
                rows,
                checks.state or None,
            ]
            for name, rows in counts.items()
        ],
    )


def _seal(candidate: Path, final: Path) -> None:
    """Make the candidate read-only and durable, then give it its version name."""
    os.chmod(candidate, 0o444)
    fd = os.open(candidate, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(candidate, final)
    _fsync_dir(final.parent)


def point_serving_file(version_path: Path, serving_path: Path) -> None:
    """Atomically make ``serving_path`` the given version (hard link, then rename over)."""
    link = serving_path.parent / f".link-{version_path.stem}"
    link.unlink(missing_ok=True)
    try:
        os.link(version_path, link)
    except OSError:  # a filesystem without hard links: a copy is still atomic on rename
        shutil.copy2(version_path, link)
    os.replace(link, serving_path)
    _fsync_dir(serving_path.parent)


def list_versions(settings: ServingSettings) -> list[Path]:
    """Complete published versions, oldest first."""
    if not settings.versions_dir.exists():
        return []
    return sorted(settings.versions_dir.glob("2*.duckdb"))


@dataclass(frozen=True)
class VersionSummary:
    """What one kept version holds, from its metadata table."""

    version: str
    path: Path
    published_at: datetime | None
    data_as_of: datetime | None
    checks_passed: int
    checks_failed: int
    tables: int
    rows: int

    @property
    def megabytes(self) -> float:
        return self.path.stat().st_size / 1e6


def version_summary(path: Path, schema: str) -> VersionSummary:
    """The metadata of one published version file."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            f"select max(published_at), max(data_as_of), max(checks_passed), "
            f"max(checks_failed), count(*), sum(row_count) "
            f'from "{schema}".{METADATA_TABLE}'
        ).fetchone()
    finally:
        con.close()
    published, as_of, passed, failed, tables, rows = row or (None, None, 0, 0, 0, 0)
    return VersionSummary(
        path.stem,
        path,
        published,
        as_of,
        int(passed or 0),
        int(failed or 0),
        int(tables or 0),
        int(rows or 0),
    )


def current_version(settings: ServingSettings) -> str | None:
    """The version the serving file holds, read from its metadata table."""
    path = settings.resolved_serving_path
    if not path.exists():
        return None
    for version_path in list_versions(settings):
        if os.path.samefile(version_path, path):
            return version_path.stem
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            f'select max(version) from "{settings.serving_schema}".{METADATA_TABLE}'
        ).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def served_check_summary(settings: ServingSettings) -> CheckSummary:
    """The check counts and data time of the version the serving file holds."""
    path = settings.resolved_serving_path
    if not path.exists():
        raise PublishBlocked(f"no published version at {path}: run `warehouse run` first")
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            f"select max(checks_passed), max(checks_failed), max(data_as_of) "
            f'from "{settings.serving_schema}".{METADATA_TABLE}'
        ).fetchone()
    finally:
        con.close()
    passed, failed, as_of = row or (0, 0, None)
    return CheckSummary(
        passed=int(passed or 0),
        failed=int(failed or 0),
        data_as_of=as_of if isinstance(as_of, datetime) else None,
        source=str(path),
    )


def served_state(settings: ServingSettings) -> tuple[str | None, str | None]:
    """The served version and the warehouse state it was published from (None, None when
    nothing is served, or the version predates the record)."""
    path = settings.resolved_serving_path
    if not path.exists():
        return None, None
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = {
            name
            for (name,) in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [settings.serving_schema, METADATA_TABLE],
            ).fetchall()
        }
        if "warehouse_state" not in columns:
            return current_version(settings), None
        row = con.execute(
            f'select max(version), max(warehouse_state) from "{settings.serving_schema}".'
            f"{METADATA_TABLE}"
        ).fetchone()
    finally:
        con.close()
    return (row[0], row[1]) if row else (None, None)


def prune_versions(
    settings: ServingSettings, keep_version: str | None, now: datetime | None = None
) -> list[Path]:
    """Delete all but the newest ``serving_keep`` versions, and every version older than
    ``serving_keep_days``; never the one being served."""
    versions = list_versions(settings)
    oldest = (now or datetime.now(UTC)) - timedelta(days=settings.serving_keep_days)
    doomed = [
        v
        for i, v in enumerate(versions)
        if v.stem != keep_version
        and (i < len(versions) - settings.serving_keep or version_time(v.stem) < oldest)
    ]
    for path in doomed:
        path.unlink()
    return doomed


def drop_versions_except(settings: ServingSettings, keep_version: str) -> list[Path]:
    """Delete every kept version but ``keep_version`` (after an erasure, the older ones
    still hold the people it erased, so no rollback may serve them again)."""
    doomed = [v for v in list_versions(settings) if v.stem != keep_version]
    for path in doomed:
        path.unlink()
    return doomed


def publish_warehouse(
    warehouse_path: Path,
    settings: ServingSettings,
    checks: CheckSummary,
    *,
    manifest_path: Path | None = None,
) -> PublishResult:
    """Publish the warehouse's served tables if the gate is open (the Dagster asset's body).

    Raises ``PublishBlocked`` when a blocking check failed and ``AuditFailed`` when the
    candidate is wrong; in both cases readers keep the previous version.
    """
    if not checks.gate_open:
        raise PublishBlocked(
            checks.reason
            or f"{len(checks.blocking_failures)} blocking check(s) failed, not publishing: "
            + ", ".join(checks.blocking_failures[:5])
        )
    serving_path = settings.resolved_serving_path
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with publish_lock(serving_path.parent):
        remove_stale_files(settings)
        settings.versions_dir.mkdir(parents=True, exist_ok=True)
        version = new_version()
        candidate = settings.versions_dir / f".building-{version}.duckdb"
        final = settings.versions_dir / f"{version}.duckdb"
        manifest = manifest_path if manifest_path is not None else settings.manifest_path
        try:
            with _timed(timings, "build_and_audit_serving_file"):
                counts = build_candidate(
                    warehouse_path,
                    candidate,
                    settings.serving_schema,
                    version,
                    checks,
                    manifest,
                    settings.serving_storage_version,
                )
            with _timed(timings, "seal_version"):
                _seal(candidate, final)
        finally:
            candidate.unlink(missing_ok=True)
        postgres = None
        if settings.pg_url:
            try:
                with _timed(timings, "postgres_copy_audit_swap"):
                    postgres = publish_version(
                        settings, final, version, pg_timings=timings, docs=model_docs(manifest)
                    )
            except BaseException:
                final.unlink(missing_ok=True)  # never served anywhere: not a version to keep
                raise
        with _timed(timings, "swap_serving_file"):
            point_serving_file(final, serving_path)
        pruned = prune_versions(settings, version)
    timings["total"] = round(time.perf_counter() - started, 3)
    result = PublishResult(version, serving_path, final, counts, postgres, timings, pruned)
    if manifest and manifest.exists():
        try:
            result.artefacts = write_bi_artefacts(settings, manifest)
        except (OSError, ValueError, KeyError) as exc:  # published already: report, don't fail
            result.artefact_error = f"BI artefacts not written: {exc}"
    return result


def write_bi_artefacts(settings: ServingSettings, manifest_path: Path) -> list[Path]:
    """LookML views and model, and dbt exposures, for the published version, beside the
    serving file.

    Written to ``<serving dir>/bi/``: ``lookml/<model>.view.lkml`` (types fall back to the
    serving file's), the LookML model ``lookml/warehouse.model.lkml`` with its explores, and
    ``dbt_exposures.yml`` (for the dbt project to commit).
    """
    out = settings.resolved_serving_path.parent / "bi"
    types = column_types(settings.resolved_serving_path, settings.serving_schema)
    views = write_views(manifest_path, out / "lookml", settings.serving_schema, types)
    return [*views, write_exposures(manifest_path, out / "dbt_exposures.yml")]


def rollback(settings: ServingSettings) -> PublishResult:
    """Serve the version before the current one again (file and, if configured, PostgreSQL)."""
    serving_path = settings.resolved_serving_path
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with publish_lock(serving_path.parent):
        remove_stale_files(settings)
        versions = list_versions(settings)
        current = current_version(settings)
        stems = [v.stem for v in versions]
        if current not in stems:
            raise PublishBlocked(f"the serving file holds no known version ({current})")
        index = stems.index(current)
        if index == 0:
            raise PublishBlocked(f"no version older than {current} is kept")
        previous = versions[index - 1]
        postgres = None
        if settings.pg_url:
            with _timed(timings, "postgres_copy_audit_swap"):
                postgres = publish_version(settings, previous, previous.stem, pg_timings=timings)
        with _timed(timings, "swap_serving_file"):
            point_serving_file(previous, serving_path)
        con = duckdb.connect(str(previous), read_only=True)
        try:
            counts = dict(
                con.execute(
                    f'select table_name, row_count from "{settings.serving_schema}".{METADATA_TABLE}'
                ).fetchall()
            )
        finally:
            con.close()
    timings["total"] = round(time.perf_counter() - started, 3)
    return PublishResult(
        previous.stem, serving_path, previous, counts, postgres, timings, rolled_back_from=current
    )
