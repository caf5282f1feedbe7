"""Benchmark: `warehouse transform` (dbt build: models, snapshots, seeds and every test).

For each scale (default: small and medium) generates the demo source into a temporary
SQLite file, extracts it, and times the full `dbt build`. At the last scale it then runs
`generate --mutate --volume 0.01`, extracts the changes and times `transform --incremental`
(target: under 25% of the full build), and names its slowest nodes. The last line is the
headline: that ratio, incremental / full, at the last scale. Times are wall times of
`transform()` (dbt's own start-up included; an incremental run includes its parse, its plan
and its single-query data-test pass).

`--repeat N` times each build N times on copies of the same warehouse (a full build from a
fresh dbt target folder, so with a full parse, each time; at the last scale each followed by
an incremental build from the state right after the mutation's extract) and prints the
medians: on a shared machine a single run says little. The ratio's median is the median of
the per-repeat ratios, each from a full and an incremental build measured back to back. The
same ratio in CPU seconds of this process (dbt's and DuckDB's threads) follows: other jobs
on the machine stretch wall time far more than CPU time.

    uv run python bench/transform.py [--scales small medium] [--volume 0.01] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingestion.settings import WarehouseSettings
from orchestration.transformation import TransformResult, transform

TARGET_SHARE = 0.25


def warehouse(root: Path, *args: str) -> float:
    """Run one `warehouse` subcommand quietly; its wall time in seconds."""
    env = {**os.environ, "WAREHOUSE_DATA_DIR": str(root)}
    env.setdefault("WAREHOUSE_PII_KEY", "bench-transform-key")
    started = time.perf_counter()
    result = subprocess.run(
        [str(Path(sys.executable).parent / "warehouse"), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"warehouse {args[0]} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return time.perf_counter() - started


def cpu_seconds() -> float:
    """CPU time of this process so far (dbt's threads and DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def checked(result: TransformResult, cpu_started: float, cpu: list[float]) -> TransformResult:
    """``result`` if it succeeded; records the CPU seconds it took since ``cpu_started``."""
    cpu.append(cpu_seconds() - cpu_started)
    if not result.success:
        raise SystemExit("\n".join(result.failures))
    return result


def seconds(values: list[float]) -> str:
    shown = ", ".join(f"{value:.1f}" for value in values)
    return f"{statistics.median(values):6.1f} s" + (f" (runs: {shown})" if len(values) > 1 else "")


def slowest(root: Path, count: int = 6) -> str:
    """The ``count`` longest nodes of the last build into ``dbt_target_0`` (its run_results)."""
    results = json.loads((root / "dbt_target_0" / "run_results.json").read_text())["results"]
    ranked = sorted(results, key=lambda result: -result["execution_time"])[:count]
    return ", ".join(
        f"{result['unique_id'].split('.')[-1]} {result['execution_time']:.2f} s"
        for result in ranked
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["small", "medium"])
    parser.add_argument("--volume", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=1, help="builds per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            root = Path(tmp) / scale
            root.mkdir()
            source = f"sqlite:///{root / 'platform.sqlite'}"
            path = root / "warehouse.duckdb"
            extracted = root / "extracted.duckdb"
            settings = WarehouseSettings(data_dir=root, source_url=source, path=path)
            last = scale == args.scales[-1]
            warehouse(root, "generate", "--scale", scale, "--source", source, "--replace")
            extract_s = warehouse(root, "extract", "--source", source, "--warehouse", str(path))
            shutil.copy(path, extracted)
            fulls: list[TransformResult] = []
            incrementals: list[TransformResult] = []
            full_cpu: list[float] = []
            incremental_cpu: list[float] = []
            mutated = root / "mutated.duckdb"
            mutate_extract_s = 0.0
            for run in range(args.repeat):
                shutil.copy(extracted, path)
                target = root / f"dbt_target_{run}"  # a fresh target folder: a full parse
                started = cpu_seconds()
                fulls.append(
                    checked(transform(settings, target_path=target, quiet=True), started, full_cpu)
                )
                if not last:
                    continue
                if run == 0:  # the mutation lands once, on the first full build's warehouse
                    warehouse(
                        root,
                        "generate",
                        "--mutate",
                        "--volume",
                        str(args.volume),
                        "--source",
                        source,
                    )
                    mutate_extract_s = warehouse(
                        root, "extract", "--source", source, "--warehouse", str(path)
                    )
                    shutil.copy(path, mutated)
                else:
                    shutil.copy(mutated, path)
                # Right after its full build, on the first full build's parse (as in production).
                started = cpu_seconds()
                incrementals.append(
                    checked(
                        transform(
                            settings,
                            incremental=True,
                            target_path=root / "dbt_target_0",
                            quiet=True,
                        ),
                        started,
                        incremental_cpu,
                    )
                )
            nodes = sum(fulls[0].statuses.values())
            print(
                f"{scale:>6}: extract {extract_s:6.1f} s | full dbt build "
                f"{seconds([full.seconds for full in fulls])} ({nodes} nodes; CPU "
                f"{statistics.median(full_cpu):.1f} s)",
                flush=True,
            )
            if not last:
                continue
            incremental = incrementals[0]
            print(
                f"{scale:>6}: after --mutate --volume {args.volume}: extract "
                f"{mutate_extract_s:6.1f} s | "
                f"incremental dbt build {seconds([inc.seconds for inc in incrementals])} "
                f"({sum(incremental.statuses.values())} nodes and tests; CPU "
                f"{statistics.median(incremental_cpu):.1f} s; changed tables: "
                f"{', '.join(incremental.changed_tables or []) or 'none'})",
                flush=True,
            )
            print(f"{scale:>6}: slowest nodes of the last incremental build: {slowest(root)}")
            shares = [
                inc.seconds / full.seconds for inc, full in zip(incrementals, fulls, strict=True)
            ]
            share = statistics.median(shares)
            cpu_shares = [i / f for i, f in zip(incremental_cpu, full_cpu, strict=True)]
            print(
                f"RATIO incremental / full at {scale}: "
                f"{statistics.median(inc.seconds for inc in incrementals):.1f} s / "
                f"{statistics.median(full.seconds for full in fulls):.1f} s; median of "
                f"{len(shares)} paired ratio(s) = {share:.1%} "
                f"(target < {TARGET_SHARE:.0%}: {'MET' if share < TARGET_SHARE else 'MISSED'}); "
                "in CPU seconds, less sensitive to other jobs on the machine: "
                f"{statistics.median(cpu_shares):.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
