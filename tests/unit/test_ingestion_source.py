"""The dlt source and pipeline can be built with no database reachable (Dagster's case)."""

# No `from __future__ import annotations`: Dagster resolves the asset's parameter types.
from dagster import AssetExecutionContext
from dagster_dlt import DagsterDltResource, dlt_assets

from ingestion.pipeline import platform_pipeline, platform_source
from ingestion.settings import WarehouseSettings
from ingestion.specs import TABLE_SPECS


def unreachable(tmp_path) -> WarehouseSettings:
    # Nothing listens on port 9: any connection attempt would fail the test.
    return WarehouseSettings(
        data_dir=tmp_path,
        source_url="mysql+pymysql://nobody:nothing@127.0.0.1:9/platform",
        path=tmp_path / "warehouse.duckdb",
    )


def test_the_source_declares_every_specd_table_without_connecting(tmp_path) -> None:
    source = platform_source(unreachable(tmp_path))
    resources = source.resources
    assert list(resources) == list(TABLE_SPECS)
    for name, spec in TABLE_SPECS.items():
        hints = resources[name].compute_table_schema()
        assert hints["write_disposition"] == spec.write_disposition, name
        assert hints["columns"][spec.primary_key]["primary_key"] is True, name
        assert hints["columns"]["_source_deleted_at"]["data_type"] == "timestamp"
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_dagster_dlt_assets_load_from_the_source_without_a_database(tmp_path) -> None:

    settings = unreachable(tmp_path)

    @dlt_assets(dlt_source=platform_source(settings), dlt_pipeline=platform_pipeline(settings))
    def platform_raw(context: AssetExecutionContext, dlt: DagsterDltResource):  # pragma: no cover
        yield from dlt.run(context=context)

    keys = {key.path[-1] for key in platform_raw.keys}
    assert keys == {f"dlt_platform_{table}" for table in TABLE_SPECS}
    assert not (tmp_path / "warehouse.duckdb").exists()
