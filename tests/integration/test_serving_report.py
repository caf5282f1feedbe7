"""The leadership report: numbers checked against the rows, self-contained HTML, dated file, email.

The marts hold a month the as-of has only just begun (``PARTIAL_MONTH``), as a real
warehouse does; the report must leave it out. Expected numbers come from the rows or from
SQL on the published file, never from the code under test.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from serving.checks import CheckSummary
from serving.publish import publish_warehouse
from serving.report.data import load_report_data
from serving.report.mail import send_report
from serving.report.render import build_report
from serving.settings import ServingSettings
from tests.serving_support import (
    PARTIAL_MONTH,
    LocalSmtpServer,
    build_warehouse,
    mart_rows,
    passing_checks,
    with_partial_month,
    write_manifest,
)

pytestmark = pytest.mark.xdist_group("serving_report")
NOW = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    rows = with_partial_month(mart_rows(seed=21))
    warehouse = build_warehouse(base / "wh.duckdb", rows)
    write_manifest(base / "target" / "manifest.json", warehouse)
    settings = ServingSettings(data_dir=base, dbt_target_dir=base / "target")
    checks = passing_checks(passed=40, failed_warn=2)
    publish_warehouse(warehouse, settings, checks)
    rendered = build_report(settings.resolved_serving_path, base / "reports", checks, now=NOW)
    return rows, settings, checks, rendered, base


def test_report_is_dated_self_contained_and_stamped(published):
    _, _, _, rendered, base = published
    assert rendered.path == base / "reports" / "leadership-report-2026-11-02.html"
    html = rendered.path.read_text()
    assert rendered.stamp == "Data as of 2026-11-01 06:00 UTC, checks: 40 passed, 2 failed"
    stamp = re.search(r'<p class="stamp" id="stamp">(.*?)</p>', html).group(1)
    assert re.sub(r"<[^>]+>", "", stamp) == rendered.stamp
    # nothing fetched from anywhere: no external src/href, stylesheet, import or font
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"<link\b|@import|url\(\s*['\"]?https?:", html)
    assert "<script src" not in html
    assert len(re.findall(r'<svg role="img" aria-label="[^"]+" class="chart"', html)) == 5
    assert html.count("<path") > 200  # real plots, not empty frames
    for section in (
        "Headline KPIs",
        "Learner lifetime value by cohort",
        "Instructor profitability",
        "Marketplace liquidity",
        "Data quality",
        "What changed",
        "Glossary",
    ):
        assert f">{section}" in html


def test_kpis_match_the_marts(published):
    rows, _, _, rendered, _ = published
    data = rendered.data
    # as-of 2026-11-01: the latest complete month is October, compared with September
    assert (data.period, data.previous_period) == (date(2026, 10, 1), date(2026, 9, 1))
    kpis = {k.label: k for k in data.kpis}

    def pnl(month, column):
        return sum(r[column] for r in rows["mart_instructor_pnl"] if r["month_start_date"] == month)

    october, september = date(2026, 10, 1), date(2026, 9, 1)
    gross = kpis["Attributed gross sales"]
    assert gross.current == pytest.approx(pnl(october, "gross_sales_usd"))
    assert gross.previous == pytest.approx(pnl(september, "gross_sales_usd"))
    assert gross.change == pytest.approx(
        pnl(october, "gross_sales_usd") / pnl(september, "gross_sales_usd") - 1
    )
    assert kpis["Take rate"].current == pytest.approx(
        pnl(october, "platform_revenue_usd") / pnl(october, "gross_sales_usd")
    )
    assert kpis["New paying learners"].current == sum(
        1 for r in rows["mart_learner_ltv"] if r["cohort_month"] == october
    )
    liquidity = [r for r in rows["mart_marketplace_liquidity"] if r["month_start_date"] == october]
    assert kpis["Service orders filled within 24 h"].current == pytest.approx(
        sum(r["orders_matched_within_24h"] for r in liquidity)
        / sum(r["orders_requested"] for r in liquidity)
    )
    html = rendered.path.read_text()
    assert f"${gross.current:,.0f}" in html
    assert f"{gross.change:+.1%} vs ${gross.previous:,.0f}" in html


def test_ltv_curves_and_instructor_ranking(published):
    rows, _, _, rendered, _ = published
    curves = rendered.data.cohort_curves
    cohort = date(2025, 6, 1)
    for days in (30, 90, 365):
        mature = [
            r[f"ltv_{days}_usd"]
            for r in rows["mart_learner_ltv"]
            if r["cohort_month"] == cohort and r[f"is_mature_{days}"]
        ]
        point = curves[(curves["cohort_month"] == cohort) & (curves["horizon_days"] == days)]
        assert point["avg_ltv_usd"].item() == pytest.approx(sum(mature) / len(mature), abs=0.01)
    # a cohort not yet 365 days old has no 365-day point
    assert curves[
        (curves["cohort_month"] == date(2026, 3, 1)) & (curves["horizon_days"] == 365)
    ].empty
    # nor a cohort only some of whose learners are that old: its early payers are not the cohort
    partly = {
        (cohort, days)
        for cohort in {r["cohort_month"] for r in rows["mart_learner_ltv"]}
        for days in (30, 90, 365)
        if len(
            {
                r[f"is_mature_{days}"]
                for r in rows["mart_learner_ltv"]
                if r["cohort_month"] == cohort
            }
        )
        == 2
    }
    assert partly
    for cohort, days in partly:
        assert curves[(curves["cohort_month"] == cohort) & (curves["horizon_days"] == days)].empty

    trailing = {}
    for r in rows["mart_instructor_pnl"]:
        if date(2025, 10, 1) < r["month_start_date"] <= date(2026, 10, 1):
            trailing[r["instructor_id"]] = (
                trailing.get(r["instructor_id"], 0) + r["contribution_margin_usd"]
            )
    best = max(trailing, key=trailing.get)
    worst = min(trailing, key=trailing.get)
    table = rendered.path.read_text().split('id="instructors"')[1].split("</table>")[0]
    ranks = re.findall(r"<tr><td>Instructor (\d+)</td><td[^>]*>(top|bottom)</td>", table)
    assert ranks[0] == (str(best), "top")
    assert (str(worst), "bottom") in ranks


def test_quality_panel_flags_unaccounted_rows(published, tmp_path):
    rows, settings, checks, _, _ = published
    rows = {**rows, "mart_data_quality": [dict(r) for r in rows["mart_data_quality"]]}
    rows["mart_data_quality"][0]["rows_used"] -= 3  # three raw rows vanish without a reason
    for row in rows["mart_data_quality"]:
        row["quarantined_parent"] = 0  # a reason no row has: no legend entry
        if row["table_name"] == "courses":  # a clean table: no bar
            reasons = ("orphan", "unknown_enum", "duplicate_person")
            row.update({f"quarantined_{r}": 0 for r in reasons}, malformed_json_flagged=0)
            row.update(rows_used=row["rows_in_raw"], rows_quarantined=0)
    warehouse = build_warehouse(tmp_path / "wh.duckdb", rows)
    settings = ServingSettings(data_dir=tmp_path, dbt_target_dir=tmp_path / "none")
    publish_warehouse(warehouse, settings, checks)
    failing = CheckSummary(passed=39, failed=3, blocking_failures=(), failures=("a", "b", "c"))
    rendered = build_report(settings.resolved_serving_path, tmp_path / "out", failing, now=NOW)
    quality = rendered.data.quality.set_index("table_name")
    broken = rows["mart_data_quality"][0]["table_name"]
    assert not quality.loc[broken, "accounted"]
    assert quality.drop(index=broken)["accounted"].all()
    html = rendered.path.read_text()
    assert html.count('class="bad">NO</td>') == 1
    assert "<details open>" in html  # the accounting table is shown when a row is missing
    assert f"Rows are unaccounted for in {broken}." in html
    drawn = svg_texts(html, "data-quality")
    assert "payments" in drawn and "courses" not in drawn
    assert "orphan" in drawn and "parent quarantined" not in drawn
    assert 'checks: 39 passed, <span class="failed">3 failed</span>' in html


def svg_texts(html: str, chart: str) -> list[str]:
    """The texts drawn in one chart (glyph paths, each text group names its text in a comment)."""
    svg = html.split(f'aria-label="{chart}"')[1].split("</svg>")[0]
    return re.findall(r"<!-- (.*?) -->", svg)


def serving_sql(path: Path, query: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def last_month_ended_everywhere(path: Path) -> date:
    """The latest month of the P&L that has ended, in every tenant's zone, by the as-of."""
    (as_of,) = serving_sql(path, "select max(as_of_at) from analytics.mart_learner_ltv")[0]
    zones = [z for (z,) in serving_sql(path, "select reporting_timezone from analytics.dim_tenant")]
    months = serving_sql(
        path, "select distinct month_start_date from analytics.mart_instructor_pnl order by 1"
    )
    ended = [
        month
        for (month,) in months
        if all(
            (pd.Timestamp(month) + pd.DateOffset(months=1)).tz_localize(zone) <= pd.Timestamp(as_of)
            for zone in zones
        )
    ]
    return ended[-1]


