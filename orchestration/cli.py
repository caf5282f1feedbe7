"""The ``warehouse`` command line: one subcommand per stage of the flow.

Every subcommand takes ``--source`` (SQLAlchemy URL of the platform database,
env ``WAREHOUSE_SOURCE_URL``, default: the demo SQLite file under ``data/``) and
``--warehouse`` (the DuckDB file, env ``WAREHOUSE_PATH``, default
``data/warehouse.duckdb``), so one setting moves every stage to a real MySQL.
Each subcommand lives in ``orchestration/commands/<stage>.py`` and is registered here,
wrapped so that a failure prints one line (``commands/common.py``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from orchestration.commands import (
    dev,
    extract,
    forget,
    generate,
    publish,
    report,
    run,
    status,
    transform,
)
from orchestration.commands.common import console, one_line_errors

__all__ = ["app", "console", "main"]


class WarehouseApp(typer.Typer):
    """A Typer app whose every command goes through the one-line error handler."""

    def command(  # type: ignore[override]  # same arguments, passed through
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a command, wrapped so that a failure prints one line (see ``one_line_errors``)."""
        register = super().command(*args, **kwargs)

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            register(one_line_errors(function))
            return function

        return decorator


app = WarehouseApp(
    help="The platform's analytics warehouse: generate, extract, transform, run, publish, report.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="WAREHOUSE_DEBUG",
            help="On a failure, show the traceback instead of the one-line error.",
        ),
    ] = False,
) -> None:
    """Options of every subcommand."""
    if debug:
        os.environ["WAREHOUSE_DEBUG"] = "1"


for command in (
    generate.generate,
    extract.extract,
    transform.transform,
    run.run,
    publish.publish,
    report.report,
    status.status,
    forget.forget,
    dev.dev,
):
    app.command()(command)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
