"""Run one Great Expectations suite against one warehouse relation, evaluated in the warehouse.

The suites are Great Expectations expectations (the declaration of every rule) and their
results are Great Expectations validation results, kept in a file store under the Data Docs
folder so that the site lists every run. The evaluation happens in DuckDB: each expectation
becomes an aggregate of one SQL query over the suite's batch (unexpected rows counted with a
filter, statistics computed where the data is), so a suite costs one scan whatever the
table's size. GX's SQL datasource cannot do this on DuckDB (every expectation silently fails),
and validating a pandas copy of the table cost seconds per suite even at the smallest scale.

An expectation type without a warehouse form is validated by Great Expectations itself, on a
pandas batch of only the columns it names.

``great_expectations`` is imported inside the functions that use it, on purpose: it takes
seconds to import, and the CLI and the Dagster definitions load these modules without it.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from expectations.data_docs import make_offline

log = logging.getLogger(__name__)

#: How many unexpected values a failing result lists (GX's SUMMARY format lists 20).
PARTIAL_UNEXPECTED = 20


class Severity(enum.StrEnum):
    """ERROR gates everything downstream in the run; WARN is reported and does not block."""

    ERROR = "ERROR"
    WARN = "WARN"


@dataclass(frozen=True)
class SuiteInputs:
    """What a suite's builder may look at: the batch's columns, its relation, the warehouse."""

    columns: tuple[str, ...]
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
    result_id: Any = None  # where the Data Docs site keeps this result

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


# -- expectations as SQL ------------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return repr(value) if not isinstance(value, Decimal) else str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _between(expression: str, kwargs: dict[str, Any]) -> str:
    """SQL true when ``expression`` lies within the expectation's min/max (strict or not)."""
    parts = []
    if kwargs.get("min_value") is not None:
        operator = ">" if kwargs.get("strict_min") else ">="
        parts.append(f"{expression} {operator} {_literal(kwargs['min_value'])}")
    if kwargs.get("max_value") is not None:
        operator = "<" if kwargs.get("strict_max") else "<="
        parts.append(f"{expression} {operator} {_literal(kwargs['max_value'])}")
    return " and ".join(parts) or "true"