def test_headline_is_the_last_complete_month_and_charts_stop_there(published):
    _, settings, _, rendered, _ = published
    data = rendered.data
    expected = last_month_ended_everywhere(settings.resolved_serving_path)
    assert expected == date(2026, 10, 1)  # the as-of is a few hours into November
    assert (data.period, data.previous_period) == (expected, date(2026, 9, 1))
    assert data.partial_months == [PARTIAL_MONTH]
    for frame, column in (
        (data.pnl_trend, "month"),
        (data.liquidity, "month"),
        (data.hhi, "month"),
        (data.cohort_curves, "cohort_month"),
    ):
        assert pd.to_datetime(frame[column]).max() == pd.Timestamp(expected), column
    html = rendered.path.read_text()
    assert "<h1>Leadership report: October 2026</h1>" in html
    assert "October 2026 vs September 2026" in html
    assert "November 2026 is not over yet and is left out." in html
    assert "2026-11" not in " ".join(svg_texts(html, "take-rate-trend"))


def test_a_month_still_running_in_one_tenants_zone_is_not_complete(published, tmp_path):
    rows, _, checks, _, _ = published
    # the as-of is 06:00 UTC on 1 November: still 31 October (20:00) in Honolulu
    tenants = [dict(r) for r in rows["dim_tenant"]]
    tenants[1]["reporting_timezone"] = "Pacific/Honolulu"
    warehouse = build_warehouse(tmp_path / "wh.duckdb", {**rows, "dim_tenant": tenants})
    settings = ServingSettings(data_dir=tmp_path, dbt_target_dir=tmp_path / "none")
    publish_warehouse(warehouse, settings, checks)
    data = load_report_data(settings.resolved_serving_path)
    assert data.period == last_month_ended_everywhere(settings.resolved_serving_path)
    assert data.period == date(2026, 9, 1)
    assert data.partial_months == [date(2026, 10, 1), PARTIAL_MONTH]


