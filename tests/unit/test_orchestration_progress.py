"""A run started from the command line prints a line per step as it starts and ends, and its
summary counts assets by the groups the Dagster UI shows."""

from __future__ import annotations

import time

import dagster as dg

from orchestration.runner import asset_groups, step_progress


@dg.asset(group_name="raw")
def landed() -> int:
    return 1


@dg.asset(group_name="marts")
def built(landed: int) -> int:
    time.sleep(0.3)
    return landed + 1


@dg.asset(group_name="marts")
def broken(built: int) -> int:
    raise RuntimeError("a planted failure")


def test_every_step_prints_when_it_starts_and_how_it_ended() -> None:
    lines: list[str] = []
    job = dg.define_asset_job("two_steps", selection=[landed, built, broken])
    defs = dg.Definitions(assets=[landed, built, broken], jobs=[job])
    with dg.DagsterInstance.ephemeral() as instance:
        run_id = "0f0e0d0c-0000-4000-8000-000000000001"
        with step_progress(instance, run_id, lines.append, interval=0.05):
            defs.resolve_job_def("two_steps").execute_in_process(
                instance=instance, run_id=run_id, raise_on_error=False
            )
    steps = [line.split(maxsplit=1)[1] for line in lines]
    assert steps[:2] == ["landed started", steps[1]] and steps[1].startswith("landed done in")
    assert "built started" in steps and any(s.startswith("built done in") for s in steps)
    assert any(s.startswith("broken FAILED in") for s in steps)
    assert asset_groups(defs) == {"landed": "raw", "built": "marts", "broken": "marts"}
