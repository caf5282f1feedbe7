"""The platform generator, on both targets: determinism, every planted defect, bad input.

Defects are checked by SQL (or by parsing) against the database itself, and compared
with what the manifest claims; the manifest is never trusted on its own.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from generator import DefectRates, generate, read_manifest
from generator.mutate import mutate_source

pytestmark = pytest.mark.xdist_group("generator")

CANONICAL_PAYMENT_STATUSES = ("succeeded", "failed", "pending", "refunded", "partially_refunded")
UNKNOWN_PAYMENT_STATUSES = ("chargeback_review", "disputed")


@pytest.fixture(params=["sqlite", "mysql"])
def source_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty platform database on each target."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'platform.sqlite'}"
    make: Callable[[str], str] = request.getfixturevalue("mysql_database")
    return make("gen")


def build(
    url: str, tmp_path: Path, seed: int = 7, name: str = "m", **rates: float
) -> dict[str, Any]:
    return generate(
        url,
        seed=seed,
        scale="tiny",
        rates=DefectRates(**rates),
        replace=True,
        manifest_path=tmp_path / f"{name}.manifest.json",
    )


def ids(url: str, sql: str) -> list[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(int(row[0]) for row in conn.execute(text(sql)))
    finally:
        engine.dispose()


def rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def planted(manifest: dict[str, Any], defect: str, where: str) -> list[int]:
    return manifest["defects"][defect][where]["ids"]


def test_same_seed_gives_identical_checksums_and_another_seed_differs(tmp_path: Path) -> None:
    first = build(f"sqlite:///{tmp_path / 'a.sqlite'}", tmp_path, seed=11, name="a")
    second = build(f"sqlite:///{tmp_path / 'b.sqlite'}", tmp_path, seed=11, name="b")
    other = build(f"sqlite:///{tmp_path / 'c.sqlite'}", tmp_path, seed=12, name="c")
    assert first["tables"] == second["tables"]
    assert first["defects"] == second["defects"]
    differing = [
        t
        for t in first["tables"]
        if first["tables"][t]["checksum"] != other["tables"][t]["checksum"]
    ]
    assert len(differing) >= 15  # every table with random content differs


def test_mysql_and_sqlite_receive_the_same_rows(
    tmp_path: Path, mysql_database: Callable[[str], str]
) -> None:
    lite = build(f"sqlite:///{tmp_path / 'a.sqlite'}", tmp_path, name="lite")
    mysql_url = mysql_database("gen")
    mysql = build(mysql_url, tmp_path, name="mysql")
    assert lite["tables"] == mysql["tables"]
    for table, info in mysql["tables"].items():
        assert ids(mysql_url, f"select count(*) from {table}") == [info["rows"]], table
    lite_payments = rows(
        f"sqlite:///{tmp_path / 'a.sqlite'}",
        "select id, cast(amount as text), status from payments order by id",
    )
    mysql_payments = rows(
        mysql_url, "select id, cast(amount as char), status from payments order by id"
    )
    assert [(i, float(a), s) for i, a, s in lite_payments] == [
        (i, float(a), s) for i, a, s in mysql_payments
    ]


def test_every_planted_defect_is_in_the_database(source_url: str, tmp_path: Path) -> None:
    manifest = build(source_url, tmp_path)
    q = "`" if source_url.startswith("mysql") else '"'

    # 4. NULL currency where a currency belongs, only on the documented tables.
    for table in ("payments", "courses", "ebooks", "subscriptions", "field_service_orders"):
        found = ids(source_url, f"select id from {table} where currency is null")
        assert found == planted(manifest, "null_currency", f"{table}.currency"), table
        assert found, table

    # 5. Enum variants (case or synonym) and unknown values.
    statuses = dict(rows(source_url, "select id, status from payments"))
    unknown = sorted(i for i, s in statuses.items() if s in UNKNOWN_PAYMENT_STATUSES)
    variant = sorted(
        i
        for i, s in statuses.items()
        if s not in CANONICAL_PAYMENT_STATUSES and s not in UNKNOWN_PAYMENT_STATUSES
    )
    assert unknown == planted(manifest, "enum_unknown", "payments.status")
    assert variant == planted(manifest, "enum_variant", "payments.status")
    roles = dict(rows(source_url, "select id, role from users"))
    assert sorted(i for i, r in roles.items() if r in ("", "superuser")) == planted(
        manifest, "enum_unknown", "users.role"
    )
    assert sorted(
        i for i, r in roles.items() if r not in ("", "superuser", "learner", "instructor", "admin")
    ) == (planted(manifest, "enum_variant", "users.role"))

    # 2. Malformed JSON inside TEXT columns.
    for table, column in (
        ("communities", "metadata"),
        ("field_service_orders", "metadata"),
        ("field_service_events", "payload"),
        ("field_service_providers", "service_types"),
        ("domain_events", "payload"),
    ):
        broken = []
        for row_id, doc in rows(source_url, f"select id, {column} from {table}"):
            try:
                json.loads(doc)
            except ValueError:
                broken.append(row_id)
        assert sorted(broken) == planted(manifest, "malformed_json", f"{table}.{column}"), table

    # 6. Orphans.
    orphan_sql = {
        "refunds.payment_id": "select r.id from refunds r left join payments p on p.id = r.payment_id "
        "where p.id is null",
        "community_posts.community_id": "select x.id from community_posts x left join communities c "
        "on c.id = x.community_id where c.id is null",
        "payouts.batch_id": "select x.id from payouts x left join payout_batches b on b.id = x.batch_id "
        "where b.id is null",
        "assessment_attempts.course_id": "select x.id from assessment_attempts x left join courses c "
        "on c.id = x.course_id where c.id is null",
        "learning_paths.region_id": "select id from learning_paths where region_id is not null",
    }
    for where, sql in orphan_sql.items():
        found = ids(source_url, sql)
        assert found and found == planted(manifest, "orphan", where), where

    # 7. Duplicate people: same tenant + normalised email, a later (larger) id.
    dupes = ids(
        source_url,
        "select u.id from users u where exists (select 1 from users o where o.tenant_id = u.tenant_id "
        "and lower(trim(o.email)) = lower(trim(u.email)) and o.id < u.id)",
    )
    assert dupes and dupes == planted(manifest, "duplicate_person", "users")

    # 8. Soft deletes; 9. stale cursors; 10. zero dates.
    assert ids(source_url, "select id from users where deleted_at is not null") == planted(
        manifest, "soft_delete", "users"
    )
    assert ids(source_url, "select id from enrollments where completed_at > updated_at") == planted(
        manifest, "stale_cursor", "enrollments"
    )
    zero_text = "cast({q}legacyImportedAt{q} as char)" if q == "`" else "{q}legacyImportedAt{q}"
    zero = ids(
        source_url, f"select id from users where {zero_text.format(q=q)} = '0000-00-00 00:00:00'"
    )
    seen = rows(
        source_url,
        f"select {zero_text.format(q=q)}, count(*) from users group by 1 order by 2 desc limit 5",
    )
    assert zero and zero == planted(manifest, "zero_date", "users.legacyImportedAt"), seen

    # 1/3/11: structural quirks are in the schema itself.
    columns = rows(
        source_url, "select twoFactorLastVerifiedAt, legacyImportedAt from users where id = 1"
    )
    assert len(columns) == 1
    secrets = rows(source_url, "select api_key from integrations")
    assert secrets and all(s[0].startswith("sk_live_") for s in secrets)


def test_defect_counts_follow_the_configured_rates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    manifest = build(url, tmp_path, null_currency=0.2, soft_delete=0.1, malformed_json=0.25)
    payments = manifest["tables"]["payments"]["rows"]
    null_share = len(ids(url, "select id from payments where currency is null")) / payments
    # Foreign-priced rows are not eligible; hard-deleted payments leave the denominator.
    assert 0.17 <= null_share <= 0.205
    users = manifest["tables"]["users"]["rows"]
    assert len(ids(url, "select id from users where deleted_at is not null")) == round(users * 0.1)
    events = manifest["tables"]["field_service_events"]["rows"]
    assert manifest["defects"]["malformed_json"]["field_service_events.payload"]["count"] == round(
        events * 0.25
    )


def test_zero_rates_plant_nothing_but_the_structural_defects(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    rates = dict.fromkeys(DefectRates.__dataclass_fields__, 0.0)
    manifest = build(url, tmp_path, **rates)
    assert ids(url, "select id from payments where currency is null") == []
    assert ids(url, "select id from users where deleted_at is not null") == []
    nonzero = {w for by in manifest["defects"].values() for w, info in by.items() if info["count"]}
    # There is no regions table at all, whatever the rates: that orphan is structural.
    assert nonzero == {"learning_paths.region_id"}
    assert all(not info["ids"] for info in manifest["hard_deleted"].values())


def test_mutation_is_recorded_and_really_applied(source_url: str, tmp_path: Path) -> None:
    build(source_url, tmp_path)
    manifest_path = tmp_path / "m.manifest.json"
    before_enrollments = dict(
        rows(source_url, "select id, cast(updated_at as char) from enrollments")
    )
    record = mutate_source(source_url, manifest_path, volume=0.02)
    assert read_manifest(manifest_path)["mutations"] == [record]
    t = record["tables"]
    for table in (
        "users",
        "enrollments",
        "payments",
        "refunds",
        "activity_logs",
        "community_posts",
    ):
        inserted = t[table]["inserted"]
        assert (
            inserted
            and ids(source_url, f"select id from {table} where id >= {min(inserted)}") == inserted
        )
    for table in ("enrollments", "payments", "community_posts"):
        gone = t[table]["hard_deleted"]
        assert gone
        assert (
            ids(source_url, f"select id from {table} where id in ({','.join(map(str, gone))})")
            == []
        )
    soft = t["users"]["soft_deleted"]
    assert ids(
        source_url,
        f"select id from users where deleted_at is not null and id in ({','.join(map(str, soft))})",
    )
    # Stale cursor: progress changed, updated_at did not move.
    stale = t["enrollments"]["updated_stale"]
    after = dict(
        rows(
            source_url,
            f"select id, cast(updated_at as char) from enrollments where id in "
            f"({','.join(map(str, stale))})",
        )
    )
    assert stale and all(after[i] == before_enrollments[i] for i in stale)
    # Bumped updates carry a timestamp inside the mutation's simulated day.
    bumped = t["payments"]["updated"]
    stamps = rows(
        source_url,
        f"select cast(updated_at as char) from payments where id in ({','.join(map(str, bumped))})",
    )
    start = record["clock_start"].replace("T", " ").rstrip("Z")
    assert stamps and all(s[0][:19] >= start for s in stamps)


def test_mutation_is_deterministic(tmp_path: Path) -> None:
    records = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / f'{name}.sqlite'}"
        build(url, tmp_path, name=name)
        records.append(mutate_source(url, tmp_path / f"{name}.manifest.json", volume=0.01))
    assert records[0] == records[1]


def test_mutation_can_hard_delete_a_share_of_the_revenue_payments(tmp_path: Path) -> None:
    """`--rate revenue_hard_delete=R`: besides what the same mutation does without the rate
    (compared on a twin database), it deletes ceil(R x captured payments) revenue payments
    outright and leaves their refunds behind."""
    captured = "select id from payments where lower(trim(status)) in " + str(
        ("succeeded", "success", "refunded", "partially_refunded")
    )
    records, left, revenue = [], {}, {}
    for name, rate in (("plain", 0.0), ("purge", 0.05)):
        url = f"sqlite:///{tmp_path / f'{name}.sqlite'}"
        build(url, tmp_path, name=name)
        records.append(
            mutate_source(
                url, tmp_path / f"{name}.manifest.json", volume=0.01, revenue_hard_delete=rate
            )
        )
        left[name] = set(ids(url, "select id from payments"))
        revenue[name] = set(ids(url, captured))
        if rate:
            refunded = set(ids(url, "select payment_id from refunds"))
    plain, purge = records
    gone = left["plain"] - left["purge"]
    assert left["purge"] <= left["plain"]
    assert gone <= revenue["plain"]
    assert len(gone) == math.ceil(0.05 * len(revenue["plain"]))
    assert sorted(gone) == sorted(
        set(purge["tables"]["payments"]["hard_deleted"])
        - set(plain["tables"]["payments"]["hard_deleted"])
    )
    assert gone & refunded, "the refunds of the deleted payments stay behind"
    assert purge["revenue_hard_delete"] == 0.05
    for record in records:
        record["tables"]["payments"].pop("hard_deleted")
        record.pop("revenue_hard_delete")
    assert plain == purge


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``warehouse`` command, as a user runs it."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "warehouse"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_bad_input_gives_one_line_errors(tmp_path: Path, mysql_server: str) -> None:
    unknown = run_cli(
        "generate", "--scale", "huge", "--source", f"sqlite:///{tmp_path / 'x.sqlite'}"
    )
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "error: unknown scale 'huge'; choose one of: tiny, small, medium, large"
    ]
    source = f"sqlite:///{tmp_path / 'x.sqlite'}"
    mutation_rate = run_cli("generate", "--rate", "revenue_hard_delete=0.1", "--source", source)
    assert mutation_rate.returncode == 2
    assert mutation_rate.stderr.strip().splitlines() == [
        "error: --rate revenue_hard_delete applies to --mutate only: add --mutate"
    ]
    generation_rate = run_cli(
        "generate", "--mutate", "--rate", "null_currency=0.1", "--source", source
    )
    assert generation_rate.returncode == 2
    assert generation_rate.stderr.strip().splitlines() == [
        "error: --rate null_currency shapes a new database, not --mutate "
        "(which takes revenue_hard_delete)"
    ]
    unreachable = run_cli(
        "generate", "--scale", "tiny", "--source", "mysql+pymysql://root@127.0.0.1:1/nowhere"
    )
    assert unreachable.returncode == 2
    lines = unreachable.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot connect to mysql+pymysql://root@127.0.0.1:1/nowhere"
    )


def test_non_empty_target_is_refused_and_replace_touches_only_owned_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("create table keep_me (id integer)"))
        conn.execute(text("insert into keep_me values (1)"))
    engine.dispose()
    refused = run_cli("generate", "--scale", "tiny", "--source", url)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: {url} is not empty (tables: keep_me); pass --replace to drop and recreate the "
        "generator's tables, or point --source at an empty database"
    ]
    replaced = run_cli("generate", "--scale", "tiny", "--source", url, "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert ids(url, "select id from keep_me") == [1]
    again = run_cli("generate", "--scale", "tiny", "--source", url, "--replace")
    assert again.returncode == 0, again.stderr
    assert ids(url, "select count(*) from tenants") == [3]


def test_rows_belong_to_one_tenant(tmp_path: Path) -> None:
    """An enrollment, its course, its learner and its payment name the same tenant."""
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    build(url, tmp_path)
    assert (
        ids(
            url,
            "select e.id from enrollments e join courses c on c.id = e.course_id "
            "join users u on u.id = e.user_id where e.tenant_id <> c.tenant_id or e.tenant_id <> u.tenant_id",
        )
        == []
    )
    assert (
        ids(
            url,
            "select p.id from payments p join enrollments e on e.id = p.enrollment_id where p.tenant_id <> e.tenant_id",
        )
        == []
    )
    assert (
        ids(
            url,
            "select a.id from activity_logs a join users u on u.id = a.user_id where a.tenant_id <> u.tenant_id",
        )
        == []
    )


def test_cursors_do_not_pile_up_on_the_last_second(tmp_path: Path) -> None:
    """Real traffic spreads out: no cursor value is shared by a crowd of rows at the end."""
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    build(url, tmp_path)
    for table in (
        "users",
        "enrollments",
        "payments",
        "community_posts",
        "field_service_orders",
        "subscriptions",
    ):
        crowd = ids(
            url,
            f"select count(*) from {table} where updated_at = (select max(updated_at) from {table})",
        )
        assert crowd[0] <= 3, table
    assert ids(url, "select id from field_service_providers where updated_at < created_at") == []
    assert ids(url, "select id from payouts where created_at > '2026-06-30 23:59:59'") == []


def test_mysql_datetimes_stay_plain_datetime_after_dagster_is_imported(
    tmp_path: Path, mysql_database: Callable[[str], str]
) -> None:
    """Dagster's storage module makes SQLAlchemy render DateTime as DATETIME(6) on MySQL."""
    import dagster as dg

    dg.DagsterInstance.ephemeral().dispose()  # loads Dagster's storage (its compile hooks)

    url = mysql_database("gen")
    build(url, tmp_path)
    precision = rows(
        url,
        "select column_name, datetime_precision from information_schema.columns "
        "where table_schema = database() and data_type = 'datetime' and datetime_precision <> 0",
    )
    assert precision == []
    zero = ids(
        url, "select id from users where cast(legacyImportedAt as char) = '0000-00-00 00:00:00'"
    )
    assert zero
