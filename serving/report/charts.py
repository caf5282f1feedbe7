"""The report's charts: matplotlib figures rendered to inline SVG (no files, no network)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: the report is rendered in batch jobs

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter, PercentFormatter

PALETTE = ["#1f5fa8", "#d9822b", "#2b9348", "#c0392b", "#7b4fa0", "#6c757d"]


def _svg(fig, name: str) -> str:
    """Serialize a figure to an inline <svg> element with ids unique to this chart."""
    buffer = io.StringIO()
    with plt.rc_context({"svg.hashsalt": name, "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    return svg.replace("<svg ", f'<svg role="img" aria-label="{name}" class="chart" ', 1)


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)


USD = FuncFormatter(lambda v, _: f"${v:,.0f}")


def ltv_curves(curves: pd.DataFrame, last_cohorts: int = 12) -> str:
    """Average LTV (mature learners) at 0/30/90/365 days, one line per cohort month (at most
    ``last_cohorts`` of them, evenly spaced back from the newest)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    # evenly spaced back from the newest, so old cohorts show the long horizons too
    points = curves.groupby("cohort_month")["horizon_days"].count()
    everything = sorted(points[points >= 2].index)  # cohorts mature at 30 days at least
    step = max(1, -(-len(everything) // last_cohorts))
    cohorts = everything[::-1][::step][:last_cohorts][::-1]
    cmap = plt.get_cmap("viridis")
    for i, cohort in enumerate(cohorts):
        line = curves[curves["cohort_month"] == cohort].sort_values("horizon_days")
        if len(line) < 2:
            continue  # no mature horizon yet: nothing to draw
        ax.plot(
            line["horizon_days"],
            line["avg_ltv_usd"],
            marker="o",
            markersize=3,
            color=cmap(i / max(len(cohorts) - 1, 1)),
            label=pd.Timestamp(cohort).strftime("%Y-%m"),
        )
    ax.set_xticks([0, 30, 90, 365])
    ax.set_xlabel("days since first payment")
    ax.set_ylabel("average LTV (USD, mature learners)")
    ax.yaxis.set_major_formatter(USD)
    ax.legend(
        title="cohort", fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5)
    )
    _style(ax)
    return _svg(fig, "ltv-by-cohort")


def instructor_bars(instructors: pd.DataFrame, n: int = 5) -> str:
    """Contribution margin of the top and bottom ``n`` instructors (trailing 12 months)."""
    ranked = instructors.sort_values("contribution_margin_usd", ascending=False)
    top, bottom = ranked.head(n), ranked.tail(n)
    shown = pd.concat([top, bottom[~bottom.index.isin(top.index)]])
    labels = [f"#{r.instructor_id} (t{r.tenant_id})" for r in shown.itertuples()]
    colors = [PALETTE[2] if v >= 0 else PALETTE[3] for v in shown["contribution_margin_usd"]]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(shown) + 1))
    ax.barh(labels[::-1], shown["contribution_margin_usd"].iloc[::-1], color=colors[::-1])
    for y, (value, rate) in enumerate(
        zip(shown["contribution_margin_usd"].iloc[::-1], shown["take_rate"].iloc[::-1], strict=True)
    ):
        ax.annotate(
            f"take {rate:.1%}" if pd.notna(rate) else "",
            (value, y),
            xytext=(4 if value >= 0 else -4, 0),
            textcoords="offset points",
            ha="left" if value >= 0 else "right",
            va="center",
            fontsize=7,
        )
    ax.xaxis.set_major_formatter(USD)
    ax.set_xlabel("contribution margin, trailing 12 months (USD)")
    ax.axvline(0, color="#333", linewidth=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "instructor-profitability")


def take_rate_trend(pnl_trend: pd.DataFrame) -> str:
    """Platform revenue (bars) and take rate (line) by month."""
    fig, ax = plt.subplots(figsize=(8, 3))
    months = pd.to_datetime(pnl_trend["month"])
    ax.bar(months, pnl_trend["platform_revenue_usd"], width=20, color=PALETTE[0], alpha=0.6)
    ax.yaxis.set_major_formatter(USD)
    ax.set_ylabel("platform revenue")
    right = ax.twinx()
    right.plot(months, pnl_trend["take_rate"], color=PALETTE[1], marker="o", markersize=3)
    right.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    right.set_ylabel("take rate")
    _style(ax)
    fig.autofmt_xdate()
    return _svg(fig, "take-rate-trend")


def liquidity_trends(liquidity: pd.DataFrame, hhi: pd.DataFrame) -> str:
    """Four small multiples: sell-through, fill rate, buyer:seller ratio, concentration."""
    fig, axes = plt.subplots(2, 2, figsize=(9, 5.5), sharex=True)
    months = pd.to_datetime(liquidity["month"])
    panels = [
        ("sell_through_30d", "course sell-through within 30 days", True),
        ("fill_rate_24h", "service orders filled within 24 h", True),
        ("buyer_seller_ratio", "buyers per selling instructor", False),
    ]
    for ax, (column, title, pct) in zip(axes.flat, panels, strict=False):
        ax.plot(months, liquidity[column], marker="o", markersize=3, color=PALETTE[0])
        ax.set_title(title, fontsize=9)
        if pct:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        _style(ax)
    ax = axes.flat[3]
    for i, (tenant, rows) in enumerate(hhi.groupby("tenant_id")):
        ax.plot(
            pd.to_datetime(rows["month"]),
            rows["seller_hhi"],
            marker="o",
            markersize=3,
            color=PALETTE[i % len(PALETTE)],
            label=f"tenant {tenant}",
        )
    ax.set_title("seller concentration (HHI, 0-10,000)", fontsize=9)
    if not hhi.empty:
        ax.legend(fontsize=7, frameon=False)
    _style(ax)
    fig.autofmt_xdate()
    return _svg(fig, "marketplace-liquidity")


def quarantine_bars(quality: pd.DataFrame) -> str:
    """Quarantined and flagged rows by source table and reason (stacked)."""
    reasons = ["orphan", "unknown_enum", "duplicate_person", "parent_quarantined", "malformed_json"]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(quality) + 1.2))
    left = pd.Series(0, index=quality.index, dtype=float)
    for i, reason in enumerate(reasons):
        values = quality[reason].astype(float)
        ax.barh(quality["table_name"], values, left=left, color=PALETTE[i], label=reason)
        left += values
    ax.invert_yaxis()
    ax.set_xlabel("rows quarantined or flagged (all loads)")
    ax.legend(fontsize=7, frameon=False, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "data-quality")
