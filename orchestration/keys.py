"""Asset keys shared by every Dagster module: one name per table across the whole graph.

``source/<table>`` is a table of the platform database (observed, never written);
``raw/<table>`` is its copy in the warehouse's raw schema (written by dlt) and is also
what every dbt source resolves to, so dlt and dbt form one lineage graph.
"""

from __future__ import annotations

from dagster import AssetKey

SOURCE_PREFIX = "source"
RAW_PREFIX = "raw"


def source_key(table: str) -> AssetKey:
    """The observable asset of a platform database table."""
    return AssetKey([SOURCE_PREFIX, table])


def raw_key(table: str) -> AssetKey:
    """The dlt asset of a table in the warehouse's raw schema."""
    return AssetKey([RAW_PREFIX, table])
