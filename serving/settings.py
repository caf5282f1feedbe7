"""Settings of the serving stage, resolved at run time (``WAREHOUSE_*`` environment variables).

Kept apart from ``ingestion.settings.WarehouseSettings`` so the serving stage can grow
without touching the ingestion module; both read the same ``WAREHOUSE_DATA_DIR``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingestion.settings import PROJECT_ROOT, default_data_dir


class ServingSettings(BaseSettings):
    """Where published artefacts go and how BI tools and mail are reached."""

    model_config = SettingsConfigDict(env_prefix="WAREHOUSE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    serving_path: Path | None = Field(
        default=None, description="The read-only serving DuckDB file BI tools open."
    )
    serving_keep: int = Field(default=5, ge=2, description="Published versions kept on disk.")
    serving_keep_days: float = Field(
        default=90, gt=0, description="Published versions older than this are removed."
    )
    serving_schema: str = Field(
        default="analytics", description="Schema holding the published tables (DuckDB and PG)."
    )
    serving_storage_version: str = Field(
        default="v1.0.0",
        description="DuckDB storage format of the serving file: v1.0.0 opens in every DuckDB >= 1.0 "
        "(Metabase's DuckDB driver, duckdb-engine).",
    )
    pg_url: str | None = Field(
        default=None,
        description="PostgreSQL URL to publish to, e.g. postgresql://postgres@127.0.0.1:5432/warehouse. "
        "Unset: publish the serving file only.",
    )
    pg_bi_role: str = Field(default="warehouse_bi_reader", description="Read-only BI login role.")
    pg_tenant_role_prefix: str = Field(
        default="warehouse_tenant_", description="Tenant-scoped roles are <prefix><tenant_id>."
    )
    dbt_target_dir: Path = Field(default=PROJECT_ROOT / "dbt_project" / "target")
    report_dir: Path | None = Field(default=None, description="Where dated reports are written.")
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = "warehouse@localhost"
    smtp_to: str | None = Field(default=None, description="Comma-separated recipients.")

    @property
    def resolved_serving_path(self) -> Path:
        """The serving file; default ``<data_dir>/serving/warehouse.duckdb``."""
        return self.serving_path or self.data_dir / "serving" / "warehouse.duckdb"

    @property
    def versions_dir(self) -> Path:
        """Complete published versions, one immutable file each."""
        return self.resolved_serving_path.parent / "versions"

    @property
    def manifest_path(self) -> Path:
        """dbt's manifest (models, columns, descriptions)."""
        return self.dbt_target_dir / "manifest.json"

    @property
    def resolved_report_dir(self) -> Path:
        """Reports folder; default ``<data_dir>/reports``."""
        return self.report_dir or self.data_dir / "reports"

    @property
    def pg_tenant_group_role(self) -> str:
        """The NOLOGIN group every tenant-scoped role belongs to."""
        return self.pg_tenant_role_prefix.rstrip("_") + "s"

    @property
    def smtp_recipients(self) -> list[str]:
        """Recipients of the report email."""
        return [a.strip() for a in (self.smtp_to or "").split(",") if a.strip()]
