"""``warehouse report``: render the leadership report from the published marts, optionally email it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orchestration.commands.common import SourceOption, WarehouseOption, console, fail
from orchestration.commands.publish import ServingOption


def report(
    source: SourceOption = None,
    warehouse: WarehouseOption = None,
    serving: ServingOption = None,
    checks_passed: Annotated[
        int | None, typer.Option(help="Override: number of checks passed.", show_default=False)
    ] = None,
    checks_failed: Annotated[
        int | None, typer.Option(help="Override: number of checks failed.", show_default=False)
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="WAREHOUSE_REPORT_DIR",
            help="Folder for the dated report. Default: data/reports.",
            show_default=False,
        ),
    ] = None,
    email: Annotated[
        bool,
        typer.Option("--email", help="Email it via WAREHOUSE_SMTP_HOST/PORT to WAREHOUSE_SMTP_TO."),
    ] = False,
) -> None:
    """Render the self-contained HTML leadership report (KPIs, LTV, instructors, liquidity, quality)."""
    from serving.checks import CheckSummary, PublishBlocked
    from serving.publish import served_check_summary
    from serving.report.mail import send_report
    from serving.report.render import build_report
    from serving.settings import ServingSettings

    del source, warehouse  # accepted like every stage's; the report reads only the serving file
    overrides: dict[str, Any] = {}
    if serving:
        overrides["serving_path"] = serving
    if out_dir:
        overrides["report_dir"] = out_dir
    settings = ServingSettings(**overrides)
    if checks_passed is not None or checks_failed is not None:
        summary = CheckSummary(passed=checks_passed or 0, failed=checks_failed or 0)
    else:
        try:
            summary = served_check_summary(settings)  # the served version's own stamp
        except PublishBlocked as exc:
            fail(str(exc))
    if not settings.resolved_serving_path.exists():
        fail(f"no serving file at {settings.resolved_serving_path}: run `warehouse publish` first")
    try:
        rendered = build_report(
            settings.resolved_serving_path,
            settings.resolved_report_dir,
            summary,
            schema=settings.serving_schema,
        )
    except ValueError as exc:
        fail(str(exc))
    console.print(f"Report: {rendered.path}")
    console.print(rendered.stamp)
    if email:
        try:
            recipients = send_report(rendered.path, rendered.stamp, settings)
        except (ValueError, OSError) as exc:
            fail(f"email not sent: {exc}")
        console.print(f"Emailed to {', '.join(recipients)} via {settings.smtp_host}")
