"""Erasure in raw: what `warehouse forget` rewrites, and what the extractor keeps rewriting."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ingestion.erasure import (
    LOG,
    REGISTER,
    ErasureError,
    Erasures,
    anonymous_id,
    forget,
    register_file,
    sync_register,
)
from ingestion.specs import TABLE_SPECS
from serving.publish import prune_versions
from serving.report.data import instructor_label
from serving.settings import ServingSettings

KEY = b"k" * 32
EMAIL = "a" * 64  # the hash both accounts of person 3 share
OTHER = "b" * 64


def _raw(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """raw.users with person 3 (accounts 3 and 8, same tenant and email), person 5, and an
    account 9 of another tenant with the same email; payments, posts and moderation cases."""
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    conn.execute("create schema raw")
    conn.execute(
        "create table raw.users as select * from (values "
        f"(3, 1, '{EMAIL}', 1980, '123', 'US', '2024-01-01'::timestamp), "
        f"(8, 1, '{EMAIL}', 1980, '123', 'US', '2024-02-01'::timestamp), "
        f"(5, 1, '{OTHER}', 1990, '456', 'DE', '2024-01-01'::timestamp), "
        f"(9, 2, '{EMAIL}', 1970, '789', 'FR', '2024-01-01'::timestamp)) "
        "as t(id, tenant_id, email_hash, birth_year, postal_prefix, country_code, updated_at)"
    )
    conn.execute(
        "create table raw.payments as select * from (values "
        "(1, 3, 10.50), (2, 8, 20.25), (3, 5, 7.00), (4, 9, 1.00)) as t(id, user_id, amount)"
    )
    conn.execute(
        "create table raw.community_posts as select * from (values "
        "(1, 8, 'my street', 'I live at 1 Main St'), (2, 5, 'hello', 'hi all')) "
        "as t(id, author_id, title, body)"
    )
    conn.execute(
        "create table raw.moderation_cases as select * from (values "
        "(1, 'user', 3, 5), (2, 'post', 3, 8), (3, 'user', 5, 3)) "
        "as t(id, target_type, target_id, moderator_id)"
    )
    return conn


def test_forget_rewrites_the_person_and_every_merged_account_and_keeps_the_money(
    tmp_path: Path,
) -> None:
    conn = _raw(tmp_path)
    register = register_file(tmp_path / "warehouse.duckdb")
    result = forget(conn, "raw", [8], KEY, register)

    assert (result.accounts, result.accounts_in_warehouse, result.already_forgotten) == (2, 2, 0)
    users = conn.execute(
        "select id, email_hash, birth_year, postal_prefix, country_code from raw.users order by id"
    ).fetchall()
    erased = [u for u in users if u[0] < 0]
    assert len(erased) == 2
    assert {u[0] for u in users} >= {5, 9} and not {3, 8} & {u[0] for u in users}
    # one person still: the two accounts share a token, which is no hash the source produced
    assert erased[0][1] == erased[1][1] and erased[0][1] not in (EMAIL, OTHER)
    assert all(u[2:] == (None, None, None) for u in erased)
    assert (9, EMAIL, 1970, "789", "FR") in users  # another tenant's account is someone else
    # the money stays, under the anonymous ids
    assert conn.execute("select sum(amount) from raw.payments").fetchone()[0] == pytest.approx(
        38.75
    )
    paid = dict(conn.execute("select id, user_id from raw.payments").fetchall())
    assert paid[3] == 5 and paid[4] == 9 and paid[1] < 0 and paid[2] < 0 and paid[1] != paid[2]
    assert {paid[1], paid[2]} == {u[0] for u in erased}
    # what they wrote is gone; what others wrote stays
    posts = conn.execute("select id, author_id, title, body from raw.community_posts order by id")
    (mine, theirs) = posts.fetchall()
    assert mine[1] < 0 and mine[2:] == (None, None)
    assert theirs == (2, 5, "hello", "hi all")
    # a moderation case's target is a user only when its type says so
    cases = conn.execute(
        "select id, target_id, moderator_id from raw.moderation_cases order by id"
    ).fetchall()
    assert cases[0][1] < 0 and cases[0][2] == 5  # user 3 as target; moderator 5 untouched
    assert cases[1][1] == 3  # a post with id 3, not user 3
    assert cases[2][1] == 5 and cases[2][2] < 0
    # the request is on record without any source id, and the register is copied to a file
    assert conn.execute(f"select accounts, status from raw.{LOG}").fetchall() == [(2, "applied")]
    kept = {r[0] for r in conn.execute(f"select anonymous_id from raw.{REGISTER}").fetchall()}
    assert kept == {u[0] for u in erased}
    assert {e["anonymous_id"] for e in json.loads(register.read_text())} == kept

    again = forget(conn, "raw", [3], KEY, register)
    assert (again.accounts_in_warehouse, again.already_forgotten, again.total_rows) == (0, 1, 0)


def test_the_extractor_rewrites_every_later_read_of_an_erased_account(tmp_path: Path) -> None:
    conn = _raw(tmp_path)
    forget(conn, "raw", [3], KEY, register_file(tmp_path / "warehouse.duckdb"))
    token = conn.execute("select email_hash from raw.users where id < 0 limit 1").fetchone()[0]
    erasures = Erasures.load(conn, "raw", KEY)

    # users as the extractor has them after masking: source ids, a fresh hash, new values
    batch = pa.table(
        {
            "id": pa.array([3, 5, 8], pa.int64()),
            "email_hash": [EMAIL, OTHER, EMAIL],
            "birth_year": pa.array([1980, 1990, 1980], pa.int32()),
            "postal_prefix": ["999", "456", "999"],
            "country_code": ["US", "DE", "US"],
        }
    )
    rewritten, rows = erasures.apply(batch, TABLE_SPECS["users"])
    assert rows == 2
    ids = rewritten.column("id").to_pylist()
    assert ids[1] == 5 and ids[0] < 0 and ids[2] < 0
    # the anonymous ids the extractor gives are the ones raw holds
    assert set(ids) - {5} == {
        r[0] for r in conn.execute("select id from raw.users where id < 0").fetchall()
    }
    assert rewritten.column("email_hash").to_pylist() == [token, OTHER, token]
    assert rewritten.column("postal_prefix").to_pylist() == [None, "456", None]
    assert rewritten.column("birth_year").to_pylist() == [None, 1990, None]

    events = pa.table({"id": [1, 2], "user_id": pa.array([8, 5], pa.uint64())})
    rewritten, rows = erasures.apply(events, TABLE_SPECS["activity_logs"])
    assert rows == 1 and rewritten.column("user_id").to_pylist()[1] == 5
    assert rewritten.column("user_id").to_pylist()[0] < 0

    assert not Erasures(KEY)  # an empty register changes nothing
    assert Erasures(KEY).apply(events, TABLE_SPECS["activity_logs"]) == (events, 0)


def test_anonymous_ids_depend_on_the_key_and_never_collide_with_source_ids() -> None:
    ids = [anonymous_id(i, KEY) for i in range(1, 2001)]
    assert all(i < 0 for i in ids) and len(set(ids)) == len(ids)
    assert anonymous_id(7, KEY) == anonymous_id(7, KEY) != anonymous_id(7, b"x" * 32)


def test_the_register_file_restores_a_warehouse_rebuilt_from_nothing(tmp_path: Path) -> None:
    conn = _raw(tmp_path)
    register = register_file(tmp_path / "warehouse.duckdb")
    forget(conn, "raw", [5], KEY, register)
    fresh = duckdb.connect(str(tmp_path / "rebuilt.duckdb"))
    assert sync_register(fresh, "raw", register) == 1
    assert (
        Erasures.load(fresh, "raw", KEY).apply(
            pa.table({"id": [5], "user_id": [5]}), TABLE_SPECS["payments"]
        )[1]
        == 1
    )


def test_forget_refuses_what_is_not_a_request(tmp_path: Path) -> None:
    conn = _raw(tmp_path)
    register = register_file(tmp_path / "warehouse.duckdb")
    with pytest.raises(ErasureError, match="no user id"):
        forget(conn, "raw", [], KEY, register)
    with pytest.raises(ErasureError, match="positive"):
        forget(conn, "raw", [-4], KEY, register)


def test_serving_versions_are_pruned_by_count_and_by_age(tmp_path: Path) -> None:
    settings = ServingSettings(
        serving_path=tmp_path / "serving" / "warehouse.duckdb", serving_keep=3, serving_keep_days=10
    )
    settings.versions_dir.mkdir(parents=True)
    now = datetime(2026, 3, 31, tzinfo=UTC)
    stamps = [now - timedelta(days=d) for d in (40, 20, 12, 5, 1)]
    names = [s.strftime("%Y%m%dT%H%M%S%fZ") for s in stamps]
    for name in names:
        (settings.versions_dir / f"{name}.duckdb").write_bytes(b"")
    pruned = prune_versions(settings, keep_version=names[1], now=now)
    # two beyond the newest three go, and so does the 12-day-old one; the served one stays
    assert sorted(p.stem for p in pruned) == [names[0], names[2]]
    assert sorted(p.stem for p in settings.versions_dir.iterdir()) == [
        names[1],
        names[3],
        names[4],
    ]


def test_the_report_names_an_erased_instructor_without_a_number_to_look_up() -> None:
    anonymous = anonymous_id(1449, KEY)
    label = instructor_label(anonymous, "Northwind Academy")
    assert label.startswith("Erased instructor ") and label.endswith(", Northwind Academy")
    assert str(anonymous) not in label and "1449" not in label
    assert instructor_label(1449, "Northwind Academy") == "Instructor 1449, Northwind Academy"
