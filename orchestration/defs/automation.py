"""Jobs, schedules, the one-writer rule and alerting.

The hourly cycle is two runs, so each costs what changed:

- ``land`` (scheduled hourly): observe the source, extract incrementally, the raw contract
  and freshness checks (no reconciliation: hard deletes are only detected by a reconcile
  extract);
- ``incremental``, started by the ``build_after_land`` sensor when a land run succeeds
  (and by ``warehouse run`` the same way): only the dbt models the change detector finds
  not current (``decide_build``), the checks of those models, and the publication when
  every required check passed on the warehouse as it is. No run at all when everything is
  current and already served. A model it does not rebuild is not in the run: its checks'
  last results, in the UI, are those of the build that produced its rows. Launched whole
  from the UI, the job observes, extracts and builds every model in one run.

The other jobs:

- ``reconcile``: observe, reconcile extraction (hard deletes, stale cursors), full
  dbt build, every check including reconciliation, publish;
- ``report``: render (and email) the leadership report from the published serving
  file. Neither of the other jobs renders it: leadership gets one report a week;
- ``transform`` (``warehouse transform``): the raw contract suites, the dbt build and the
  checks on what it builds, without extracting or publishing.

Runs that open the warehouse carry ``warehouse/writer`` (DuckDB refuses even a reader
while another process writes): the run queue admits one at a time (``dagster.yaml``),
and every step that opens the file is in the ``warehouse_writer`` pool of one slot,
which also serialises runs started in-process. The ``report`` job reads only the
serving file (replaced by atomic rename, never locked by the writer), so it does not
queue behind writers. Alerts go to the webhook and the
local alert log for every failed run and every failed check.
"""

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from ingestion.settings import WarehouseSettings
from orchestration.alerting import Alert, check_alert, run_alert, send_alert
from orchestration.check_ledger import gate
from orchestration.config import (
    EXTRACT_MODE_TAG,
    FULL_REFRESH_TAG,
    PLANNED_TAG,
    RECHECK_TAG,
    SELF_ALERTING_TAG,
    WRITER_TAG,
    OrchestrationSettings,
)
from orchestration.defs.serving import PUBLISH_KEY, REPORT_KEY
from orchestration.defs.transform import dbt_project, plan_incremental_build
from serving.publish import served_state
from serving.settings import ServingSettings

WRITER_TAGS = {WRITER_TAG: "true"}


