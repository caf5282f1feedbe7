"""Run the dbt project (``dbt_project/``) against the DuckDB warehouse, from Python.

``transform(settings, ...)`` is the one entry point: ``warehouse transform`` calls it and the
Dagster definitions may reuse it. It uses dbt's programmatic ``dbtRunner`` (no subprocess).

Incremental runs: after every successful build the loads it consumed are recorded in
``meta.transform_loads``; ``incremental=True`` then builds only the models downstream of the
raw tables that ``raw._extract_log`` shows were loaded since (plus the data-quality mart, which
reads the log itself), and ``fct_learning_activity`` only appends new activity ids.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.settings import PROJECT_ROOT, WarehouseSettings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
STATE_SCHEMA = "meta"
STATE_TABLE = f"{STATE_SCHEMA}.transform_loads"
_ENV_LOCK = threading.Lock()


class TransformError(RuntimeError):
    """dbt could not run, or one of its nodes failed."""


@dataclass
class TransformResult:
    """What one transform did: the dbt command, its node outcomes and wall time."""

    args: list[str]
    success: bool
    seconds: float
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    changed_tables: list[str] | None = None
    skipped: bool = False


@contextmanager
def _warehouse_env(warehouse_path: Path) -> Iterator[None]:
    """dbt's profile reads WAREHOUSE_PATH at parse time; set it for this run only."""
    with _ENV_LOCK:
        previous = os.environ.get("WAREHOUSE_PATH")
        os.environ["WAREHOUSE_PATH"] = str(warehouse_path)
        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("WAREHOUSE_PATH", None)
            else:
                os.environ["WAREHOUSE_PATH"] = previous


def run_dbt(
    args: list[str],
    warehouse_path: Path,
    target_path: Path | None = None,
    quiet: bool = False,
) -> TransformResult:
    """Run one dbt command (e.g. ``["build"]``) on the warehouse and summarise its results."""
    from dbt.cli.main import dbtRunner

    full_args = [
        *(["--quiet"] if quiet else []),
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    if target_path is not None:
        full_args += ["--target-path", str(target_path)]
    started = time.perf_counter()
    with _warehouse_env(warehouse_path):
        try:
            outcome = dbtRunner().invoke(full_args)
        finally:
            _release_duckdb()
    seconds = time.perf_counter() - started
    if outcome.exception is not None and outcome.result is None:
        raise TransformError(f"dbt {' '.join(args)} could not run: {outcome.exception}")
    statuses: dict[str, int] = {}
    failures: list[str] = []
    for node_result in getattr(outcome.result, "results", None) or []:
        status = str(node_result.status)
        statuses[status] = statuses.get(status, 0) + 1
        if status in {"error", "fail"}:
            failures.append(f"{node_result.node.unique_id}: {node_result.message}")
    return TransformResult(
        args=full_args,
        success=bool(outcome.success),
        seconds=seconds,
        statuses=statuses,
        failures=failures,
    )


def _release_duckdb() -> None:
    """Close dbt-duckdb's cached in-process database, so the file can be opened again here."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing cached in this process
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if environment is not None:
            environment.close()


def _pending_loads(warehouse_path: Path) -> dict[str, list[str]]:
    """Raw tables with successful loads not yet consumed by a transform: table -> load ids."""
    import duckdb

    with duckdb.connect(str(warehouse_path)) as con:
        con.execute(f"create schema if not exists {STATE_SCHEMA}")
        con.execute(
            f"create table if not exists {STATE_TABLE} "
            "(table_name varchar, load_id varchar, transformed_at timestamp)"
        )
        rows = con.execute(
            f"""
            select log.table_name, log.load_id
            from raw._extract_log as log
            left join {STATE_TABLE} as seen
                on log.table_name = seen.table_name and log.load_id = seen.load_id
            where seen.load_id is null and log.status = 'ok'
            order by log.table_name, log.load_id
            """
        ).fetchall()
    pending: dict[str, list[str]] = {}
    for table_name, load_id in rows:
        pending.setdefault(table_name, []).append(load_id)
    return pending


def _has_transformed(warehouse_path: Path) -> bool:
    import duckdb

    with duckdb.connect(str(warehouse_path)) as con:
        found = con.execute(
            f"select count(*) from information_schema.tables "
            f"where table_schema = '{STATE_SCHEMA}' and table_name = 'transform_loads'"
        ).fetchone()
        if not found or not found[0]:
            return False
        done = con.execute(f"select count(*) from {STATE_TABLE}").fetchone()
        return bool(done and done[0])


def _record_loads(warehouse_path: Path, pending: dict[str, list[str]]) -> None:
    import duckdb

    if not pending:
        return
    with duckdb.connect(str(warehouse_path)) as con:
        con.executemany(
            f"insert into {STATE_TABLE} values (?, ?, current_timestamp)",
            [(table, load) for table, loads in pending.items() for load in loads],
        )


def transform(
    settings: WarehouseSettings,
    *,
    select: list[str] | None = None,
    full_refresh: bool = False,
    incremental: bool = False,
    as_of: str | None = None,
    target_path: Path | None = None,
    quiet: bool = False,
) -> TransformResult:
    """``dbt build`` the project on ``settings.warehouse_path``.

    ``incremental``: only what changed since the last transform (nothing when no table was
    loaded since); ``full_refresh``: rebuild incremental models from scratch; ``select``: dbt
    selectors, passed through; ``as_of``: the metrics' as-of time (ISO UTC), default: the
    latest source timestamp in raw; ``quiet``: only errors on the console.
    """
    warehouse_path = settings.warehouse_path
    if not warehouse_path.exists():
        raise TransformError(f"warehouse {warehouse_path} does not exist: run `warehouse extract`")
    if incremental and (full_refresh or select):
        raise TransformError("--incremental picks its own selection: no --full-refresh or --select")
    pending = _pending_loads(warehouse_path)
    args = ["build"]
    changed: list[str] | None = None
    if incremental and _has_transformed(warehouse_path):
        changed = sorted(pending)
        if not changed:
            return TransformResult(
                args=args, success=True, seconds=0.0, changed_tables=[], skipped=True
            )
        selectors = [f"source:platform.{table}+" for table in changed if table != "_extract_log"]
        selectors.append("source:platform._extract_log+")
        # Views are always current and unit tests check logic a load cannot change: neither
        # needs rebuilding after a load (tests on views still run in every full build).
        args += ["--select", *selectors, "--exclude", "config.materialized:view", "test_type:unit"]
    elif select:
        args += ["--select", *select]
    if full_refresh:
        args.append("--full-refresh")
    if as_of:
        args += ["--vars", f"{{as_of: '{as_of}'}}"]
    result = run_dbt(args, warehouse_path, target_path, quiet=quiet)
    result.changed_tables = changed
    if result.success:
        _record_loads(warehouse_path, pending)
    return result
