"""One writer at a time: a second run that writes the warehouse waits for the first.

Both mechanisms come from the project's ``dagster.yaml``: the run queue admits one run
tagged ``warehouse/writer`` at a time (runs launched by schedules and the UI), and the
writing steps share the one-slot ``warehouse_writer`` pool (which also holds back runs
started in-process by ``warehouse run``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from orchestration.config import WRITER_POOL

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_YAML = (PROJECT_ROOT / "dagster.yaml").read_text()
BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_a_second_writer_run_waits_in_the_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs submitted as the schedules and the UI submit them (`dagster job launch`) and
    dequeued by the real daemon: the second writer waits until the first one ends; a run
    that does not write starts at once."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n"
        "      module_name: tests.integration.orchestration_writer_location\n"
        f"      working_directory: {PROJECT_ROOT}\n      location_name: writers\n"
    )
    release = tmp_path / "release"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "WRITER_TEST_RELEASE": str(release),
    }
    for job in ("first_writer", "second_writer", "reader"):
        subprocess.run(
            [str(BIN / "dagster"), "job", "launch", "-w", str(workspace), "-j", job],
            env=env,
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
        )
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # dagster.yaml places the event log there
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:

            def statuses() -> dict[str, dg.DagsterRunStatus]:
                return {run.job_name: run.status for run in instance.get_runs()}

            def wait_for(condition, seconds: float = 300) -> dict[str, dg.DagsterRunStatus]:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    now = statuses()
                    if condition(now):
                        return now
                    time.sleep(0.5)
                raise AssertionError(f"timed out: {statuses()}")

            running = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)
            now = wait_for(
                lambda s: (
                    s["first_writer"] in running and s["reader"] == dg.DagsterRunStatus.SUCCESS
                )
            )
            assert now["second_writer"] == dg.DagsterRunStatus.QUEUED  # waits for the first
            time.sleep(6)  # several daemon iterations later, still waiting
            assert statuses()["second_writer"] == dg.DagsterRunStatus.QUEUED
            release.touch()
            now = wait_for(lambda s: s["second_writer"] == dg.DagsterRunStatus.SUCCESS)
            assert now["first_writer"] == dg.DagsterRunStatus.SUCCESS
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


WRITER_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import dagster as dg

    @dg.asset(pool=sys.argv[1])
    def warehouse_write(context):
        started = time.time()
        # hold the slot until another run's step waits for it (at most 90 s)
        others = 0
        while time.time() - started < 90 and sys.argv[2] == "first":
            info = context.instance.event_log_storage.get_concurrency_info(sys.argv[1])
            others = len(info.pending_run_ids - {context.run.run_id})
            if others:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        print("SPAN " + json.dumps([started, time.time(), others]), flush=True)

    job = dg.Definitions(
        assets=[warehouse_write],
        jobs=[dg.define_asset_job("write", selection=[warehouse_write])],
        executor=dg.in_process_executor,
    ).resolve_job_def("write")
    with dg.DagsterInstance.get() as instance:
        assert job.execute_in_process(instance=instance).success
    """
)


@pytest.mark.slow
def test_a_second_in_process_writer_waits_for_the_pool(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT)
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    first = subprocess.Popen(
        [sys.executable, str(script), WRITER_POOL, "first"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # start the second only once the first holds the slot
    while True:
        line = first.stdout.readline()  # type: ignore[union-attr]
        assert line, "the first writer exited before starting its step"
        if "STEP_START" in line:
            break
    second = subprocess.run(
        [sys.executable, str(script), WRITER_POOL, "second"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    first_out, _ = first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, (
        second.stdout[-2000:] + second.stderr[-2000:]
    )
    first_span = json.loads(first_out.split("SPAN ")[1].splitlines()[0])
    second_span = json.loads(second.stdout.split("SPAN ")[1].splitlines()[0])
    assert first_span[2] == 1, "the second run's step never waited on the pool"
    assert second_span[0] >= first_span[1], (first_span, second_span)
