"""dbt's ``graph`` context variable is built only when a template reads it (``_LazyFlatGraph``),
and then holds exactly what dbt would have built."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

from jinja2.sandbox import SandboxedEnvironment

from orchestration.transformation import _LazyFlatGraph, parse_project


def counting_graph() -> tuple[_LazyFlatGraph, list[int]]:
    calls: list[int] = []

    def fill() -> dict:
        calls.append(1)
        return {"nodes": {"model.p.a": {"name": "a"}, "model.p.b": {"name": "b"}}, "sources": {}}

    return _LazyFlatGraph(fill), calls


def test_the_graph_is_filled_once_on_first_read() -> None:
    graph, calls = counting_graph()
    assert calls == []
    assert len(graph) == 2 and calls == [1]
    assert "nodes" in graph and graph.get("missing") is None
    assert sorted(graph["nodes"]) == ["model.p.a", "model.p.b"]
    assert dict(graph.items())["sources"] == {}
    assert calls == [1]


def test_a_template_reads_it_as_dbt_macros_do() -> None:
    graph, calls = counting_graph()
    template = SandboxedEnvironment().from_string(
        "{% for node in graph.nodes.values() %}{{ node.name }}{% endfor %}"
        "|{{ graph['nodes'] | length }}"
    )
    assert template.render(graph=graph) == "ab|2"
    assert calls == [1]


def test_it_pickles_as_the_plain_dict_it_stands_for() -> None:
    graph, _ = counting_graph()
    copy = pickle.loads(pickle.dumps(graph))
    assert type(copy) is dict and copy == dict(graph)


def test_concurrent_first_reads_fill_it_once() -> None:
    graph, calls = counting_graph()
    barrier = threading.Barrier(8)
    seen: list[int] = []

    def read() -> None:
        barrier.wait()
        seen.append(len(graph["nodes"]))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [2] * 8 and calls == [1]


def test_the_parsed_project_graph_is_what_dbt_builds(tmp_path: Path) -> None:
    """On the real project: nothing is built at parse time, and a read yields every node,
    source and exposure serialised as dbt serialises them."""
    manifest = parse_project(tmp_path / "warehouse.duckdb", target_path=tmp_path / "target")
    graph = manifest.flat_graph
    assert isinstance(graph, _LazyFlatGraph) and graph._fill is not None

    assert set(graph["nodes"]) == set(manifest.nodes)
    assert set(graph["sources"]) == set(manifest.sources)
    assert set(graph["exposures"]) == set(manifest.exposures)
    unique_id = "model.platform_warehouse.fct_payments"
    assert graph["nodes"][unique_id] == manifest.nodes[unique_id].to_dict(omit_none=False)
    assert manifest.flat_graph is graph  # still the same object, now filled