def _everything() -> dg.AssetSelection:
    """Every asset, the observable source tables included (a beta flag: no warning each load)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.AssetSelection.all(include_sources=True)


def _built() -> dg.AssetSelection:
    """Everything the writer jobs run: all but the weekly report."""
    return _everything() - dg.AssetSelection.assets(REPORT_KEY)


# define_asset_job's return type is not exported by dagster: jobs are typed Any here.
def incremental_job(reconciliation: Sequence[dg.AssetCheckKey]) -> Any:
    """Hourly, after ``land``: build what is not current, check it, publish."""
    return dg.define_asset_job(
        "incremental",
        selection=_built() - dg.AssetSelection.checks(*reconciliation),
        description="Build the models the warehouse does not hold current, run their checks, "
        "publish when every required check passed on the warehouse as it is. Started after "
        "each land run with only what is not current selected; launched whole, it observes, "
        "extracts and builds every model.",
        tags={**WRITER_TAGS, EXTRACT_MODE_TAG: "incremental"},
    )


def land_job(land: Sequence[dg.AssetKey], reconciliation: Sequence[dg.AssetCheckKey]) -> Any:
    """Hourly, first: observe the source, extract what changed, check raw."""
    return dg.define_asset_job(
        "land",
        selection=dg.AssetSelection.assets(*land) - dg.AssetSelection.checks(*reconciliation),
        description="Observe the source, extract what changed into raw, run the raw contract "
        "and freshness checks. When it succeeds, the build_after_land sensor starts the "
        "incremental run of what the warehouse no longer holds current.",
        tags={**WRITER_TAGS, EXTRACT_MODE_TAG: "incremental"},
    )


def reconcile_job() -> Any:
    """Nightly: reconcile extraction, full build, every check, publish."""
    return dg.define_asset_job(
        "reconcile",
        selection=_built(),
        description="Reconcile extraction (hard deletes, stale cursors), full dbt build, "
        "every check including source reconciliation, publish when every ERROR check passed.",
        tags={
            **WRITER_TAGS,
            EXTRACT_MODE_TAG: "reconcile",
            FULL_REFRESH_TAG: "true",
            RECHECK_TAG: "true",
        },
    )


def transform_job(dbt: dg.AssetsDefinition, raw_suites: Sequence[dg.AssetCheckKey]) -> Any:
    """``warehouse transform``: raw contract suites, dbt build, the checks of what it built."""
    return dg.define_asset_job(
        "transform",
        selection=dg.AssetSelection.assets(dbt) | dg.AssetSelection.checks(*raw_suites),
        description="The raw contract suites, the dbt build (everything, or what changed) and "
        "the checks on the models; no extract, no publication.",
        tags=WRITER_TAGS,
    )


def report_job() -> Any:
    """Weekly: the leadership report from the published serving file."""
    return dg.define_asset_job(
        "report",
        selection=dg.AssetSelection.assets(REPORT_KEY),
        description="Render the dated leadership report from the published serving file "
        "(the last version every ERROR check passed for) and email it when SMTP is set. "
        "Reads only the serving file: it does not queue behind warehouse writers.",
    )


def _schedule_status(settings: OrchestrationSettings) -> dg.DefaultScheduleStatus:
    return (
        dg.DefaultScheduleStatus.RUNNING
        if settings.schedules_running
        else dg.DefaultScheduleStatus.STOPPED
    )


def schedules(jobs: Iterable[Any], settings: OrchestrationSettings) -> list[dg.ScheduleDefinition]:
    """One schedule per job, cron and time zone from the settings."""
    crons = {
        "land": settings.incremental_cron,
        "reconcile": settings.reconcile_cron,
        "report": settings.report_cron,
    }
    status = _schedule_status(settings)
    return [
        dg.ScheduleDefinition(
            name=f"{job.name}_schedule",
            job=job,
            cron_schedule=crons[job.name],
            execution_timezone=settings.timezone,
            default_status=status,
        )
        for job in jobs
        if job.name in crons
    ]


# -- the hourly job's second run ------------------------------------------------------------


@dataclass
class BuildDecision:
    """What the second run of the hourly job does: the assets it builds (with their checks),
    whether it publishes, from scratch or not, and why."""

    keys: list[dg.AssetKey]
    publish: bool
    full_refresh: bool
    description: str
    current: list[str] = field(default_factory=list)  # dbt assets left as they are

    @property
    def nothing(self) -> bool:
        """True when the warehouse is current and already served: no second run."""
        return not self.keys and not self.publish

    @property
    def selection(self) -> list[dg.AssetKey]:
        """The assets of the build run (their checks come with them)."""
        return [*self.keys, *([PUBLISH_KEY] if self.publish else [])]

    @property
    def tags(self) -> dict[str, str]:
        """The build run's tags."""
        return {PLANNED_TAG: "true", **({FULL_REFRESH_TAG: "true"} if self.full_refresh else {})}


def decide_build(
    required: Sequence[str],
    dbt_keys: Iterable[dg.AssetKey],
    warehouse: WarehouseSettings,
    orchestration: OrchestrationSettings,
    serving: ServingSettings | None = None,
) -> BuildDecision:
    """After the land run: the dbt assets that are not current (``plan_incremental_build``)
    and whether the served version is stale (``required``: the checks the gate needs)."""
    project = dbt_project(orchestration.dbt_target_dir, orchestration.dbt_project_dir)
    plan = plan_incremental_build(project, warehouse, required)
    current = sorted(k.to_user_string() for k in set(dbt_keys) - set(plan.keys))
    publish = bool(plan.keys)
    if not publish:
        verdict = gate(warehouse.warehouse_path, project.manifest_path, required)
        serving = serving or ServingSettings(
            data_dir=warehouse.data_dir, dbt_target_dir=orchestration.dbt_target_dir
        )
        _, served_from = served_state(serving)
        publish = not verdict.open or served_from != verdict.state
    return BuildDecision(list(plan.keys), publish, plan.full_refresh, plan.description, current)


