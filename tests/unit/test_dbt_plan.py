"""The incremental build plan on a hand-made manifest: loads, code changes, tests."""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.dbt_plan import (
    incremental_plan,
    modified_nodes,
    node_checksums,
    record_checksums,
    recorded_checksums,
)

P = "model.p."


def _node(kind: str, name: str, parents: list[str], materialized: str = "table") -> dict:
    return {
        "resource_type": kind,
        "name": name,
        "package_name": "p",
        "config": {"materialized": materialized, "enabled": True},
        "depends_on": {"nodes": parents},
        "checksum": {"name": "sha256", "checksum": f"{name}-v1"},
    }


def _manifest() -> dict:
    """raw.payments -> stg_payments (view) -> fct_payments -> mart_ltv <- dim_currency <- seed;
    raw.activity -> stg_activity (view) -> fct_activity; raw._extract_log -> mart_quality."""
    nodes = {
        P + "stg_payments": _node("model", "stg_payments", ["source.p.platform.payments"], "view"),
        P + "stg_activity": _node("model", "stg_activity", ["source.p.platform.activity"], "view"),
        P + "fct_payments": _node("model", "fct_payments", [P + "stg_payments"]),
        P + "fct_activity": _node("model", "fct_activity", [P + "stg_activity"], "incremental"),
        "seed.p.currencies": _node("seed", "currencies", []),
        P + "dim_currency": _node("model", "dim_currency", ["seed.p.currencies"]),
        P + "mart_ltv": _node("model", "mart_ltv", [P + "fct_payments", P + "dim_currency"]),
        P + "mart_quality": _node("model", "mart_quality", ["source.p.platform._extract_log"]),
        "test.p.unique_fct_payments": _node("test", "unique_fct_payments", [P + "fct_payments"]),
        "test.p.rel_ltv_currency": _node(
            "test", "rel_ltv_currency", [P + "mart_ltv", P + "dim_currency"]
        ),
        "test.p.unique_dim_currency": _node("test", "unique_dim_currency", [P + "dim_currency"]),
    }
    sources = {
        f"source.p.platform.{t}": {"source_name": "platform", "name": t, "identifier": t}
        for t in ("payments", "activity", "_extract_log")
    }
    child_map: dict[str, list[str]] = {u: [] for u in [*nodes, *sources]}
    for unique_id, node in nodes.items():
        for parent in node["depends_on"]["nodes"]:
            child_map[parent].append(unique_id)
    macros = {
        "macro.p.to_usd": {
            "package_name": "p",
            "macro_sql": "{% macro to_usd(x) %}x{% endmacro %}",
        },
        "macro.dbt.type_string": {"package_name": "dbt", "macro_sql": "varchar"},
    }
    return {"nodes": nodes, "sources": sources, "child_map": child_map, "macros": macros}


def _names(unique_ids) -> set[str]:
    return {u.rsplit(".", 1)[-1] for u in unique_ids}


def test_a_payments_load_builds_its_tables_and_the_quality_mart_only() -> None:
    plan = incremental_plan(_manifest(), ["payments"])
    assert _names(plan.built) == {"fct_payments", "mart_ltv", "mart_quality"}
    # views read raw as it is; nothing else read payments
    assert _names(plan.current) == {
        "stg_payments",
        "stg_activity",
        "fct_activity",
        "currencies",
        "dim_currency",
    }
    # a test runs when a node it reads is built, even if its other parent is current
    assert set(plan.excluded) == _names(plan.current) | {"unique_dim_currency"}


def test_a_load_that_changed_nothing_still_rebuilds_the_quality_mart() -> None:
    plan = incremental_plan(_manifest(), [])
    assert _names(plan.built) == {"mart_quality"}


def test_changed_code_rebuilds_the_node_and_everything_downstream_views_included() -> None:
    manifest = _manifest()
    recorded = node_checksums(manifest)
    manifest["nodes"][P + "stg_payments"]["checksum"]["checksum"] = "stg_payments-v2"
    manifest["nodes"]["seed.p.currencies"]["checksum"]["checksum"] = "currencies-v2"
    modified = modified_nodes(manifest, recorded)
    assert _names(modified) == {"stg_payments", "currencies"}
    plan = incremental_plan(manifest, [], modified)
    assert _names(plan.built) == {
        "stg_payments",
        "fct_payments",
        "mart_ltv",
        "currencies",
        "dim_currency",
        "mart_quality",
    }
    assert _names(plan.current) == {"stg_activity", "fct_activity"}
    assert not plan.full_refresh  # no incremental model among them
    # The same change with no load since the last build: the extract log did not move.
    unlogged = incremental_plan(manifest, [], modified, logged=False)
    assert _names(unlogged.built) == _names(plan.built) - {"mart_quality"}
    # nothing recorded (the last build predates the record): everything is rebuilt
    assert modified_nodes(manifest, None) == {
        u for u, n in manifest["nodes"].items() if n["resource_type"] != "test"
    }


def test_checksums_round_trip_through_the_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    assert recorded_checksums(path) is None
    manifest = _manifest()
    record_checksums(path, manifest)
    assert modified_nodes(manifest, recorded_checksums(path)) == set()
    manifest["nodes"][P + "mart_ltv"]["checksum"]["checksum"] = "mart_ltv-v2"
    record_checksums(path, manifest)  # replaces the record, no duplicates
    assert recorded_checksums(path) == node_checksums(manifest)
    assert recorded_checksums(path)[P + "mart_ltv"].startswith("mart_ltv-v2+macros:")


def test_a_change_to_a_project_macro_rebuilds_everything_from_scratch() -> None:
    """dbt's checksum of a model does not cover the macros it calls (nor those it reaches
    through adapter.dispatch): a change to any of the project's macros is a change to every
    node; a change inside dbt's own package is not the project's."""
    manifest = _manifest()
    recorded = node_checksums(manifest)
    manifest["macros"]["macro.dbt.type_string"]["macro_sql"] = "text"
    assert modified_nodes(manifest, recorded) == set()
    manifest["macros"]["macro.p.to_usd"]["macro_sql"] = (
        "{% macro to_usd(x) %}round(x, 2){% endmacro %}"
    )
    modified = modified_nodes(manifest, recorded)
    assert modified == {u for u, n in manifest["nodes"].items() if n["resource_type"] != "test"}
    plan = incremental_plan(manifest, [], modified)
    assert not plan.current and plan.full_refresh


def test_changed_code_upstream_of_an_incremental_model_rebuilds_it_from_scratch() -> None:
    manifest = _manifest()
    # new activity alone folds into the incremental fact
    assert not incremental_plan(manifest, ["activity"]).full_refresh
    # a change to the view it reads would leave its stored rows stale
    plan = incremental_plan(manifest, [], {P + "stg_activity"})
    assert _names(plan.built) == {"stg_activity", "fct_activity", "mart_quality"}
    assert plan.full_refresh


def test_dbt_reads_the_consumed_loads_where_the_transform_records_them() -> None:
    """The activity models find what landed since the last build in the table
    `warehouse transform` records consumed loads in: the dbt project's var names its schema."""
    import yaml

    from orchestration.transformation import DBT_PROJECT_DIR, STATE_SCHEMA, STATE_TABLE

    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert f"{project['vars']['transform_state_schema']}.transform_loads" == STATE_TABLE
    assert project["vars"]["transform_state_schema"] == STATE_SCHEMA
