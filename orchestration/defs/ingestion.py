"""Ingestion assets: the platform's source tables (observed) and their raw copies (dlt).

``source/<table>`` assets are observable: each observation records the table's row
count and max cursor (its data version changes when the source does). ``raw/<table>``
assets are the resources of ``ingestion.pipeline.platform_source`` (built without a
database: the resources reflect their tables only when they run), keyed so that dbt
sources resolve to them, plus ``raw/_extract_log`` which the same step writes. The
step runs ``ingestion.pipeline.run_extract``, the same code as ``warehouse extract``,
in the mode the run's ``warehouse/extract_mode`` tag asks for.
"""

import warnings
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dlt import DagsterDltTranslator, build_dlt_asset_specs
from dagster_dlt.translator import DltResourceTranslatorData

from ingestion.pii import PiiKeyError
from ingestion.pipeline import (
    EXTRACT_LOG,
    ExtractError,
    RunMode,
    platform_pipeline,
    platform_source,
    root_cause,
    run_extract,
)
from ingestion.settings import WarehouseSettings, redact, redacted_url
from ingestion.source_reader import SourceError, SourceReader
from orchestration.config import EXTRACT_MODE_TAG, WRITER_POOL
from orchestration.keys import raw_key, source_key
from orchestration.source_catalog import source_tables
from orchestration.source_db import profile_tables
from orchestration.warehouse_db import warehouse_connection

SOURCE_GROUP = "source"
RAW_GROUP = "raw"


def source_specs() -> list[dg.AssetSpec]:
    """One spec per extracted table of the platform database."""
    return [
        dg.AssetSpec(
            key=source_key(table.name),
            description=f"Platform database table `{table.name}` (cursor: `{table.cursor}`).",
            group_name=SOURCE_GROUP,
            kinds={"sql"},
            metadata={"cursor": table.cursor, "money_column": table.money_column or ""},
        )
        for table in source_tables()
    ]


def _observe_source(
    context: AssetExecutionContext, warehouse: dg.ResourceParam[WarehouseSettings]
) -> Iterator[dg.ObserveResult]:
    """Observe every selected source table: row count and max cursor, over one connection."""
    selected = {key.path[-1] for key in context.selected_asset_keys}
    tables = [t for t in source_tables() if t.name in selected]
    url = warehouse.resolved_source_url
    try:
        SourceReader(url).close()  # a malformed URL or a missing SQLite file, before connecting
        profiles = profile_tables(url, tables, money=False)
    except SourceError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except Exception as exc:
        # The step's failure says why in one line: the run's summary shows it as the cause.
        raise dg.Failure(
            description=redact(
                f"cannot read the source {redacted_url(url)}: {root_cause(exc)}; check the "
                "source URL and that the server is up",
                warehouse.secrets(),
            ),
            allow_retries=False,
        ) from None
    for profile in profiles:
        yield dg.ObserveResult(
            asset_key=source_key(profile.table),
            data_version=dg.DataVersion(profile.data_version),
            metadata={
                "dagster/row_count": profile.row_count,
                "max_cursor": str(profile.max_cursor),
            },
        )


# multi_observable_source_asset is a beta API: no BetaWarning on every load of the project.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    observe_source = dg.multi_observable_source_asset(
        specs=source_specs(), can_subset=True, name="observe_source"
    )(_observe_source)


class RawTranslator(DagsterDltTranslator):
    """dlt resource ``<table>`` -> ``raw/<table>``, downstream of ``source/<table>``, held to
    ``freshness`` when one is given."""

    def __init__(self, freshness: dg.FreshnessPolicy | None = None) -> None:
        super().__init__()
        self.freshness = freshness

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        """The default spec, re-keyed into the raw layer and linked to its source table."""
        spec = super().get_asset_spec(data)
        table = data.resource.name
        spec = spec.replace_attributes(
            key=raw_key(table),
            deps=[source_key(table)],
            group_name=RAW_GROUP,
            description=f"`raw.{table}`: the platform's `{table}` as landed by dlt, PII masked.",
        ).merge_attributes(kinds={"duckdb"})
        return spec if self.freshness is None else dg.apply_freshness_policy(spec, self.freshness)


