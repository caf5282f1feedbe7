"""The Dagster definitions load without a database and form one lineage graph with gates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ingestion.specs import TABLE_SPECS
from orchestration.config import WRITER_TAG
from orchestration.defs.quality import (
    FRESHNESS,
    MART_DISTRIBUTION,
    MART_RULES,
    RAW_SUITE,
    RECONCILIATION,
    ROW_ACCOUNTING,
)
from orchestration.defs.serving import PUBLISH_KEY, REPORT_KEY
from tests.orchestration_support import XDIST_GROUP, build, dbt_target_dir, once

pytestmark = pytest.mark.xdist_group(XDIST_GROUP)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MARTS = {
    "mart_learner_ltv",
    "mart_ltv_cohorts",
    "mart_instructor_pnl",
    "mart_marketplace_liquidity",
    "mart_data_quality",
}


@pytest.fixture(scope="session")
def dbt_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dbt artefacts folder per session: the project is parsed once."""
    return dbt_target_dir(tmp_path_factory)


@pytest.fixture(scope="session")
def loaded(tmp_path_factory: pytest.TempPathFactory, dbt_target: Path):
    def make():
        defs, _, _ = build(tmp_path_factory.mktemp("definitions"), dbt_target)
        return defs, defs.resolve_asset_graph(), dbt_target

    return once("definitions", make)


def _upstream(graph, key: dg.AssetKey) -> set[dg.AssetKey]:
    seen: set[dg.AssetKey] = set()
    frontier = [key]
    while frontier:
        for parent in graph.get(frontier.pop()).parent_keys:
            if parent not in seen:
                seen.add(parent)
                frontier.append(parent)
    return seen


def test_every_mart_lineage_reaches_the_source_tables(loaded) -> None:
    _, graph, _ = loaded
    marts = {k for k in graph.get_all_asset_keys() if k.path[-1] in MARTS}
    assert {k.path[-1] for k in marts} == MARTS
    for mart in marts:
        upstream = _upstream(graph, mart)
        sources = {k.path[1] for k in upstream if k.path[0] == "source"}
        raws = {k.path[1] for k in upstream if k.path[0] == "raw"}
        assert sources, f"{mart} does not reach any source table"
        assert sources <= set(TABLE_SPECS)
        # every raw table a mart reads is reached through its source table
        assert raws - {"_extract_log"} <= sources, mart
    ltv = next(k for k in marts if k.path[-1] == "mart_learner_ltv")
    assert {"payments", "refunds", "users", "tenants"} <= {
        k.path[1] for k in _upstream(graph, ltv) if k.path[0] == "source"
    }


def test_publication_and_report_are_downstream_of_the_marts(loaded) -> None:
    _, graph, _ = loaded
    served = {
        k for k in graph.get_all_asset_keys() if k.path[-1].startswith(("mart_", "dim_", "fct_"))
    }
    assert {k.path[-1] for k in served} >= MARTS | {"dim_tenant", "dim_date", "fct_payments"}
    # publish reads every mart, dimension and fact directly, and the report reads publish
    assert graph.get(PUBLISH_KEY).parent_keys == served
    assert graph.get(REPORT_KEY).parent_keys == {PUBLISH_KEY}
    report_upstream = _upstream(graph, REPORT_KEY)
    assert served | {PUBLISH_KEY} <= report_upstream
    # ... so the report's lineage reaches every source table through raw
    assert {k.path[1] for k in report_upstream if k.path[0] == "source"} == set(TABLE_SPECS)
    assert not graph.get(REPORT_KEY).child_keys


def test_no_dbt_source_is_disconnected_from_its_dlt_asset(loaded) -> None:
    defs, graph, dbt_target = loaded
    manifest = json.loads((dbt_target / "manifest.json").read_text())
    dbt_sources = {s["name"] for s in manifest["sources"].values()}
    assert dbt_sources, "the dbt project declares no sources"
    extract = defs.get_assets_def(dg.AssetKey(["raw", "payments"]))
    dlt_keys = {k.path[1] for k in extract.keys}
    assert dbt_sources <= dlt_keys, f"dbt sources without a dlt asset: {dbt_sources - dlt_keys}"
    for name in dbt_sources:
        node = graph.get(dg.AssetKey(["raw", name]))
        assert node.is_materializable
        children = {k.path[0] for k in node.child_keys}
        assert children - {"raw"}, f"raw/{name} feeds no dbt model"
    for table in TABLE_SPECS:
        assert graph.get(dg.AssetKey(["raw", table])).parent_keys == {
            dg.AssetKey(["source", table])
        }
        assert graph.get(dg.AssetKey(["source", table])).is_observable


