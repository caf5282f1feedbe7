"""Orchestration settings: schedules, alerting, freshness SLA and local run folders.

Resolved at run time (never at import) from ``WAREHOUSE_*`` environment variables
or built by tests pointing at ``tmp_path``. Where the source and the warehouse are
stays in :class:`ingestion.settings.WarehouseSettings`; this object holds only what
Dagster needs on top of it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingestion.settings import PROJECT_ROOT

#: Every run that writes the DuckDB warehouse carries this tag; the run queue admits one at a time.
WRITER_TAG = "warehouse/writer"
#: The op-level concurrency pool of the steps that write the warehouse (extract, dbt build).
WRITER_POOL = "warehouse_writer"
#: Run tag telling the dlt step how to extract: ``incremental`` (default) or ``reconcile``.
EXTRACT_MODE_TAG = "warehouse/extract_mode"
#: Run tag of runs whose alerts their launcher sends itself (``warehouse run``): sensors skip them.
SELF_ALERTING_TAG = "warehouse/self_alerting"
#: Run tag of a run whose dbt selection an incremental plan chose (the hourly build after
#: the extract): when it succeeds, the whole build state moves on.
PLANNED_TAG = "warehouse/planned_build"
#: Run tag asking every check to judge again, not carry over a verdict on an unchanged
#: relation (identities follow what dlt and dbt write; a change made by hand is only
#: seen by a check that runs again).
RECHECK_TAG = "warehouse/recheck"
#: Run tag with the metrics' as-of time (ISO UTC) for dbt's ``as_of`` var.
AS_OF_TAG = "warehouse/as_of"
#: Run tag asking the dbt step for ``--full-refresh``.
FULL_REFRESH_TAG = "warehouse/dbt_full_refresh"
#: Run tag naming a file the dbt step appends dbt's console output to, instead of stdout
#: (``warehouse run`` keeps its own console to the summary).
DBT_LOG_TAG = "warehouse/dbt_log"


class OrchestrationSettings(BaseSettings):
    """Cron strings, time zone, alerting targets and the freshness SLA."""

    model_config = SettingsConfigDict(env_prefix="WAREHOUSE_", extra="ignore")

    timezone: str = Field(default="UTC", description="IANA time zone of every schedule.")
    incremental_cron: str = Field(default="0 * * * *", description="Hourly by default.")
    reconcile_cron: str = Field(default="30 2 * * *", description="Nightly by default.")
    report_cron: str = Field(default="0 6 * * 1", description="Weekly (Monday) by default.")
    schedules_running: bool = Field(
        default=False,
        description="Start the schedules as soon as the daemon runs (off: switch on in the UI).",
    )
    freshness_sla_hours: float = Field(
        default=26.0,
        description="A raw table is stale when its last successful load is older than this.",
    )
    alert_webhook_url: str | None = Field(
        default=None,
        description="Slack-compatible incoming-webhook URL; alerts are only logged when unset.",
    )
    alert_log: Path = Field(
        default_factory=lambda: PROJECT_ROOT / "logs" / "alerts.jsonl",
        description="Local append-only alert log (JSON lines).",
    )
    gx_site_dir: Path = Field(
        default_factory=lambda: PROJECT_ROOT / "gx_site",
        description="Where the Great Expectations Data Docs site is built.",
    )
    dbt_project_dir: Path = Field(
        default_factory=lambda: PROJECT_ROOT / "dbt_project",
        description="The dbt project the warehouse is built with.",
    )
    dbt_target_dir: Path = Field(
        default_factory=lambda: PROJECT_ROOT / "dbt_project" / "target",
        description="dbt's artefacts (manifest, run results) for the Dagster definitions.",
    )
    dagster_home: Path = Field(
        default_factory=lambda: PROJECT_ROOT / ".dagster_home",
        description="Default DAGSTER_HOME when the environment does not set one.",
    )