def build_after_land_sensor(
    land: Any, incremental: Any, decide: Callable[[], BuildDecision]
) -> dg.SensorDefinition:
    """After each successful land run, the ``incremental`` run that builds, checks and
    publishes what is not current (none when everything is, and is served)."""

    @dg.run_status_sensor(
        name="build_after_land",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[land],
        request_job=incremental,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def build_after_land(context: dg.RunStatusSensorContext) -> Any:
        """Plan the build from the warehouse's state and launch it."""
        decision = decide()
        if decision.nothing:
            return dg.SkipReason("every model is current and the served version is too")
        return dg.RunRequest(
            run_key=f"build-after-{context.dagster_run.run_id}",
            asset_selection=decision.selection,
            tags=decision.tags,
        )

    return build_after_land


# -- alerting ----------------------------------------------------------------------------


def run_failure_alert(run: dg.DagsterRun, message: str | None) -> Alert:
    """The alert for a failed run: which job, which run, why."""
    return run_alert(run.job_name, run.run_id, message)


def check_failure_alert(
    evaluation: dg.AssetCheckEvaluation, run_id: str | None, job: str | None
) -> Alert:
    """The alert for a failed asset check: which check on which asset, how severe, why."""
    return check_alert(
        evaluation.asset_key.to_user_string(),
        evaluation.check_name,
        evaluation.severity.value,
        evaluation.description,
        run_id,
        job,
    )


def failed_check_alerts(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[Alert]:
    """One alert per asset check that failed in ``run`` (read from the run's own events, which
    works on every event storage, run-sharded SQLite included)."""
    records = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    alerts = []
    for entry in records:
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if isinstance(evaluation, dg.AssetCheckEvaluation) and not evaluation.passed:
            alerts.append(check_failure_alert(evaluation, run.run_id, run.job_name))
    return alerts


def alert_sensors(settings: OrchestrationSettings) -> list[dg.SensorDefinition]:
    """Two run-status sensors: a failed run alerts for itself and for each failed check in
    it; a successful run alerts for each failed (WARN, or non-blocking) check in it. Runs
    tagged ``warehouse/self_alerting`` (``warehouse run``) already sent their alerts."""

    @dg.run_failure_sensor(
        name="run_failure_alerts",
        default_status=dg.DefaultSensorStatus.RUNNING,
        monitor_all_code_locations=False,
    )
    def run_failure_alerts(context: dg.RunFailureSensorContext) -> None:
        """Post a failed run, and the checks that failed in it, to the webhook and the log."""
        run = context.dagster_run
        if run.tags.get(SELF_ALERTING_TAG):
            return
        for alert in failed_check_alerts(context.instance, run):
            send_alert(alert, settings)
        send_alert(run_failure_alert(run, context.failure_event.message), settings)

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="check_failure_alerts",
        default_status=dg.DefaultSensorStatus.RUNNING,
        monitor_all_code_locations=False,
    )
    def check_failure_alerts(context: dg.RunStatusSensorContext) -> None:
        """Post every check that failed in a run that still succeeded (WARN severity)."""
        run = context.dagster_run
        if run.tags.get(SELF_ALERTING_TAG):
            return
        for alert in failed_check_alerts(context.instance, run):
            send_alert(alert, settings)

    return [run_failure_alerts, check_failure_alerts]


def build_defs(
    settings: OrchestrationSettings,
    reconciliation_checks: Sequence[dg.AssetCheckKey],
    dbt: dg.AssetsDefinition,
    raw_suites: Sequence[dg.AssetCheckKey],
    land: Sequence[dg.AssetKey],
    decide: Callable[[], BuildDecision],
) -> dg.Definitions:
    """Jobs, schedules and sensors; every job runs in one process (DuckDB has one writer).
    ``land``: the source and raw assets the land job lands; ``decide``: what the
    incremental run after it builds."""
    land_run = land_job(land, reconciliation_checks)
    incremental = incremental_job(reconciliation_checks)
    jobs = [land_run, incremental, reconcile_job(), report_job(), transform_job(dbt, raw_suites)]
    return dg.Definitions(
        jobs=jobs,
        schedules=schedules(jobs, settings),
        sensors=[*alert_sensors(settings), build_after_land_sensor(land_run, incremental, decide)],
        executor=dg.in_process_executor,
    )
