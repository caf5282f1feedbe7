"""One settings object for every stage, resolved at run time, never at import.

Every command-line subcommand and Dagster resource builds a ``WarehouseSettings``
from flags and environment variables (``WAREHOUSE_*``); tests build their own
pointing at ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    """The git-ignored folder holding the demo source, the warehouse and their manifests."""
    return PROJECT_ROOT / "data"


class WarehouseSettings(BaseSettings):
    """Where the source and the warehouse are, and the secrets the stages need."""

    model_config = SettingsConfigDict(env_prefix="WAREHOUSE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    source_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the platform database; default: the demo SQLite file.",
    )
    path: Path | None = Field(default=None, description="The DuckDB warehouse file.")
    pii_key: str | None = Field(default=None, description="HMAC key for PII hashing.")

    @property
    def demo_source_path(self) -> Path:
        return self.data_dir / "platform.sqlite"

    @property
    def resolved_source_url(self) -> str:
        return self.source_url or f"sqlite:///{self.demo_source_path}"

    @property
    def warehouse_path(self) -> Path:
        return self.path or self.data_dir / "warehouse.duckdb"

    @property
    def is_demo_source(self) -> bool:
        return (
            self.source_url is None
            or self.resolved_source_url == f"sqlite:///{self.demo_source_path}"
        )