def _in_bounds(value: Any, kwargs: dict[str, Any]) -> bool:
    """Python twin of ``_between`` for an observed statistic (None never is)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and (value <= low if kwargs.get("strict_min") else value < low):
        return False
    return not (high is not None and (value >= high if kwargs.get("strict_max") else value > high))


@dataclass(frozen=True)
class _MapRule:
    """A row-level expectation: which rows count (``considered``; the others are missing) and
    which of those are unexpected; ``shown``: what a failing result lists of each one."""

    considered: str
    unexpected: str
    shown: tuple[str, ...]
    #: A scalar query of ``{batch}`` counting the unexpected rows, for a rule whose
    #: ``unexpected`` is a window (a window cannot sit inside an aggregate).
    counted: str | None = None


def _map_rule(kind: str, kwargs: dict[str, Any]) -> _MapRule | None:
    """The row-level form of an expectation, or None when it has none here."""
    column = kwargs.get("column")
    if kind == "expect_column_values_to_not_be_null":
        c = _quote(column)  # type: ignore[arg-type]
        return _MapRule("true", f"{c} is null", (c,))
    if column is not None:
        c = _quote(column)
        present = f"{c} is not null"
        if kind == "expect_column_values_to_be_between":
            return _MapRule(present, f"not ({_between(c, kwargs)})", (c,))
        if kind == "expect_column_values_to_match_regex":
            regex = _literal(kwargs["regex"])
            return _MapRule(present, f"not regexp_matches(cast({c} as varchar), {regex})", (c,))
        if kind == "expect_column_values_to_not_match_regex":
            regex = _literal(kwargs["regex"])
            return _MapRule(present, f"regexp_matches(cast({c} as varchar), {regex})", (c,))
        if kind in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
            values = ", ".join(_literal(v) for v in kwargs["value_set"]) or "null"
            negate = "not " if kind == "expect_column_values_to_be_in_set" else ""
            return _MapRule(present, f"{negate}({c} in ({values}))", (c,))
        if kind == "expect_column_values_to_be_unique":
            duplicated = (
                f"(select coalesce(sum(n), 0) from (select count(*) as n from ({{batch}}) as b "
                f"where {present} group by {c} having count(*) > 1) as d)"
            )
            return _MapRule(present, f"count(*) over (partition by {c}) > 1", (c,), duplicated)
    if kind in (
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_equal",
    ):
        a, b = _quote(kwargs["column_A"]), _quote(kwargs["column_B"])
        ignore = kwargs.get("ignore_row_if") or "both_values_are_missing"
        considered = {
            "either_value_is_missing": f"{a} is not null and {b} is not null",
            "both_values_are_missing": f"not ({a} is null and {b} is null)",
            "neither": "true",
        }[ignore]
        if kind == "expect_column_pair_values_to_be_equal":
            holds = f"{a} = {b}"
        else:
            holds = f"{a} >= {b}" if kwargs.get("or_equal") else f"{a} > {b}"
        return _MapRule(considered, f"not coalesce({holds}, false)", (a, b))
    return None


_STATISTICS = {
    "expect_column_mean_to_be_between": "avg({})",
    "expect_column_median_to_be_between": "median({})",
    "expect_column_min_to_be_between": "min({})",
    "expect_column_max_to_be_between": "max({})",
    "expect_column_sum_to_be_between": "sum({})",
    "expect_column_stdev_to_be_between": "stddev_samp({})",
    "expect_column_unique_value_count_to_be_between": "count(distinct {})",
    "expect_column_proportion_of_non_null_values_to_be_between": "count({}) / count(*)",
}


def _columns_named(kwargs: dict[str, Any]) -> list[str]:
    names = [kwargs.get(k) for k in ("column", "column_A", "column_B")]
    return [n for n in names if n is not None] + list(kwargs.get("column_list") or [])


def _json_safe(value: Any) -> Any:
    """A value as GX results hold it (JSON-serialisable)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return str(value)


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def evaluate(
    connection: duckdb.DuckDBPyConnection,
    batch: str,
    columns: Sequence[str],
    expectations: Sequence[Any],
) -> tuple[int, list[Any]]:
    """Every expectation's ``ExpectationValidationResult`` over ``batch`` (a SQL query with
    ``columns``), computed in DuckDB: one query for the counts and statistics, and one for the
    unexpected values of each row-level expectation that failed. Returns (rows, results)."""
    from great_expectations.core import ExpectationValidationResult

    present = set(columns)
    aggregates = ["count(*)"]
    plans: list[tuple[str, Any]] = []  # (how, detail) per expectation
    for expectation in expectations:
        config = expectation.configuration
        kind, kwargs = config.type, dict(config.kwargs)
        missing = [c for c in _columns_named(kwargs) if c not in present]
        if kind == "expect_column_to_exist":
            plans.append(("exist", None))
        elif kind == "expect_table_columns_to_match_set":
            plans.append(("columns", None))
        elif kind == "expect_table_row_count_to_be_between":
            plans.append(("row_count", None))
        elif missing:
            plans.append(("missing", missing))
        elif (rule := _map_rule(kind, kwargs)) is not None:
            start = len(aggregates)
            aggregates += [
                f"count(*) filter (where {rule.considered})",
                f"count(*) filter (where {rule.considered} and ({rule.unexpected}))"
                if rule.counted is None
                else rule.counted.replace("{batch}", batch),
            ]
            plans.append(("map", (start, rule, kwargs)))
        elif kind in _STATISTICS:
            aggregates.append(_STATISTICS[kind].format(_quote(kwargs["column"])))
            plans.append(("statistic", len(aggregates) - 1))
        else:
            plans.append(("gx", None))
    (row,) = connection.execute(
        f"select {', '.join(aggregates)} from ({batch}) as batch"
    ).fetchall()
    rows = int(row[0])
    results: list[Any] = []
    fallback = [e for e, (how, _) in zip(expectations, plans, strict=True) if how == "gx"]
    gx_results = iter(_validate_with_gx(connection, batch, fallback) if fallback else [])
    for expectation, (how, detail) in zip(expectations, plans, strict=True):
        config = expectation.configuration
        kwargs = dict(config.kwargs)
        result: dict[str, Any]
        if how == "exist":
            success, result = kwargs["column"] in present, {}
        elif how == "columns":
            expected, observed = set(kwargs["column_set"]), list(columns)
            unexpected = sorted(set(observed) - expected)
            absent = sorted(expected - set(observed))
            exact = kwargs.get("exact_match", True)
            success = not absent and (not exact or not unexpected)
            mismatched = {k: v for k, v in (("unexpected", unexpected), ("missing", absent)) if v}
            result = {"observed_value": sorted(observed)}
            if mismatched:
                result["details"] = {"mismatched": mismatched}
        elif how == "row_count":
            success, result = _in_bounds(rows, kwargs), {"observed_value": rows}
        elif how == "missing":
            success, result = False, {"details": {"missing_columns": detail}}
        elif how == "statistic":
            observed = _json_safe(row[detail])
            success, result = _in_bounds(observed, kwargs), {"observed_value": observed}
        elif how == "map":
            start, rule, _ = detail
            considered, unexpected = int(row[start]), int(row[start + 1])
            mostly = kwargs.get("mostly", 1.0)
            success = considered == 0 or (1 - unexpected / considered) >= mostly
            listed = _unexpected_values(connection, batch, rule) if unexpected else []
            result = {
                "element_count": rows,
                "unexpected_count": unexpected,
                "unexpected_percent": _percent(unexpected, considered),
                "partial_unexpected_list": listed,
                "missing_count": rows - considered,
                "missing_percent": _percent(rows - considered, rows),
                "unexpected_percent_total": _percent(unexpected, rows),
                "unexpected_percent_nonmissing": _percent(unexpected, considered),
            }
        else:
            results.append(next(gx_results))
            continue
        results.append(
            ExpectationValidationResult(
                success=bool(success), expectation_config=config, result=result
            )
        )
    return rows, results


