"""The reconciliation and freshness verdicts, on numbers chosen by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg

from orchestration.catalog import source_table
from orchestration.defs.quality import RawProfile, _freshness_result, reconcile
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
