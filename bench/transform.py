"""Benchmark: `warehouse transform` (dbt build: models, snapshots, seeds and every test).

For each scale (default: small and medium) generates the demo source into a temporary
SQLite file, extracts it, and times the full `dbt build`. At the last scale it then runs
`generate --mutate --volume 0.01`, extracts the changes and times `transform --incremental`
(target: under 25% of the full build). The last line is the headline: that ratio,
incremental / full, at the last scale. Times are wall times of `transform()` (dbt's own
start-up included; an incremental run includes its single-query data-test pass).

    uv run python bench/transform.py [--scales small medium] [--volume 0.01]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingestion.settings import WarehouseSettings
from orchestration.transformation import transform

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["small", "medium"])
    parser.add_argument("--volume", type=float, default=0.01)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            root = Path(tmp) / scale
            root.mkdir()
            source = f"sqlite:///{root / 'platform.sqlite'}"
            path = root / "warehouse.duckdb"
            settings = WarehouseSettings(data_dir=root, source_url=source, path=path)
            warehouse(root, "generate", "--scale", scale, "--source", source, "--replace")
            extract_s = warehouse(root, "extract", "--source", source, "--warehouse", str(path))
            full = transform(settings, target_path=root / "dbt_target", quiet=True)
            if not full.success:
                raise SystemExit("\n".join(full.failures))
            nodes = sum(full.statuses.values())
            print(
                f"{scale:>6}: extract {extract_s:6.1f} s | full dbt build {full.seconds:6.1f} s "
                f"({nodes} nodes)",
                flush=True,
            )
            if scale != args.scales[-1]:
                continue
            warehouse(
                root, "generate", "--mutate", "--volume", str(args.volume), "--source", source
            )
            extract_s = warehouse(root, "extract", "--source", source, "--warehouse", str(path))
            incremental = transform(
                settings, incremental=True, target_path=root / "dbt_target", quiet=True
            )
            if not incremental.success:
                raise SystemExit("\n".join(incremental.failures))
            share = incremental.seconds / full.seconds
            print(
                f"{scale:>6}: after --mutate --volume {args.volume}: extract {extract_s:6.1f} s | "
                f"incremental dbt build {incremental.seconds:6.1f} s "
                f"({sum(incremental.statuses.values())} nodes and tests; changed tables: "
                f"{', '.join(incremental.changed_tables or []) or 'none'})",
                flush=True,
            )
            print(
                f"RATIO incremental / full at {scale}: {incremental.seconds:.1f} s / "
                f"{full.seconds:.1f} s = {share:.1%} "
                f"(target < {TARGET_SHARE:.0%}: {'MET' if share < TARGET_SHARE else 'MISSED'})",
                flush=True,
            )


if __name__ == "__main__":
    main()
