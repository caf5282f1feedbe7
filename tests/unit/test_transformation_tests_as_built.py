"""The incremental build's data tests run while dbt builds (``_TestsAsBuilt``), and each dbt
command runs with the long-lived heap out of the garbage collector's sight."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from orchestration import transformation
from orchestration.transformation import _long_lived_frozen, _TestsAsBuilt

A, B, FAILS, SKIPPED, DIM_DATE = (
    "model.p.a",
    "model.p.b",
    "model.p.fails",
    "model.p.skipped",
    "model.p.dim_date",
)
PLANNED = {A, B, FAILS, SKIPPED}  # dim_date is not rebuilt


def data_test(name: str, *parents: str) -> dict:
    return {"unique_id": f"test.p.{name}", "depends_on": {"nodes": list(parents)}}


TESTS = [
    data_test("on_a", A),
    data_test("a_to_b", A, B),
    data_test("b_to_dim_date", B, DIM_DATE),
    data_test("on_fails", FAILS),
    data_test("skipped_to_a", SKIPPED, A),
]


def finished(unique_id: str, status: str = "success") -> Any:
    return SimpleNamespace(
        info=SimpleNamespace(name="NodeFinished"),
        data=SimpleNamespace(node_info=SimpleNamespace(unique_id=unique_id, node_status=status)),
    )


class Recorder:
    """Stands in for ``run_data_tests``: records each batch (names, thread) and fails the
    tests named in ``failing``."""

    def __init__(self, failing: frozenset[str] = frozenset(), broken: bool = False) -> None:
        self.batches: list[tuple[list[str], str]] = []
        self.failing = failing
        self.broken = broken
        self.called = threading.Condition()

    def __call__(
        self, path: Path, manifest: dict, tests: list[dict], connection: Any
    ) -> tuple[dict[str, int], list[str]]:
        assert connection is not None
        names = [t["unique_id"].split(".")[-1] for t in tests]
        with self.called:
            self.batches.append((names, threading.current_thread().name))
            self.called.notify_all()
        if self.broken:
            raise RuntimeError("Binder Error: no such column")
        failures = [
            f"test.p.{n}: Got 3 results, configured to fail if != 0"
            for n in names
            if n in self.failing
        ]
        statuses = {"pass": len(names) - len(failures)}
        if failures:
            statuses["fail"] = len(failures)
        return statuses, failures

    def ran(self) -> list[str]:
        return sorted(name for names, _ in self.batches for name in names)

    def wait_for(self, count: int) -> None:
        with self.called:
            assert self.called.wait_for(lambda: len(self.ran()) >= count, timeout=10)


class Cursor:
    closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def cursor(monkeypatch: pytest.MonkeyPatch) -> Cursor:
    cursor = Cursor()
    monkeypatch.setattr(transformation, "_open_duckdb_cursor", lambda: cursor)
    return cursor


def test_each_test_runs_once_every_rebuilt_node_it_reads_has_built(
    monkeypatch: pytest.MonkeyPatch, cursor: Cursor
) -> None:
    recorder = Recorder(failing=frozenset({"a_to_b"}))
    monkeypatch.setattr(transformation, "run_data_tests", recorder)
    as_built = _TestsAsBuilt(Path("w.duckdb"), {}, TESTS, PLANNED)

    as_built.on_event(SimpleNamespace(info=SimpleNamespace(name="NodeStart")))
    as_built.on_event(finished(A))
    recorder.wait_for(1)
    assert recorder.ran() == ["on_a"]  # a_to_b still waits for b; dim_date is not rebuilt

    as_built.on_event(finished(FAILS, "error"))
    as_built.on_event(finished(SKIPPED, "skipped"))
    as_built.on_event(finished(B))
    recorder.wait_for(3)
    outcome = as_built.finish()

    assert recorder.ran() == ["a_to_b", "b_to_dim_date", "on_a"]  # never a failed node's
    assert {thread for _, thread in recorder.batches} == {"data-tests"}
    assert outcome == (
        {"pass": 2, "fail": 1},
        ["test.p.a_to_b: Got 3 results, configured to fail if != 0"],
    )
    assert cursor.closed


def test_the_tests_one_node_releases_share_one_query(
    monkeypatch: pytest.MonkeyPatch, cursor: Cursor
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(transformation, "run_data_tests", recorder)
    three = [data_test("first", A), data_test("second", A), data_test("third", B)]
    as_built = _TestsAsBuilt(Path("w.duckdb"), {}, three, PLANNED)
    as_built.on_event(finished(A))
    recorder.wait_for(2)
    as_built.on_event(finished(B))
    assert as_built.finish() == ({"pass": 3}, [])
    assert [names for names, _ in recorder.batches] == [["first", "second"], ["third"]]


def test_a_query_that_cannot_run_fails_its_tests(
    monkeypatch: pytest.MonkeyPatch, cursor: Cursor
) -> None:
    monkeypatch.setattr(transformation, "run_data_tests", Recorder(broken=True))
    as_built = _TestsAsBuilt(Path("w.duckdb"), {}, [data_test("on_a", A)], PLANNED)
    as_built.on_event(finished(A))
    statuses, failures = as_built.finish() or ({}, [])
    assert statuses == {"error": 1}
    assert failures == ["test.p.on_a: could not run: Binder Error: no such column"]


def test_without_a_duckdb_database_the_tests_are_left_to_dbt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(transformation, "run_data_tests", recorder)
    monkeypatch.setattr(transformation, "_open_duckdb_cursor", lambda: None)
    as_built = _TestsAsBuilt(Path("w.duckdb"), {}, [data_test("on_a", A)], PLANNED)
    as_built.on_event(finished(A))
    assert as_built.finish() is None
    assert recorder.batches == []
    assert as_built.finish() is None  # idempotent: the worker has stopped


def test_the_heap_is_frozen_only_while_a_command_runs() -> None:
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), _long_lived_frozen():
        assert gc.get_freeze_count() > 0  # what existed is out of the collector's sight
        raise RuntimeError("dbt failed")
    assert gc.get_freeze_count() == 0  # handed back, even after a failure