def test_names_instead_of_ids(published):
    rows, _, _, rendered, _ = published
    html = rendered.path.read_text()
    names = {r["tenant_id"]: r["tenant_name"] for r in rows["dim_tenant"]}
    table = html.split('id="instructors"')[1].split("</table>")[0]
    shown = re.findall(
        r"<tr><td>Instructor (\d+)</td><td[^>]*>\w+</td><td[^>]*>([^<]+)</td>", table
    )
    assert len(shown) == 10
    tenant_of = {r["instructor_id"]: r["tenant_id"] for r in rows["dim_instructor"]}
    assert all(name == names[tenant_of[int(i)]] for i, name in shown)
    bars = svg_texts(html, "instructor-profitability")
    assert {f"Instructor {i}, {name}" for i, name in shown} <= set(bars)
    assert not [t for t in bars if re.search(r"#\d|\(t\d", t)]
    assert set(names.values()) <= set(svg_texts(html, "marketplace-liquidity"))
    assert f"tenants {', '.join(names[t] for t in sorted(names))}." in html


def test_summary_states_the_biggest_changes(published):
    _, settings, _, rendered, _ = published
    path = settings.resolved_serving_path
    now, before = date(2026, 10, 1), date(2026, 9, 1)
    pnl = {
        month: values
        for month, *values in serving_sql(
            path,
            "select month_start_date, sum(net_sales_usd), sum(platform_revenue_usd), "
            "sum(contribution_margin_usd), sum(gross_sales_usd) "
            "from analytics.mart_instructor_pnl where month_start_date in (?, ?) group by 1",
            [now, before],
        )
    }
    liquidity = {
        month: values
        for month, *values in serving_sql(
            path,
            "select month_start_date, "
            "sum(orders_matched_within_24h) / sum(orders_requested), "
            "sum(paying_people) / sum(selling_instructors) "
            "from analytics.mart_marketplace_liquidity where month_start_date in (?, ?) "
            "group by 1",
            [now, before],
        )
    }
    learners = dict(
        serving_sql(
            path,
            "select cohort_month, count(*) from analytics.mart_learner_ltv "
            "where cohort_month in (?, ?) group by 1",
            [now, before],
        )
    )

    def moved(name, new, old, text):
        verb = "rose" if new > old else "fell"
        return f"{name} {verb} {abs(new / old - 1):.1%} to {text(new)}"

    def dollars(v):
        return f"${v:,.0f}"

    take = [pnl[m][1] / pnl[m][3] for m in (now, before)]
    lead = (
        "In October 2026, compared with September 2026, "
        + moved("net sales", pnl[now][0], pnl[before][0], dollars)
        + f"; take rate {'rose' if take[0] > take[1] else 'fell'} "
        f"{abs(take[0] - take[1]) * 100:.1f} points to {take[0]:.1%}."
    )
    others = [
        (
            pnl[now][1] / pnl[before][1] - 1,
            moved("platform revenue", pnl[now][1], pnl[before][1], dollars),
        ),
        (
            pnl[now][2] / pnl[before][2] - 1,
            moved("contribution margin", pnl[now][2], pnl[before][2], dollars),
        ),
        (
            learners[now] / learners[before] - 1,
            moved("new paying learners", learners[now], learners[before], "{:,.0f}".format),
        ),
        (
            liquidity[now][1] / liquidity[before][1] - 1,
            moved("buyer : seller ratio", liquidity[now][1], liquidity[before][1], "{:.2f}".format),
        ),
    ]
    fill = [liquidity[m][0] for m in (now, before)]
    others.append(
        (
            fill[0] / fill[1] - 1,
            f"service orders filled within 24 h {'rose' if fill[0] > fill[1] else 'fell'} "
            f"{abs(fill[0] - fill[1]) * 100:.1f} points to {fill[0]:.1%}",
        )
    )
    biggest = [text for _, text in sorted(others, key=lambda o: abs(o[0]), reverse=True)[:3]]
    html = rendered.path.read_text()
    summary = re.findall(r"<p>(.*?)</p>", html.split('id="summary"')[1].split("</div>")[0])
    assert summary[0] == lead
    assert summary[1] == "The biggest other changes: " + "; ".join(biggest) + "."
    assert summary[2].startswith("30-day LTV, September 2026 cohort vs August 2026: $")


