"""The serving stage as two plain steps for the orchestration layer to wrap as Dagster assets.

Each takes its inputs explicitly, does the whole step, and returns a JSON-able dict of
metadata (for ``MaterializeResult(metadata=...)``). Neither imports Dagster.

- ``publish_step``: after the checks; raises ``PublishBlocked`` (a blocking check failed)
  or ``AuditFailed``, in which case readers keep the previous version.
- ``report_step``: weekly, after ``publish_step``; renders the dated report from the
  serving file and emails it when SMTP is configured.
"""

from __future__ import annotations

from pathlib import Path

from serving.checks import CheckSummary
from serving.publish import publish_warehouse, rollback, served_check_summary
from serving.report.mail import send_report
from serving.report.render import build_report
from serving.settings import ServingSettings


def publish_step(
    warehouse_path: Path, checks: CheckSummary, settings: ServingSettings | None = None
) -> dict:
    """Write-audit-publish the served tables, stamped with the gate's ``checks``."""
    settings = settings or ServingSettings()
    result = publish_warehouse(warehouse_path, settings, checks)
    return {
        "version": result.version,
        "serving_path": str(result.serving_path),
        "postgres": result.postgres or "not configured: serving file only",
        "tables": len(result.row_counts),
        "rows": sum(result.row_counts.values()),
        "row_counts": result.row_counts,
        "timings_s": result.timings,
        "checks": checks.stamp(),
    }


def rollback_step(settings: ServingSettings | None = None) -> dict:
    """Serve the previous published version again (file and PostgreSQL)."""
    result = rollback(settings or ServingSettings())
    return {"version": result.version, "rolled_back_from": result.rolled_back_from}


def report_step(
    checks: CheckSummary | None = None,
    settings: ServingSettings | None = None,
    *,
    email: bool | None = None,
) -> dict:
    """Render the dated leadership report, stamped with ``checks`` (default: the served
    version's); email it when ``email`` (default: SMTP configured)."""

    settings = settings or ServingSettings()
    checks = checks or served_check_summary(settings)
    rendered = build_report(
        settings.resolved_serving_path,
        settings.resolved_report_dir,
        checks,
        schema=settings.serving_schema,
    )
    send = email if email is not None else bool(settings.smtp_host and settings.smtp_recipients)
    recipients = send_report(rendered.path, rendered.stamp, settings) if send else []
    return {
        "path": str(rendered.path),
        "stamp": rendered.stamp,
        "period": rendered.data.period.isoformat(),
        "published_version": rendered.data.version,
        "emailed_to": recipients,
    }
