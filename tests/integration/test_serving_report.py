"""The leadership report: numbers checked against the rows, self-contained HTML, dated file, email."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime

import duckdb
import pytest

from serving.checks import CheckSummary
from serving.publish import publish_warehouse
from serving.report.data import load_report_data
from serving.report.mail import send_report
from serving.report.render import build_report
from serving.settings import ServingSettings
from tests.serving_support import (
    LocalSmtpServer,
    build_warehouse,
    mart_rows,
    passing_checks,
    write_manifest,
)

pytestmark = pytest.mark.xdist_group("serving_report")
NOW = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    rows = mart_rows(seed=21)
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

    trailing = {}
    for r in rows["mart_instructor_pnl"]:
        if date(2025, 10, 1) < r["month_start_date"] <= date(2026, 10, 1):
            trailing[r["instructor_id"]] = (
                trailing.get(r["instructor_id"], 0) + r["contribution_margin_usd"]
            )
    best = max(trailing, key=trailing.get)
    worst = min(trailing, key=trailing.get)
    table = rendered.path.read_text().split('id="instructors"')[1].split("</table>")[0]
    first_row = re.search(r"<tr><td>(top #\d+)</td>", table).group(1)
    assert first_row == f"top #{best}"
    assert f"bottom #{worst}</td>" in table


def test_quality_panel_flags_unaccounted_rows(published, tmp_path):
    rows, settings, checks, _, _ = published
    rows = {**rows, "mart_data_quality": [dict(r) for r in rows["mart_data_quality"]]}
    rows["mart_data_quality"][0]["rows_used"] -= 3  # three raw rows vanish without a reason
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
    assert html.count('<td class="bad">NO</td>') == 1
    assert 'checks: 39 passed, <span class="failed">3 failed</span>' in html


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
