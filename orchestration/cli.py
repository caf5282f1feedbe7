"""The ``warehouse`` command line: one subcommand per stage of the flow.

Every subcommand takes ``--source`` (SQLAlchemy URL of the platform database,
env ``WAREHOUSE_SOURCE_URL``, default: the demo SQLite file under ``data/``) and
``--warehouse`` (the DuckDB file, env ``WAREHOUSE_PATH``, default
``data/warehouse.duckdb``), so one setting moves every stage to a real MySQL.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ingestion.settings import WarehouseSettings

app = typer.Typer(
    help="The platform's analytics warehouse: generate, extract, transform, run, publish, report.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=False)

SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source",
        envvar="WAREHOUSE_SOURCE_URL",
        help="SQLAlchemy URL of the platform database, e.g. mysql+pymysql://user:pw@host:3306/platform. "
        "Default: the demo SQLite file data/platform.sqlite.",
        show_default=False,
    ),
]
WarehouseOption = Annotated[
    Path | None,
    typer.Option(
        "--warehouse",
        envvar="WAREHOUSE_PATH",
        help="The DuckDB warehouse file. Default: data/warehouse.duckdb.",
        show_default=False,
    ),
]


def build_settings(source: str | None, warehouse: Path | None) -> WarehouseSettings:
    """Settings from flags, falling back to WAREHOUSE_* environment variables."""
    overrides: dict[str, Any] = {}
    if source:
        overrides["source_url"] = source
    if warehouse:
        overrides["path"] = warehouse
    return WarehouseSettings(**overrides)


def fail(message: str) -> None:
    """Print a one-line error and exit non-zero: no traceback for a user's mistake."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())


# Each stage's subcommand lives in orchestration/commands/<stage>.py and registers itself on `app`.
from orchestration.commands import dev, extract, generate, publish, report, run, transform  # noqa: E402, F401
