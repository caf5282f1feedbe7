"""The report's charts: matplotlib figures rendered to inline SVG (no files, no network).

Text is drawn as glyph paths, so a chart looks the same without its fonts; each plotting
area carries the id ``<chart>-plot-<n>`` so that a browser test can tell labels that stay
clear of the axes from labels that cross them. Labels that would crowd the bars (values,
take rates) go in a column beside the plot, legends beside or above it.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: the report is rendered in batch jobs

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

PALETTE = ["#1f5fa8", "#d9822b", "#2b9348", "#c0392b", "#7b4fa0", "#6c757d"]


def _svg(fig, name: str) -> str:
    """Serialize a figure to an inline <svg> element with ids unique to this chart."""
    for i, ax in enumerate(fig.axes):
        ax.patch.set_gid(f"{name}-plot-{i}")
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


def _month_tick(value: float, position: int | None) -> str:
    """``Mar`` under a tick, the year beneath on the first tick and in January."""
    day = mdates.num2date(value)
    month = day.strftime("%b")
    return f"{month}\n{day.year}" if position == 0 or day.month == 1 else month


def _months_axis(ax, months: pd.Series, ticks: int) -> None:
    """Horizontal month labels with the year where it starts and changes, the axis ending half
    a month after the last month (no tick for a month not drawn)."""
    if len(months):
        half = pd.Timedelta(days=15)
        ax.set_xlim(months.min() - half, months.max() + half)
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(_month_tick))


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
    """Contribution margin of the top and bottom ``n`` instructors (trailing 12 months), with
    each one's margin and take rate in a column to the right of the plot."""
    ranked = instructors.sort_values("contribution_margin_usd", ascending=False)
    top, bottom = ranked.head(n), ranked.tail(n)
    shown = pd.concat([top, bottom[~bottom.index.isin(top.index)]]).iloc[::-1]
    margins = shown["contribution_margin_usd"]
    colors = [PALETTE[2] if v >= 0 else PALETTE[3] for v in margins]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(shown) + 0.9))
    ax.barh(list(shown["instructor_label"]), margins, color=colors)
    for y, (value, rate) in enumerate(zip(margins, shown["take_rate"], strict=True)):
        sign = "-" if value < 0 else ""
        take = f"take {rate:.1%}" if pd.notna(rate) else "take n/a"
        ax.annotate(
            f"{sign}${abs(value):,.0f} · {take}",
            (1, y),
            xycoords=("axes fraction", "data"),
            xytext=(8, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            fontsize=8,
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
    right.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10]))
    right.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    right.set_ylabel("take rate")
    _style(ax)
    _months_axis(ax, months, 12)
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
    for i, ((_, name), rows) in enumerate(hhi.groupby(["tenant_id", "tenant_name"])):
        ax.plot(
            pd.to_datetime(rows["month"]),
            rows["seller_hhi"],
            marker="o",
            markersize=2,
            linewidth=1,
            color=PALETTE[i % len(PALETTE)],
            label=name,
        )
    ax.set_title("seller concentration (HHI, 0-10,000)", fontsize=9)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    if not hhi.empty:
        ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.02, 0.5))
    _style(ax)
    for ax in axes[1]:
        _months_axis(ax, months, 7)
    return _svg(fig, "marketplace-liquidity")


#: Reasons a row is quarantined (kept out) or flagged (kept), as mart_data_quality counts them.
QUALITY_REASONS = {
    "orphan": "orphan",
    "unknown_enum": "unknown status",
    "duplicate_person": "duplicate person",
    "parent_quarantined": "parent quarantined",
    "malformed_json": "malformed JSON (kept, flagged)",
}


def quarantine_bars(quality: pd.DataFrame) -> str:
    """Quarantined and flagged rows by source table and reason (stacked): only the tables and
    reasons with rows, the legend above the bars; empty when there is nothing to show."""
    reasons = [r for r in QUALITY_REASONS if quality[r].sum() > 0]
    shown = quality[quality[reasons].sum(axis=1) > 0] if reasons else quality.iloc[:0]
    if shown.empty:
        return ""
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(shown) + 0.9))
    left = pd.Series(0, index=shown.index, dtype=float)
    for reason in reasons:
        values = shown[reason].astype(float)
        color = PALETTE[list(QUALITY_REASONS).index(reason)]
        ax.barh(shown["table_name"], values, left=left, color=color, label=QUALITY_REASONS[reason])
        left += values
    ax.invert_yaxis()
    ax.set_xlabel("rows quarantined or flagged (all loads)")
    ax.legend(
        fontsize=7, frameon=False, ncol=len(reasons), loc="lower left", bbox_to_anchor=(0, 1.0)
    )
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "data-quality")
