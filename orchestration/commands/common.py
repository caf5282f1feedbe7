"""What every ``warehouse`` subcommand shares: the ``--source`` and ``--warehouse`` options,
the console, and the one-line error handling (``one_line_errors``, ``fail``).

Every subcommand reports a failure in one line naming the problem and what to do,
exit code non-zero, with no secret in it (``describe_failure``); ``--debug`` (or
``WAREHOUSE_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from ingestion.errors import describe_warehouse_error
from ingestion.settings import WarehouseSettings, redact

#: Exit code of a failure the user can fix (bad input, unreachable server, full disk...).
USER_ERROR = 2
#: Exit code of anything else (a bug, or a failure nobody anticipated).
INTERNAL_ERROR = 1


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
    typer.echo(f"error: {redact(message, known_secrets())}", err=True)
    raise typer.Exit(code=USER_ERROR)


def debugging() -> bool:
    """True when ``--debug`` or ``WAREHOUSE_DEBUG`` asks for tracebacks."""
    return os.environ.get("WAREHOUSE_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def known_secrets() -> list[str]:
    """Every secret this process was given: the source's and PostgreSQL's passwords, the PII key."""
    secrets: list[str] = []
    # settings that do not even parse hold nothing to hide here
    with contextlib.suppress(Exception):
        secrets += WarehouseSettings().secrets()
    for name in ("WAREHOUSE_PG_URL", "WAREHOUSE_SOURCE_URL", "SOURCES__PLATFORM__CREDENTIALS"):
        value = os.environ.get(name)
        if value:
            try:
                password = make_url(value).password
            except Exception:
                password = None
            if password:
                secrets.append(password)
    return secrets


def one_line_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; turn any exception into one ``error:`` line and a non-zero exit code."""

    @functools.wraps(function)
    def command(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except Exception as exc:
            if debugging():
                raise
            code, message = describe_failure(exc)
            typer.echo(f"error: {redact(message, known_secrets())}", err=True)
            raise typer.Exit(code=code) from None

    return command


def describe_failure(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one line a failure is reported with: what is wrong, what to do."""
    kind = type(exc)
    module = kind.__module__
    names = {c.__name__ for c in kind.__mro__}
    first = _first_line(exc)
    if names & {"ExtractError", "SourceError", "PiiKeyError", "TransformError", "MutationError"}:
        return USER_ERROR, first
    if module.startswith(("duckdb", "_duckdb")):
        return USER_ERROR, describe_warehouse_error(None, exc)
    if module.startswith("psycopg"):
        return USER_ERROR, (
            f"cannot reach PostgreSQL: {_cause_line(exc)}; check WAREHOUSE_PG_URL (or --pg-url) "
            "and that the server is up"
        )
    if module.startswith("sqlalchemy"):
        if "ArgumentError" in names:
            return USER_ERROR, (
                f"a database URL is malformed ({first}): use e.g. "
                "mysql+pymysql://user:password@host:3306/database or sqlite:///path"
            )
        if "OperationalError" in names or "InterfaceError" in names:
            return (
                USER_ERROR,
                f"cannot reach the database: {_cause_line(exc)}; check the URL and that the server is up",
            )
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        if isinstance(exc, PermissionError):
            return (
                USER_ERROR,
                f"permission denied on{where}: make it writable, or choose another path",
            )
        if exc.errno in {28, 27}:  # ENOSPC, EFBIG
            return USER_ERROR, f"cannot write{where}: the disk is full; free space, then rerun"
        return USER_ERROR, f"{exc.strerror or first}{':' if where else ''}{where}"
    return INTERNAL_ERROR, f"{kind.__name__}: {first} (rerun with --debug for the traceback)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _cause_line(exc: BaseException) -> str:
    """The first line of the innermost cause (drivers wrap the refusal several times)."""
    seen: BaseException | None = exc
    line = _first_line(exc)
    while seen is not None:
        text = str(getattr(seen, "orig", None) or seen).strip()
        if text:
            line = text.splitlines()[0]
        seen = seen.__cause__ or seen.__context__
    return line


@contextlib.contextmanager
def progress_lines() -> Iterator[Callable[[str], None]]:
    """A function printing one line of progress, for the Dagster runs a command starts (a
    line per step as it starts and ends); while the block runs, the extractor's line per
    table is printed too. Plain lines, so a log file or a CI job reads them as a terminal
    does."""

    # The terminal as it is now: a step may swap sys.stdout for a while (to silence a tool),
    # and these lines come from other threads meanwhile.
    out = sys.stdout

    def emit(line: str) -> None:
        typer.echo(line, file=out)

    class TableLines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            typer.echo(f"      {record.getMessage()}", file=out)

    extract_log = logging.getLogger("ingestion.extract")
    handler = TableLines(level=logging.INFO)
    previous = extract_log.level
    extract_log.addHandler(handler)
    extract_log.setLevel(logging.INFO)
    try:
        yield emit
    finally:
        extract_log.removeHandler(handler)
        extract_log.setLevel(previous)
