"""Run a warehouse job through Dagster in this process and summarise what it did.

``warehouse run`` calls :func:`run_job`: it prepares DAGSTER_HOME (so the run shows up
in ``dagster dev``), loads the definitions, executes the job in-process and returns a
:class:`RunSummary` (assets materialized, rows, checks passed and failed, time). Failed
checks and a failed run are alerted exactly as the sensors would.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from ingestion.settings import WarehouseSettings
from orchestration.alerting import Alert, check_alert, run_alert, send_alert
from orchestration.config import (
    AS_OF_TAG,
    FULL_REFRESH_TAG,
    PLANNED_TAG,
    SELF_ALERTING_TAG,
    OrchestrationSettings,
)
from orchestration.definitions import build_definitions, required_checks
from orchestration.defs.automation import decide_build
from orchestration.defs.transform import BuildRequest, dbt_project, plan_incremental_build
from orchestration.instance import prepare_dagster_home


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check's verdict in the run."""

    asset: str
    check: str
    passed: bool
    severity: str
    description: str


@dataclass
class RunSummary:
    """What one run did."""

    run_id: str
    job: str
    success: bool
    seconds: float
    materialized: dict[str, int | None] = field(default_factory=dict)  # asset -> rows
    # dbt assets an incremental build left as they were (the warehouse holds them current)
    current: list[str] = field(default_factory=list)
    observed: int = 0
    rows_landed: int = 0
    checks: list[CheckOutcome] = field(default_factory=list)
    skipped_steps: list[str] = field(default_factory=list)
    failure: str | None = None
    # asset -> its Dagster group (source, raw, seed, snapshot, staging, marts, serving...)
    groups: dict[str, str] = field(default_factory=dict)

    @property
    def checks_passed(self) -> int:
        """How many checks passed."""
        return sum(c.passed for c in self.checks)

    @property
    def checks_failed(self) -> list[CheckOutcome]:
        """The checks that failed, ERROR first."""
        failed = [c for c in self.checks if not c.passed]
        return sorted(failed, key=lambda c: (c.severity != "ERROR", c.asset, c.check))


def summarize(result: dg.ExecuteInProcessResult, job: str, seconds: float) -> RunSummary:
    """A run's summary from its event log; steps of the job that never started were blocked
    by a failure upstream (a failed step or a failed ERROR check)."""
    DagsterEventType = dg.DagsterEventType
    summary = RunSummary(result.run_id, job, result.success, seconds)
    started: set[str] = set()
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_START and event.step_key:
            started.add(event.step_key)
        kind = event.event_type
        data = event.event_specific_data
        if kind == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = data.materialization  # type: ignore[union-attr]
            metadata = materialization.metadata
            rows = metadata.get("dagster/row_count")
            summary.materialized[materialization.asset_key.to_user_string()] = (
                rows.value if rows is not None and isinstance(rows.value, int) else None
            )
            landed = metadata.get("rows_landed")
            if landed is not None and isinstance(landed.value, int):
                summary.rows_landed += landed.value
        elif kind == DagsterEventType.ASSET_OBSERVATION:
            summary.observed += 1
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            summary.checks.append(
                CheckOutcome(
                    asset=data.asset_key.to_user_string(),  # type: ignore[union-attr]
                    check=data.check_name,  # type: ignore[union-attr]
                    passed=data.passed,  # type: ignore[union-attr]
                    severity=data.severity.value,  # type: ignore[union-attr]
                    description=data.description or "",  # type: ignore[union-attr]
                )
            )
        elif kind == DagsterEventType.STEP_FAILURE and summary.failure is None:
            error = data.error  # type: ignore[union-attr]
            summary.failure = f"{event.step_key}: {root_cause(error) if error else 'failed'}"
    steps = {node.name for node in result.job_def.nodes_in_topological_order}
    summary.skipped_steps = sorted(steps - started)
    return summary


