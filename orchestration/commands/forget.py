"""``warehouse forget``: an erasure request, carried to every copy the warehouse keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestration.commands.common import (
    SourceOption,
    WarehouseOption,
    build_settings,
    console,
    fail,
    progress_lines,
)
from orchestration.commands.publish import PgUrlOption, serving_settings


def forget(
    user_id: Annotated[
        list[int] | None,
        typer.Option(
            "--user-id", help="A source users.id to forget (repeatable).", show_default=False
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="A file of user ids, one per line.", show_default=False),
    ] = None,
    source: SourceOption = None,
    warehouse: WarehouseOption = None,
    pg_url: PgUrlOption = None,
) -> None:
    """Forget people: their accounts and every account merged into the same person lose their
    personal attributes in raw, the snapshots, the marts, every kept serving version and
    PostgreSQL; payments, refunds and payouts stay in the totals under an anonymous id. With
    no --user-id or --file, the ids are read from the source table WAREHOUSE_ERASURE_TABLE."""
    import dagster as dg

    from ingestion.erasure import ErasureError
    from orchestration.config import DBT_LOG_TAG, OrchestrationSettings
    from orchestration.forgetting import (
        ForgetIncomplete,
        forget_people,
        request_ids,
        require_warehouse,
    )
    from orchestration.instance import prepare_dagster_home

    settings = build_settings(source, warehouse)
    serving = serving_settings(None, pg_url, None)
    orchestration = OrchestrationSettings()
    try:
        ids = request_ids(settings, user_id or [], file)
        require_warehouse(settings)
        prepare_dagster_home(orchestration)
        console.print(f"Forgetting {len(ids)} account(s) and the accounts merged with them")
        dbt_log = orchestration.alert_log.parent / "dbt.log"
        with dg.DagsterInstance.get() as instance, progress_lines() as progress:
            outcome = forget_people(
                settings,
                orchestration,
                serving,
                ids,
                instance,
                {DBT_LOG_TAG: str(dbt_log)},
                progress=progress,
            )
    except (ErasureError, ForgetIncomplete) as exc:
        fail(str(exc))
    erasure = outcome.erasure
    console.print(
        f"Request {erasure.request_id}: {erasure.accounts} account(s) erased "
        f"({erasure.accounts_in_warehouse} held by the warehouse, "
        f"{erasure.already_forgotten} already forgotten); {erasure.total_rows:,} rows rewritten"
    )
    for table, rows in sorted(erasure.rows_rewritten.items()):
        console.print(f"  {table:<45} {rows:>8,}")
    console.print(
        f"Rebuilt every model in {outcome.transform_seconds:.1f} s; published version "
        f"{outcome.version}; dropped {outcome.versions_dropped} older version(s)"
        + ("; PostgreSQL republished, its rollback schema dropped" if outcome.postgres else "")
    )
    console.print(
        f"Deleted {outcome.load_packages_deleted} dlt load package(s), "
        f"{outcome.validation_results_deleted} validation result file(s), "
        f"{outcome.reports_deleted} older report(s); report: {outcome.report}"
    )