def _unexpected_values(
    connection: duckdb.DuckDBPyConnection, batch: str, rule: _MapRule
) -> list[Any]:
    """The first unexpected values of a row-level rule (a pair for two columns)."""
    shown = ", ".join(rule.shown)
    rows = connection.execute(
        f"select {shown} from (select *, {rule.considered} as _considered, "
        f"{rule.unexpected} as _flagged from ({batch}) as batch) "
        f"where _considered and _flagged limit {PARTIAL_UNEXPECTED}"
    ).fetchall()
    if len(rule.shown) == 1:
        return [_json_safe(r[0]) for r in rows]
    return [_json_safe(list(r)) for r in rows]


def _validate_with_gx(
    connection: duckdb.DuckDBPyConnection, batch: str, expectations: Sequence[Any]
) -> list[Any]:
    """Results of expectations with no warehouse form, validated by GX itself on a pandas
    batch of only the columns they name."""
    import great_expectations as gx

    names = sorted({c for e in expectations for c in _columns_named(dict(e.configuration.kwargs))})
    projection = ", ".join(_quote(n) for n in names) or "*"
    frame = connection.sql(f"select {projection} from ({batch}) as batch").df()
    context = _context(None)
    datasource = context.data_sources.add_or_update_pandas(name="warehouse_fallback")
    asset = datasource.add_dataframe_asset(name="fallback")
    definition = asset.add_batch_definition_whole_dataframe(name="whole")
    copies = [e.copy() for e in expectations]
    suite = context.suites.add_or_update(gx.ExpectationSuite(name="fallback", expectations=copies))
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name="fallback", data=definition, suite=suite)
    )
    outcome = validation.run(
        batch_parameters={"dataframe": frame}, result_format={"result_format": "SUMMARY"}
    )
    # GX orders results its own way: put them back in the expectations' order
    by_id = {result.expectation_config.id: result for result in outcome.results}
    return [by_id[e.id] for e in suite.expectations]


# -- one suite, its result and its Data Docs --------------------------------------------