def test_glossary_defines_every_kpi_shown(published):
    _, _, _, rendered, _ = published
    html = rendered.path.read_text()
    glossary = html.split('id="glossary"')[1].split("</dl>")[0]
    terms = re.findall(r"<dt>(.*?)</dt>", glossary)
    definitions = re.findall(r"<dd>(.*?)</dd>", glossary)
    assert len(terms) == len(definitions) and all(len(d) > 20 for d in definitions)
    cards = re.findall(r'<div class="label">(.*?)</div>', html)
    assert len(cards) == 9 and set(cards) <= set(terms)
    for chart_only in (
        "Course sell-through within 30 days",
        "Seller concentration (HHI)",
        "Balance owed",
        "Quarantined rows",
    ):
        assert chart_only in terms


def test_report_reads_only_the_published_version(published, tmp_path):
    _, settings, _, rendered, _ = published
    con = duckdb.connect(str(settings.resolved_serving_path), read_only=True)
    version = con.execute("select max(version) from analytics._publish_metadata").fetchone()[0]
    con.close()
    assert rendered.data.version == version
    assert f'data-report-version="{version}"' in rendered.path.read_text()
    assert load_report_data(settings.resolved_serving_path).period == rendered.data.period


def test_email_via_local_smtp(published):
    _, _, _, rendered, base = published
    with LocalSmtpServer() as smtp:
        settings = ServingSettings(
            data_dir=base,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_to="ceo@example.com, cfo@example.com",
            smtp_from="warehouse@example.com",
        )
        assert send_report(rendered.path, rendered.stamp, settings) == [
            "ceo@example.com",
            "cfo@example.com",
        ]
    (received,) = smtp.messages
    assert received["to"] == ["ceo@example.com", "cfo@example.com"]
    message = email.message_from_bytes(received["data"], policy=email.policy.default)
    assert message["Subject"] == f"Leadership report: {rendered.stamp}"
    attachments = [p for p in message.walk() if p.get_filename()]
    assert [a.get_filename() for a in attachments] == [rendered.path.name]
    assert attachments[0].get_payload(decode=True).decode() == rendered.path.read_text()


