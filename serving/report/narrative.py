"""The report's words: a plain-language summary of what changed and a glossary of every KPI.

Leadership reads the report unaided, so the summary says in a few sentences what the KPI
cards and charts show, computed from the same numbers, and the glossary defines each number
in plain words, as docs/metrics.md does (keep the two in step).
"""

from __future__ import annotations

import pandas as pd

from serving.report.charts import QUALITY_REASONS
from serving.report.data import Kpi, ReportData, month_label

#: The KPIs the summary leads with, whatever moved most: what was sold, and the platform's cut.
LEAD_KPIS = ("Net sales", "Take rate")
#: Left out of the other changes: gross sales move with net sales, already in the lead.
ECHOES = ("Attributed gross sales",)

#: Every number the report shows, in the order it shows them: (term, definition).
GLOSSARY: tuple[tuple[str, str], ...] = (
    (
        "Attributed gross sales",
        "Money captured (succeeded, refunded or partly refunded payments) for instructors' "
        "courses and ebooks, in US dollars, before refunds, in the month of the payment.",
    ),
    ("Net sales", "Attributed gross sales minus their refunds."),
    (
        "Platform revenue",
        "Net sales minus what the instructors earn (their revenue share at the time of each "
        "payment).",
    ),
    ("Take rate", "Platform revenue as a share of attributed gross sales."),
    ("Contribution margin", "Platform revenue minus the payment processor's fees."),
    (
        "New paying learners",
        "People whose first payment fell in the month (accounts sharing an email within a "
        "tenant count as one person).",
    ),
    (
        "30-day LTV",
        "Lifetime value: the average net amount a learner paid in the 30 days from their first "
        "payment, over the learners of a cohort (the month of that first payment) who are at "
        "least 30 days past it. The 90- and 365-day LTV use 90 and 365 days.",
    ),
    (
        "Service orders filled within 24 h",
        "Of the service orders requested in the month, the share matched with a provider within "
        "24 hours.",
    ),
    (
        "Buyer : seller ratio",
        "People who paid in the month per instructor with at least one sale in the month.",
    ),
    (
        "Course sell-through within 30 days",
        "Of the courses published in the month, the share with a first sale within 30 days.",
    ),
    (
        "Seller concentration (HHI)",
        "Herfindahl-Hirschman index of the instructors' shares of a tenant's monthly gross "
        "sales, from 0 (spread over many) to 10,000 (one instructor sells everything).",
    ),
    ("Balance owed", "What instructors have earned minus the payouts paid to them, to date."),
    (
        "Quarantined rows",
        "Source rows kept out of the numbers, each with its reason (no parent record, an "
        "unknown status, a duplicate person, or a parent that was itself quarantined); flagged "
        "rows are kept and counted.",
    ),
)


def money(value) -> str:
    """``$1,234`` or ``-$1,234``; ``n/a`` for a missing value."""
    if value is None or pd.isna(value):
        return "n/a"
    return f"-${abs(value):,.0f}" if value < 0 else f"${value:,.0f}"


def format_value(kpi: Kpi, value: float | None) -> str:
    """A KPI's value as the cards show it."""
    if value is None:
        return "n/a"
    if kpi.kind == "usd":
        return money(value)
    if kpi.kind == "pct":
        return f"{value:.1%}"
    if kpi.kind == "ratio":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def movement(kpi: Kpi) -> str:
    """``net sales rose 12.3% to $1,234``; rates move in points: ``take rate fell 1.2 points``."""
    name = kpi.label[0].lower() + kpi.label[1:]
    now = format_value(kpi, kpi.current)
    if kpi.current is None or kpi.previous is None or kpi.change is None:
        return f"{name} was {now}, with nothing to compare"
    if kpi.kind == "pct":
        step = f"{abs(kpi.current - kpi.previous) * 100:.1f} points"
    else:
        step = f"{abs(kpi.change):.1%}"
    if step in ("0.0 points", "0.0%"):
        return f"{name} held at {now}"
    verb = "rose" if kpi.current > kpi.previous else "fell"
    return f"{name} {verb} {step} to {now}"


def summary(data: ReportData) -> list[str]:
    """Sentences on the biggest changes: the lead KPIs, then the three other monthly KPIs
    that moved most (relative change), then the cohort KPIs."""
    period, previous = month_label(data.period), month_label(data.previous_period)
    monthly = [k for k in data.kpis if not k.basis]
    lead = [k for name in LEAD_KPIS for k in monthly if k.label == name]
    sentences = []
    if lead:
        text = "; ".join(movement(k) for k in lead)
        sentences.append(f"In {period}, compared with {previous}, {text}.")
    movers = sorted(
        (k for k in monthly if k not in lead and k.label not in ECHOES and k.change is not None),
        key=lambda k: abs(k.change or 0),
        reverse=True,
    )[:3]
    if movers:
        sentences.append(
            "The biggest other changes: " + "; ".join(movement(k) for k in movers) + "."
        )
    for kpi in data.kpis:
        if kpi.basis and kpi.current is not None:
            against = f" against {format_value(kpi, kpi.previous)}" if kpi.previous else ""
            sentences.append(
                f"{kpi.label}, {kpi.basis}: {format_value(kpi, kpi.current)}{against}."
            )
    return sentences


def quality_sentence(quality: pd.DataFrame) -> str:
    """What the data-quality mart says in two sentences: rows read, quarantined and flagged,
    and whether every row is accounted for."""
    with_rows = int((quality[list(QUALITY_REASONS)].sum(axis=1) > 0).sum())
    missing = ", ".join(quality.loc[~quality["accounted"], "table_name"])
    return (
        f"{len(quality)} source tables, {int(quality['rows_read'].sum()):,} rows read over "
        f"{int(quality['loads'].sum()):,} loads: {int(quality['rows_quarantined'].sum()):,} "
        f"quarantined and {int(quality['malformed_json'].sum()):,} kept but flagged, in "
        f"{with_rows} tables. "
        + (
            f"Rows are unaccounted for in {missing}."
            if missing
            else "Every row is accounted for (used, or quarantined with a reason)."
        )
    )