def run_suite(
    suite: Suite,
    connection: duckdb.DuckDBPyConnection,
    relation: str,
    docs_dir: Path | None = None,
) -> SuiteOutcome:
    """Validate ``relation`` against ``suite`` in the warehouse; with ``docs_dir``, keep the
    result for the Data Docs site (:func:`build_data_docs` renders it)."""
    from great_expectations.core import ExpectationSuiteValidationResult

    batch = suite.query.format(relation=relation)
    described = connection.execute(f"select * from ({batch}) as batch limit 0")
    columns = tuple(d[0] for d in described.description)
    described.fetchall()  # DuckDB wants every result finished before the next statement
    expectations = list(suite.build(SuiteInputs(columns, relation, connection)))
    rows, results = evaluate(connection, batch, columns, expectations)
    successes = sum(bool(r.success) for r in results)
    run_time = dt.datetime.now(dt.UTC)
    validation = ExpectationSuiteValidationResult(
        success=successes == len(results),
        results=results,
        suite_name=suite.name,
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": successes,
            "unsuccessful_expectations": len(results) - successes,
            "success_percent": _percent(successes, len(results)) if results else None,
        },
        meta={
            "active_batch_definition": {
                "datasource_name": "warehouse",
                "data_connector_name": "duckdb",
                "data_asset_name": relation,
                "batch_identifiers": {},
            },
            "batch_spec": {"query": batch, "data_asset_name": relation},
            "evaluated_in": "duckdb",
            "run_id": {
                "run_name": f"{suite.name}-{run_time:%Y%m%dT%H%M%S}",
                "run_time": run_time.isoformat(),
            },
            "validation_time": run_time.isoformat(),
        },
    )
    outcome = SuiteOutcome(suite=suite.name, rows=rows, success=bool(validation.success))
    for r in results:
        config = r.expectation_config
        outcome.results.append(
            ExpectationOutcome(
                expectation=config.type,
                kwargs={k: v for k, v in config.kwargs.items() if k != "batch_id"},
                success=bool(r.success),
                unexpected_count=r.result.get("unexpected_count"),
                observed=r.result.get("observed_value"),
            )
        )
    if docs_dir is not None:
        outcome.result_id = _keep(docs_dir, suite, expectations, validation, relation, run_time)
        outcome.docs_page = docs_index(docs_dir)
    return outcome


def _keep(
    docs_dir: Path,
    suite: Suite,
    expectations: Sequence[Any],
    validation: Any,
    relation: str,
    run_time: dt.datetime,
) -> Any:
    """Store the suite and its validation result where the Data Docs site reads them; the
    result's identifier."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = _context(docs_dir)
    context.suites.add_or_update(
        gx.ExpectationSuite(name=suite.name, expectations=[e.copy() for e in expectations])
    )
    identifier = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
        run_id=RunIdentifier(run_name=validation.meta["run_id"]["run_name"], run_time=run_time),
        batch_identifier=relation,
    )
    context.validation_results_store.store_validation_results(
        suite_validation_result=validation, suite_validation_result_identifier=identifier
    )
    return identifier


def docs_index(docs_dir: Path) -> Path:
    """The Data Docs site's front page."""
    return docs_dir / "site" / "index.html"


def build_data_docs(docs_dir: Path, results: Sequence[Any] | None = None) -> Path:
    """Build the Data Docs site under ``docs_dir``: the pages of ``results`` (the identifiers
    of new results; default: every result kept) and the index."""
    context = _context(docs_dir)
    try:
        context.build_data_docs(
            site_names=["local_site"],
            resource_identifiers=list(results) if results is not None else None,
        )
    except Exception as exc:  # docs are a convenience: a broken page must not fail a check
        log.warning("could not build Data Docs in %s: %s", docs_dir, exc)
    make_offline(docs_index(docs_dir).parent)
    return docs_index(docs_dir)


def forget_results(docs_dir: Path) -> int:
    """Delete every kept validation result and its Data Docs page (a failed expectation lists
    sample values, which may belong to someone who asked to be forgotten), then rebuild the
    index; the number of result files deleted."""
    results = docs_dir / "stores" / "uncommitted" / "validations"
    deleted = sum(1 for p in results.rglob("*") if p.is_file()) if results.exists() else 0
    for folder in (results, docs_dir / "site" / "validations"):
        shutil.rmtree(folder, ignore_errors=True)
    if docs_dir.exists():
        build_data_docs(docs_dir)
    return deleted


@cache
def _context(docs_dir: Path | None) -> Any:
    """An ephemeral GX context (one per folder in this process); with a docs folder, its
    stores and site live under it."""
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
