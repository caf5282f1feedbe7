"""Serving assets: publish the audited marts to BI tools, then render the leadership report.

- ``serving/publish`` depends on every served model (marts, dimensions, facts). Dagster
  skips it when a blocking (ERROR) check upstream of it failed in the run, and the step
  itself re-reads every check evaluated in the run and refuses to publish when any
  ERROR check failed (write-audit-publish: readers never see a half-built or failed
  build; the previously served version stays). It calls
  ``orchestration.serving.steps.publish_step`` with the run's check counts and writes
  them to ``checks.json`` for ``warehouse publish`` and ``warehouse report``.
- ``serving/report`` depends on the publication: ``report_step`` renders the dated HTML
  report from the serving file (stamped with the served version's check counts) and
  emails it only when SMTP is configured. Only the weekly ``report`` job (and
  ``warehouse run``) materializes it.

The publish step reads the warehouse, so it is in the writers' pool; it runs last
among the steps ready with it (priority -1) so that every check of the run is counted.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import dagster as dg
import duckdb
from dagster import AssetExecutionContext
from dagster._core.events import DagsterEventType

from ingestion.settings import WarehouseSettings
from orchestration.config import WRITER_POOL
from orchestration.serving.checks import CheckSummary, PublishBlocked, write_check_results
from orchestration.serving.publish import METADATA_TABLE, AuditFailed
from orchestration.serving.settings import ServingSettings

SERVING_GROUP = "serving"
PUBLISH_KEY = dg.AssetKey([SERVING_GROUP, "publish"])
REPORT_KEY = dg.AssetKey([SERVING_GROUP, "report"])
#: Lower than the default 0: the in-process executor runs every other ready step first.
LAST = {"dagster/priority": "-1"}


def run_checks(instance: dg.DagsterInstance, run_id: str) -> list[dict[str, Any]]:
    """Every asset check evaluated so far in ``run_id`` (its last verdict), as
    ``{"name", "passed", "blocking", "severity", "description"}``; ERROR blocks."""
    latest: dict[dg.AssetCheckKey, dg.AssetCheckEvaluation] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if isinstance(data, dg.AssetCheckEvaluation):
            latest[data.asset_check_key] = data
    return [
        {
            "name": f"{key.asset_key.to_user_string()}:{key.name}",
            "passed": evaluation.passed,
            "blocking": evaluation.severity == dg.AssetCheckSeverity.ERROR,
            "severity": evaluation.severity.value,
            "description": (evaluation.description or "")[:500],
        }
        for key, evaluation in sorted(latest.items(), key=lambda item: item[0].to_user_string())
    ]


def summarize_checks(checks: Sequence[dict[str, Any]]) -> CheckSummary:
    """The gate's counts: passed, failed, and the failed ERROR checks that block."""
    failed = [c["name"] for c in checks if not c["passed"]]
    return CheckSummary(
        passed=len(checks) - len(failed),
        failed=len(failed),
        blocking_failures=tuple(c["name"] for c in checks if c["blocking"] and not c["passed"]),
        failures=tuple(failed),
    )


def served_check_summary(serving: ServingSettings) -> CheckSummary:
    """The check counts and data time of the version the serving file holds."""
    path = serving.resolved_serving_path
    if not path.exists():
        raise dg.Failure(f"no published version at {path}: run the incremental job first")
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            f"select max(checks_passed), max(checks_failed), max(data_as_of) "
            f'from "{serving.serving_schema}".{METADATA_TABLE}'
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


def publish_asset(served: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """The publication, downstream of every served model."""

    @dg.asset(
        key=PUBLISH_KEY,
        deps=list(served),
        group_name=SERVING_GROUP,
        kinds={"duckdb", "postgres"},
        pool=WRITER_POOL,
        op_tags=LAST,
        description="Write-audit-publish of the marts, dimensions and facts to the read-only "
        "serving DuckDB file (atomic rename) and, when WAREHOUSE_PG_URL is set, PostgreSQL "
        "(schema swap in one transaction); only when every ERROR check of the run passed.",
    )
    def publish(
        context: AssetExecutionContext,
        warehouse: dg.ResourceParam[WarehouseSettings],
        serving: dg.ResourceParam[ServingSettings],
    ) -> dg.MaterializeResult:
        """Gate on the run's check verdicts, then publish; a failed ERROR check or a failed
        audit fails this step and readers keep the previously served version."""
        checks = run_checks(context.instance, context.run_id)
        summary = summarize_checks(checks)
        write_check_results(serving.resolved_checks_path, checks)
        context.log.info(f"Gate: {summary.stamp()}")
        if not checks:
            raise dg.Failure("no check ran in this run: nothing vouches for the build")
        from orchestration.serving.steps import publish_step

        try:
            result = publish_step(warehouse.warehouse_path, summary, serving)
        except (PublishBlocked, AuditFailed) as exc:
            raise dg.Failure(f"not published: {exc}") from exc
        timings = result["timings_s"]
        context.log.info(
            f"Published version {result['version']} to {result['serving_path']}; "
            f"PostgreSQL: {result['postgres']}; "
            + ", ".join(f"{step} {seconds:.2f} s" for step, seconds in timings.items())
        )
        return dg.MaterializeResult(
            metadata={
                "version": result["version"],
                "serving_path": dg.MetadataValue.path(result["serving_path"]),
                "postgres": result["postgres"],
                "tables": result["tables"],
                "dagster/row_count": result["rows"],
                "row_counts": dg.MetadataValue.json(result["row_counts"]),
                "timings_s": dg.MetadataValue.json(timings),
                "checks": result["checks"],
                "checks_passed": summary.passed,
                "checks_failed": summary.failed,
            }
        )

    return publish


@dg.asset(
    key=REPORT_KEY,
    deps=[PUBLISH_KEY],
    group_name=SERVING_GROUP,
    kinds={"html"},
    description="The weekly leadership report: a self-contained, dated HTML file rendered "
    "from the published serving file; emailed when WAREHOUSE_SMTP_HOST and _TO are set.",
)
def report(
    context: AssetExecutionContext, serving: dg.ResourceParam[ServingSettings]
) -> dg.MaterializeResult:
    """Render the dated report from the served version (stamped with its check counts) and
    email it when SMTP is configured."""
    from orchestration.serving.steps import report_step

    result = report_step(served_check_summary(serving), serving)
    emailed = result["emailed_to"]
    context.log.info(
        f"Report {result['path']} ({result['stamp']}); "
        + (f"emailed to {', '.join(emailed)}" if emailed else "not emailed (no SMTP settings)")
    )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(result["path"]),
            "stamp": result["stamp"],
            "period": result["period"],
            "published_version": str(result["published_version"]),
            "emailed_to": ", ".join(emailed) or "not emailed",
        }
    )


def build_defs(served: Sequence[dg.AssetKey], serving: ServingSettings) -> dg.Definitions:
    """The publication and the report, bound to the serving settings."""
    return dg.Definitions(
        assets=[publish_asset(served), report],
        resources={"serving": serving},
    )
