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
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import create_run_for_test, create_test_daemon_workspace_context
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from orchestration.config import WRITER_POOL

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_YAML = (PROJECT_ROOT / "dagster.yaml").read_text()


def test_a_second_writer_run_waits_in_the_queue(tmp_path: Path) -> None:
    # The project's instance settings, with a launcher that records launches instead of
    # starting processes (a launched run stays in progress until the test finishes it).
    (tmp_path / "dagster.yaml").write_text(
        INSTANCE_YAML
        + "\nrun_launcher:\n  module: dagster._core.test_utils\n  class: MockedRunLauncher\n"
    )
    target = ModuleTarget(
        module_name="tests.integration.orchestration_writer_location",
        attribute="defs",
        working_directory=str(PROJECT_ROOT),
        location_name="writers",
    )
    with (
        dg.DagsterInstance.from_config(str(tmp_path)) as instance,
        create_test_daemon_workspace_context(target, instance) as workspace,
    ):
        location = workspace.create_request_context().get_code_location("writers")
        repository = next(iter(location.get_repositories().values()))
        runs = {}
        for name in ("first_writer", "second_writer", "reader"):
            job = repository.get_full_job(name)
            runs[name] = create_run_for_test(
                instance,
                job_name=name,
                status=DagsterRunStatus.QUEUED,
                tags=job.tags,
                remote_job_origin=job.get_remote_origin(),
                job_code_origin=job.get_python_origin(),
            ).run_id
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)

        def statuses() -> dict[str, DagsterRunStatus]:
            return {n: instance.get_run_by_id(i).status for n, i in runs.items()}  # type: ignore[union-attr]

        list(daemon.run_iteration(workspace))
        assert statuses() == {
            "first_writer": DagsterRunStatus.STARTING,
            "second_writer": DagsterRunStatus.QUEUED,  # waits for the first writer
            "reader": DagsterRunStatus.STARTING,  # a run that does not write is not held
        }
        list(daemon.run_iteration(workspace))
        assert statuses()["second_writer"] == DagsterRunStatus.QUEUED
        instance.report_dagster_event(
            DagsterEvent(
                event_type_value=DagsterEventType.RUN_SUCCESS.value, job_name="first_writer"
            ),
            run_id=runs["first_writer"],
        )
        list(daemon.run_iteration(workspace))
        assert statuses()["second_writer"] == DagsterRunStatus.STARTING


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
