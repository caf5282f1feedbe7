"""LookML and exposures from the real dbt project's manifest (dbt parse into tmp_path):
every mart and fact gets a view that lkml parses and Looker would accept (fields unique once
its dimension groups expand, a primary key on every view, explores whose joins reference
fields that exist), and dbt accepts the exposures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import lkml
import pytest

from serving.exposures import REPORT_MARTS, write_exposures
from serving.lookml import write_views

pytestmark = [pytest.mark.slow]
DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"


def dbt_parse(project: Path, base: Path) -> dict:
    """``dbt parse`` a copy of the project; return its manifest (nothing written to the tree)."""
    dbt = Path(sys.executable).with_name("dbt")
    env = {
        **os.environ,
        "WAREHOUSE_PATH": str(base / "warehouse.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    result = subprocess.run(
        [
            str(dbt),
            "parse",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target-path",
            str(base / "target"),
            "--log-path",
            str(base / "logs"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((base / "target" / "manifest.json").read_text())


@pytest.fixture
def project(tmp_path_factory):
    if not (DBT_PROJECT / "dbt_project.yml").exists():
        pytest.skip("no dbt project yet")
    base = tmp_path_factory.mktemp("dbt")
    copy = base / "dbt_project"
    shutil.copytree(
        DBT_PROJECT,
        copy,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"),
    )
    manifest = dbt_parse(copy, base)
    return base, copy, manifest


def looker_fields(view: dict) -> list[str]:
    """Every field name of a view as Looker sees it: dimensions, measures, and one field per
    timeframe of a time dimension group (``<group>_<timeframe>``)."""
    names = [d["name"] for d in view.get("dimensions", [])]
    names += [m["name"] for m in view.get("measures", [])]
    for group in view.get("dimension_groups", []):
        assert group["type"] == "time", group
        names += [f"{group['name']}_{frame}" for frame in group["timeframes"]]
    return names


def test_lookml_and_exposures_from_the_dbt_manifest(project):
    """One test, one worker: the views from the first parse, the exposures by a second."""
    base, copy, manifest = project
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    served = sorted(n for n in models if n.startswith(("mart_", "fct_", "dim_")))
    assert {
        "mart_learner_ltv",
        "mart_ltv_cohorts",
        "mart_instructor_pnl",
        "mart_marketplace_liquidity",
        "mart_data_quality",
    } <= set(served)
    out = base / "lookml"
    (out / "mart_dropped_since.view.lkml").parent.mkdir(parents=True, exist_ok=True)
    (out / "mart_dropped_since.view.lkml").write_text("view: mart_dropped_since {}\n")
    paths = write_views(base / "target" / "manifest.json", out)
    assert not (out / "mart_dropped_since.view.lkml").exists(), "a stale view stays behind"
    views = {}
    for path in [p for p in paths if p.name.endswith(".view.lkml")]:
        (view,) = lkml.load(path.read_text())["views"]
        views[view["name"]] = view
    assert sorted(views) == served
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.view.lkml" for name in served] + ["warehouse.model.lkml"]
    )
    for name, view in views.items():
        plain = [d for d in view.get("dimensions", []) if d["name"] != "primary_key"]
        fields = {d.get("sql", "").removeprefix("${TABLE}.") for d in plain}
        fields |= {
            g.get("sql", "").removeprefix("${TABLE}.") for g in view.get("dimension_groups", [])
        }
        assert fields == set(models[name]["columns"]), name  # every documented column, once
    fields = {name: looker_fields(view) for name, view in views.items()}
    for name, view in views.items():
        duplicates = sorted({f for f in fields[name] if fields[name].count(f) > 1})
        assert duplicates == [], f"{name}: fields Looker would reject as duplicates: {duplicates}"
        keys = [d["name"] for d in view.get("dimensions", []) if d.get("primary_key") == "yes"]
        assert len(keys) == 1, f"{name}: primary keys {keys}"

    (model,) = [p for p in paths if p.name.endswith(".model.lkml")]
    parsed = lkml.load(model.read_text())
    assert parsed["connection"] == "warehouse"
    explores = {e["name"]: e for e in parsed["explores"]}
    assert sorted(explores) == [n for n in served if n.startswith(("fct_", "mart_"))]
    for name, explore in explores.items():
        scope = {name: name} | {
            j["name"]: j.get("from", j["name"]) for j in explore.get("joins", [])
        }
        assert len(scope) == 1 + len(explore.get("joins", [])), f"{name}: a join name repeats"
        for join in explore.get("joins", []):
            assert join["relationship"] == "many_to_one"
            for alias, field in re.findall(r"\$\{(\w+)\.(\w+)\}", join["sql_on"]):
                assert alias in scope, f"{name}: {join['name']} refers to {alias}"
                assert field in fields[scope[alias]], f"{name}: no field {alias}.{field}"
    joined = {j.get("from", j["name"]) for j in explores["fct_payments"]["joins"]}
    assert {"dim_tenant", "dim_person", "dim_product", "dim_currency", "dim_date"} <= joined
    measures = {name: {m["name"]: m for m in v["measures"]} for name, v in views.items()}
    assert measures["mart_instructor_pnl"]["take_rate"]["sql"] == (
        "sum(${TABLE}.platform_revenue_usd) * 1.0 / nullif(sum(${TABLE}.gross_sales_usd), 0)"
    )
    for ratio in (
        "sell_through_30d_rate",
        "buyer_seller_ratio",
        "fill_rate_24h",
        "top_decile_sales_share",
    ):
        assert measures["mart_marketplace_liquidity"][ratio]["type"] == "number"
    for days in (30, 90, 365):
        avg = measures["mart_learner_ltv"][f"avg_ltv_{days}_usd"]
        assert avg["type"] == "average"
        assert avg["filters__all"] == [[{f"is_mature_{days}": "yes"}]]
        assert measures["mart_ltv_cohorts"][f"avg_ltv_{days}_usd"]["sql"] == (
            f"sum(${{TABLE}}.ltv_{days}_mature_sum_usd) * 1.0 / nullif(sum(${{TABLE}}.mature_learners_{days}), 0)"
        )
    assert "total_balance_owed_usd" not in measures["mart_instructor_pnl"]

    # dbt itself accepts the generated exposures and resolves every ref, and the
    # exposures committed in the project are exactly what the generator writes today
    target = copy / "models" / "marts" / "_serving__exposures.yml"
    committed = target.read_text()
    write_exposures(base / "target" / "manifest.json", target)
    assert target.read_text() == committed, (
        "regenerate dbt_project/models/marts/_serving__exposures.yml"
    )
    manifest = dbt_parse(copy, base)  # partial parse: only the new YAML
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) == {
        "leadership_weekly_report",
        "metabase_dashboards",
        "superset_dashboards",
        "looker_explores",
    }
    report = exposures["leadership_weekly_report"]
    assert sorted(n.split(".")[-1] for n in report["depends_on"]["nodes"]) == sorted(REPORT_MARTS)
    assert exposures["leadership_weekly_report"]["type"] == "analysis"
