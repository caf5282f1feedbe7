"""The report in a real browser: headless Chromium renders every chart, runs its script
without a console error, and the screenshot shows plotted data."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from serving.publish import publish_warehouse
from serving.report.render import build_report
from serving.settings import ServingSettings
from tests.serving_support import (
    build_warehouse,
    mart_rows,
    passing_checks,
    require,
    write_manifest,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving_browser")]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
]

# Injected first in <head> of a copy: records every error the page raises or logs, then
# measures each chart once the page has loaded, into a <pre> that --dump-dom prints.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push("error: " + e.message); });
window.addEventListener("unhandledrejection", function (e) { window.__errors.push("rejection: " + e.reason); });
(function () {
  var original = console.error;
  console.error = function () { window.__errors.push("console.error: " + Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); };
})();
window.addEventListener("load", function () {
  var charts = Array.prototype.map.call(document.querySelectorAll("svg.chart"), function (svg) {
    var box = svg.getBoundingClientRect();
    return {label: svg.getAttribute("aria-label"), width: box.width, height: box.height,
            paths: svg.querySelectorAll("path").length};
  });
  var pre = document.createElement("pre");
  pre.id = "__probe";
  pre.textContent = JSON.stringify({errors: window.__errors, charts: charts,
                                    charts_attr: document.body.dataset.charts});
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    require("Chromium (apt-get install chromium)", chromium() is not None)
    base = tmp_path_factory.mktemp("browser")
    warehouse = build_warehouse(base / "wh.duckdb", mart_rows(seed=5))
    write_manifest(base / "target" / "manifest.json", warehouse)
    settings = ServingSettings(data_dir=base, dbt_target_dir=base / "target")
    checks = passing_checks()
    publish_warehouse(warehouse, settings, checks)
    rendered = build_report(
        settings.resolved_serving_path,
        base / "reports",
        checks,
        now=datetime(2026, 11, 2, tzinfo=UTC),
    )
    return rendered.path, base


def run_chromium(base, *args: str) -> subprocess.CompletedProcess:
    profile = base / f"profile-{len(list(base.glob('profile-*')))}"
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_charts_render_without_console_errors(report):
    path, base = report
    probed = base / "probed.html"
    probed.write_text(path.read_text().replace("<head>", "<head>\n" + PROBE, 1))
    result = run_chromium(base, "--dump-dom", probed.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r'<pre id="__probe">(.*?)</pre>', result.stdout, re.S)
    assert match, "the page never finished loading"
    probe = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["errors"] == []
    assert probe["charts_attr"] == "5"  # the report's own inline script ran to its end
    labels = [c["label"] for c in probe["charts"]]
    assert labels == [
        "ltv-by-cohort",
        "instructor-profitability",
        "take-rate-trend",
        "marketplace-liquidity",
        "data-quality",
    ]
    for chart in probe["charts"]:
        assert chart["width"] > 300 and chart["height"] > 150, chart
        assert chart["paths"] > 20, chart


def test_screenshot_shows_the_plots(report):
    from PIL import Image

    path, base = report
    shot = base / "report.png"
    result = run_chromium(
        base,
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1100,4400",
        f"--screenshot={shot}",
        path.as_uri(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console  # Chromium logs every console message of the page here
    image = Image.open(shot).convert("RGB")
    assert image.size == (1100, 4400)
    pixels = image.getdata()
    # the bar and line colours of the charts are on screen in quantity
    blue = sum(
        1
        for p in pixels
        if abs(p[0] - 0x1F) < 20 and abs(p[1] - 0x5F) < 20 and abs(p[2] - 0xA8) < 20
    )
    green = sum(
        1
        for p in pixels
        if abs(p[0] - 0x2B) < 20 and abs(p[1] - 0x93) < 20 and abs(p[2] - 0x48) < 20
    )
    assert blue > 5000 and green > 5000, (blue, green)
    non_white = sum(1 for p in pixels if p != (255, 255, 255))
    assert non_white > 0.05 * image.size[0] * image.size[1]
    keep = os.environ.get("SERVING_ARTIFACTS_DIR")
    if keep:  # a place to look at the screenshot after the run
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, os.path.join(keep, "leadership-report.png"))
        shutil.copy(path, os.path.join(keep, path.name))
