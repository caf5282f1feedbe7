"""What `warehouse forget` accepts as a request, and the one-line errors of a bad one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingestion.erasure import ErasureError
from ingestion.pipeline import plan_tables
from ingestion.settings import WarehouseSettings
from ingestion.source_reader import SourceReader
from orchestration.cli import app
from orchestration.forgetting import request_ids


def _forget(args: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    out = CliRunner().invoke(app, ["forget", *args], env={"COLUMNS": "200", **env})
    return out.exit_code, [line for line in out.output.splitlines() if line.strip()]


def test_a_request_without_ids_or_with_a_bad_line_is_one_line(tmp_path: Path) -> None:
    env = {"WAREHOUSE_DATA_DIR": str(tmp_path), "WAREHOUSE_ERASURE_TABLE": ""}
    code, lines = _forget([], env)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("error: no user id to forget: give --user-id, --file")

    requests = tmp_path / "requests.txt"
    requests.write_text("# from the privacy desk\n4711\nabc\n")
    code, lines = _forget(["--file", str(requests)], env)
    assert code == 2 and lines == [
        f"error: {requests}:3: 'abc' is not a user id (one source users.id per line)"
    ]

    code, lines = _forget(["--user-id", "4711"], env)
    assert code == 2 and len(lines) == 1
    assert "does not exist: nothing to forget yet" in lines[0]
    assert not list(tmp_path.glob("*.duckdb"))  # nothing was created


def test_ids_come_from_flags_a_file_or_the_source_request_table(tmp_path: Path) -> None:
    source = tmp_path / "platform.sqlite"
    with sqlite3.connect(source) as con:
        con.execute("create table users (id integer primary key, email text)")
        con.execute("create table erasure_requests (id integer primary key, user_id integer)")
        con.executemany("insert into erasure_requests (user_id) values (?)", [(7,), (9,), (7,)])
    settings = WarehouseSettings(
        data_dir=tmp_path, source_url=f"sqlite:///{source}", erasure_table="erasure_requests"
    )
    requests = tmp_path / "requests.txt"
    requests.write_text("12\n\n13  # a comment\n")
    assert request_ids(settings, [5], requests) == [5, 12, 13]
    assert sorted(request_ids(settings, [], None)) == [7, 9]  # the table, when nothing else

    # the request table holds source ids in clear: extraction never reads it
    reader = SourceReader(f"sqlite:///{source}")
    try:
        planned = plan_tables(reader, None, withheld=["erasure_requests"])
        assert "erasure_requests" not in planned.unspecified
        with pytest.raises(Exception, match="holds erasure requests"):
            plan_tables(reader, ["erasure_requests"], withheld=["erasure_requests"])
    finally:
        reader.close()

    missing = WarehouseSettings(
        data_dir=tmp_path, source_url=f"sqlite:///{source}", erasure_table="nope"
    )
    with pytest.raises(ErasureError, match="not a table of the source"):
        request_ids(missing, [], None)
