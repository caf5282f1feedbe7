"""The reconciliation and freshness verdicts, on numbers chosen by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import duckdb

from orchestration.defs.quality import (
    ModelRelation,
    RawProfile,
    _freshness_result,
    account_rows,
    reconcile,
    row_accounting_result,
)
from orchestration.source_catalog import source_table
from orchestration.source_db import TableProfile

KEY = dg.AssetKey(["raw", "payments"])


def test_reconciliation_counts_rows_deleted_at_the_source_out_of_raw() -> None:
    source = TableProfile("payments", 97, datetime(2026, 6, 30), Decimal("1234.50"))
    # raw kept 3 rows whose hard delete was detected: 100 - 3 = 97 live rows
    raw = RawProfile(rows=100, deleted=3, live_rows=97, live_money_sum=Decimal("1234.50"))
    assert reconcile(source, raw) == (True, "97 rows, money 1234.50")


def test_reconciliation_reports_the_difference_of_rows_and_money() -> None:
    source = TableProfile("payments", 97, None, Decimal("1234.50"))
    raw = RawProfile(rows=99, deleted=3, live_rows=96, live_money_sum=Decimal("1200.00"))
    passed, description = reconcile(source, raw)
    assert not passed
    assert "source 97 != raw 99 - 3 deleted = 96 (difference -1)" in description
    assert "money: source 1234.50 != raw 1200.00" in description


def test_freshness_fails_an_old_load_and_a_lagging_cursor_but_not_a_fresh_one() -> None:
    table = source_table("payments")
    now = datetime(2026, 7, 1, 12, tzinfo=UTC)
    sla = timedelta(hours=26)
    fresh = _freshness_result(
        KEY, table, sla, now, now - timedelta(hours=1), datetime(2026, 7, 1), datetime(2026, 7, 1)
    )
    assert fresh.passed and fresh.severity == dg.AssetCheckSeverity.WARN
    stale = _freshness_result(
        KEY, table, sla, now, now - timedelta(hours=27), datetime(2026, 7, 1), datetime(2026, 6, 29)
    )
    assert not stale.passed
    assert "older than 1 day, 2:00:00" in (stale.description or "")
    assert "lags the source's by 2 days" in (stale.description or "")
    never = _freshness_result(KEY, table, sla, now, None, datetime(2026, 7, 1), None)
    assert not never.passed
    assert "no successful load" in (never.description or "")


def _staged(staging_filter: str) -> tuple[bool, str, dict]:
    """Six raw payments (one hard-deleted at the source), staged by a view that quarantines
    two as orphans and one as an unknown enum, filtered by ``staging_filter``."""
    table = source_table("payments")
    staging = ModelRelation(
        "stg_platform__payments",
        dg.AssetKey(["stg_platform__payments"]),
        "staging",
        "stg_platform__payments",
    )
    with duckdb.connect() as con:
        con.execute("create schema raw; create schema staging")
        con.execute(
            "create table raw.payments as select * from (values "
            "(1, null), (2, null), (3, null), (4, timestamp '2026-06-01'), (5, null), (6, null)"
            ") as t(id, _source_deleted_at)"
        )
        con.execute(
            f"""
            create view staging.stg_platform__payments as
            select
                id as payment_id,
                _source_deleted_at is not null as is_source_deleted,
                case when id in (2, 3) then 'orphan' when id = 5 then 'unknown_enum' end
                    as quarantine_reason
            from raw.payments
            {staging_filter}
            """
        )
        result = row_accounting_result(table, staging, account_rows(con, table, staging))
    return result.passed, result.description or "", {k: v.value for k, v in result.metadata.items()}


def test_row_accounting_counts_every_raw_row_as_used_or_quarantined() -> None:
    passed, description, metadata = _staged("")
    assert passed
    assert description == "6 raw rows = 3 used + 3 quarantined (2 orphan, 1 unknown_enum)"
    assert (metadata["rows_used"], metadata["rows_quarantined"]) == (3, 3)
    assert metadata["quarantined_by_reason"] == {"orphan": 2, "unknown_enum": 1}
    assert metadata["source_deleted_rows"] == 1


def test_row_accounting_fails_when_staging_loses_or_doubles_rows() -> None:
    passed, description, metadata = _staged("where id <> 4")
    assert not passed and metadata["difference"] == -1
    assert "returned 5 rows for the 6 of raw.payments (-1): rows were lost" in description
    passed, description, metadata = _staged("union all select 1, false, null")
    assert not passed and metadata["difference"] == 1
    assert description.endswith("rows were duplicated")
