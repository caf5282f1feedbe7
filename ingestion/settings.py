"""One settings object for every stage, resolved at run time, never at import.

Every command-line subcommand and Dagster resource builds a ``WarehouseSettings``
from flags and environment variables (``WAREHOUSE_*``); tests build their own
pointing at ``tmp_path``. Secrets (the source URL's password, the PII key) are kept
out of the object's repr, and ``redact`` takes them out of any text meant for people.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DLT_SOURCE_SECRET = "sources.platform.credentials"

# scheme://user:password@ -> scheme://user:***@ wherever a URL appears in a message.
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*:)(?P<password>[^@\s'\"]+)@"
)


# Placeholders in the examples the messages give, not anybody's password.
_PLACEHOLDERS = frozenset({"password", "<password>", "pw", "***"})


def default_data_dir() -> Path:
    """The git-ignored folder holding the demo source, the warehouse and their manifests."""
    return PROJECT_ROOT / "data"


def redacted_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (unparsable URLs are redacted as text)."""
    try:
        parsed = make_url(url)
    except Exception:
        return redact(url)
    return parsed.render_as_string(hide_password=True)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without the password of any URL in it, nor any of ``secrets``."""
    cleaned = _URL_PASSWORD.sub(
        lambda m: m.group(0) if m.group("password") in _PLACEHOLDERS else f"{m.group('head')}***@",
        text,
    )
    for secret in secrets:
        if secret and len(secret) >= 4:
            cleaned = cleaned.replace(secret, "***")
    return cleaned


class WarehouseSettings(BaseSettings):
    """Where the source and the warehouse are, and the secrets the stages need."""

    model_config = SettingsConfigDict(env_prefix="WAREHOUSE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    source_url: str | None = Field(
        default=None,
        repr=False,
        description="SQLAlchemy URL of the platform database; default: dlt's "
        "sources.platform.credentials, else the demo SQLite file.",
    )
    path: Path | None = Field(default=None, description="The DuckDB warehouse file.")
    pii_key: str | None = Field(default=None, repr=False, description="HMAC key for PII hashing.")
    erasure_table: str | None = Field(
        default=None,
        description="A source table of erasure requests (a user_id column) that `warehouse "
        "forget` reads when given no ids; never extracted.",
    )
    keep_load_packages: int = Field(
        default=20, ge=1, description="Completed dlt load packages kept in the pipeline folder."
    )
    keep_load_packages_days: float = Field(
        default=30, gt=0, description="Completed dlt load packages older than this are removed."
    )
    fault_at: str | None = Field(
        default=None,
        description="Tests only: the named step of `warehouse extract` at which the process "
        "kills itself (SIGKILL), to prove a rerun repairs whatever it left.",
    )

    @property
    def demo_source_path(self) -> Path:
        return self.data_dir / "platform.sqlite"

    @property
    def demo_source_url(self) -> str:
        return f"sqlite:///{self.demo_source_path}"

    @property
    def configured_source_url(self) -> str | None:
        """``source_url``, else dlt's ``sources.platform.credentials`` (``.dlt/secrets.toml``
        or ``SOURCES__PLATFORM__CREDENTIALS``), else None."""
        if self.source_url:
            return self.source_url
        return _dlt_source_url()

    @property
    def resolved_source_url(self) -> str:
        """The source every stage reads: the configured one, else the demo file."""
        return self.configured_source_url or self.demo_source_url

    @property
    def warehouse_path(self) -> Path:
        return self.path or self.data_dir / "warehouse.duckdb"

    @property
    def is_demo_source(self) -> bool:
        """True only for the demo SQLite file, however the source was configured."""
        return self.resolved_source_url == self.demo_source_url

    def secrets(self) -> list[str]:
        """The secret strings of these settings, for ``redact``."""
        values = [self.pii_key]
        url = self.configured_source_url
        if url:
            try:
                values.append(make_url(url).password)
            except Exception:
                values.append(url)
        return [v for v in values if v]


def _dlt_source_url() -> str | None:
    # dlt is imported here, not at the top: every command line imports these settings, and
    # only a run that reads the source needs dlt's configuration providers.
    import dlt

    try:
        configured: Any = dlt.secrets.get(DLT_SOURCE_SECRET)
    except Exception:
        return None
    if not configured:
        return None
    if isinstance(configured, dict):
        port = configured.get("port")
        return URL.create(
            str(configured.get("drivername", "mysql+pymysql")),
            username=configured.get("username"),
            password=configured.get("password"),
            host=configured.get("host"),
            port=int(port) if port else None,
            database=configured.get("database"),
        ).render_as_string(hide_password=False)
    return str(configured)