def test_cli_report_with_email(published, tmp_path):
    from typer.testing import CliRunner

    from orchestration.cli import app

    _, _, _, _, base = published
    with LocalSmtpServer() as smtp:
        env = {
            "WAREHOUSE_DATA_DIR": str(base),
            "WAREHOUSE_REPORT_DIR": str(tmp_path / "reports"),
            "WAREHOUSE_SMTP_HOST": "127.0.0.1",
            "WAREHOUSE_SMTP_PORT": str(smtp.port),
            "WAREHOUSE_SMTP_TO": "board@example.com",
            "COLUMNS": "200",
        }
        out = CliRunner().invoke(
            app, ["report", "--checks-passed", "7", "--checks-failed", "0", "--email"], env=env
        )
    assert out.exit_code == 0, out.output
    assert "checks: 7 passed, 0 failed" in " ".join(out.output.split())
    assert "Emailed to board@example.com" in " ".join(out.output.split())
    assert len(smtp.messages) == 1
    assert len(list((tmp_path / "reports").glob("leadership-report-*.html"))) == 1


def test_dagster_steps_publish_then_report(tmp_path):
    import json

    from serving.steps import publish_step, report_step

    warehouse = build_warehouse(tmp_path / "wh.duckdb", mart_rows(seed=8))
    write_manifest(tmp_path / "target" / "manifest.json", warehouse)
    settings = ServingSettings(data_dir=tmp_path, dbt_target_dir=tmp_path / "target")
    with LocalSmtpServer() as smtp:
        settings_mail = settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_to": "a@example.com"}
        )
        published = publish_step(warehouse, passing_checks(5, 0), settings_mail)
        reported = report_step(settings=settings_mail)
    json.dumps([published, reported], default=str)  # plain metadata for Dagster
    assert published["postgres"] == "not configured: serving file only"
    assert published["rows"] == sum(len(v) for v in mart_rows(seed=8).values())
    assert reported["published_version"] == published["version"]
    assert reported["stamp"].endswith("checks: 5 passed, 0 failed")
    assert reported["emailed_to"] == ["a@example.com"] and len(smtp.messages) == 1
