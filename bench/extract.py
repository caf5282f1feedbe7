"""Benchmark: `warehouse extract` from MariaDB against a raw connectorx read, same run.

Prints, for the `medium` payments and activity_logs tables:
- rows/s of the project's extraction (into a fresh DuckDB raw) next to the ceiling
  for a Python reader: a raw connectorx read of the same tables into Arrow plus a
  DuckDB CTAS (target: the project reaches at least 60% of it);
- peak RSS of the extraction process for `medium` and, with --large, for `large`
  (target: large under 1.5x medium: memory follows the chunk size, not the table);
- the time of a full load of every table and of the incremental run after
  `generate --mutate --volume 0.01` (target: incremental under 10% of full), for
  --repeat warehouses loaded from the same source, and the median share;
- with --sql-table, dlt's own ``sql_table`` source (the way dlt's docs load a table: full
  reflection, arrow backends, parquet into DuckDB, nothing of the project's masking or change
  detection) on the same tables in the same attempts, against the same ceiling: what the
  project's reader would have to match if it were rebuilt on ``sql_table``.

    uv run python bench/extract.py [--url mysql+pymysql://root@127.0.0.1:3306/] [--large]
        [--large-database NAME]   # reuse a generated large database instead of building one
        [--sql-table] [--no-incremental]

Each extraction runs in its own child process, so peak RSS is that run's alone (the child's
VmHWM; until 2026-11-27 the bench read ru_maxrss, which a child inherits from this
process across exec, so every figure was the bench's own ~1 GB peak).
Databases created here are dropped at the end; nothing is written to the working tree.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from generator import DefectRates, generate
from generator.mutate import mutate_source
from ingestion.pipeline import run_extract
from ingestion.settings import WarehouseSettings

BENCH_TABLES = ["payments", "activity_logs"]
SQL_TABLE_BACKENDS = ("connectorx", "pyarrow")
PII_KEY = "bench-key"


def peak_rss_mb() -> float:
    """This process's own peak resident set, in MB.

    Not ``getrusage``'s ``ru_maxrss``: on Linux a child started by fork/vfork + exec
    inherits the parent's high-water mark in it, so every child reported the bench
    process's own peak (the ceiling's Arrow tables, ~1 GB) whatever it used itself.
    ``VmHWM`` belongs to the memory map that exec created.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(source: str, warehouse: str, tables: list[str] | None) -> None:
    """Run one extraction and print its seconds, rows and peak RSS as JSON."""
    # Warm up on the smallest table into a scratch file: the timed run then measures the
    # extraction, not first-import costs (this machine sets PYTHONDONTWRITEBYTECODE).
    scratch = Path(warehouse).with_name(Path(warehouse).stem + "_warmup.duckdb")
    run_extract(
        WarehouseSettings(
            data_dir=scratch.parent, source_url=source, path=scratch, pii_key=PII_KEY
        ),
        tables=["tenants"],
    )
    settings = WarehouseSettings(
        data_dir=Path(warehouse).parent, source_url=source, path=Path(warehouse), pii_key=PII_KEY
    )
    summary = run_extract(settings, tables=tables)
    if not summary.ok:
        raise SystemExit(f"extract failed: {summary.failed}")
    print(
        json.dumps(
            {
                "seconds": summary.seconds,
                "rows": sum(r.rows_read for r in summary.tables.values()),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def sql_table_child(source: str, warehouse: str, backend: str) -> None:
    """Load BENCH_TABLES with dlt's ``sql_table`` and print seconds, rows and peak RSS."""
    import dlt
    from dlt.sources.sql_database import sql_table

    folder = Path(warehouse).parent / f"dlt_{backend}"
    cx_url = (
        make_url(source).set(drivername="mysql", query={}).render_as_string(hide_password=False)
    )

    def load(tables: list[str], path: Path) -> tuple[float, int]:
        pipeline = dlt.pipeline(
            pipeline_name=f"bench_{backend}_{path.stem}",
            pipelines_dir=str(folder),
            destination=dlt.destinations.duckdb(str(path)),
            dataset_name="raw",
        )
        resources = [
            sql_table(
                credentials=source,
                table=table,
                backend=backend,  # type: ignore[arg-type]
                reflection_level="full_with_precision",
                chunk_size=100_000,
                backend_kwargs={"conn": cx_url} if backend == "connectorx" else None,
            )
            for table in tables
        ]
        started = time.perf_counter()
        pipeline.run(resources, write_disposition="replace", loader_file_format="parquet")
        seconds = time.perf_counter() - started
        counts = pipeline.last_trace.last_normalize_info.row_counts  # type: ignore[union-attr]
        return seconds, sum(v for k, v in counts.items() if not k.startswith("_dlt"))

    load(["tenants"], Path(warehouse).with_name(Path(warehouse).stem + "_warmup.duckdb"))
    seconds, rows = load(BENCH_TABLES, Path(warehouse))
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_rss_mb": peak_rss_mb()}))


def run_child(
    source: str, warehouse: Path, tables: list[str] | None, sql_table_backend: str | None = None
) -> dict:
    """One extraction in a fresh process (the project's, or dlt's ``sql_table``)."""
    command = [
        sys.executable,
        __file__,
        "--child",
        "--source",
        source,
        "--warehouse",
        str(warehouse),
    ]
    if tables:
        command += ["--tables", ",".join(tables)]
    if sql_table_backend:
        command += ["--sql-table-backend", sql_table_backend]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ceiling(source: str, scratch: Path) -> tuple[int, float]:
    """Rows and seconds of a raw connectorx read of BENCH_TABLES plus a DuckDB CTAS."""
    import connectorx as cx

    url = make_url(source).set(drivername="mysql", query={}).render_as_string(hide_password=False)
    conn = duckdb.connect(str(scratch))
    rows, started = 0, time.perf_counter()
    for table in BENCH_TABLES:
        arrow = cx.read_sql(url, f"select * from {table}", return_type="arrow")
        conn.register("arrow_input", arrow)
        conn.execute(f"create or replace table {table} as select * from arrow_input")
        conn.unregister("arrow_input")
        rows += arrow.num_rows
        del arrow
    seconds = time.perf_counter() - started
    conn.close()
    return rows, seconds


def create_database(server: str, scale: str, manifest: Path) -> str:
    """A fresh database of ``scale`` on the server; returns its URL."""
    name = f"ing_bench_{scale}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(server)
    with engine.begin() as conn:
        conn.execute(text(f"create database `{name}` character set utf8mb4"))
    engine.dispose()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    started = time.perf_counter()
    generate(url, seed=42, scale=scale, rates=DefectRates(), replace=True, manifest_path=manifest)
    print(f"generated {scale} in {time.perf_counter() - started:.0f} s ({name})", flush=True)
    return url


def drop_database(server: str, url: str) -> None:
    engine = create_engine(server)
    with engine.begin() as conn:
        conn.execute(text(f"drop database if exists `{make_url(url).database}`"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mysql+pymysql://root@127.0.0.1:3306/")
    parser.add_argument("--large", action="store_true", help="also measure peak RSS on large")
    parser.add_argument("--large-database", help="an existing generated large database to reuse")
    parser.add_argument("--repeat", type=int, default=3, help="ceiling/project pairs to run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", help=argparse.SUPPRESS)
    parser.add_argument("--tables", help=argparse.SUPPRESS)
    parser.add_argument("--sql-table-backend", help=argparse.SUPPRESS)
    parser.add_argument(
        "--sql-table", action="store_true", help="also time dlt's sql_table on the same tables"
    )
    parser.add_argument(
        "--no-incremental", action="store_true", help="skip the full/incremental loads"
    )
    args = parser.parse_args()
    if args.child and args.sql_table_backend:
        sql_table_child(args.source, args.warehouse, args.sql_table_backend)
        return
    if args.child:
        child(args.source, args.warehouse, args.tables.split(",") if args.tables else None)
        return

    created: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
        work = Path(tmp)
        try:
            medium = create_database(args.url, "medium", work / "medium.manifest.json")
            created.append(medium)

            # Alternate ceiling and project a few times: on a shared 2-core machine one pair
            # alone can be off by half either way; the median ratio is what is reported.
            ratios: list[float] = []
            sql_table_ratios: dict[str, list[float]] = {}
            for attempt in range(1, args.repeat + 1):
                rows, seconds = ceiling(medium, work / f"ceiling_{attempt}.duckdb")
                project = run_child(medium, work / f"bench_tables_{attempt}.duckdb", BENCH_TABLES)
                ceiling_rate = rows / seconds
                project_rate = project["rows"] / project["seconds"]
                ratios.append(project_rate / ceiling_rate)
                print(
                    f"[{attempt}] ceiling (connectorx read + DuckDB CTAS): {rows:,} rows in "
                    f"{seconds:.2f} s = {ceiling_rate:,.0f} rows/s"
                )
                print(
                    f"[{attempt}] project (warehouse extract): {project['rows']:,} rows in "
                    f"{project['seconds']:.2f} s = {project_rate:,.0f} rows/s = {ratios[-1]:.0%}; "
                    f"peak RSS {project['peak_rss_mb']:,.0f} MB"
                )
                for backend in SQL_TABLE_BACKENDS if args.sql_table else ():
                    dlt_run = run_child(
                        medium, work / f"sql_table_{backend}_{attempt}.duckdb", None, backend
                    )
                    rate = dlt_run["rows"] / dlt_run["seconds"]
                    sql_table_ratios.setdefault(backend, []).append(rate / ceiling_rate)
                    print(
                        f"[{attempt}] dlt sql_table, {backend} backend: {dlt_run['rows']:,} rows "
                        f"in {dlt_run['seconds']:.2f} s = {rate:,.0f} rows/s = "
                        f"{rate / ceiling_rate:.0%}; peak RSS {dlt_run['peak_rss_mb']:,.0f} MB"
                    )
            print(f"ratio: median {statistics.median(ratios):.0%} of the ceiling (target >= 60%)")
            for backend, shares in sql_table_ratios.items():
                print(f"dlt sql_table, {backend}: median {statistics.median(shares):.0%} of it")
            if args.no_incremental:
                return

            print(f"peak RSS medium ({', '.join(BENCH_TABLES)}): {project['peak_rss_mb']:,.0f} MB")
            if args.large or args.large_database:
                if args.large_database:
                    large = (
                        make_url(args.url)
                        .set(database=args.large_database)
                        .render_as_string(hide_password=False)
                    )
                else:
                    large = create_database(args.url, "large", work / "large.manifest.json")
                    created.append(large)
                big = run_child(large, work / "large.duckdb", BENCH_TABLES)
                ratio = big["peak_rss_mb"] / project["peak_rss_mb"]
                print(
                    f"peak RSS large  ({big['rows']:,} rows): {big['peak_rss_mb']:,.0f} MB = "
                    f"{ratio:.2f}x medium (target < 1.5x); {big['rows'] / big['seconds']:,.0f} rows/s"
                )

            # One warehouse per repeat (each with its own dlt state beside it): full loads,
            # one mutation of the source, then the incremental run of every warehouse.
            warehouses = [work / f"all_tables_{i}" / "warehouse.duckdb" for i in range(args.repeat)]
            fulls = []
            for path in warehouses:
                path.parent.mkdir()
                fulls.append(run_child(medium, path, None))
            mutate_source(medium, work / "medium.manifest.json", volume=0.01)
            shares = []
            for attempt, (path, full) in enumerate(zip(warehouses, fulls, strict=True), 1):
                incremental = run_child(medium, path, None)
                shares.append(incremental["seconds"] / full["seconds"])
                print(
                    f"[{attempt}] full load, every table: {full['rows']:,} rows in "
                    f"{full['seconds']:.2f} s; incremental after 1% mutate: "
                    f"{incremental['rows']:,} rows in {incremental['seconds']:.2f} s = "
                    f"{shares[-1]:.1%}; peak RSS {full['peak_rss_mb']:,.0f} MB full, "
                    f"{incremental['peak_rss_mb']:,.0f} MB incremental"
                )
            print(
                f"incremental: median {statistics.median(shares):.1%} of the full load "
                "(target < 10%)"
            )
        finally:
            for url in created:
                drop_database(args.url, url)


if __name__ == "__main__":
    main()
