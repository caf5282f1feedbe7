"""Helpers for the ingestion tests: generate a source, build settings, read both sides.

Every number a test compares with the extractor's is computed here straight from the
source database or the DuckDB file, never through ``ingestion.pipeline``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import create_engine, text

from generator import generate
from generator.platform import DefectRates
from ingestion.settings import WarehouseSettings
from ingestion.specs import TABLE_SPECS

PII_KEY = "test-pii-key"


def generate_platform(url: str, manifest_path: Path, scale: str = "tiny") -> dict[str, Any]:
    """Build the platform database at ``url`` (replacing the generator's tables)."""
    return generate(
        url, seed=42, scale=scale, rates=DefectRates(), replace=True, manifest_path=manifest_path
    )


def settings_for(tmp_path: Path, source_url: str, name: str = "warehouse") -> WarehouseSettings:
    """Settings pointing at ``source_url`` and a warehouse file under ``tmp_path``."""
    return WarehouseSettings(
        data_dir=tmp_path,
        source_url=source_url,
        path=tmp_path / f"{name}.duckdb",
        pii_key=PII_KEY,
    )


def source_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` run on the source."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def source_count(url: str, table: str) -> int:
    """``count(*)`` of a source table."""
    return int(source_rows(url, f"select count(*) from {table}")[0][0])


def warehouse_rows(path: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` run read-only on the warehouse file."""
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def assert_raw_ids_equal_source(url: str, warehouse: Path) -> None:
    """Every spec'd table's ids in raw are the source's, in order: no duplicate key, no gap."""
    for table in TABLE_SPECS:
        source_ids = [r[0] for r in source_rows(url, f"select id from {table} order by id")]
        raw_ids = [
            r[0] for r in warehouse_rows(warehouse, f"select id from raw.{table} order by id")
        ]
        assert raw_ids == source_ids, table


def raw_count(path: Path, table: str, live_only: bool = False) -> int:
    """Rows of ``raw.<table>`` (only those still in the source when ``live_only``)."""
    where = " where _source_deleted_at is null" if live_only else ""
    return int(warehouse_rows(path, f'select count(*) from raw."{table}"{where}')[0][0])


def generated_pii_values(url: str) -> set[str]:
    """Every PII and SECRET value the generator wrote, as text, in the forms it was stored."""
    values: set[str] = set()
    queries = [
        "select email, full_name, phone, cast(date_of_birth as char), ssn, government_id, "
        "address_line1, postal_code from users",
        "select tax_id, bank_account_number from instructor_profiles",
        "select api_key from integrations",
        "select secret from webhooks",
    ]
    for sql in queries:
        if url.startswith("sqlite"):
            sql = sql.replace("cast(date_of_birth as char)", "date_of_birth")
        for row in source_rows(url, sql):
            for value in row:
                if value is not None and str(value).strip():
                    values.add(str(value))
                    values.add(str(value).strip().lower())
    return values


def scan_warehouse_for(path: Path, values: set[str]) -> list[str]:
    """``schema.table.column`` of every warehouse column holding one of ``values``.

    Every column of every table is cast to text and matched exactly; text columns are
    also searched for any email as a substring (JSON payloads, free text).
    """
    conn = duckdb.connect(str(path), read_only=True)
    hits: list[str] = []
    try:
        conn.execute("create temp table pii_values (v varchar)")
        conn.executemany("insert into pii_values values (?)", [(v,) for v in values])
        conn.execute("create temp table pii_emails as select v from pii_values where v like '%@%'")
        columns = conn.execute(
            "select table_schema, table_name, column_name, data_type from information_schema.columns "
            "where table_catalog = current_database() and table_schema not in ('temp') "
            "and table_name not in ('pii_values', 'pii_emails')"
        ).fetchall()
        for schema, table, column, data_type in columns:
            ref = f'"{schema}"."{table}"."{column}"'
            found = conn.execute(
                f'select count(*) from "{schema}"."{table}" t '
                f'where cast(t."{column}" as varchar) in (select v from pii_values)'
            ).fetchone()[0]
            if not found and data_type == "VARCHAR":
                found = conn.execute(
                    f'select count(*) from "{schema}"."{table}" t join pii_emails e '
                    f'on contains(lower(t."{column}"), e.v)'
                ).fetchone()[0]
            if found:
                hits.append(ref)
    finally:
        conn.close()
    return hits


def child_environment(**extra: str | None) -> dict[str, str]:
    """The environment of a child ``python`` a test starts: this one's, plus a bytecode cache
    outside the working tree (the machine sets PYTHONDONTWRITEBYTECODE, so every fresh
    interpreter would compile dlt, pandas and Dagster from source again: ~2 s each)."""
    import os
    import tempfile

    environment = {
        **os.environ,
        "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "warehouse-tests-pycache"),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    for name, value in extra.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return environment


def run_files_under(tmp_path: Path) -> dict[str, str]:
    """The environment that puts every file a `warehouse run` writes (data, Dagster's home,
    alerts, Data Docs, dbt's artefacts) under ``tmp_path``."""
    return {
        "WAREHOUSE_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "WAREHOUSE_DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "WAREHOUSE_ALERT_LOG": str(tmp_path / "logs" / "alerts.jsonl"),
        "WAREHOUSE_GX_SITE_DIR": str(tmp_path / "gx"),
        "WAREHOUSE_DBT_TARGET_DIR": str(tmp_path / "dbt_target"),
        "WAREHOUSE_DBT_COLUMN_LINEAGE": "false",
    }
