"""Benchmark: `warehouse run`, the path users run (the Dagster jobs, in one process), on MariaDB.

For each scale (default: medium, then large) it generates the platform database into a
fresh MariaDB database and times, as separate `warehouse run` processes on one warehouse:

1. the first full run;
2. a run after `warehouse generate --mutate --volume 0.01` (the platform ran on for a day);
3. a run with no change.

Each line gives wall time, peak RSS and the time of each step, read from the Dagster runs
the command recorded: observe, extract, raw checks (contract suites and freshness), dbt,
model checks (the Great Expectations mart suites and the row accounting), publish, report,
and what the command spent outside the Dagster steps (start-up, definitions, planning). The
ratios follow: the 1% run and the no-change run as shares of the full run, against the
targets (15% and 10% at medium, 10% for the 1% run at large).

`--baseline REF` (default: the code before the one-transformation-path change) also times
the first full run of that code, on the same source in the same bench run: a ratio may not
improve by making the full run slower. Its checkout is a temporary git worktree with its
own environment (`uv sync --frozen`), removed afterwards.

    uv run python bench/pipeline.py [--scales medium large] [--baseline REF | --no-baseline]
        [--url mysql+pymysql://root@127.0.0.1:3306/]

Databases created here are dropped at the end; nothing is written to the working tree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

PROJECT = Path(__file__).resolve().parent.parent
BASELINE = "700397a"  # main before dbt ran only through Dagster
TARGETS = {("medium", "1%"): 0.15, ("medium", "no change"): 0.10, ("large", "1%"): 0.10}
PII_KEY = "bench-pipeline-key"
#: Dagster step -> the bench's column
STEPS = {
    "observe_source": "observe",
    "extract": "extract",
    "raw_suites": "raw checks",
    "freshness": "raw checks",
    "dbt_build": "dbt",
    "mart_suites": "model checks",
    "row_accounting": "model checks",
    "serving__publish": "publish",
    "serving__report": "report",
}
COLUMNS = ["observe", "extract", "raw checks", "dbt", "model checks", "publish", "report"]


@dataclass
class Measured:
    """One `warehouse run`: wall seconds, peak RSS (MB), seconds per step, the rest."""

    label: str
    wall: float
    peak_mb: float
    steps: dict[str, float] = field(default_factory=dict)
    runs: int = 0

    @property
    def outside(self) -> float:
        """Seconds the command spent outside the Dagster steps."""
        return self.wall - sum(self.steps.values())


def run_command(
    command: list[str], env: dict[str, str], cwd: Path
) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run ``command``; its wall seconds and peak RSS in MB (the kernel's rusage of that child
    and the processes it waited for, dbt's among them)."""
    with tempfile.TemporaryFile(mode="w+") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, text=True
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        output.seek(0)
        text_out = output.read()
    code = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, subprocess.CompletedProcess(command, code, text_out, "")


def step_times(dagster_home: Path, since: float) -> tuple[dict[str, float], int]:
    """Seconds per bench column of every Dagster run recorded after ``since`` (epoch)."""
    code = f"""
import json, dagster as dg
instance = dg.DagsterInstance.get()
totals, runs = {{}}, 0
for run in instance.get_runs():
    stats = instance.get_run_stats(run.run_id)
    if (stats.start_time or 0) < {since}:
        continue
    runs += 1
    started = {{}}
    for entry in instance.all_logs(run.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            key = event.step_key
            totals[key] = totals.get(key, 0.0) + entry.timestamp - started.get(key, entry.timestamp)
print(json.dumps([totals, runs]))
"""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    totals, runs = json.loads(out.stdout.strip().splitlines()[-1])
    columns: dict[str, float] = {}
    for step, seconds in totals.items():
        column = STEPS.get(step, "other steps")
        columns[column] = columns.get(column, 0.0) + seconds
    return columns, runs


def warehouse_run(label: str, checkout: Path, root: Path, source: str) -> Measured:
    """`warehouse run` of ``checkout``'s code on ``source``, everything under ``root``."""
    home = root / "dagster_home"
    env = {
        **os.environ,
        "WAREHOUSE_DATA_DIR": str(root / "data"),
        "WAREHOUSE_SOURCE_URL": source,
        "WAREHOUSE_PII_KEY": PII_KEY,
        "WAREHOUSE_ALERT_LOG": str(root / "logs" / "alerts.jsonl"),
        "WAREHOUSE_GX_SITE_DIR": str(root / "gx_site"),
        "WAREHOUSE_DBT_TARGET_DIR": str(root / "dbt_target"),
        "DAGSTER_HOME": str(home),
    }
    env.pop("VIRTUAL_ENV", None)
    since = time.time()
    wall, peak, done = run_command(
        [str(checkout / ".venv" / "bin" / "warehouse"), "run"], env, checkout
    )
    if done.returncode != 0:
        raise SystemExit(f"{label}: warehouse run failed:\n{done.stdout[-4000:]}")
    steps, runs = step_times(home, since) if home.exists() else ({}, 0)
    return Measured(label, wall, peak, steps, runs)


