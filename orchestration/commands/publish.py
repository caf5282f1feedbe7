"""``warehouse publish``: serve the audited marts to BI tools (or roll back one version)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestration.commands.common import (
    SourceOption,
    WarehouseOption,
    build_settings,
    console,
    fail,
)

# Options shared by `publish` and `report`: both read the served version and the check results.
ServingOption = Annotated[
    Path | None,
    typer.Option(
        envvar="WAREHOUSE_SERVING_PATH",
        help="The read-only serving DuckDB file. Default: data/serving/warehouse.duckdb.",
        show_default=False,
    ),
]


# The PostgreSQL publication: `publish` writes it, `forget` rewrites it.
PgUrlOption = Annotated[
    str | None,
    typer.Option(
        "--pg-url",
        envvar="WAREHOUSE_PG_URL",
        help="PostgreSQL URL of the publication, e.g. postgresql://postgres@127.0.0.1:5432/warehouse.",
        show_default=False,
    ),
]


def serving_settings(serving: Path | None, pg_url: str | None, keep: int | None):
    """ServingSettings from flags, falling back to WAREHOUSE_* environment variables."""
    from serving.settings import ServingSettings

    overrides: dict[str, Any] = {}
    if serving:
        overrides["serving_path"] = serving
    if pg_url:
        overrides["pg_url"] = pg_url
    if keep:
        overrides["serving_keep"] = keep
    return ServingSettings(**overrides)


def publish(
    source: SourceOption = None,
    warehouse: WarehouseOption = None,
    serving: ServingOption = None,
    pg_url: PgUrlOption = None,
    keep: Annotated[int | None, typer.Option(help="Published versions kept. Default 5.")] = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Serve the previous published version again.")
    ] = False,
    list_versions: Annotated[
        bool, typer.Option("--list", help="List the kept versions and which one is served.")
    ] = False,
) -> None:
    """Publish the marts, dims and facts if every required check passed on the warehouse as it
    is now (write-audit-publish); otherwise say why, in one line, and publish nothing."""
    from orchestration.config import OrchestrationSettings
    from orchestration.definitions import publication_gate
    from serving.checks import PublishBlocked
    from serving.publish import AuditFailed, publish_warehouse, served_state
    from serving.publish import rollback as run_rollback

    settings = build_settings(source, warehouse)  # publishing reads the warehouse, never the source
    serving_conf = serving_settings(serving, pg_url, keep)
    if list_versions:
        print_versions(serving_conf)
        return
    try:
        if rollback:
            result = run_rollback(serving_conf)
            console.print(f"Rolled back {result.rolled_back_from} -> {result.version}")
        else:
            if serving_conf.pg_url:  # an unreachable server: one line before any work
                import psycopg

                psycopg.connect(serving_conf.pg_url, connect_timeout=10).close()
            verdict = publication_gate(settings, OrchestrationSettings())
            summary = verdict.summary()
            console.print(f"Gate: {summary.stamp()} on the warehouse as it is now")
            if not verdict.open:
                fail(f"not published: {verdict.reason()}")
            version, published_from = served_state(serving_conf)
            if version and published_from == summary.state:
                console.print(f"Version {version} already serves this warehouse: nothing to do.")
                return
            result = publish_warehouse(settings.warehouse_path, serving_conf, summary)
    except (PublishBlocked, AuditFailed, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    print_publish(result)


def print_publish(result) -> None:
    """Tables, rows, where they went and how long each step took."""
    table = Table(title=f"Published version {result.version}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in result.row_counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(f"Serving file: {result.serving_path} (read-only; version {result.version_path})")
    if result.postgres:
        console.print(result.postgres)
    else:
        console.print(
            "PostgreSQL: not configured (set WAREHOUSE_PG_URL or --pg-url); "
            "published the serving file only."
        )
    steps = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items())
    console.print(f"Timings: {steps}")
    if result.artefacts:
        views = [p for p in result.artefacts if p.name.endswith(".view.lkml")]
        console.print(
            f"BI artefacts from the dbt manifest: {len(views)} LookML views, the LookML model "
            f"and dbt exposures in {result.artefacts[-1].parent}"
        )
    if result.artefact_error:
        console.print(f"warning: {result.artefact_error}")
    if result.pruned:
        console.print(f"Pruned {len(result.pruned)} old version(s).")


def print_versions(settings) -> None:
    """The kept versions, oldest first: when each was published, the data's as-of time, the
    checks it passed and failed, its size, and which one the serving file holds."""
    from serving.publish import current_version, version_summary
    from serving.publish import list_versions as kept_versions

    current = current_version(settings)
    versions = kept_versions(settings)
    if not versions:
        console.print(f"No published version under {settings.versions_dir}")
        return
    console.print(f"Published versions in {settings.versions_dir}, oldest first:")
    for path in versions:
        v = version_summary(path, settings.serving_schema)
        # one plain line per version, whatever the terminal's width (greppable, never wrapped)
        typer.echo(
            f"{v.version}  published {_utc_text(v.published_at)}  data as of {_utc_text(v.data_as_of)}  "
            f"checks {v.checks_passed} passed, {v.checks_failed} failed  {v.tables} tables  "
            f"{v.rows:,} rows  {v.megabytes:.1f} MB"
            + ("  * served" if v.version == current else "")
        )


def _utc_text(value: object) -> str:
    """A timestamp as UTC to the second (timestamptz values come back in the local zone)."""
    from datetime import UTC, datetime

    if not isinstance(value, datetime):
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="seconds")
