"""Errors a user can cause print one line naming the problem and the fix, exit non-zero,
show no secret, and a traceback only with ``--debug``; a full disk fails the run.

The command line runs in a child process, as a user runs it (stdout and stderr apart).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ingestion.errors import describe_warehouse_error
from tests.ingestion_support import (
    PII_KEY,
    child_environment,
    generate_platform,
    run_files_under,
    source_rows,
    warehouse_rows,
)
from tests.serving_support import build_warehouse, mart_rows

PROJECT = Path(__file__).resolve().parents[2]
SECRET = "Quokka-Passw0rd-5150"


def warehouse(
    *args: str, env: dict[str, str] | None = None, **options
) -> subprocess.CompletedProcess:
    """``warehouse <args>`` in a child process."""
    environment = child_environment(WAREHOUSE_PII_KEY=PII_KEY, WAREHOUSE_DEBUG=None, **(env or {}))
    return subprocess.run(
        [sys.executable, "-c", "from orchestration.cli import app; app()", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=PROJECT,
        timeout=300,
        **options,
    )


def one_error_line(done: subprocess.CompletedProcess, *words: str) -> str:
    """The single ``error:`` line of a failed command (checked: one line, rc 2, no secret)."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert SECRET not in done.stdout + done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def read_only():
    """Makes a file or folder read-only even for root (immutable, ``chattr +i``; root ignores
    permission bits), and writable again afterwards."""
    made: list[Path] = []

    def make(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o555 if path.is_dir() else 0o444)
        elif subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without chattr: nothing is read-only")
        made.append(path)

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_malformed_source_url(tmp_path) -> None:
    for url in (f"mysql+pymysql://reader:{SECRET}@db:notaport/platform", "not a url at all"):
        done = warehouse("extract", "--source", url, "--warehouse", str(tmp_path / "w.duckdb"))
        one_error_line(done, "malformed", "mysql+pymysql://")
    assert not (tmp_path / "w.duckdb").exists()


def test_a_damaged_warehouse_file_for_extract_and_transform(tmp_path) -> None:
    damaged = tmp_path / "w.duckdb"
    damaged.write_bytes(b"not a database, just bytes" * 100)
    source = tmp_path / "platform.sqlite"
    generate_platform(f"sqlite:///{source}", tmp_path / "platform.manifest.json")
    for command in (["extract", "--source", f"sqlite:///{source}"], ["transform"]):
        done = warehouse(*command, "--warehouse", str(damaged))
        line = one_error_line(done, "not a readable DuckDB database", str(damaged))
        assert "one writing process" not in line  # the lock hint only for a lock
    debug = warehouse("--debug", "transform", "--warehouse", str(damaged))
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_a_read_only_folder_and_a_read_only_warehouse_file(tmp_path, read_only) -> None:
    source = tmp_path / "platform.sqlite"
    generate_platform(f"sqlite:///{source}", tmp_path / "platform.manifest.json")
    locked = tmp_path / "locked"
    locked.mkdir()
    read_only(locked)
    done = warehouse(
        "extract", "--source", f"sqlite:///{source}", "--warehouse", str(locked / "new" / "w.duckdb")
    )  # fmt: skip
    one_error_line(done, "permission denied", "writable")

    frozen = tmp_path / "frozen.duckdb"
    duckdb.connect(str(frozen)).close()
    read_only(frozen)
    for command in (["extract", "--source", f"sqlite:///{source}"], ["transform"]):
        done = warehouse(*command, "--warehouse", str(frozen))
        one_error_line(done, "permission denied", str(frozen))


def test_publish_to_an_unreachable_postgresql(tmp_path) -> None:
    built = build_warehouse(tmp_path / "w.duckdb", mart_rows())
    done = warehouse(
        "publish",
        "--warehouse", str(built),
        "--serving", str(tmp_path / "serving" / "warehouse.duckdb"),
        "--pg-url", f"postgresql://publisher:{SECRET}@127.0.0.1:9/warehouse",
    )  # fmt: skip
    # the server is tried before anything else: nothing is published anywhere
    one_error_line(done, "cannot reach PostgreSQL", "WAREHOUSE_PG_URL")
    assert not (tmp_path / "serving" / "warehouse.duckdb").exists()


def test_the_lock_hint_is_only_given_for_a_lock(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        source = tmp_path / "platform.sqlite"
        generate_platform(f"sqlite:///{source}", tmp_path / "platform.manifest.json")
        done = warehouse("extract", "--source", f"sqlite:///{source}", "--warehouse", str(path))
        one_error_line(done, "in use by another process", "one writing process per file")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    other = describe_warehouse_error(path, OSError("IO Error: Could not read from file: I/O error"))
    assert "one writing process" not in other


def test_a_full_disk_fails_the_extract_and_the_next_run_completes_it(tmp_path) -> None:
    source = tmp_path / "platform.sqlite"
    url = f"sqlite:///{source}"
    generate_platform(url, tmp_path / "platform.manifest.json")
    path = tmp_path / "w.duckdb"

    def small_disk() -> None:
        # Files may not grow past 1.5 MB: the load's write-ahead log fits, the checkpoint
        # into the database file does not (Python ignores SIGXFSZ: writes fail with EFBIG).
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))

    done = warehouse("extract", "--source", url, "--warehouse", str(path), preexec_fn=small_disk)
    one_error_line(done, "could not checkpoint", "the disk is full")

    again = warehouse("extract", "--source", url, "--warehouse", str(path))
    assert again.returncode == 0, again.stderr
    for table in ("users", "payments", "activity_logs"):
        source_ids = [r[0] for r in source_rows(url, f"select id from {table} order by id")]
        raw_ids = [r[0] for r in warehouse_rows(path, f"select id from raw.{table} order by id")]
        assert raw_ids == source_ids, table


@pytest.mark.slow
def test_a_failing_warehouse_run_ends_with_the_root_cause(tmp_path) -> None:
    env = {
        **run_files_under(tmp_path),
        "COLUMNS": "400",  # the summary's lines unwrapped
    }
    # Nothing listens on port 9.
    refused = warehouse(
        "run", "--source", f"mysql+pymysql://reader:{SECRET}@127.0.0.1:9/platform", env=env
    )
    assert refused.returncode == 1
    summary = " ".join(refused.stdout.split())
    assert "Run failed at observe_source:" in summary
    assert "Connection refused; check the source URL" in summary
    # A SQLite source that does not exist is not created, and said so.
    missing = tmp_path / "nowhere" / "platform.sqlite"
    done = warehouse("run", "--source", f"sqlite:///{missing}", env=env)
    assert done.returncode == 1
    assert f"the source SQLite file {missing} does not exist" in " ".join(done.stdout.split())
    assert not missing.exists()
    assert (tmp_path / "logs" / "alerts.jsonl").exists()  # the failures were alerted
    everything = [refused.stdout, refused.stderr, done.stdout, done.stderr]
    everything += [
        p.read_text(errors="replace")
        for p in tmp_path.rglob("*")
        if p.is_file() and p.suffix != ".duckdb"
    ]
    assert not [text for text in everything if SECRET in text]
