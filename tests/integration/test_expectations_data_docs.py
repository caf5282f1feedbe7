"""Great Expectations Data Docs open without a network and say what they validated.

A suite validated with a docs folder, the site built, then opened in headless Chromium with
every request off the machine refused: the index must be styled and list the result (its
table is drawn by bootstrap-table, a script the pages used to take from a CDN), and the
validation page must name the data asset and the run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from expectations.data_docs import remote_loads
from expectations.marts import mart_suites
from expectations.validation import build_data_docs, run_suite
from tests.serving_support import require

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving_browser")]

# No request leaves the machine: every host resolves to nothing, and a dead proxy backs it.
OFFLINE = [
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_data_docs_work_offline_and_name_the_asset_and_run(tmp_path: Path) -> None:
    require("Chromium (apt-get install chromium)", _chromium() is not None)
    con = duckdb.connect()
    con.execute(
        "create table ltv as select * from (values "
        "(1, 1, 10.0, 20.0, 30.0, 40.0, true, true, date '2025-01-01')) "
        "t(person_id, tenant_id, ltv_30_usd, ltv_90_usd, ltv_365_usd, ltv_to_date_usd, "
        "is_mature_90, is_mature_365, cohort_month)"
    )
    rules, _ = mart_suites("mart_learner_ltv")
    docs = tmp_path / "gx"
    outcome = run_suite(rules, con, "ltv", docs_dir=docs)
    index = build_data_docs(docs)
    site = index.parent

    assert remote_loads(site) == {}
    (page,) = [p for p in (site / "validations").rglob("*.html")]
    text = page.read_text()
    assert "Data asset: ltv" in text
    run_name = re.search(r"marts\.mart_learner_ltv\.rules-\d{8}T\d{6}", text)
    assert run_name, "the validation page names no run"

    dom = subprocess.run(
        [
            _chromium(),  # type: ignore[list-item]
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            *OFFLINE,
            "--virtual-time-budget=5000",
            "--dump-dom",
            index.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    # bootstrap-table turned the index's JSON into rows: the scripts loaded and ran offline
    assert f">{run_name.group(0)}<" in dom or run_name.group(0) in re.sub(r"<[^>]+>", "", dom)
    assert 'class="bootstrap-table' in dom
    assert outcome.success
