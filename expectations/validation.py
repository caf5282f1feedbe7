"""Run one Great Expectations suite against one warehouse table, through a pandas batch.

GX's SQL datasource does not work on DuckDB (every expectation silently fails), so a
suite always validates a pandas DataFrame read from DuckDB through Arrow. Results are
kept in a file store under the Data Docs folder so that the site lists every run.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

log = logging.getLogger(__name__)


class Severity(enum.StrEnum):
    """ERROR gates everything downstream in the run; WARN is reported and does not block."""

    ERROR = "ERROR"
    WARN = "WARN"


@dataclass(frozen=True)
class SuiteInputs:
    """What a suite's builder may look at: the batch, its relation and the warehouse."""

    frame: pd.DataFrame
    relation: str
    connection: duckdb.DuckDBPyConnection

    def scalar(self, sql: str) -> Any:
        """One value from the warehouse (e.g. a bound that depends on reference data)."""
        rows = self.connection.execute(sql).fetchall()
        return rows[0][0] if rows else None


@dataclass(frozen=True)
class Suite:
    """One expectation suite: a layer, a table, a severity and how to build its expectations."""

    name: str
    table: str
    severity: Severity
    description: str
    build: Callable[[SuiteInputs], Sequence[Any]]
    query: str = "select * from {relation}"


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, as the check reports it."""

    expectation: str
    kwargs: dict[str, Any]
    success: bool
    unexpected_count: int | None
    observed: Any


@dataclass
class SuiteOutcome:
    """A suite's verdict: passed only when every expectation passed."""

    suite: str
    rows: int
    success: bool
    results: list[ExpectationOutcome] = field(default_factory=list)
    docs_page: Path | None = None

    @property
    def failures(self) -> list[ExpectationOutcome]:
        """The expectations that did not hold."""
        return [r for r in self.results if not r.success]

    def describe_failures(self) -> str:
        """One line per failed expectation: what was expected of which column, what was seen."""
        lines = []
        for f in self.failures:
            where = f.kwargs.get("column") or ",".join(
                str(f.kwargs[k]) for k in ("column_A", "column_B") if k in f.kwargs
            )
            detail = (
                f"{f.unexpected_count} unexpected rows"
                if f.unexpected_count is not None
                else f"observed {f.observed!r}"
            )
            lines.append(f"{f.expectation}({where}): {detail}")
        return "; ".join(lines)


def read_batch(connection: duckdb.DuckDBPyConnection, suite: Suite, relation: str) -> pd.DataFrame:
    """The suite's batch as a pandas DataFrame, read through Arrow."""
    return connection.sql(suite.query.format(relation=relation)).arrow().read_all().to_pandas()


def run_suite(
    suite: Suite,
    connection: duckdb.DuckDBPyConnection,
    relation: str,
    docs_dir: Path | None = None,
) -> SuiteOutcome:
    """Validate ``relation`` against ``suite``; with ``docs_dir``, keep the result for the
    Data Docs site (:func:`build_data_docs` renders it)."""
    import great_expectations as gx

    frame = read_batch(connection, suite, relation)
    expectations = list(suite.build(SuiteInputs(frame, relation, connection)))
    context = _context(docs_dir)
    datasource = context.data_sources.add_or_update_pandas(name=f"warehouse_{suite.name}")
    asset = datasource.add_dataframe_asset(name=suite.table)
    batch_definition = asset.add_batch_definition_whole_dataframe(name="whole_table")
    gx_suite = context.suites.add_or_update(
        gx.ExpectationSuite(name=suite.name, expectations=expectations)
    )
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=gx_suite)
    )
    result = definition.run(
        batch_parameters={"dataframe": frame}, result_format={"result_format": "SUMMARY"}
    )
    outcome = SuiteOutcome(suite=suite.name, rows=len(frame), success=bool(result.success))
    for r in result.results:
        config = r.expectation_config
        kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
        outcome.results.append(
            ExpectationOutcome(
                expectation=config.type,
                kwargs=kwargs,
                success=bool(r.success),
                unexpected_count=r.result.get("unexpected_count"),
                observed=r.result.get("observed_value"),
            )
        )
    if docs_dir is not None:
        outcome.docs_page = docs_index(docs_dir)
    return outcome


def docs_index(docs_dir: Path) -> Path:
    """The Data Docs site's front page."""
    return docs_dir / "site" / "index.html"


def build_data_docs(docs_dir: Path) -> Path:
    """(Re)build the Data Docs site from every result kept under ``docs_dir``."""
    context = _context(docs_dir)
    try:
        context.build_data_docs(site_names=["local_site"])
    except Exception as exc:  # docs are a convenience: a broken page must not fail a check
        log.warning("could not build Data Docs in %s: %s", docs_dir, exc)
    return docs_index(docs_dir)


def _context(docs_dir: Path | None) -> Any:
    """An ephemeral GX context; with a docs folder, its stores and site live under it."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        FilesystemStoreBackendDefaults,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    if docs_dir is None:
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            data_docs_sites={},
        )
    else:
        docs_dir.mkdir(parents=True, exist_ok=True)
        config = DataContextConfig(
            store_backend_defaults=FilesystemStoreBackendDefaults(
                root_directory=str(docs_dir / "stores")
            ),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            data_docs_sites={
                "local_site": {
                    "class_name": "SiteBuilder",
                    "show_how_to_buttons": False,
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(docs_dir / "site"),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                }
            },
        )
    return gx.get_context(project_config=config, mode="ephemeral")
