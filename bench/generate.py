"""Benchmark: `warehouse generate --scale medium` into MariaDB.

Prints rows/s for the whole medium build (target: under 180 s on a 2-core machine)
and, in the same run, the bulk path (LOAD DATA of the canonical TSV) against a
baseline of SQLAlchemy ``executemany`` inserts of the same payments rows.

    uv run python bench/generate.py [--url mysql+pymysql://root@127.0.0.1:3306/] [--scale medium]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from generator import DefectRates, generate
from generator.platform import PlatformGenerator
from generator.target import Target

TARGET_SECONDS = 180.0
BASELINE_ROWS = 30_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mysql+pymysql://root@127.0.0.1:3306/")
    parser.add_argument("--scale", default="medium")
    args = parser.parse_args()

    server = create_engine(args.url)
    name = f"bench_generate_{uuid.uuid4().hex[:8]}"
    with server.begin() as conn:
        conn.execute(text(f"create database `{name}` character set utf8mb4"))
    url = f"{args.url.rstrip('/')}/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            manifest = generate(
                url,
                seed=42,
                scale=args.scale,
                rates=DefectRates(),
                replace=False,
                manifest_path=Path(tmp) / "bench.manifest.json",
            )
            seconds = time.perf_counter() - started
        rows = manifest["total_rows"]
        print(
            f"generate --scale {args.scale} into MariaDB: {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s"
        )
        print(
            f"  time budget {TARGET_SECONDS:.0f} s: used {seconds / TARGET_SECONDS:.0%} -> "
            f"{'MET' if seconds < TARGET_SECONDS else 'MISSED'}"
        )
        bulk, baseline = compare_paths(url)
        print(
            f"same {BASELINE_ROWS:,} payments rows: LOAD DATA {BASELINE_ROWS / bulk:,.0f} rows/s vs "
            f"executemany {BASELINE_ROWS / baseline:,.0f} rows/s -> bulk is {baseline / bulk:.1f}x faster"
        )
    finally:
        with server.begin() as conn:
            conn.execute(text(f"drop database if exists `{name}`"))
        server.dispose()


def compare_paths(url: str) -> tuple[float, float]:
    """Seconds to load the same payments rows by LOAD DATA and by executemany."""
    generator = PlatformGenerator(seed=42, scale="small")
    payments = next(frame for table, frame in generator.tables() if table == "payments").head(
        BASELINE_ROWS
    )
    target = Target(url)
    try:
        with target.engine.begin() as conn:
            conn.execute(text("delete from payments"))
        started = time.perf_counter()
        target.load("payments", payments)
        bulk = time.perf_counter() - started
        with target.engine.begin() as conn:
            conn.execute(text("delete from payments"))
        columns = ", ".join(payments.columns)
        marks = ", ".join(f":{c}" for c in payments.columns)
        records = payments.astype(object).where(payments.notna(), None).to_dict("records")
        started = time.perf_counter()
        with target.engine.begin() as conn:
            conn.execute(text(f"insert into payments ({columns}) values ({marks})"), records)
        baseline = time.perf_counter() - started
    finally:
        target.dispose()
    return bulk, baseline


if __name__ == "__main__":
    main()
