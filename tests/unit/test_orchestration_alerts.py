"""An alert carries its reason in one short line; the rest stays in the run."""

from __future__ import annotations

from orchestration.alerting import REASON_CHARS, check_alert, run_alert


def test_a_run_alert_gives_the_first_line_of_the_failure_cut_short() -> None:
    selection = " ".join(f"model_{i}" for i in range(400))
    failure = f"dbt_build: dbt build --exclude {selection}\nTraceback (most recent call last):"
    alert = run_alert("incremental", "run-1", failure)
    assert "\n" not in alert.detail and "Traceback" not in alert.detail
    assert len(alert.detail) == REASON_CHARS and alert.detail.endswith("…")
    assert alert.detail.startswith("dbt_build: dbt build --exclude model_0 model_1")
    assert alert.title == "Run of incremental failed" and alert.run_id == "run-1"


def test_a_check_alert_says_why_and_never_just_no_description() -> None:
    failed = check_alert(
        "finance/mart_ltv_cohorts",
        "unique_combination_of_columns",
        "ERROR",
        "Got 3 results, configured to fail if != 0",
        "run-2",
        "incremental",
    )
    assert failed.detail == "Got 3 results, configured to fail if != 0"
    assert failed.title == (
        "ERROR check unique_combination_of_columns failed on finance/mart_ltv_cohorts"
    )
    silent = check_alert("raw/users", "contract", "ERROR", "  \n", "run-3", "land")
    assert "no reason" in silent.detail and "Dagster UI" in silent.detail
