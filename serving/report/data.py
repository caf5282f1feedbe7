"""The numbers of the leadership report, read from the published marts.

Reads the serving file (what BI tools see), never the working warehouse, so the report
always matches a published, checked version. Ratios are recomputed as Σ numerator /
Σ denominator over the tenants and instructors they cover, as docs/metrics.md defines them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd


def _first(row: tuple | None) -> Any:
    """The first value of a one-row result (aggregates always return a row)."""
    if row is None:
        raise RuntimeError("query returned no row")
    return row[0]


@dataclass(frozen=True)
class Kpi:
    """One headline number this period and the previous one."""

    label: str
    current: float | None
    previous: float | None
    kind: str  # usd | pct | count | ratio

    @property
    def change(self) -> float | None:
        """Relative change vs the previous period (None when undefined)."""
        if self.current is None or not self.previous:
            return None
        return (self.current - self.previous) / abs(self.previous)


@dataclass
class ReportData:
    """Everything the template and the charts need."""

    version: str
    data_as_of: datetime | None
    period: date
    previous_period: date
    kpis: list[Kpi]
    cohort_curves: pd.DataFrame  # cohort_month, horizon_days, avg_ltv_usd, mature_learners
    instructors: pd.DataFrame  # per instructor over the trailing 12 months
    pnl_trend: pd.DataFrame  # month: gross, platform revenue, take rate
    liquidity: pd.DataFrame  # month: platform-wide ratios
    hhi: pd.DataFrame  # month x tenant: seller_hhi
    quality: pd.DataFrame  # per source table, summed over loads
    tenants: list = field(default_factory=list)


def _month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _to_date(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def load_report_data(serving_path: Path, schema: str = "analytics") -> ReportData:
    """Query the published marts in ``serving_path`` for the report."""
    con = duckdb.connect(str(serving_path), read_only=True)
    try:
        con.execute(f"set schema = '{schema}'")
        con.execute("set TimeZone = 'UTC'")
        return _load(con)
    finally:
        con.close()


def _load(con: duckdb.DuckDBPyConnection) -> ReportData:
    version, data_as_of = con.execute(
        "select max(version), max(data_as_of) from _publish_metadata"
    ).fetchone() or (None, None)
    as_of = (
        _first(con.execute("select max(as_of_at) from mart_learner_ltv").fetchone()) or data_as_of
    )
    months = [
        _to_date(r[0])
        for r in con.execute(
            "select distinct month_start_date from mart_instructor_pnl order by 1"
        ).fetchall()
    ]
    if not months:
        raise ValueError("mart_instructor_pnl is empty: nothing to report")
    # the latest complete month before the as-of time is the reporting period
    as_of_month = _to_date(as_of).replace(day=1) if as_of else None
    complete = [m for m in months if as_of_month is None or m < as_of_month]
    period = complete[-1] if complete else months[-1]
    previous = _month_add(period, -1)

    pnl_trend = con.execute(
        """
        select month_start_date as month,
               sum(gross_sales_usd) as gross_sales_usd,
               sum(net_sales_usd) as net_sales_usd,
               sum(platform_revenue_usd) as platform_revenue_usd,
               sum(contribution_margin_usd) as contribution_margin_usd,
               sum(platform_revenue_usd) / nullif(sum(gross_sales_usd), 0) as take_rate
        from mart_instructor_pnl group by 1 order by 1
        """
    ).df()
    liquidity = con.execute(
        """
        select month_start_date as month,
               sum(sell_through_30d_numerator) / nullif(sum(sell_through_30d_denominator), 0)
                   as sell_through_30d,
               sum(orders_matched_within_24h) / nullif(sum(orders_requested), 0) as fill_rate_24h,
               sum(paying_people) / nullif(sum(selling_instructors), 0) as buyer_seller_ratio,
               sum(top_decile_gross_sales_usd) / nullif(sum(instructor_gross_sales_usd), 0)
                   as top_decile_sales_share,
               sum(courses_published) as courses_published,
               sum(orders_requested) as orders_requested
        from mart_marketplace_liquidity group by 1 order by 1
        """
    ).df()
    hhi = con.execute(
        "select month_start_date as month, tenant_id, seller_hhi "
        "from mart_marketplace_liquidity where seller_hhi is not null order by 1, 2"
    ).df()
    new_learners = dict(
        con.execute("select cohort_month, count(*) from mart_learner_ltv group by 1").fetchall()
    )
    cohorts = con.execute(
        """
        select cohort_month,
               sum(cohort_size) as cohort_size,
               sum(mature_learners_30) as mature_30, sum(ltv_30_mature_sum_usd) as sum_30,
               sum(mature_learners_90) as mature_90, sum(ltv_90_mature_sum_usd) as sum_90,
               sum(mature_learners_365) as mature_365, sum(ltv_365_mature_sum_usd) as sum_365
        from mart_ltv_cohorts group by 1 order by 1
        """
    ).df()
    curves = []
    for row in cohorts.itertuples():
        curves.append((_to_date(row.cohort_month), 0, 0.0, int(row.cohort_size)))
        for days in (30, 90, 365):
            mature = getattr(row, f"mature_{days}")
            if mature and mature > 0:
                total = float(getattr(row, f"sum_{days}"))
                curves.append((_to_date(row.cohort_month), days, total / mature, int(mature)))
    cohort_curves = pd.DataFrame(
        curves, columns=["cohort_month", "horizon_days", "avg_ltv_usd", "mature_learners"]
    )
    mature30 = cohorts[cohorts["mature_30"] > 0]
    instructors = con.execute(
        """
        select instructor_id, tenant_id,
               sum(gross_sales_usd) as gross_sales_usd,
               sum(net_sales_usd) as net_sales_usd,
               sum(platform_revenue_usd) as platform_revenue_usd,
               sum(contribution_margin_usd) as contribution_margin_usd,
               sum(platform_revenue_usd) / nullif(sum(gross_sales_usd), 0) as take_rate,
               max(balance_owed_usd) as balance_owed_usd
        from mart_instructor_pnl
        where month_start_date > ? and month_start_date <= ?
        group by 1, 2
        order by contribution_margin_usd desc
        """,
        [_month_add(period, -12), period],
    ).df()
    quality = con.execute(
        """
        select table_name,
               count(*) as loads,
               sum(rows_read) as rows_read,
               sum(rows_landed) as rows_landed,
               sum(rows_in_raw) as rows_in_raw,
               sum(rows_used) as rows_used,
               sum(rows_quarantined) as rows_quarantined,
               sum(quarantined_orphan) as orphan,
               sum(quarantined_unknown_enum) as unknown_enum,
               sum(quarantined_duplicate_person) as duplicate_person,
               sum(quarantined_parent) as parent_quarantined,
               sum(malformed_json_flagged) as malformed_json,
               sum(zero_dates_nulled) as zero_dates_nulled,
               sum(hard_deletes_detected) as hard_deletes
        from mart_data_quality group by 1 order by 1
        """
    ).df()
    quality["accounted"] = (
        quality["rows_in_raw"] == quality["rows_used"] + quality["rows_quarantined"]
    )
    tenants = [
        r[0]
        for r in con.execute(
            "select distinct tenant_id from mart_instructor_pnl order by 1"
        ).fetchall()
    ]

    def pick(frame: pd.DataFrame, month: date, column: str) -> float | None:
        match = frame[frame["month"].map(_to_date) == month]
        if match.empty or pd.isna(match.iloc[0][column]):
            return None
        return float(match.iloc[0][column])

    ltv_now = mature30.iloc[-1] if len(mature30) else None
    ltv_before = mature30.iloc[-2] if len(mature30) > 1 else None
    # The month-over-month KPIs read straight off the instructor P&L trend.
    pnl_kpis = (
        ("Attributed gross sales", "gross_sales_usd", "usd"),
        ("Net sales", "net_sales_usd", "usd"),
        ("Platform revenue", "platform_revenue_usd", "usd"),
        ("Take rate", "take_rate", "pct"),
        ("Contribution margin", "contribution_margin_usd", "usd"),
    )
    kpis = [
        *(
            Kpi(label, pick(pnl_trend, period, column), pick(pnl_trend, previous, column), unit)
            for label, column, unit in pnl_kpis
        ),
        Kpi(
            "New paying learners",
            float(new_learners.get(period, 0)),
            float(new_learners.get(previous, 0)),
            "count",
        ),
        Kpi(
            "30-day LTV, newest mature cohort",
            float(ltv_now.sum_30 / ltv_now.mature_30) if ltv_now is not None else None,
            float(ltv_before.sum_30 / ltv_before.mature_30) if ltv_before is not None else None,
            "usd",
        ),
        Kpi(
            "Service orders filled within 24 h",
            pick(liquidity, period, "fill_rate_24h"),
            pick(liquidity, previous, "fill_rate_24h"),
            "pct",
        ),
        Kpi(
            "Buyer : seller ratio",
            pick(liquidity, period, "buyer_seller_ratio"),
            pick(liquidity, previous, "buyer_seller_ratio"),
            "ratio",
        ),
    ]
    return ReportData(
        version=version,
        data_as_of=as_of,
        period=period,
        previous_period=previous,
        kpis=kpis,
        cohort_curves=cohort_curves,
        instructors=instructors,
        pnl_trend=pnl_trend,
        liquidity=liquidity,
        hhi=hhi,
        quality=quality,
        tenants=tenants,
    )
