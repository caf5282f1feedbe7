"""The numbers of the leadership report, read from the published marts.

Reads the serving file (what BI tools see), never the working warehouse, so the report
always matches a published, checked version. Ratios are recomputed as Σ numerator /
Σ denominator over the tenants and instructors they cover, as docs/metrics.md defines them.

The reporting period is the last month that has ended in every tenant's reporting time zone
by the data's as-of: the marts bucket months in those zones, so a month can still be running
for one tenant when it is over in UTC. Every series stops at that month; the later, partial
months are named, never drawn, so a half-filled month never reads as a collapse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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
    #: what is compared when it is not the period with the month before (e.g. two cohorts)
    basis: str = ""

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
    tenant_names: dict[int, str] = field(default_factory=dict)
    #: months the marts hold after the period, not yet over in every tenant's time zone
    partial_months: list[date] = field(default_factory=list)


def _month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _to_date(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def month_label(month: date) -> str:
    """``May 2026``."""
    return month.strftime("%B %Y")


def instructor_label(instructor_id: int, tenant_name: str) -> str:
    """How the report names an instructor: id and tenant, never a person's name or email; an
    instructor erased by `warehouse forget` (a negative, anonymous id) is named as such."""
    if instructor_id < 0:
        return f"Erased instructor {-instructor_id % 10_000:04d}, {tenant_name}"
    return f"Instructor {instructor_id}, {tenant_name}"


def last_complete_month(months: list[date], as_of: datetime, zones: list[str]) -> date | None:
    """The latest of ``months`` that has ended in every time zone of ``zones`` by ``as_of``."""
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    complete = [
        month
        for month in months
        if all(
            datetime.combine(_month_add(month, 1), time(), ZoneInfo(zone)) <= as_of
            for zone in zones or ["UTC"]
        )
    ]
    return complete[-1] if complete else None


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
    tenant_rows = con.execute(
        "select tenant_id, tenant_name, reporting_timezone from dim_tenant order by 1"
    ).fetchall()
    tenant_names = {t: name or f"Tenant {t}" for t, name, _ in tenant_rows}
    zones = sorted({zone or "UTC" for _, _, zone in tenant_rows})
    period = last_complete_month(months, as_of, zones) if as_of else months[-1]
    if period is None:
        raise ValueError(
            f"no month of the marts has ended in every tenant's time zone by the data as-of "
            f"{as_of:%Y-%m-%d %H:%M}: nothing to report yet"
        )
    previous = _month_add(period, -1)
    later = con.execute(
        """
        select distinct month_start_date from mart_instructor_pnl where month_start_date > ?
        union select distinct month_start_date from mart_marketplace_liquidity
        where month_start_date > ?
        union select distinct cohort_month from mart_ltv_cohorts where cohort_month > ?
        order by 1
        """,
        [period, period, period],
    ).fetchall()
    partial_months = [_to_date(r[0]) for r in later]

    pnl_trend = con.execute(
        """
        select month_start_date as month,
               sum(gross_sales_usd) as gross_sales_usd,
               sum(net_sales_usd) as net_sales_usd,
               sum(platform_revenue_usd) as platform_revenue_usd,
               sum(contribution_margin_usd) as contribution_margin_usd,
               sum(platform_revenue_usd) / nullif(sum(gross_sales_usd), 0) as take_rate
        from mart_instructor_pnl where month_start_date <= ? group by 1 order by 1
        """,
        [period],
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
        from mart_marketplace_liquidity where month_start_date <= ? group by 1 order by 1
        """,
        [period],
    ).df()
    hhi = con.execute(
        "select month_start_date as month, tenant_id, seller_hhi from mart_marketplace_liquidity "
        "where seller_hhi is not null and month_start_date <= ? order by 1, 2",
        [period],
    ).df()
    hhi["tenant_name"] = [tenant_names.get(t, f"Tenant {t}") for t in hhi["tenant_id"]]
    new_learners = dict(
        con.execute(
            "select cohort_month, count(*) from mart_learner_ltv where cohort_month <= ? group by 1",
            [period],
        ).fetchall()
    )
    cohorts = con.execute(
        """
        select cohort_month,
               sum(cohort_size) as cohort_size,
               sum(mature_learners_30) as mature_30, sum(ltv_30_mature_sum_usd) as sum_30,
               sum(mature_learners_90) as mature_90, sum(ltv_90_mature_sum_usd) as sum_90,
               sum(mature_learners_365) as mature_365, sum(ltv_365_mature_sum_usd) as sum_365
        from mart_ltv_cohorts where cohort_month <= ? group by 1 order by 1
        """,
        [period],
    ).df()
    # a cohort's point at N days is drawn once every learner of it is N days past the first
    # payment: the few early payers of a young cohort are not the cohort
    curves = []
    for row in cohorts.itertuples():
        curves.append((_to_date(row.cohort_month), 0, 0.0, int(row.cohort_size)))
        for days in (30, 90, 365):
            mature = getattr(row, f"mature_{days}")
            if mature and mature == row.cohort_size:
                total = float(getattr(row, f"sum_{days}"))
                curves.append((_to_date(row.cohort_month), days, total / mature, int(mature)))
    cohort_curves = pd.DataFrame(
        curves, columns=["cohort_month", "horizon_days", "avg_ltv_usd", "mature_learners"]
    )
    # the 30-day KPI compares cohorts whose every learner is 30 days past the first payment
    mature30 = cohorts[
        (cohorts["mature_30"] > 0) & (cohorts["mature_30"] == cohorts["cohort_size"])
    ]
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
    instructors["instructor_label"] = [
        instructor_label(r.instructor_id, tenant_names.get(r.tenant_id, f"Tenant {r.tenant_id}"))
        for r in instructors.itertuples()
    ]
    instructors["tenant_name"] = [
        tenant_names.get(t, f"Tenant {t}") for t in instructors["tenant_id"]
    ]
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
            "30-day LTV",
            float(ltv_now.sum_30 / ltv_now.mature_30) if ltv_now is not None else None,
            float(ltv_before.sum_30 / ltv_before.mature_30) if ltv_before is not None else None,
            "usd",
            basis=_cohort_basis(ltv_now, ltv_before),
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
        tenant_names=tenant_names,
        partial_months=partial_months,
    )


def _cohort_basis(now, before) -> str:
    if now is None:
        return "no cohort is 30 days past its first payments yet"
    newest = f"{month_label(_to_date(now.cohort_month))} cohort"
    if before is None:
        return newest
    return f"{newest} vs {month_label(_to_date(before.cohort_month))}"
