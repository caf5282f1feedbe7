"""The whole graph through Dagster on a generated demo source, and the gates it enforces.

One hourly cycle as `warehouse run` runs it (the land job, then the incremental run of what
is not current: source -> dlt -> dbt -> GX -> publish) on a tiny generated SQLite source; a
second cycle after one source row changes; the weekly report job on what it published;
then check-only runs against the warehouse it built: reconciliation with the source (and a
planted missing row, which stops a publish), a planted WARN that does not block
publication and a planted ERROR that does (the previously published version stays served).
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from generator import DefectRates, generate, manifest_path_for
from ingestion.specs import TABLE_SPECS
from orchestration.build_state import pending_loads
from orchestration.config import DBT_LOG_TAG, RECHECK_TAG
from orchestration.definitions import publication_gate
from orchestration.defs.quality import (
    MART_DISTRIBUTION,
    MART_RULES,
    RECONCILIATION,
    ROW_ACCOUNTING,
)
from orchestration.defs.serving import PUBLISH_KEY, REPORT_KEY
from orchestration.runner import run_hourly, run_job, summarize
from serving.publish import current_version, list_versions
from serving.settings import ServingSettings
from tests.orchestration_support import (
    XDIST_GROUP,
    dbt_target_dir,
    once,
    orchestration_settings,
    warehouse_settings,
)
from tests.serving_support import LocalSmtpServer

pytestmark = [pytest.mark.xdist_group(XDIST_GROUP), pytest.mark.slow]

LTV = dg.AssetKey(["finance", "mart_learner_ltv"])


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory):
    """A tiny demo source, and the warehouse one incremental Dagster run built from it."""
    return once("pipeline", lambda: _build(tmp_path_factory))


def _build(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("pipeline")
    dbt_target = dbt_target_dir(tmp_path_factory)
    warehouse = warehouse_settings(root)
    url = warehouse.resolved_source_url
    warehouse.data_dir.mkdir(parents=True)
    generate(
        url,
        seed=7,
        scale="tiny",
        rates=DefectRates(),
        replace=False,
        manifest_path=manifest_path_for(url, warehouse.data_dir),
    )
    from orchestration.definitions import build_definitions

    orchestration = orchestration_settings(root, dbt_target)
    serving = serving_settings(root, dbt_target)
    defs = build_definitions(warehouse, orchestration, serving)
    with dg.DagsterInstance.ephemeral() as instance:
        summary, _ = run_hourly(  # as `warehouse run` does
            warehouse,
            orchestration,
            instance,
            defs,
            tags={DBT_LOG_TAG: str(root / "logs" / "dbt.log")},
            alert=False,
            serving=serving,
        )
    return defs, warehouse, orchestration, summary


def serving_settings(root: Path, dbt_target: Path, **overrides: object) -> ServingSettings:
    """Serving file, check results and reports under ``root``; no PostgreSQL, no mail
    (explicit values: the environment's WAREHOUSE_* settings never leak into the test)."""
    values: dict[str, object] = {
        "data_dir": root / "data",
        "dbt_target_dir": dbt_target,
        "serving_path": root / "data" / "serving" / "warehouse.duckdb",
        "report_dir": root / "data" / "reports",
        "serving_keep": 5,
        "pg_url": None,
        "smtp_host": None,
        "smtp_to": None,
    }
    values.update(overrides)
    return ServingSettings(**values)  # type: ignore[arg-type]


def _serving(warehouse) -> ServingSettings:
    return serving_settings(warehouse.data_dir.parent, dbt_target_dir(None))


def _orchestration(warehouse):
    return orchestration_settings(warehouse.data_dir.parent, dbt_target_dir(None))


def _served(serving: ServingSettings, sql: str) -> list[tuple]:
    with duckdb.connect(str(serving.resolved_serving_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _source_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as con:
        return {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in TABLE_SPECS}


def test_one_run_lands_transforms_and_checks_everything(built) -> None:
    _, warehouse, orchestration, summary = built
    assert summary.success, summary.failure
    counts = _source_counts(warehouse.demo_source_path)
    assert summary.observed == len(TABLE_SPECS)
    for table, rows in counts.items():
        assert summary.materialized[f"raw/{table}"] == rows, table
    assert summary.rows_landed == sum(counts.values())
    marts = {a: r for a, r in summary.materialized.items() if a.split("/")[-1].startswith("mart_")}
    assert len(marts) == 5 and all(rows for rows in marts.values()), marts
    assert not summary.checks_failed, summary.checks_failed[:5]
    by_name: dict[str, int] = {}
    for check in summary.checks:
        by_name[check.check] = by_name.get(check.check, 0) + 1
    assert by_name["raw_suite"] == by_name["fresh_within_sla"] == len(TABLE_SPECS)
    assert by_name[MART_RULES] == 5
    assert RECONCILIATION not in by_name  # the hourly job does not reconcile
    # ... but it accounts for every raw row in staging: used + quarantined = source rows
    assert by_name[ROW_ACCOUNTING] == len(TABLE_SPECS)
    for check in summary.checks:
        if check.check == ROW_ACCOUNTING:
            table = check.asset.split("/")[-1].removeprefix("stg_platform__")
            assert check.description.startswith(f"{counts[table]} raw rows = "), check
    assert sum(1 for c in summary.checks if c.check.startswith("not_null_")) > 20  # dbt tests
    # dbt's console output went to the log file the run named, not to stdout
    dbt_log = (warehouse.data_dir.parent / "logs" / "dbt.log").read_text()
    assert dbt_log.startswith(f"== dbt in run {summary.run_id} (incremental) ==")
    # dbt built everything once: no state yet
    assert "Completed successfully" in dbt_log
    index = orchestration.gx_site_dir / "site" / "index.html"
    assert "raw.payments" in index.read_text()

    # every check passed, so the run ended by publishing the marts, dims and facts
    serving = _serving(warehouse)
    assert summary.materialized["serving/publish"] == sum(
        rows or 0
        for asset, rows in summary.materialized.items()
        if asset.split("/")[-1].startswith(("mart_", "dim_", "fct_"))
    )
    assert "serving/report" not in summary.materialized  # hourly runs send no report
    assert len(list_versions(serving)) == 1 == len({current_version(serving)})
    served = {name for (name,) in _served(serving, "select table_name from duckdb_tables()")}
    assert {a.split("/")[-1] for a in marts} <= served
    assert {"dim_tenant", "fct_payments", "_publish_metadata"} <= served
    ((passed, failed),) = _served(
        serving, "select distinct checks_passed, checks_failed from analytics._publish_metadata"
    )
    assert (passed, failed) == (len(summary.checks), 0)  # every check of both runs counted
    gate = publication_gate(warehouse, orchestration)  # what `warehouse publish` asks
    assert gate.open and (len(gate.passed), gate.failed) == (len(summary.checks), ())


def test_a_second_incremental_run_rebuilds_only_what_the_load_changed(built) -> None:
    """Runs second: one payment changes at the source; the next hourly cycle lands that row,
    rebuilds what reads payments (and the data-quality mart), leaves the rest as it was,
    checks what it rebuilt, publishes, and records the loads it consumed; a cycle after it
    with no change builds nothing and publishes nothing."""
    defs, warehouse, orchestration, first = built
    with sqlite3.connect(warehouse.demo_source_path) as con:
        payment_id, amount = con.execute(
            "select id, amount from payments where status = 'succeeded' order by id limit 1"
        ).fetchone()
        new_amount = Decimal(str(amount)) + Decimal("1000.01")
        con.execute(
            "update payments set amount = ?, updated_at = (select max(updated_at) from payments) "
            "where id = ?",
            [str(new_amount), payment_id],
        )
    serving = _serving(warehouse)
    with dg.DagsterInstance.ephemeral() as instance:
        summary, decision = run_hourly(
            warehouse, orchestration, instance, defs, alert=False, serving=serving
        )
    assert summary.success, summary.failure
    assert summary.rows_landed == 1  # the changed payment, nothing re-landed
    rebuilt = {a.split("/")[-1] for a in summary.materialized}
    current = {a.split("/")[-1] for a in summary.current}
    assert {"fct_payments", "mart_learner_ltv", "mart_instructor_pnl"} <= rebuilt
    assert "mart_data_quality" in rebuilt  # reads the extract log, which every load changes
    # nothing they read changed: reported current, not rebuilt
    assert {"fct_learning_activity", "fct_community_activity", "dim_currency"} <= current
    assert not rebuilt & current
    dbt_assets = {
        a.split("/")[-1] for a in first.materialized if not a.startswith(("raw/", "serving/"))
    }
    assert rebuilt | current >= dbt_assets  # every dbt asset accounted for, none skipped
    assert "serving/publish" in summary.materialized and not summary.skipped_steps
    assert not summary.checks_failed, summary.checks_failed[:5]
    # only the checks of what was rebuilt ran; the others' verdicts stand for what is current
    checked = {c.asset.split("/")[-1] for c in summary.checks if not c.asset.startswith("raw/")}
    assert checked <= rebuilt and "fct_payments" in checked
    assert not checked & current

    with duckdb.connect(str(warehouse.warehouse_path), read_only=True) as con:
        ((built_amount,),) = con.execute(
            "select amount from core.fct_payments where payment_id = ?", [payment_id]
        ).fetchall()
        unconsumed = con.execute(
            "select count(*) from raw._extract_log as log left join meta.transform_loads as seen"
            " using (table_name, load_id) where seen.load_id is null and log.status = 'ok'"
        ).fetchall()
    assert built_amount == new_amount
    assert unconsumed == [(0,)]  # `warehouse transform --incremental` has nothing left to do

    # nothing changed since: the cycle lands nothing, builds nothing and publishes nothing
    served = current_version(serving)
    with dg.DagsterInstance.ephemeral() as instance:
        idle, decision = run_hourly(
            warehouse, orchestration, instance, defs, alert=False, serving=serving
        )
    assert idle.success and decision.nothing
    assert {a.split("/")[0] for a in idle.materialized} == {"raw"}
    assert idle.rows_landed == 0 and len(idle.current) == len(dbt_assets)
    assert current_version(serving) == served


def test_the_report_job_renders_the_published_version_and_mails_only_with_smtp(
    built, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.cli import console
    from orchestration.commands.run import materialization, print_report

    defs, warehouse, orchestration, _ = built
    serving = _serving(warehouse)
    with dg.DagsterInstance.ephemeral() as instance:
        report = run_job(
            "report", warehouse, orchestration, instance, alert=False, definitions=defs
        )
        reported = materialization(instance, report.run_id, REPORT_KEY)
    assert report.success, report.failure
    # what `warehouse run` prints after its report job
    monkeypatch.setattr(console, "width", 500)
    assert reported is not None
    print_report(reported, report)
    printed = capsys.readouterr().out
    assert f"Report: {reported['path']} (" in printed and printed.rstrip().endswith("not emailed")
    assert set(report.materialized) == {"serving/report"} and not report.checks
    (path,) = serving.resolved_report_dir.glob("leadership-report-*.html")
    html = path.read_text()
    # the stamp of the served version (the second hourly run's, see the test above)
    ((passed, failed),) = _served(
        serving, "select distinct checks_passed, checks_failed from analytics._publish_metadata"
    )
    assert failed == 0 and passed > 0
    assert f"{passed} checks passed and 0 failed" in html
    assert "<script src=" not in html  # self-contained

    # with SMTP settings the same asset emails it (to a local server)
    from orchestration.defs.serving import report as report_asset

    with LocalSmtpServer() as smtp, dg.DagsterInstance.ephemeral() as instance:
        mailing = serving.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_to": "ceo@example.com"}
        )
        result = dg.materialize([report_asset], resources={"serving": mailing}, instance=instance)
        assert result.success
        (materialization,) = result.asset_materializations_for_node("serving__report")
    assert materialization.metadata["emailed_to"].value == "ceo@example.com"
    assert [m["to"] for m in smtp.messages] == [["ceo@example.com"]]


@pytest.mark.postgres
def test_publish_goes_to_postgresql_when_a_url_is_configured(built, tmp_path: Path) -> None:
    """With WAREHOUSE_PG_URL (here: a scratch database) the same asset publishes the marts,
    dims and facts to PostgreSQL too, in the same version as the serving file."""
    import psycopg

    from orchestration.definitions import build_definitions
    from tests.serving_support import pg_available, require, scratch_database

    require("PostgreSQL on 127.0.0.1:5432", pg_available())
    _, warehouse, orchestration, _ = built
    with scratch_database("dagster") as (url, roles):
        serving = serving_settings(
            tmp_path,
            dbt_target_dir(None),
            pg_url=url,
            pg_bi_role=roles["bi"],
            pg_tenant_role_prefix=roles["tenant_prefix"],
        )
        defs = build_definitions(warehouse, orchestration, serving)
        job = _check_job(
            defs,
            "publish_to_postgres",
            dg.AssetSelection.checks(dg.AssetCheckKey(LTV, MART_RULES))
            | dg.AssetSelection.assets(PUBLISH_KEY),
        )
        with dg.DagsterInstance.ephemeral() as instance:
            result = job.execute_in_process(instance=instance, raise_on_error=False)
        assert result.success
        (event,) = [
            m for m in result.get_asset_materialization_events() if m.asset_key == PUBLISH_KEY
        ]
        metadata = event.materialization.metadata
        assert not str(metadata["postgres"].value).startswith("not configured")
        assert "postgres_copy_audit_swap" in metadata["timings_s"].value
        counts = metadata["row_counts"].value
        with psycopg.connect(url) as conn:
            for table in ("mart_learner_ltv", "dim_tenant", "fct_payments"):
                (rows,) = conn.execute(f"select count(*) from analytics.{table}").fetchone()
                assert rows == counts[table], table
            (version,) = conn.execute(
                "select distinct version from analytics._publish_metadata"
            ).fetchone()
        assert version == metadata["version"].value == current_version(serving)


def _check_job(defs: dg.Definitions, name: str, selection, extra_assets=()) -> dg.JobDefinition:
    merged = dg.Definitions.merge(
        defs,
        dg.Definitions(
            assets=list(extra_assets), jobs=[dg.define_asset_job(name, selection=selection)]
        ),
    )
    return merged.resolve_job_def(name)


RECONCILIATION_KEYS = [
    dg.AssetCheckKey(dg.AssetKey(["raw", t]), RECONCILIATION) for t in TABLE_SPECS
]


def _reconciliation_job(defs: dg.Definitions, name: str) -> dg.JobDefinition:
    """A job of every raw table's reconciliation check, nothing else."""
    return _check_job(defs, name, dg.AssetSelection.checks(*RECONCILIATION_KEYS))


def _passing_reconciliations(job: dg.JobDefinition) -> dict[str, dg.AssetCheckEvaluation]:
    """Run the reconciliation checks; every one must pass. Their verdicts by table."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    evaluations = {e.asset_key.path[-1]: e for e in _evaluations(result)}
    assert all(e.passed for e in evaluations.values()), [
        (t, e.description) for t, e in evaluations.items() if not e.passed
    ]
    return evaluations


def test_reconciliation_matches_the_source_and_catches_a_missing_row(built) -> None:
    defs, warehouse, _, _ = built
    job = _reconciliation_job(defs, "reconcile_checks")
    evaluations = _passing_reconciliations(job)
    counts = _source_counts(warehouse.demo_source_path)
    assert {t: e.metadata["source_rows"].value for t, e in evaluations.items()} == counts

    with sqlite3.connect(warehouse.demo_source_path) as con:
        source_sum = con.execute("select sum(amount) from payments").fetchone()[0]
    with duckdb.connect(str(warehouse.warehouse_path)) as con:
        payment_id, amount = con.execute(
            "select id, amount from raw.payments order by id limit 1"
        ).fetchall()[0]
        con.execute(
            "create temporary table kept as select * from raw.payments where id = ?", [payment_id]
        )
        con.execute("delete from raw.payments where id = ?", [payment_id])
        con.execute("create table meta.kept_payment as select * from kept")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success  # reconciliation is ERROR: the run fails
    failed = [e for e in _evaluations(result) if not e.passed]
    assert [e.asset_key.path[-1] for e in failed] == ["payments"]
    assert "difference -1" in failed[0].description
    raw_sum = Decimal(failed[0].metadata["raw_money_sum"].value)
    assert Decimal(str(source_sum)).quantize(Decimal("0.01")) - raw_sum == amount

    # a failed ERROR check anywhere in the run stops the publication, even one Dagster's
    # blocking does not reach here (the raw asset is not in this job): the step re-reads the
    # run's verdicts
    serving = _serving(warehouse)
    served_before = current_version(serving)
    publishing = _check_job(
        defs,
        "reconcile_then_publish",
        dg.AssetSelection.checks(*RECONCILIATION_KEYS) | dg.AssetSelection.assets(PUBLISH_KEY),
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = publishing.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    assert not [m for m in result.get_asset_materialization_events() if m.asset_key == PUBLISH_KEY]
    (failure,) = [
        e.event_specific_data.error.message  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE" and e.step_key == "serving__publish"
    ]
    assert "not published" in failure and "raw/payments:reconciles_with_source" in failure
    assert current_version(serving) == served_before
    with duckdb.connect(str(warehouse.warehouse_path)) as con:  # put the row back
        con.execute("insert into raw.payments select * from meta.kept_payment")
        con.execute("drop table meta.kept_payment")
    assert publication_gate(warehouse, _orchestration(warehouse)).open


def _evaluations(result: dg.ExecuteInProcessResult):
    return [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]


def test_planted_mart_failures_warn_without_blocking_and_error_blocks_downstream(
    built, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.cli import console
    from orchestration.commands.run import materialization, print_publish

    defs, warehouse, _, _ = built
    serving = _serving(warehouse)
    selection = dg.AssetSelection.checks(
        dg.AssetCheckKey(LTV, MART_RULES), dg.AssetCheckKey(LTV, MART_DISTRIBUTION)
    ) | dg.AssetSelection.assets(PUBLISH_KEY)
    job = _check_job(defs, "planted", selection)

    def ltv(person: int, column: str) -> float:
        sql = f"select {column} from analytics.mart_learner_ltv where person_id = {person}"
        return _served(serving, sql)[0][0]

    # WARN: a negative LTV to date for a learner too new for any window rule.
    with duckdb.connect(str(warehouse.warehouse_path)) as con:
        (person,) = con.execute(
            "select min(person_id) from finance.mart_learner_ltv where not is_mature_90"
        ).fetchall()[0]
        con.execute(
            "update finance.mart_learner_ltv set ltv_to_date_usd = -5 where person_id = ?", [person]
        )
    # Planted by hand, not by a build: only a run told to check again sees it.
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, tags={RECHECK_TAG: "true"}
        )
        metadata = materialization(instance, result.run_id, PUBLISH_KEY)
    verdicts = {e.check_name: e for e in _evaluations(result)}
    assert verdicts[MART_RULES].passed
    assert not verdicts[MART_DISTRIBUTION].passed
    assert verdicts[MART_DISTRIBUTION].severity == dg.AssetCheckSeverity.WARN
    # a WARN does not block: the (warned) build is published, stamped with the failure
    assert result.success
    published = current_version(serving)
    assert published is not None and len(list_versions(serving)) >= 2
    assert ltv(person, "ltv_to_date_usd") == -5
    ((_, failed),) = _served(
        serving, "select distinct checks_passed, checks_failed from analytics._publish_metadata"
    )
    assert failed == 1  # the served version is stamped with the WARN it was published with
    # what `warehouse run` prints about a publication: the file, no PostgreSQL, the timings
    monkeypatch.setattr(console, "width", 500)
    print_publish(metadata)
    printed = capsys.readouterr().out
    assert f"Published version {published} (" in printed
    assert f"Serving file: {serving.resolved_serving_path} (read-only)" in printed
    assert "published the serving file only" in printed
    assert "Publish timings: build_and_audit_serving_file" in printed

    # ERROR: one mature learner whose 90-day LTV drops below the 30-day one.
    with duckdb.connect(str(warehouse.warehouse_path)) as con:
        (person,) = con.execute(
            "select min(person_id) from finance.mart_learner_ltv where is_mature_90 and ltv_30_usd > 0"
        ).fetchall()[0]
        con.execute(
            "update finance.mart_learner_ltv set ltv_90_usd = ltv_30_usd - 1 where person_id = ?",
            [person],
        )
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, tags={RECHECK_TAG: "true"}
        )
    verdicts = {e.check_name: e for e in _evaluations(result)}
    rules = verdicts[MART_RULES]
    assert not rules.passed and rules.severity == dg.AssetCheckSeverity.ERROR
    assert "mature_ltv_90_usd" in rules.description and "1 unexpected rows" in rules.description
    assert not result.success
    summary = summarize(result, "planted", 0.0)
    assert summary.skipped_steps == ["serving__publish"]  # publication did not happen
    assert "finance/mart_learner_ltv: mart_rules" in (summary.failure or "")
    assert not [m for m in result.get_asset_materialization_events() if m.asset_key == PUBLISH_KEY]
    # readers still get the previously published version, without the corrupted value
    assert current_version(serving) == published
    assert ltv(person, "ltv_90_usd") >= ltv(person, "ltv_30_usd")
    with duckdb.connect(str(warehouse.warehouse_path), read_only=True) as con:
        ((corrupted,),) = con.execute(
            "select ltv_90_usd - ltv_30_usd from finance.mart_learner_ltv where person_id = ?",
            [person],
        ).fetchall()
    assert corrupted == -1


def test_reconciliation_subtracts_rows_hard_deleted_at_the_source(built) -> None:
    """Runs last: the platform runs on (inserts, updates, hard deletes), a reconcile extract
    marks the deletes, and the reconciliation checks still balance exactly."""
    from generator.mutate import mutate_source
    from ingestion.pipeline import run_extract

    defs, warehouse, _, _ = built
    url = warehouse.resolved_source_url
    record = mutate_source(url, manifest_path_for(url, warehouse.data_dir), volume=0.05)
    hard_deleted = {t: len(v.get("hard_deleted", [])) for t, v in record["tables"].items()}
    assert hard_deleted.get("payments"), "the mutation deleted no payment"
    assert run_extract(warehouse, mode="reconcile").ok

    evaluations = _passing_reconciliations(_reconciliation_job(defs, "reconcile_after_deletes"))
    payments = evaluations["payments"].metadata
    assert payments["raw_deleted_at_source"].value == hard_deleted["payments"]
    assert payments["source_rows"].value == _source_counts(warehouse.demo_source_path)["payments"]
    assert (
        payments["raw_rows"].value - payments["raw_deleted_at_source"].value
        == payments["source_rows"].value
    )


def test_a_hand_launched_materialization_leaves_the_loads_for_the_next_job(built) -> None:
    """Runs after the reconcile extract above, whose loads no build has consumed yet: a
    materialization of one dbt model (as launched by hand in the UI) builds it but consumes
    no load that changed raw, so the next hourly build still sees them (the loads that
    changed nothing are consumed by any build)."""
    defs, warehouse, _, _ = built
    with duckdb.connect(str(warehouse.warehouse_path)) as con:
        before = pending_loads(con, changing=True)
    assert before, "the reconcile extract left no pending load that changed raw"
    [dim_currency] = [k for k in defs.resolve_all_asset_keys() if k.path[-1] == "dim_currency"]
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("transform").execute_in_process(
            instance=instance, raise_on_error=False, asset_selection=[dim_currency]
        )
    assert result.success
    assert dim_currency in {event.asset_key for event in result.get_asset_materialization_events()}
    with duckdb.connect(str(warehouse.warehouse_path)) as con:
        assert pending_loads(con) == before
