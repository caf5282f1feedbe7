"""Render the leadership report to one self-contained, dated HTML file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from serving.checks import CheckSummary
from serving.report import charts
from serving.report.data import Kpi, ReportData, load_report_data, month_label
from serving.report.narrative import GLOSSARY, format_value, money, quality_sentence, summary


@dataclass(frozen=True)
class RenderedReport:
    """Where the report went and what it stamped."""

    path: Path
    stamp: str
    data: ReportData


def _kpi_view(kpi: Kpi) -> dict:
    change = kpi.change
    if change is None:
        delta, direction = "no comparison", "flat"
    elif kpi.kind == "pct" and kpi.current is not None and kpi.previous is not None:
        points = (kpi.current - kpi.previous) * 100
        delta = f"{points:+.1f} pts vs {format_value(kpi, kpi.previous)}"
        direction = "up" if points > 0 else "down" if points < 0 else "flat"
    else:
        delta = f"{change:+.1%} vs {format_value(kpi, kpi.previous)}"
        direction = "up" if change > 0 else "down" if change < 0 else "flat"
    return {
        "label": kpi.label,
        "basis": kpi.basis,
        "value": format_value(kpi, kpi.current),
        "delta": delta,
        "direction": direction,
    }


def stamp_text(data_as_of: datetime | None, checks: CheckSummary) -> str:
    """``data as of <time>, checks: N passed, M failed``."""
    when = data_as_of.strftime("%Y-%m-%d %H:%M UTC") if data_as_of else "unknown"
    return f"Data as of {when}, {checks.stamp()}"


def render_html(data: ReportData, checks: CheckSummary, generated_at: datetime) -> str:
    """The report's HTML text."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    # the stamp's text is exactly stamp_text(); only the failed count is highlighted
    stamp_html = Markup('{}<span class="{}">{} failed</span>').format(
        stamp_text(data.data_as_of, checks).removesuffix(f"{checks.failed} failed"),
        "failed" if checks.failed else "",
        checks.failed,
    )
    ranked = data.instructors.sort_values("contribution_margin_usd", ascending=False)
    top, bottom = ranked.head(5), ranked.tail(5)
    bottom = bottom[~bottom.index.isin(top.index)]
    instructor_rows = [
        {
            "group": group,
            "instructor": f"Instructor {r.instructor_id}",
            "tenant": r.tenant_name,
            "gross": money(r.gross_sales_usd),
            "net": money(r.net_sales_usd),
            "platform": money(r.platform_revenue_usd),
            "take_rate": f"{r.take_rate:.1%}" if pd.notna(r.take_rate) else "n/a",
            "margin": money(r.contribution_margin_usd),
            "balance": money(r.balance_owed_usd),
        }
        for group, frame in (("top", top), ("bottom", bottom))
        for r in frame.itertuples()
    ]
    quality = data.quality
    quality_rows = [
        {
            **{k: f"{int(v):,}" for k, v in row.items() if k not in ("table_name", "accounted")},
            "table_name": row["table_name"],
            "accounted": bool(row["accounted"]),
        }
        for row in quality.to_dict("records")
    ]
    checks_sentence = (
        f"{checks.passed} checks passed and {checks.failed} failed "
        f"({len(checks.blocking_failures)} blocking) for this published version."
    )
    return environment.get_template("template.html.j2").render(
        data=data,
        period_label=month_label(data.period),
        previous_label=month_label(data.previous_period),
        partial_labels=[month_label(m) for m in data.partial_months],
        summary=summary(data),
        glossary=GLOSSARY,
        tenant_names=list(data.tenant_names.values()),
        stamp_html=stamp_html,
        kpis=[_kpi_view(k) for k in data.kpis],
        charts={
            "ltv": charts.ltv_curves(data.cohort_curves),
            "instructors": charts.instructor_bars(data.instructors),
            "take_rate": charts.take_rate_trend(data.pnl_trend),
            "liquidity": charts.liquidity_trends(data.liquidity, data.hhi),
            "quality": charts.quarantine_bars(data.quality),
        },
        instructor_rows=instructor_rows,
        quality_rows=quality_rows,
        quality_sentence=quality_sentence(quality),
        all_accounted=bool(quality["accounted"].all()),
        checks_sentence=checks_sentence,
        failed_checks=list(checks.failures[:20]),
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
    )


def report_path(report_dir: Path, day: date) -> Path:
    """The dated file: ``leadership-report-YYYY-MM-DD.html``."""
    return report_dir / f"leadership-report-{day.isoformat()}.html"


def build_report(
    serving_path: Path,
    report_dir: Path,
    checks: CheckSummary,
    *,
    schema: str = "analytics",
    now: datetime | None = None,
) -> RenderedReport:
    """Render the report from the published serving file (the Dagster asset's body)."""
    now = now or datetime.now(UTC)
    data = load_report_data(serving_path, schema)
    html = render_html(data, checks, now)
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_path(report_dir, now.date())
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return RenderedReport(path, stamp_text(data.data_as_of, checks), data)
