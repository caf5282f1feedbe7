"""The report in a real browser: headless Chromium renders every chart, runs its script
without a console error, and the screenshot shows plotted data; at a desktop and a phone
width no text of a chart overlaps another or straddles an axis, and nothing is wider than
the page."""

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
    with_partial_month,
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

# Injected like PROBE into a copy shown in an <iframe> of the width under test (headless
# Chromium lays a window out at 500 px at least): once the page has loaded, measures the
# page's width against its viewport, every element reaching outside the viewport, and in
# each chart the box of every text (matplotlib draws a text as a <g id="text_N"> of glyph
# paths, its string in a comment) and of every plotting area (<chart>-plot-<n>); posts it
# to the frame's parent, which writes it into a <pre> for --dump-dom.
LAYOUT_PROBE = """<script>
window.addEventListener("load", function () {
  var viewport = document.documentElement.clientWidth;
  var box = function (el) {
    var r = el.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  };
  var wide = [];
  document.querySelectorAll("body *").forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width > 0 && (r.left < -0.5 || r.right > viewport + 0.5)) {
      wide.push(el.tagName + (el.id ? "#" + el.id : "") + " " + r.left + ".." + r.right);
    }
  });
  var textOf = function (g) {
    for (var n = g.firstChild; n; n = n.nextSibling) { if (n.nodeType === 8) { return n.data.trim(); } }
    return "";
  };
  var charts = Array.prototype.map.call(document.querySelectorAll("svg.chart"), function (svg) {
    return {
      label: svg.getAttribute("aria-label"),
      texts: Array.prototype.map.call(svg.querySelectorAll('g[id^="text_"]'), function (g) {
        return {text: textOf(g), box: box(g)};
      }),
      plots: Array.prototype.map.call(svg.querySelectorAll('[id*="-plot-"]'), box)
    };
  });
  window.parent.postMessage(JSON.stringify({viewport: viewport, wide: wide, charts: charts,
    scroll_width: document.documentElement.scrollWidth}), "*");
});
</script>"""

FRAME = """<!DOCTYPE html><html><body style="margin: 0">
<iframe src="{src}" style="border: 0; width: {width}px; height: 3000px"></iframe>
<script>
window.addEventListener("message", function (e) {{
  var pre = document.createElement("pre");
  pre.id = "__layout";
  pre.textContent = e.data;
  document.body.appendChild(pre);
}});
</script></body></html>"""

DESKTOP, PHONE = 1280, 390


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    require("Chromium (apt-get install chromium)", chromium() is not None)
    base = tmp_path_factory.mktemp("browser")
    warehouse = build_warehouse(base / "wh.duckdb", with_partial_month(mart_rows(seed=5)))
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


def probe_page(base, path, probe: str, width: int | None = None) -> dict:
    """Load a copy of the page with ``probe`` first in <head> (in a frame ``width`` px wide
    when given); what the probe wrote in its <pre>."""
    probed = base / f"probed-{len(list(base.glob('probed-*')))}.html"
    probed.write_text(path.read_text().replace("<head>", "<head>\n" + probe, 1))
    page = probed
    if width:
        page = probed.with_name(f"frame-{probed.name}")
        page.write_text(FRAME.format(src=probed.name, width=width))
    size = f"--window-size={(width or DESKTOP) + 20},2000"
    result = run_chromium(base, size, "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r'<pre id="(?:__probe|__layout)"[^>]*>(.*?)</pre>', result.stdout, re.S)
    assert match, "the page never finished loading"
    text = match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    return json.loads(text.replace("&amp;", "&"))


def overlap(a: list[float], b: list[float], tolerance: float = 0.5) -> bool:
    """Boxes [left, top, right, bottom] share more than ``tolerance`` px each way."""
    return (
        min(a[2], b[2]) - max(a[0], b[0]) > tolerance
        and min(a[3], b[3]) - max(a[1], b[1]) > tolerance
    )


def inside(a: list[float], b: list[float], tolerance: float = 0.5) -> bool:
    return (
        a[0] >= b[0] - tolerance
        and a[1] >= b[1] - tolerance
        and a[2] <= b[2] + tolerance
        and a[3] <= b[3] + tolerance
    )


def test_charts_render_without_console_errors(report):
    path, base = report
    probe = probe_page(base, path, PROBE)
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


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_layout_no_overlapping_text_nothing_wider_than_the_page(report, width):
    path, base = report
    layout = probe_page(base, path, LAYOUT_PROBE, width)
    assert layout["viewport"] == width
    assert layout["scroll_width"] <= layout["viewport"], layout["wide"]
    assert layout["wide"] == []
    assert len(layout["charts"]) == 5
    for chart in layout["charts"]:
        texts, plots = chart["texts"], chart["plots"]
        assert len(texts) > 10 and plots, chart["label"]
        assert all(t["text"] for t in texts), chart["label"]  # every text group is named
        crowded = [
            (a["text"], b["text"])
            for i, a in enumerate(texts)
            for b in texts[i + 1 :]
            if overlap(a["box"], b["box"])
        ]
        assert crowded == [], (chart["label"], crowded)
        # a text is in a plotting area or clear of it, never across its axes
        across = [
            t["text"]
            for t in texts
            for plot in plots
            if overlap(t["box"], plot) and not inside(t["box"], plot)
        ]
        assert across == [], (chart["label"], across)


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
