"""The verdict ledger and the publication gate: only verdicts on the warehouse as it is count."""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.check_ledger import evaluate_gate, read_verdicts, record_verdicts, verdict

NOW = {"model.p.mart": "build:b1", "raw:orders": "load:1:rows:10"}
LATER = {"model.p.mart": "build:b2", "raw:orders": "load:1:rows:10"}


def judged(check: str, passed: bool = True, severity: str = "ERROR", on: dict = NOW):
    asset = check.split(":")[0]
    ref = "raw:orders" if asset.startswith("raw/") else "model.p.mart"
    return verdict(
        check,
        asset,
        [ref],
        on,
        passed=passed,
        severity=severity,
        description="" if passed else "3 unexpected rows",
        run_id="run-1",
    )


def test_only_a_verdict_on_the_current_state_counts() -> None:
    verdicts = {
        "finance/mart:mart_rules": judged("finance/mart:mart_rules"),
        "raw/orders:raw_suite": judged("raw/orders:raw_suite"),
    }
    required = list(verdicts)
    assert evaluate_gate(verdicts, NOW, required).open
    # the mart was rebuilt since its rules were checked: the raw verdict still stands
    later = evaluate_gate(verdicts, LATER, required)
    assert not later.open and later.passed == ("raw/orders:raw_suite",)
    assert later.unjudged == (
        ("finance/mart:mart_rules", "judged the warehouse before it changed"),
    )
    assert later.reason().startswith(
        "check finance/mart:mart_rules judged the warehouse before it changed"
    )
    assert "warehouse run" in later.reason()


def test_a_required_check_that_never_ran_shuts_the_gate() -> None:
    gate = evaluate_gate({}, NOW, ["finance/mart:unique_mart_id"])
    assert gate.unjudged == (("finance/mart:unique_mart_id", "has no verdict on this warehouse"),)
    summary = gate.summary()
    assert not summary.gate_open and summary.blocking_failures == ("finance/mart:unique_mart_id",)


def test_a_failed_error_blocks_and_a_failed_warn_does_not() -> None:
    warn = judged("finance/mart:mart_distribution", passed=False, severity="WARN")
    assert evaluate_gate({warn.check_key: warn}, NOW, []).open
    error = judged("finance/mart:mart_rules", passed=False)
    gate = evaluate_gate({warn.check_key: warn, error.check_key: error}, NOW, [])
    assert not gate.open and gate.blocking == (error,)
    assert gate.reason() == (
        "ERROR check finance/mart:mart_rules failed on the current warehouse: 3 unexpected rows"
    )
    assert (gate.summary().passed, gate.summary().failed) == (0, 2)
    # a failure on a state the warehouse no longer holds does not block
    assert evaluate_gate({error.check_key: error}, LATER, []).open


def test_the_ledger_keeps_each_checks_last_verdict(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        record_verdicts(con, [judged("finance/mart:mart_rules", passed=False)])
        record_verdicts(con, [judged("finance/mart:mart_rules", on=LATER)])
        record_verdicts(con, [judged("raw/orders:raw_suite")])
        verdicts = read_verdicts(con)
    assert set(verdicts) == {"finance/mart:mart_rules", "raw/orders:raw_suite"}
    rules = verdicts["finance/mart:mart_rules"]
    assert rules.passed and rules.judged == ("model.p.mart",)
    assert rules.is_current(LATER) and not rules.is_current(NOW)