def test_checks_have_the_gating_severity(loaded) -> None:
    defs, graph, _ = loaded
    specs = {
        (spec.asset_key.path[0], spec.name): spec
        for assets_def in defs.resolve_asset_graph().assets_defs
        for spec in assets_def.check_specs
    }
    names = {name for _, name in specs}
    assert {RAW_SUITE, RECONCILIATION, FRESHNESS, MART_RULES, MART_DISTRIBUTION} <= names
    assert specs[("raw", RAW_SUITE)].blocking and specs[("raw", RECONCILIATION)].blocking
    assert not specs[("raw", FRESHNESS)].blocking
    assert specs[("finance", MART_RULES)].blocking
    assert not specs[("finance", MART_DISTRIBUTION)].blocking
    # dbt tests are asset checks too
    dbt_checks = [k for k in graph.asset_check_keys if k.name.startswith(("unique_", "not_null_"))]
    assert len(dbt_checks) > 50
    for table in TABLE_SPECS:
        key = dg.AssetKey(["raw", table])
        assert {RAW_SUITE, RECONCILIATION, FRESHNESS} <= {
            k.name for k in graph.asset_check_keys if k.asset_key == key
        }
        # every raw row is used or quarantined by the table's staging model (blocking)
        staging = dg.AssetKey(["staging", f"stg_platform__{table}"])
        assert dg.AssetCheckKey(staging, ROW_ACCOUNTING) in graph.asset_check_keys, table
    assert specs[("staging", ROW_ACCOUNTING)].blocking


def test_jobs_schedules_and_the_writer_tag(loaded) -> None:
    defs, _, _ = loaded
    land = defs.resolve_job_def("land")
    incremental = defs.resolve_job_def("incremental")
    reconcile = defs.resolve_job_def("reconcile")
    writers = (land, incremental, reconcile, defs.resolve_job_def("transform"))
    assert all(job.tags[WRITER_TAG] == "true" for job in writers)
    # the report reads only the serving file: it does not queue behind writers
    assert WRITER_TAG not in defs.resolve_job_def("report").tags
    # hard deletes are only found by a reconcile extract: hourly runs do not reconcile
    assert "reconciliation" not in incremental.graph.node_dict
    assert "reconciliation" not in land.graph.node_dict
    # the hourly extract lands and checks raw; the incremental run after it builds the rest
    assert set(land.graph.node_dict) == {
        "observe_source",
        "extract",
        "raw_suites",
        "freshness",
    }
    # `warehouse transform`: the raw contract, dbt and the checks on the models, no publication
    assert set(defs.resolve_job_def("transform").graph.node_dict) == {
        "raw_suites",
        "dbt_build",
        "row_accounting",
        "mart_suites",
    }
    assert {
        "reconciliation",
        "extract",
        "dbt_build",
        "raw_suites",
        "mart_suites",
        "serving__publish",
    } <= set(reconcile.graph.node_dict)
    # both writer jobs publish; only the weekly job renders (and emails) the report
    assert "serving__publish" in incremental.graph.node_dict
    assert "serving__report" not in set(incremental.graph.node_dict) | set(
        reconcile.graph.node_dict
    )
    assert set(defs.resolve_job_def("report").graph.node_dict) == {"serving__report"}
    schedules = {s.name: s for s in defs.schedules or []}
    assert schedules["land_schedule"].cron_schedule == "0 * * * *"
    assert schedules["reconcile_schedule"].cron_schedule == "30 2 * * *"
    assert schedules["report_schedule"].cron_schedule == "0 6 * * 1"
    assert {s.execution_timezone for s in schedules.values()} == {"Europe/Berlin"}
    assert {s.name for s in defs.sensors or []} == {
        "run_failure_alerts",
        "check_failure_alerts",
        "build_after_land",
    }


def test_dagster_definitions_validate(loaded, tmp_path: Path) -> None:
    """`dagster definitions validate` loads workspace.yaml the way `dagster dev` does."""
    _, _, dbt_target = loaded
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "WAREHOUSE_DATA_DIR": str(tmp_path / "data"),
        "WAREHOUSE_DBT_TARGET_DIR": str(dbt_target),
        "WAREHOUSE_GX_SITE_DIR": str(tmp_path / "gx"),
        "WAREHOUSE_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text(
        (PROJECT_ROOT / "dagster.yaml").read_text()
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Validation successful" in result.stdout + result.stderr
    assert not (tmp_path / "data" / "warehouse.duckdb").exists(), (
        "loading must not touch the warehouse"
    )


def test_raw_tables_and_marts_carry_the_freshness_sla(loaded) -> None:
    """The UI's asset health judges what `warehouse status` judges: each raw table and each
    mart, dimension and fact against WAREHOUSE_FRESHNESS_SLA_HOURS."""
    defs, _, _ = loaded
    from orchestration.config import OrchestrationSettings

    sla_hours = OrchestrationSettings().freshness_sla_hours
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    held = {key for key, spec in specs.items() if spec.freshness_policy is not None}
    raw = {dg.AssetKey(["raw", t]) for t in TABLE_SPECS}
    served = {k for k in specs if k.path[-1].startswith(("mart_", "dim_", "fct_"))}
    assert raw | served <= held
    assert not {k for k in held if k.path[0] in ("source", "staging", "intermediate", "serving")}
    for key in raw | served:
        policy = specs[key].freshness_policy
        assert policy.fail_window.to_timedelta().total_seconds() == sla_hours * 3600, key