def extract_log_spec() -> dg.AssetSpec:
    """``raw._extract_log``: one row per table per extract, written by the same step."""
    return dg.AssetSpec(
        key=raw_key(EXTRACT_LOG),
        description="`raw._extract_log`: rows read, landed, deleted and the status of every "
        "table in every extract run.",
        group_name=RAW_GROUP,
        kinds={"duckdb"},
    )


def extract_assets(
    settings: WarehouseSettings, freshness: dg.FreshnessPolicy | None = None
) -> dg.AssetsDefinition:
    """The dlt resources of the platform source as one multi-asset in the writers' pool (each
    raw table held to ``freshness``)."""
    specs = [
        *build_dlt_asset_specs(
            dlt_source=platform_source(settings),
            dlt_pipeline=platform_pipeline(settings),
            dagster_dlt_translator=RawTranslator(freshness),
        ),
        extract_log_spec(),
    ]

    @dg.multi_asset(specs=specs, can_subset=True, name="extract", pool=WRITER_POOL)
    def extract(
        context: AssetExecutionContext, warehouse: dg.ResourceParam[WarehouseSettings]
    ) -> Iterator[Any]:
        """Land the selected tables in ``raw`` (incremental, or reconcile on reconcile runs)."""
        requested = context.run.tags.get(EXTRACT_MODE_TAG, "incremental")
        if requested not in ("incremental", "reconcile"):
            raise dg.Failure(f"unknown {EXTRACT_MODE_TAG} {requested!r}")
        mode: RunMode = "reconcile" if requested == "reconcile" else "incremental"
        tables = sorted(
            key.path[-1] for key in context.selected_asset_keys if key.path[-1] != EXTRACT_LOG
        )
        try:
            summary = run_extract(warehouse, mode=mode, tables=tables)
        except (ExtractError, SourceError, PiiKeyError) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        for name, report in sorted(summary.tables.items()):
            if report.status != "ok" or raw_key(name) not in context.selected_asset_keys:
                continue
            yield dg.MaterializeResult(
                asset_key=raw_key(name),
                metadata={
                    "dagster/row_count": _raw_rows(warehouse, name),
                    "rows_read": report.rows_read,
                    "rows_landed": report.rows_landed,
                    "deletes_detected": report.deletes_detected,
                    "zero_dates_nulled": report.zero_dates_nulled,
                    "mode": report.mode,
                    "load_id": summary.load_id,
                },
            )
        if raw_key(EXTRACT_LOG) in context.selected_asset_keys:
            yield dg.MaterializeResult(
                asset_key=raw_key(EXTRACT_LOG),
                metadata={"load_id": summary.load_id, "tables": len(summary.tables)},
            )
        if summary.failed:
            failed = {t: summary.tables[t].error for t in summary.failed}
            raise dg.Failure(
                f"extract failed for {', '.join(summary.failed)}",
                metadata={"errors": dg.MetadataValue.json(failed)},
            )

    return extract


def _raw_rows(warehouse: WarehouseSettings, table: str) -> int:
    with warehouse_connection(warehouse.warehouse_path) as con:
        return int(con.execute(f'select count(*) from raw."{table}"').fetchall()[0][0])


def extracted_tables() -> list[str]:
    """The names of the tables extracted into raw."""
    return [t.name for t in source_tables()]


def build_defs(
    settings: WarehouseSettings, freshness: dg.FreshnessPolicy | None = None
) -> dg.Definitions:
    """The source observations and the extract, bound to ``settings``."""
    return dg.Definitions(
        assets=[observe_source, extract_assets(settings, freshness)],
        resources={"warehouse": settings},
    )
