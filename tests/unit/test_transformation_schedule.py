"""The order dbt starts ready nodes in (``_critical_path_first``): the longest chain of
dependents first, each node weighted by how long it took in the last run."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
from dbt.graph.queue import GraphQueue

from orchestration.transformation import _critical_path_first, _last_durations

# a -> b -> c is the longest chain by node count; q has no dependents but is slow.
EDGES = [("a", "b"), ("b", "c")]
LAST_RUN = {"a": 0.1, "b": 0.1, "c": 0.1, "q": 0.5}


def graph() -> nx.DiGraph:
    g = nx.DiGraph(EDGES)
    g.add_node("q")
    return g


def scores(durations: dict[str, float] | None) -> dict[str, int]:
    with _critical_path_first(durations):
        return GraphQueue._get_scores(object(), graph())  # type: ignore[arg-type]


def test_a_slow_node_without_dependents_starts_before_a_longer_but_quicker_chain() -> None:
    ranked = sorted(scores(LAST_RUN).items(), key=lambda item: item[1])  # lower starts first
    # q's path is 0.5 s; a's is a + b + c = 0.3 s.
    assert [node for node, _ in ranked][:2] == ["q", "a"]
    assert dict(ranked) == {"q": -500_000, "a": -300_000, "b": -200_000, "c": -100_000}


def test_without_history_the_chain_with_most_nodes_starts_first() -> None:
    ranked = scores({})
    assert ranked["a"] < ranked["b"] < ranked["c"] == ranked["q"]


def test_a_node_missing_from_the_last_run_counts_as_its_median() -> None:
    # c and q were not in the last run: each counts as the median of a and b (0.2 s).
    ranked = scores({"a": 0.1, "b": 0.3})
    assert ranked == {"a": -600_000, "b": -500_000, "c": -200_000, "q": -200_000}


def test_dbt_s_own_scoring_is_back_after_the_run() -> None:
    original = GraphQueue._get_scores
    with _critical_path_first(LAST_RUN):
        assert GraphQueue._get_scores is not original
    assert GraphQueue._get_scores is original


def test_durations_are_read_from_run_results_and_missing_or_broken_files_give_none(
    tmp_path: Path,
) -> None:
    run_results = tmp_path / "run_results.json"
    assert _last_durations(run_results) == {}
    run_results.write_text(
        json.dumps(
            {
                "results": [
                    {"unique_id": "model.p.a", "execution_time": 1.25},
                    {"unique_id": "test.p.t", "execution_time": 0.01},
                ]
            }
        )
    )
    assert _last_durations(run_results) == {"model.p.a": 1.25, "test.p.t": 0.01}
    run_results.write_text("{not json")
    assert _last_durations(run_results) == {}
    run_results.write_text(json.dumps({"results": [{"unique_id": "model.p.a"}]}))
    assert _last_durations(run_results) == {}
