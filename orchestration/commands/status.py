"""``warehouse status``: what is served, as of when, is it fresh, what failed, the last runs."""

from __future__ import annotations

from datetime import datetime, timedelta

import typer

from orchestration.commands.common import SourceOption, WarehouseOption, build_settings


def status(source: SourceOption = None, warehouse: WarehouseOption = None) -> None:
    """What is served and as of when, each raw table's and mart's freshness against the SLA,
    the checks that failed last, and the last run of each job; without the UI or the source,
    and without writing the warehouse."""
    import dagster as dg

    from orchestration.config import OrchestrationSettings
    from orchestration.instance import prepare_dagster_home
    from orchestration.status import warehouse_status
    from serving.settings import ServingSettings

    settings = build_settings(source, warehouse)
    orchestration = OrchestrationSettings()
    prepare_dagster_home(orchestration)
    with dg.DagsterInstance.get() as instance:
        state = warehouse_status(
            settings.warehouse_path, ServingSettings(), instance, orchestration.freshness_sla_hours
        )
    for line in render_status(state):
        typer.echo(line)  # plain lines: greppable, never wrapped


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never"
    return f"{at:%Y-%m-%d %H:%M:%S} UTC ({_age(now - at)} ago)"


def _age(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def render_status(state) -> list[str]:
    """The lines ``warehouse status`` prints."""
    now, hours = state.now, state.sla.total_seconds() / 3600
    lines = []
    served = state.served
    if served is None:
        lines.append("Served: nothing yet (run `warehouse run`, or `warehouse publish`)")
    else:
        as_of = f"{served.data_as_of:%Y-%m-%d %H:%M:%S} UTC" if served.data_as_of else "unknown"
        lines.append(
            f"Served: version {served.version}, published {_when(served.published_at, now)}; "
            f"data as of {as_of}; {served.tables} tables, {served.rows:,} rows; "
            f"checks at publication {served.checks_passed} passed, {served.checks_failed} failed"
        )
    if state.warehouse_note:
        lines.append(f"Warehouse: {state.warehouse_note}")
    for title, items, what in (
        ("Sources", state.sources, "last successful load"),
        ("Marts", state.marts, "last build"),
    ):
        if not items:
            continue
        fresh = sum(f.fresh for f in items)
        lines.append(f"{title} ({what}; SLA {hours:g} h): {fresh} of {len(items)} fresh")
        width = max(len(f.name) for f in items)
        for f in items:
            verdict = "fresh" if f.fresh else "STALE"
            lines.append(f"  {f.name:<{width}}  {verdict:<5}  {_when(f.at, now)}")
    if state.sources or state.failed or state.checks_passed:
        lines.append(
            f"Checks (last verdict of each): {state.checks_passed} passed, "
            f"{len(state.failed)} failed"
        )
        for check in state.failed:
            lines.append(
                f"  FAILED {check.asset} {check.check} ({check.severity}): "
                f"{check.description or 'no reason recorded'}"
            )
    if state.erasures:
        last = state.erasures[-1]
        unfinished = [e for e in state.erasures if e.status != "complete"]
        lines.append(
            f"Erasure requests: {len(state.erasures)}, "
            f"{sum(e.accounts for e in state.erasures)} accounts; last {_when(last.requested_at, now)} "
            f"({last.status}, {last.rows:,} rows rewritten)"
            + (
                f"; {len(unfinished)} not complete: run `warehouse forget` again with their ids"
                if unfinished
                else ""
            )
        )
    lines.append("Last runs:")
    width = max(len(r.job) for r in state.runs) if state.runs else 0
    for run in state.runs:
        if run.status is None:
            lines.append(f"  {run.job:<{width}}  never run")
        else:
            lines.append(
                f"  {run.job:<{width}}  {run.status:<9}  {_when(run.started, now)}  "
                f"run {run.run_id}"
            )
    return lines