def root_cause(error: Any) -> str:
    """The innermost error of a step failure (Dagster wraps what the step raised in errors of
    its own) in one line, without the exception's class name."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    message = " ".join((error.message or "failed").split())
    name, _, rest = message.partition(": ")
    return rest if rest and "." in name and " " not in name else message


def run_alerts(summary: RunSummary) -> list[Alert]:
    """The alerts the sensors would send for this run: each failed check, then the run."""
    alerts = [
        check_alert(c.asset, c.check, c.severity, c.description, summary.run_id, summary.job)
        for c in summary.checks_failed
    ]
    if not summary.success:
        alerts.append(run_alert(summary.job, summary.run_id, summary.failure))
    return alerts


#: The code location ``workspace.yaml`` names and the repository ``@dg.definitions`` makes:
#: the UI lists a job's runs by this label, so runs started here show in its run history.
CODE_LOCATION = "warehouse"
REPOSITORY_LABEL = {".dagster/repository": f"__repository__@{CODE_LOCATION}"}


#: A callable that prints one line of progress.
Progress = Callable[[str], None]

_STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
}


@contextlib.contextmanager
def step_progress(
    instance: dg.DagsterInstance, run_id: str, emit: Progress, interval: float = 1.0
) -> Iterator[None]:
    """While the block runs, a line for each step of run ``run_id`` that starts, succeeds or
    fails, read from the instance's event log (the in-process run writes it as it goes)."""
    stop = threading.Event()
    started: dict[str, float] = {}
    seen = 0

    def poll() -> None:
        nonlocal seen
        try:
            entries = instance.all_logs(run_id, of_type=_STEP_EVENTS)
        except Exception:  # progress is a convenience: a busy event log must not fail a run
            return
        for entry in entries[seen:]:
            event, step = entry.dagster_event, entry.step_key or "?"
            at = datetime.fromtimestamp(entry.timestamp, UTC)
            if event is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                started[step] = entry.timestamp
                emit(f"  {at:%H:%M:%S}  {step} started")
            else:
                took = entry.timestamp - started.get(step, entry.timestamp)
                verdict = (
                    "done" if event.event_type == dg.DagsterEventType.STEP_SUCCESS else "FAILED"
                )
                emit(f"  {at:%H:%M:%S}  {step} {verdict} in {took:.1f} s")
        seen = len(entries)

    def watch() -> None:
        while not stop.wait(interval):
            poll()

    watcher = threading.Thread(target=watch, name="step-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        poll()


def asset_groups(definitions: dg.Definitions) -> dict[str, str]:
    """Every asset's Dagster group, by its key's text: the one vocabulary of the UI's asset
    graph and the CLI's summary."""
    return {
        spec.key.to_user_string(): spec.group_name or "default"
        for spec in definitions.resolve_all_asset_specs()
    }


def run_job(
    job: str,
    warehouse: WarehouseSettings,
    orchestration: OrchestrationSettings,
    instance: dg.DagsterInstance | None = None,
    alert: bool = True,
    log_level: str = "CRITICAL",
    definitions: dg.Definitions | None = None,
    tags: dict[str, str] | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Execute ``job`` in-process on ``instance`` (default: DAGSTER_HOME's) and summarise it;
    ``definitions`` default to the project's, bound to the two settings; ``tags`` are added
    to the run's; ``asset_selection`` runs that subset of the job. The console shows only
    critical Dagster logs (``log_level``): every event stays in the instance, and the
    summary names each failure's cause in one line."""

    started = time.perf_counter()
    if instance is None:
        prepare_dagster_home(orchestration)
    definitions = definitions or build_definitions(warehouse, orchestration)
    job_def = definitions.resolve_job_def(job)
    owned = instance is None
    active = instance or dg.DagsterInstance.get()
    run_id = str(uuid.uuid4())
    watching = step_progress(active, run_id, progress) if progress else contextlib.nullcontext()
    try:
        with watching:
            result = job_def.execute_in_process(
                run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
                instance=active,
                raise_on_error=False,
                run_id=run_id,
                tags={
                    **REPOSITORY_LABEL,
                    **({SELF_ALERTING_TAG: "true"} if alert else {}),
                    **(tags or {}),
                },
                asset_selection=asset_selection,
            )
    finally:
        if owned:
            active.dispose()
    summary = summarize(result, job, time.perf_counter() - started)
    summary.groups = asset_groups(definitions)
    if alert:
        for item in run_alerts(summary):
            send_alert(item, orchestration)
    return summary


def dbt_keys(definitions: dg.Definitions) -> list[dg.AssetKey]:
    """Every asset of the dbt project."""
    return [
        key
        for asset in definitions.assets or []
        if isinstance(asset, dg.AssetsDefinition) and asset.node_def.name == "dbt_build"
        for key in asset.keys
    ]


def run_hourly(
    warehouse: WarehouseSettings,
    orchestration: OrchestrationSettings,
    instance: dg.DagsterInstance,
    definitions: dg.Definitions,
    tags: dict[str, str] | None = None,
    alert: bool = True,
    serving: Any = None,
    progress: Progress | None = None,
) -> tuple[RunSummary, Any]:
    """The hourly cycle, as the schedule and its sensor run it: the ``land`` job (observe,
    extract, raw checks), then an ``incremental`` run of what the change detector finds not
    current, its checks and the publication; none when everything is current and served.
    Returns one summary of both runs, and the decision (None when the extract failed).
    ``serving``: the serving settings the definitions were built with (default: the
    environment's)."""

    started = time.perf_counter()
    land = run_job(
        "land",
        warehouse,
        orchestration,
        instance,
        alert=alert,
        definitions=definitions,
        tags=tags,
        progress=progress,
    )
    if not land.success:
        return land, None
    decision = decide_build(
        required_checks([definitions]), dbt_keys(definitions), warehouse, orchestration, serving
    )
    if decision.nothing:
        land.current = decision.current
        land.seconds = time.perf_counter() - started
        return land, decision
    build = run_job(
        "incremental",
        warehouse,
        orchestration,
        instance,
        alert=alert,
        definitions=definitions,
        tags={**(tags or {}), **decision.tags},
        asset_selection=decision.selection,
        progress=progress,
    )
    merged = merge_summaries(land, build)
    merged.current = decision.current + merged.current
    merged.seconds = time.perf_counter() - started
    return merged, decision


def merge_summaries(first: RunSummary, second: RunSummary) -> RunSummary:
    """One summary of two consecutive runs (the second's id names it)."""
    return RunSummary(
        run_id=second.run_id,
        job=second.job,
        success=first.success and second.success,
        seconds=first.seconds + second.seconds,
        materialized={**first.materialized, **second.materialized},
        current=[*first.current, *second.current],
        observed=first.observed + second.observed,
        rows_landed=first.rows_landed + second.rows_landed,
        checks=[*first.checks, *second.checks],
        skipped_steps=[*first.skipped_steps, *second.skipped_steps],
        failure=first.failure or second.failure,
        groups={**first.groups, **second.groups},
    )


def run_transform(
    warehouse: WarehouseSettings,
    orchestration: OrchestrationSettings,
    instance: dg.DagsterInstance,
    definitions: dg.Definitions | None = None,
    *,
    incremental: bool = False,
    full_refresh: bool = False,
    as_of: str | None = None,
    selection: Sequence[dg.AssetKey] | None = None,
    tags: dict[str, str] | None = None,
    alert: bool = False,
    progress: Progress | None = None,
) -> RunSummary:
    """``warehouse transform``: the ``transform`` job (raw contract suites, the dbt build, the
    checks on the models). ``incremental``: only what the change detector finds not current
    (the models it plans, with their checks; the raw suites run with the land job);
    ``selection``: exactly these dbt assets; otherwise everything."""

    definitions = definitions or _definitions(warehouse, orchestration)
    run_tags = dict(tags or {})
    if full_refresh:
        run_tags[FULL_REFRESH_TAG] = "true"
    if as_of:
        run_tags[AS_OF_TAG] = as_of
    if incremental:
        request = BuildRequest(full_refresh=full_refresh, as_of=as_of)
        plan = plan_incremental_build(
            dbt_project(orchestration.dbt_target_dir, orchestration.dbt_project_dir),
            warehouse,
            required_checks([definitions]),
            request,
        )
        if not plan.keys:
            summary = RunSummary("", "transform", True, 0.0)
            summary.current = sorted(k.to_user_string() for k in dbt_keys(definitions))
            return summary
        selection = list(plan.keys)
        run_tags[PLANNED_TAG] = "true"
        if plan.full_refresh:
            run_tags[FULL_REFRESH_TAG] = "true"
    summary = run_job(
        "transform",
        warehouse,
        orchestration,
        instance,
        alert=alert,
        definitions=definitions,
        tags=run_tags,
        asset_selection=selection,
        progress=progress,
    )
    if selection is not None:
        chosen = set(selection)
        summary.current = sorted(
            k.to_user_string() for k in dbt_keys(definitions) if k not in chosen
        )
    return summary


def _definitions(warehouse: WarehouseSettings, orchestration: OrchestrationSettings):

    return build_definitions(warehouse, orchestration)