def mutate(source: str, manifests: Path) -> None:
    """The platform runs on for a day: 1% of the rows inserted, updated or deleted
    (``manifests``: the data folder the generation recorded its manifest in)."""
    env = {**os.environ, "WAREHOUSE_DATA_DIR": str(manifests), "WAREHOUSE_PII_KEY": PII_KEY}
    subprocess.run(
        [str(PROJECT / ".venv" / "bin" / "warehouse"), "generate", "--source", source,
         "--mutate", "--volume", "0.01"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip


def generate(server: str, scale: str, manifests: Path) -> tuple[str, str]:
    """A fresh database of ``scale`` on the server, its manifest under ``manifests``: (its
    URL, its name)."""
    name = f"bench_pipeline_{scale}_{uuid.uuid4().hex[:6]}"
    with create_engine(server).begin() as conn:
        conn.execute(text(f"create database `{name}` character set utf8mb4"))
    url = f"{server.rstrip('/')}/{name}"
    env = {**os.environ, "WAREHOUSE_DATA_DIR": str(manifests), "WAREHOUSE_PII_KEY": PII_KEY}
    started = time.perf_counter()
    subprocess.run(
        [str(PROJECT / ".venv" / "bin" / "warehouse"), "generate", "--source", url,
         "--scale", scale],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    print(f"generated {scale} into {name} in {time.perf_counter() - started:.0f} s", flush=True)
    return url, name


def baseline_checkout(ref: str, folder: Path) -> Path:
    """A worktree of ``ref`` with its own environment, for the baseline's full run."""
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(folder), ref],
        cwd=PROJECT, check=True, capture_output=True,
    )  # fmt: skip
    uv = PROJECT / ".tools" / "bin" / "uv"
    uv_command = str(uv) if uv.exists() else "uv"
    env = {**os.environ}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [uv_command, "sync", "--frozen", "--quiet", "--compile-bytecode"],
        cwd=folder, env=env, check=True,
    )  # fmt: skip
    return folder


def line(m: Measured) -> str:
    steps = " ".join(f"{m.steps.get(c, 0.0):7.1f}" for c in COLUMNS)
    return f"{m.label:26s} {m.wall:7.1f} {m.peak_mb:7.0f} {steps} {m.outside:7.1f}"


def header() -> str:
    names = " ".join(f"{c[:7]:>7s}" for c in COLUMNS)
    return f"{'run':26s} {'wall s':>7s} {'RSS MB':>7s} {names} {'outside':>7s}"


def bench_scale(server: str, scale: str, baseline: Path | None, work: Path) -> list[str]:
    """The three runs (and the baseline's full run) at one scale; the ratio lines."""
    source, database = generate(server, scale, work / scale / "source")
    try:
        print(f"\n{scale}: seconds (wall, then per step)\n{header()}", flush=True)
        if baseline is not None:
            before = warehouse_run(f"full, baseline {baseline.name}", baseline,
                                   work / scale / "baseline", source)  # fmt: skip
            print(line(before), flush=True)
        root = work / scale / "current"
        full = warehouse_run("full", PROJECT, root, source)
        print(line(full), flush=True)
        mutate(source, work / scale / "source")
        day = warehouse_run("after a 1% mutation", PROJECT, root, source)
        print(line(day), flush=True)
        idle = warehouse_run("no change", PROJECT, root, source)
        print(line(idle), flush=True)
    finally:
        with create_engine(server).begin() as conn:
            conn.execute(text(f"drop database if exists `{database}`"))
    results = []
    if baseline is not None:
        results.append(
            f"{scale}: full run {full.wall:.1f} s against the baseline's {before.wall:.1f} s "
            f"({full.wall / before.wall:.0%})"
        )
    for label, measured in (("1%", day), ("no change", idle)):
        share = measured.wall / full.wall
        target = TARGETS.get((scale, label))
        verdict = (
            ""
            if target is None
            else f" (target <= {target:.0%}: {'MET' if share <= target else 'missed'})"
        )
        results.append(f"{scale}: {label} run {share:.1%} of the full run{verdict}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mysql+pymysql://root@127.0.0.1:3306/")
    parser.add_argument("--scales", nargs="+", default=["medium", "large"])
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the baseline code")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    baseline = None
    try:
        if not args.no_baseline:
            baseline = baseline_checkout(args.baseline, work / f"baseline-{args.baseline}")
        summary = []
        for scale in args.scales:
            summary += bench_scale(args.url, scale, baseline, work)
        print("\n" + "\n".join(summary))
    finally:
        if baseline is not None:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(baseline)],
                cwd=PROJECT, capture_output=True,
            )  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
