"""Great Expectations Data Docs that open without a network.

GX's page templates load jQuery, Bootstrap, bootstrap-table, Font Awesome and Vega from
CDNs and its logo from S3: offline (an air-gapped server, a laptop on a plane) the index is
unstyled and its validation list, drawn by bootstrap-table, stays empty. ``make_offline``
copies the vendored files (``data_docs_assets/``, see its LICENSES.md) into the site and
points every page at them; links to other sites stay links.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "data_docs_assets"

# What a page loads from the network -> the vendored file under static/vendor/ (or a local
# image under static/), matched on the address.
LOADED: tuple[tuple[str, str], ...] = (
    (r"https://code\.jquery\.com/jquery-[\d.]+\.min\.js", "vendor/js/jquery.min.js"),
    (r"https://[^\"']*/popper\.min\.js", "vendor/js/popper.min.js"),
    (r"https://[^\"']*/bootstrap\.min\.js", "vendor/js/bootstrap.min.js"),
    (r"https://[^\"']*/bootstrap\.min\.css", "vendor/css/bootstrap.min.css"),
    (r"https://[^\"']*/bootstrap-table\.min\.js", "vendor/js/bootstrap-table.min.js"),
    (r"https://[^\"']*/bootstrap-table\.min\.css", "vendor/css/bootstrap-table.min.css"),
    (
        r"https://[^\"']*/bootstrap-table-filter-control(\.min)?\.js",
        "vendor/js/bootstrap-table-filter-control.min.js",
    ),
    (
        r"https://[^\"']*/bootstrap-table-filter-control(\.min)?\.css",
        "vendor/css/bootstrap-table-filter-control.min.css",
    ),
    (r"https://[^\"']*/bootstrap-datepicker\.min\.js", "vendor/js/bootstrap-datepicker.min.js"),
    (r"https://[^\"']*/bootstrap-datepicker\.min\.css", "vendor/css/bootstrap-datepicker.min.css"),
    (r"https://[^\"']*/font-awesome/[^\"']*/all\.min\.css", "vendor/css/all.min.css"),
    (r"https://[^\"']*/bootstrap-prefers-dark\.css", "vendor/css/bootstrap-prefers-dark.css"),
    (r"https://cdn\.jsdelivr\.net/npm/vega@\d+", "vendor/js/vega.min.js"),
    (r"https://cdn\.jsdelivr\.net/npm/vega-lite@\d+", "vendor/js/vega-lite.min.js"),
    (r"https://cdn\.jsdelivr\.net/npm/vega-embed@\d+", "vendor/js/vega-embed.min.js"),
    (r"https://great-expectations-web-assets\.[^\"']*\.png[^\"']*", "images/logo-long.png"),
)
_LOADED = [(re.compile(pattern), target) for pattern, target in LOADED]
# A src= or a stylesheet href= that still points off the machine.
REMOTE = re.compile(r"""(?:src=|<link[^>]*href=)["'](https?://[^"']+)""")


def make_offline(site: Path) -> int:
    """Copy the vendored assets into ``site`` and rewrite its pages to load them; the number
    of pages rewritten."""
    if not site.exists():
        return 0
    shutil.copytree(ASSETS, site / "static" / "vendor", dirs_exist_ok=True)
    rewritten = 0
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        static = os.path.relpath(site / "static", page.parent)
        offline = text
        for pattern, target in _LOADED:
            offline = pattern.sub(f"{static}/{target}", offline)
        if offline != text:
            page.write_text(offline, encoding="utf-8")
            rewritten += 1
    return rewritten


def remote_loads(site: Path) -> dict[str, list[str]]:
    """The pages of ``site`` that still load something from the network, and what."""
    found: dict[str, list[str]] = {}
    for page in site.rglob("*.html"):
        urls = REMOTE.findall(page.read_text(encoding="utf-8"))
        if urls:
            found[str(page.relative_to(site))] = urls
    return found
