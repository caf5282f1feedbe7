"""The change detector on a small graph: raw.orders -> stg_orders (view) -> int_orders
(incremental) -> mart_orders (table), and a seed fx -> int_orders. What it calls dirty, and
what a recorded build makes of the state."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from orchestration.build_state import (
    BuildState,
    Graph,
    Node,
    NodeOutcome,
    WarehouseFacts,
    plan_build,
    read_facts,
    record_build,
    relation_identities,
)

SOURCE = "source.p.platform.orders"
STG = "model.p.stg_orders"
FX = "seed.p.fx"
INT = "model.p.int_orders"
MART = "model.p.mart_orders"
TEST_MART = "test.p.unique_mart_orders_id"


def graph() -> Graph:
    def node(uid: str, materialized: str, *parents: str) -> Node:
        kind = uid.split(".")[0]
        return Node(uid, uid.split(".")[-1], kind, materialized, parents, "s", uid.split(".")[-1])

    return Graph(
        nodes={
            STG: node(STG, "view", SOURCE),
            FX: node(FX, "seed"),
            INT: node(INT, "incremental", STG, FX),
            MART: node(MART, "table", INT),
        },
        sources={SOURCE: "raw:orders"},
        tests={TEST_MART: (MART,)},
    )


def manifest(g: Graph) -> dict:
    """The smallest manifest record_build reads: each node and test, with its code."""
    nodes = {uid: {"name": n.name, "checksum": uid} for uid, n in g.nodes.items()}
    nodes[TEST_MART] = {"name": "unique_mart_orders_id", "checksum": TEST_MART}
    return {"nodes": nodes, "macros": {}, "metadata": {}}


BUILDS = {STG: "b1", FX: "b1", INT: "b1", MART: "b1"}


def facts(raw: str = "load:1:rows:10", builds: dict | None = None) -> WarehouseFacts:
    return WarehouseFacts(builds=dict(builds or BUILDS), raw={"raw:orders": raw})


def built_state(tmp_path: Path, g: Graph) -> BuildState:
    """The state after a first build of everything that succeeded and passed its test."""
    outcomes = [NodeOutcome(uid, "success") for uid in g.nodes] + [NodeOutcome(TEST_MART, "pass")]
    return record_build(
        BuildState.load(tmp_path / "state"), g, manifest(g), outcomes, facts(), "f1", True
    )


def test_identities_follow_what_each_relation_holds() -> None:
    g = graph()
    before = relation_identities(g, facts())
    after_load = relation_identities(g, facts(raw="load:2:rows:12"))
    # a view holds what its parents hold: a load changes it; a table keeps its build's rows
    assert before[STG] != after_load[STG]
    assert before[INT] == after_load[INT] == "build:b1"
    assert before[SOURCE] == "load:1:rows:10"
    rebuilt = relation_identities(g, facts(builds={**BUILDS, STG: "b2"}))
    assert rebuilt[STG] != before[STG] and rebuilt[MART] == before[MART]


def test_no_recorded_state_builds_everything_from_scratch(tmp_path: Path) -> None:
    plan = plan_build(graph(), BuildState.load(tmp_path / "none"), facts(), "f1")
    assert plan.everything and plan.full_refresh and not plan.nothing


def test_a_verified_build_with_unchanged_inputs_builds_nothing(tmp_path: Path) -> None:
    g = graph()
    state = built_state(tmp_path, g)
    again = BuildState.load(tmp_path / "state")  # as the next run reads it
    assert again.nodes == state.nodes and again.fingerprint == "f1"
    plan = plan_build(g, again, facts(), "f1")
    assert plan.nothing and plan.dirty == {}


def test_a_load_makes_its_view_dirty_and_selects_from_there(tmp_path: Path) -> None:
    g = graph()
    built_state(tmp_path, g)
    plan = plan_build(g, BuildState.load(tmp_path / "state"), facts(raw="load:2:rows:11"), "f1")
    # the view and what reads it (the view holds the new rows); the mart reads int_orders'
    # build, which has not changed yet: it follows downstream of the selection
    assert plan.dirty == {STG: "its inputs changed", INT: "its inputs changed"}
    assert g.descendants(plan.dirty) == {INT, MART}
    assert not plan.full_refresh  # a load reaches an incremental model through its channel
    assert not plan.code_changed


def test_a_build_outside_the_runner_is_dirty_and_refreshes_incremental_models(
    tmp_path: Path,
) -> None:
    g = graph()
    built_state(tmp_path, g)
    state = BuildState.load(tmp_path / "state")
    # dbt run by hand rebuilt the seed: the warehouse holds a build the state never verified
    plan = plan_build(g, state, facts(builds={**BUILDS, FX: "by-hand"}), "f1")
    assert FX in plan.dirty and "another build" in plan.dirty[FX]
    assert plan.full_refresh  # int_orders folded rows in from the replaced seed
    # a restored file: every node's build differs
    restored = plan_build(g, state, facts(builds={u: "old" for u in BUILDS}), "f1")
    assert set(restored.dirty) == set(g.nodes) and restored.full_refresh


def test_a_failed_test_leaves_its_model_dirty_until_it_passes(tmp_path: Path) -> None:
    g = graph()
    built_state(tmp_path, g)
    rebuilt = facts(builds={**BUILDS, MART: "b2"})
    record_build(
        BuildState.load(tmp_path / "state"),
        g,
        manifest(g),
        [NodeOutcome(MART, "success"), NodeOutcome(TEST_MART, "fail")],
        rebuilt,
        "f2",
        complete=False,
    )
    state = BuildState.load(tmp_path / "state")
    assert state.nodes[MART].build_id == "b2" and not state.nodes[MART].verified
    assert state.fingerprint == "f1"  # an incomplete build does not move the code on
    plan = plan_build(g, state, rebuilt, "f1")
    assert plan.dirty == {MART: "its last build failed or its tests did not pass"}


def test_an_errored_node_keeps_the_build_the_warehouse_still_holds(tmp_path: Path) -> None:
    g = graph()
    built_state(tmp_path, g)
    # int_orders failed (its transaction rolled back: the warehouse still holds b1); the mart
    # after it was skipped
    record_build(
        BuildState.load(tmp_path / "state"),
        g,
        manifest(g),
        [NodeOutcome(INT, "error"), NodeOutcome(MART, "skipped")],
        facts(),
        "f1",
        complete=False,
    )
    state = BuildState.load(tmp_path / "state")
    assert state.nodes[INT].build_id == "b1" and not state.nodes[INT].verified
    assert not state.nodes[MART].verified
    assert set(plan_build(g, state, facts(), "f1").dirty) == {INT, MART}


def test_a_changed_project_is_reported_for_dbt_state_modified(tmp_path: Path) -> None:
    g = graph()
    built_state(tmp_path, g)
    plan = plan_build(g, BuildState.load(tmp_path / "state"), facts(), "f2")
    assert plan.code_changed and not plan.dirty and not plan.nothing


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw")
        con.execute("create table raw.orders as select range as id from range(10)")
        con.execute(
            "create table raw._extract_log (load_id varchar, table_name varchar, "
            "status varchar, rows_read bigint, rows_landed bigint, deletes_detected bigint, "
            "changed_rows_detected bigint, zero_dates_nulled bigint)"
        )
        con.execute(
            "insert into raw._extract_log values "
            "('100.1', 'orders', 'ok', 10, 10, 0, 0, 0), "
            "('200.1', 'orders', 'ok', 10, 0, 0, 0, 3)"  # re-read, landed nothing
        )
        con.execute("create schema meta")
        con.execute("create table meta.dbt_builds (unique_id varchar, build_id varchar)")
        con.execute(f"insert into meta.dbt_builds values ('{MART}', 'b7')")
    return path


def test_facts_read_the_build_log_and_the_loads_that_changed_raw(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        first = read_facts(con)
        assert first.builds == {MART: "b7"}
        # the re-read that landed nothing does not move the table's identity
        assert first.raw["raw:orders"] == "load:100.1/1:rows:10"
        con.execute("insert into raw.orders values (10)")  # a row written outside a load
        assert read_facts(con).raw["raw:orders"] == "load:100.1/1:rows:11"
        con.execute(
            "insert into raw._extract_log values ('300.1', 'orders', 'ok', 5, 0, 2, 0, 0)"
        )  # a reconcile marked two deletes
        assert read_facts(con).raw["raw:orders"] == "load:300.1/2:rows:11"


def test_a_build_consumes_the_loads_of_a_table_only_when_it_built_all_that_reads_it() -> None:
    from orchestration.defs.transform import consumed_loads

    g = graph()
    loads = {"orders": ["l1", "l2"], "webhooks": ["l3"]}  # nothing of dbt reads webhooks
    changing = {"orders": ["l1", "l2"], "webhooks": ["l3"]}
    built = [NodeOutcome(uid, "success") for uid in (STG, INT, MART)]
    assert consumed_loads(g, loads, changing, built) == loads
    failed = [NodeOutcome(STG, "success"), NodeOutcome(INT, "success"), NodeOutcome(MART, "error")]
    left = {"webhooks": ["l3"]}  # the mart still reads the orders loads
    assert consumed_loads(g, loads, changing, failed) == left
    assert consumed_loads(g, loads, changing, built[:1]) == left  # a subset left INT out
    # a load that changed nothing (l1 only re-read rows) is consumed by any build
    idle_l1 = {"orders": ["l2"], "webhooks": ["l3"]}
    assert consumed_loads(g, loads, idle_l1, built[:1]) == {"orders": ["l1"], "webhooks": ["l3"]}
