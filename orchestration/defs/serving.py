"""Serving assets: publish the audited marts to BI tools, then render the leadership report.

- ``serving/publish`` depends on every served model (marts, dimensions, facts). Dagster
  skips it when a blocking (ERROR) check upstream of it failed in the run, and the step
  itself asks the ledger's gate (``orchestration/check_ledger.py``): every required check
  must have a verdict on the warehouse as it is now, and no current ERROR verdict may have
  failed (write-audit-publish: readers never see a half-built, unchecked or failed build;
  the previously served version stays). When the served version was published from the
  same state, nothing is copied again.
- ``serving/report`` depends on the publication: ``report_step`` renders the dated HTML
  report from the serving file (stamped with the served version's check counts) and
  emails it only when SMTP is configured. Only the weekly ``report`` job (and
  ``warehouse run``) materializes it.

The publish step reads the warehouse, so it is in the writers' pool; it runs last
among the steps ready with it (priority -1) so that every check of the run is counted.
"""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext

from ingestion.settings import WarehouseSettings
from orchestration.check_ledger import gate
from orchestration.config import RECHECK_TAG, WRITER_POOL
from serving.checks import PublishBlocked
from serving.publish import AuditFailed, served_check_summary, served_state
from serving.settings import ServingSettings
from serving.steps import publish_step, report_step

SERVING_GROUP = "serving"
PUBLISH_KEY = dg.AssetKey([SERVING_GROUP, "publish"])
REPORT_KEY = dg.AssetKey([SERVING_GROUP, "report"])
#: Lower than the default 0: the in-process executor runs every other ready step first.
LAST = {"dagster/priority": "-1"}


def publish_asset(
    served: Sequence[dg.AssetKey], required: Sequence[str], manifest: Path
) -> dg.AssetsDefinition:
    """The publication, downstream of every served model, gated on the ``required`` checks."""

    @dg.asset(
        key=PUBLISH_KEY,
        deps=list(served),
        group_name=SERVING_GROUP,
        kinds={"duckdb", "postgres"},
        pool=WRITER_POOL,
        op_tags=LAST,
        description="Write-audit-publish of the marts, dimensions and facts to the read-only "
        "serving DuckDB file (atomic rename) and, when WAREHOUSE_PG_URL is set, PostgreSQL "
        "(schema swap in one transaction); only when every required check has passed on the "
        "warehouse as it is.",
    )
    def publish(
        context: AssetExecutionContext,
        warehouse: dg.ResourceParam[WarehouseSettings],
        serving: dg.ResourceParam[ServingSettings],
    ) -> dg.MaterializeResult:
        """Ask the gate, then publish; a failed or missing verdict fails this step and
        readers keep the previously served version."""
        verdict = gate(warehouse.warehouse_path, manifest, required)
        summary = verdict.summary()
        context.log.info(f"Gate: {summary.stamp()}")
        if not verdict.open:
            raise dg.Failure(f"not published: {verdict.reason()}")
        served_version, served_from = served_state(serving)
        recheck = context.run.tags.get(RECHECK_TAG) == "true"  # a hand edit keeps the state
        if served_version and served_from == summary.state and not recheck:
            context.log.info(f"Version {served_version} already serves this warehouse state")
            return dg.MaterializeResult(
                metadata={
                    "version": served_version,
                    "unchanged": True,
                    "serving_path": dg.MetadataValue.path(str(serving.resolved_serving_path)),
                    "checks": summary.stamp(),
                    "checks_passed": summary.passed,
                    "checks_failed": summary.failed,
                }
            )
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
                "unchanged": False,
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
    try:
        checks = served_check_summary(serving)
    except PublishBlocked as exc:
        raise dg.Failure(str(exc)) from exc
    result = report_step(checks, serving)
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


def build_defs(
    served: Sequence[dg.AssetKey],
    serving: ServingSettings,
    required: Sequence[str],
    manifest: Path,
) -> dg.Definitions:
    """The publication (gated on the ``required`` checks) and the report."""
    return dg.Definitions(
        assets=[publish_asset(served, required, manifest), report],
        resources={"serving": serving},
    )
