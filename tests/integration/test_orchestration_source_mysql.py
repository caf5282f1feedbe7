"""Source observation and the reconciliation profile on the real engine (MariaDB/MySQL)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pymysql
import pytest
from sqlalchemy.engine import make_url

from generator import DefectRates, generate
from ingestion.settings import WarehouseSettings
from orchestration.defs.ingestion import observe_source
from orchestration.source_catalog import source_tables
from orchestration.source_db import profile_tables

pytestmark = pytest.mark.mysql


def test_profiles_and_observations_match_the_server(
    mysql_database: Callable[[str], str], tmp_path: Path
) -> None:
    url = mysql_database("orch")
    generate(
        url,
        seed=3,
        scale="tiny",
        rates=DefectRates(),
        replace=False,
        manifest_path=tmp_path / "manifest.json",
    )
    parts = make_url(url)
    con = pymysql.connect(
        host=parts.host,
        port=parts.port or 3306,
        user=parts.username,
        password=parts.password or "",
        database=parts.database,
    )
    try:
        with con.cursor() as cursor:
            cursor.execute("select count(*), max(updated_at), sum(amount) from payments")
            payments = cursor.fetchone()
            cursor.execute("select count(*), max(id) from activity_logs")
            activity = cursor.fetchone()
    finally:
        con.close()

    profiles = {p.table: p for p in profile_tables(url, source_tables())}
    assert (profiles["payments"].row_count, profiles["payments"].max_cursor) == payments[:2]
    assert isinstance(profiles["payments"].max_cursor, datetime)
    assert profiles["payments"].money_sum == Decimal(payments[2])
    assert (profiles["activity_logs"].row_count, profiles["activity_logs"].max_cursor) == activity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        everything = dg.AssetSelection.all(include_sources=True)
    job = dg.Definitions(
        assets=[observe_source],
        resources={"warehouse": WarehouseSettings(data_dir=tmp_path, source_url=url)},
        jobs=[dg.define_asset_job("observe", selection=everything)],
    ).resolve_job_def("observe")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    observed = {
        e.asset_key.path[-1]: e.event_specific_data.asset_observation
        for e in result.get_asset_observation_events()
    }
    assert len(observed) == len(source_tables())
    assert observed["payments"].metadata["dagster/row_count"].value == payments[0]
    assert observed["payments"].data_version == f"{payments[0]}:{payments[1]}"
