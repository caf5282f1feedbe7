"""Jobs, schedules, the one-writer rule and alerting.

- ``incremental``: observe the source, extract incrementally, build, check (no
  reconciliation: hard deletes are only detected by a reconcile extract);
- ``reconcile``: observe, reconcile extraction (hard deletes, stale cursors), full
  dbt build, every check including reconciliation;
- ``report``: re-audits the marts (their checks only) until the serving issue adds
  the report assets.

Runs that write the warehouse carry ``warehouse/writer``: the run queue admits one at
a time (``dagster.yaml``), and their writing steps share the ``warehouse_writer`` pool
of one slot, which also serialises in-process runs. Alerts go to the webhook and the
local alert log for every failed run and every failed check.
"""

from collections.abc import Iterable, Sequence

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._core.events import DagsterEventType

from orchestration.alerting import Alert, send_alert
from orchestration.config import (
    EXTRACT_MODE_TAG,
    FULL_REFRESH_TAG,
    WRITER_TAG,
    OrchestrationSettings,
)

WRITER_TAGS = {WRITER_TAG: "true"}


def incremental_job(reconciliation: Sequence[dg.AssetCheckKey]) -> UnresolvedAssetJobDefinition:
    """Hourly: observe, extract what changed, build, check."""
    return dg.define_asset_job(
        "incremental",
        selection=dg.AssetSelection.all(include_sources=True)
        - dg.AssetSelection.checks(*reconciliation),
        description="Observe the source, extract incrementally, build the models, run the checks.",
        tags={**WRITER_TAGS, EXTRACT_MODE_TAG: "incremental"},
    )


def reconcile_job() -> UnresolvedAssetJobDefinition:
    """Nightly: reconcile extraction, full build, every check."""
    return dg.define_asset_job(
        "reconcile",
        selection=dg.AssetSelection.all(include_sources=True),
        description="Reconcile extraction (hard deletes, stale cursors), full dbt build, "
        "every check including source reconciliation.",
        tags={**WRITER_TAGS, EXTRACT_MODE_TAG: "reconcile", FULL_REFRESH_TAG: "true"},
    )


def report_job(marts: Sequence[dg.AssetKey]) -> UnresolvedAssetJobDefinition:
    """Weekly: re-audit the marts; the serving issue adds the report assets to it."""
    return dg.define_asset_job(
        "report",
        selection=dg.AssetSelection.checks_for_assets(*marts),
        description="Placeholder until the serving issue: re-runs the marts' checks only "
        "(writes nothing).",
    )


def schedules(
    jobs: Iterable[UnresolvedAssetJobDefinition], settings: OrchestrationSettings
) -> list[dg.ScheduleDefinition]:
    """One schedule per job, cron and time zone from the settings."""
    crons = {
        "incremental": settings.incremental_cron,
        "reconcile": settings.reconcile_cron,
        "report": settings.report_cron,
    }
    status = (
        dg.DefaultScheduleStatus.RUNNING
        if settings.schedules_running
        else dg.DefaultScheduleStatus.STOPPED
    )
    return [
        dg.ScheduleDefinition(
            name=f"{job.name}_schedule",
            job=job,
            cron_schedule=crons[job.name],
            execution_timezone=settings.timezone,
            default_status=status,
        )
        for job in jobs
    ]


# -- alerting ----------------------------------------------------------------------------


def run_failure_alert(run: dg.DagsterRun, message: str | None) -> Alert:
    """The alert for a failed run: which job, which run, why."""
    return Alert(
        kind="run_failure",
        title=f"Run of {run.job_name} failed",
        detail=f"run `{run.run_id}`: {message or 'no failure message'}",
        run_id=run.run_id,
        job=run.job_name,
    )


def check_failure_alert(evaluation, run_id: str | None, job: str | None) -> Alert:
    """The alert for a failed asset check: which check on which asset, how severe, why."""
    asset = evaluation.asset_key.to_user_string()
    severity = evaluation.severity.value
    return Alert(
        kind="check_failure",
        title=f"{severity} check {evaluation.check_name} failed on {asset}",
        detail=evaluation.description or "no description",
        run_id=run_id,
        job=job,
        asset=asset,
        check=evaluation.check_name,
        severity=severity,
    )


def failed_check_alerts(instance: dg.DagsterInstance, after_cursor: int | None = None):
    """Failed check evaluations recorded after ``after_cursor``: (storage id, alert) pairs."""
    records = instance.get_event_records(
        dg.EventRecordsFilter(
            event_type=DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after_cursor
        ),
        ascending=True,
        limit=500,
    )
    for record in records:
        entry = record.event_log_entry
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if evaluation is not None and not evaluation.passed:
            yield record.storage_id, check_failure_alert(evaluation, entry.run_id, entry.job_name)
        else:
            yield record.storage_id, None


def alert_sensors(settings: OrchestrationSettings) -> list[dg.SensorDefinition]:
    """The run-failure sensor and the check-failure sensor, both posting through ``settings``."""

    @dg.run_failure_sensor(
        name="run_failure_alerts",
        default_status=dg.DefaultSensorStatus.RUNNING,
        monitor_all_code_locations=False,
    )
    def run_failure_alerts(context: dg.RunFailureSensorContext) -> None:
        """Post every failed run to the webhook and the alert log."""
        send_alert(run_failure_alert(context.dagster_run, context.failure_event.message), settings)

    @dg.sensor(
        name="check_failure_alerts",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
    )
    def check_failure_alerts(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        """Post every failed asset check (ERROR or WARN) since the last tick."""
        cursor = int(context.cursor) if context.cursor else None
        sent = 0
        for storage_id, alert in failed_check_alerts(context.instance, cursor):
            if alert is not None:
                send_alert(alert, settings)
                sent += 1
            cursor = storage_id
        if cursor is not None:
            context.update_cursor(str(cursor))
        return dg.SkipReason(f"{sent} check failure alert(s) sent")

    return [run_failure_alerts, check_failure_alerts]


def build_defs(
    settings: OrchestrationSettings,
    reconciliation_checks: Sequence[dg.AssetCheckKey],
    marts: Sequence[dg.AssetKey],
) -> dg.Definitions:
    """Jobs, schedules and sensors; every job runs in one process (DuckDB has one writer)."""
    jobs = [incremental_job(reconciliation_checks), reconcile_job()]
    if marts:
        jobs.append(report_job(marts))
    return dg.Definitions(
        jobs=jobs,
        schedules=schedules(jobs, settings),
        sensors=alert_sensors(settings),
        executor=dg.in_process_executor,
    )
