"""``warehouse extract`` against real MariaDB: types, PII, privileges, drift and faults.

Each test builds its own ``ing_*`` database (dropped afterwards) and its own DuckDB
file under ``tmp_path``. A missing server fails these tests in CI (see conftest).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ingestion.pipeline import ExtractError, run_extract
from ingestion.source_reader import SourceReader
from ingestion.specs import TABLE_SPECS
from tests.ingestion_support import (
    generate_platform,
    generated_pii_values,
    raw_count,
    scan_warehouse_for,
    settings_for,
    source_count,
    source_rows,
    warehouse_rows,
)

pytestmark = pytest.mark.mysql


def execute(url: str, *statements: str) -> None:
    """Run DDL/DML on the server with the loosest sql_mode (zero dates allowed)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'"))
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def platform(mysql_database, tmp_path: Path) -> tuple[str, dict]:
    """A tiny generated platform database on MariaDB: (url, manifest)."""
    url = mysql_database("ing")
    return url, generate_platform(url, tmp_path / "platform.manifest.json")


def test_mysql_types_round_trip_into_raw(mysql_database, tmp_path) -> None:
    url = mysql_database("ing")
    execute(
        url,
        """
        CREATE TABLE type_probe (
            id BIGINT UNSIGNED PRIMARY KEY,
            amount DECIMAL(12,2), wide DECIMAL(30,10), is_active TINYINT(1), small TINYINT,
            precise_at DATETIME(6), plain_at DATETIME, legacy_at DATETIME, legacy_on DATE,
            kind ENUM('course','ebook'), tags SET('new','sale'), doc JSON, body TEXT,
            counter BIGINT UNSIGNED, note VARCHAR(40), ratio DOUBLE,
            required_at DATETIME NOT NULL
        ) CHARACTER SET utf8mb4
        """,
        """
        INSERT INTO type_probe VALUES
        (1, 1234567890.12, 12345678901234567890.0123456789, 1, -5,
         '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05', '0000-00-00 00:00:00',
         '0000-00-00', 'ebook', 'new,sale', '{"a": [1, 2]}', 'line one\nline two',
         18446744073709551615, 'learning 🚀 ünïcode', 0.5, '0000-00-00 00:00:00'),
        (2, -0.01, 0, 0, 127, '1999-12-31 23:59:59.000001', NULL, NULL, '2024-02-29',
         NULL, '', '{"b": null}', '{"malformed": ', 0, NULL, NULL, '2024-03-01 10:00:00')
        """,
    )
    execute(url, "CREATE TABLE empty_probe (id INT PRIMARY KEY, note VARCHAR(8))")
    settings = settings_for(tmp_path, url)
    summary = run_extract(settings)
    assert summary.unspecified == ["empty_probe", "type_probe"]
    assert raw_count(settings.warehouse_path, "empty_probe") == 0  # exists, empty
    report = summary.tables["type_probe"]
    assert (report.status, report.specified, report.mode) == ("ok", False, "replace"), report.error
    assert report.zero_dates_nulled == 3  # two nullable columns and a NOT NULL one

    rows = warehouse_rows(
        settings.warehouse_path,
        "select id, amount, wide, is_active, small, precise_at, plain_at, legacy_at, legacy_on, "
        "kind, tags, doc, body, counter, note, ratio from raw.type_probe order by id",
    )
    assert rows[0] == (
        1,
        Decimal("1234567890.12"),
        Decimal("12345678901234567890.0123456789"),
        True,
        -5,
        datetime(2024, 1, 2, 3, 4, 5, 123456),
        datetime(2024, 1, 2, 3, 4, 5),
        None,
        None,
        "ebook",
        "new,sale",
        '{"a": [1, 2]}',
        "line one\nline two",
        Decimal("18446744073709551615"),
        "learning 🚀 ünïcode",
        0.5,
    )
    assert rows[1][1:4] == (Decimal("-0.01"), Decimal("0E-10"), False)
    assert rows[1][5] == datetime(1999, 12, 31, 23, 59, 59, 1)
    assert rows[1][10:13] == ("", '{"b": null}', '{"malformed": ')
    required = warehouse_rows(
        settings.warehouse_path, "select required_at from raw.type_probe order by id"
    )
    assert required == [(None,), (datetime(2024, 3, 1, 10),)]
    types = dict(
        warehouse_rows(
            settings.warehouse_path,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'type_probe'",
        )
    )
    assert types["amount"] == "DECIMAL(12,2)"
    assert types["wide"] == "DECIMAL(30,10)"
    assert types["is_active"] == "BOOLEAN"
    assert types["precise_at"] == "TIMESTAMP"
    assert types["id"] == "DECIMAL(20,0)"  # BIGINT UNSIGNED: 2^64-1 must fit, key or not
    assert types["counter"] == "DECIMAL(20,0)"
    assert types["kind"] == types["tags"] == types["doc"] == "VARCHAR"
    log = warehouse_rows(
        settings.warehouse_path,
        "select mode, zero_dates_nulled, status from raw._extract_log where table_name = 'type_probe'",
    )
    assert log == [("replace", 3, "ok")]


def test_mariadb_platform_lands_every_table_without_pii(platform, tmp_path) -> None:
    url, manifest = platform
    settings = settings_for(tmp_path, url)
    summary = run_extract(settings)
    assert summary.ok, summary.failed
    assert summary.unspecified == []
    for table in TABLE_SPECS:
        assert raw_count(settings.warehouse_path, table) == manifest["tables"][table]["rows"], table
    planted = manifest["defects"]["zero_date"]["users.legacyImportedAt"]["count"]
    assert summary.tables["users"].zero_dates_nulled == planted
    assert scan_warehouse_for(settings.warehouse_path, generated_pii_values(url)) == []
    # LOCAL columns land as the source's wall value, untouched.
    first_payment = source_rows(url, "select created_at from payments order by id limit 1")[0][0]
    landed = warehouse_rows(
        settings.warehouse_path, "select created_at from raw.payments order by id limit 1"
    )[0][0]
    assert landed == first_payment


def test_a_select_only_account_extracts(platform, mysql_server, tmp_path) -> None:
    url, manifest = platform
    database = make_url(url).database
    user = f"ing_ro_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    execute(
        mysql_server,
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT SELECT ON `{database}`.* TO '{user}'@'%'",
    )
    try:
        reader_url = make_url(url).set(username=user, password=password)
        settings = settings_for(tmp_path, reader_url.render_as_string(hide_password=False))
        summary = run_extract(settings, mode="reconcile")
        assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
        assert (
            raw_count(settings.warehouse_path, "payments") == manifest["tables"]["payments"]["rows"]
        )
        grants = source_rows(reader_url.render_as_string(hide_password=False), "SHOW GRANTS")
        assert any("GRANT SELECT ON" in g[0] for g in grants)
        assert not any(w in g[0] for g in grants for w in ("INSERT", "UPDATE", "ALL PRIVILEGES"))
    finally:
        execute(mysql_server, f"DROP USER IF EXISTS '{user}'@'%'")


def test_schema_drift_new_dropped_and_lossy_columns(platform, tmp_path) -> None:
    url, _ = platform
    settings = settings_for(tmp_path, url)
    tables = ["users", "payments", "courses"]
    assert run_extract(settings, tables=tables).ok
    users_cursor = source_rows(url, "select max(updated_at) from users")[0][0]
    execute(
        url,
        "ALTER TABLE payments ADD COLUMN coupon_code VARCHAR(16)",
        "UPDATE payments SET coupon_code = 'SPRING', updated_at = '2030-01-01 00:00:00' WHERE id <= 3",
        "ALTER TABLE users DROP COLUMN country_code",
        "UPDATE users SET updated_at = '2030-01-01 00:00:00' WHERE id <= 2",
        "ALTER TABLE courses MODIFY price_amount VARCHAR(32)",
        "UPDATE courses SET updated_at = '2030-01-01 00:00:00' WHERE id <= 2",
    )
    summary = run_extract(settings, tables=tables)
    users, payments, courses = (summary.tables[t] for t in tables)
    assert (payments.status, payments.new_columns) == ("ok", ["coupon_code"])
    assert (users.status, users.dropped_columns) == ("ok", ["country_code"])
    assert courses.status == "failed"
    assert courses.error.startswith(
        "courses.price_amount changed type from decimal(12,2) to text, which would lose data"
    )
    coupons = warehouse_rows(
        settings.warehouse_path,
        "select id, coupon_code from raw.payments where id <= 4 order by id",
    )
    assert coupons == [(1, "SPRING"), (2, "SPRING"), (3, "SPRING"), (4, None)]
    # Every users row landed again after the drop (the two touched and the lookback window's)
    # has NULL country_code; rows not re-read keep their last value.
    relanded = source_rows(
        url,
        "select count(*) from users where updated_at >= "
        f"'{users_cursor:%Y-%m-%d %H:%M:%S}' - interval 2 hour",
    )[0][0]
    countries = warehouse_rows(
        settings.warehouse_path,
        "select count(*) filter (where country_code is null), "
        "count(*) filter (where id <= 2 and country_code is null), count(*) from raw.users",
    )[0]
    assert relanded >= 2
    assert countries == (relanded, 2, source_count(url, "users"))
    log = warehouse_rows(
        settings.warehouse_path,
        "select table_name, status, error from raw._extract_log "
        "where load_id = ? order by table_name",
        [summary.load_id],
    )
    assert [(t, s) for t, s, _ in log] == [
        ("courses", "failed"),
        ("payments", "ok"),
        ("users", "ok"),
    ]
    assert "courses.price_amount" in log[0][2]


class KilledOnceReader(SourceReader):
    """One activity_logs range read first waits on the server long enough to be killed."""

    slowed = False

    def _fetch(self, sql, columns):  # type: ignore[override]
        if "`activity_logs`" in sql and " > " in sql and not KilledOnceReader.slowed:
            import connectorx as cx

            KilledOnceReader.slowed = True
            # The killer thread kills this connection: the read fails like a dropped link.
            cx.read_sql(self.connectorx_url, "SELECT SLEEP(20) AS waited", return_type="arrow")
        return super()._fetch(sql, columns)


def kill_sleeping_query(server_url: str, database: str, stop: threading.Event) -> None:
    """Kill the connection running the slowed read as soon as it shows up."""
    engine = create_engine(server_url)
    try:
        while not stop.is_set():
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "select id from information_schema.processlist where db = :db "
                        "and info like '%SLEEP(20)%' and info not like '%processlist%'"
                    ),
                    {"db": database},
                ).fetchall()
                for (connection_id,) in rows:
                    conn.execute(text(f"KILL CONNECTION {int(connection_id)}"))
                    return
            time.sleep(0.05)
    finally:
        engine.dispose()


def assert_raw_matches_source(url: str, warehouse: Path, table: str) -> None:
    """No duplicate keys, no gaps: raw's ids are exactly the source's."""
    source_ids = [r[0] for r in source_rows(url, f"select id from {table} order by id")]
    raw_ids = [r[0] for r in warehouse_rows(warehouse, f"select id from raw.{table} order by id")]
    assert len(raw_ids) == len(set(raw_ids)), f"duplicate keys in raw.{table}"
    assert raw_ids == source_ids


def test_a_killed_connection_mid_table_is_retried(platform, mysql_server, tmp_path) -> None:
    url, _ = platform
    settings = settings_for(tmp_path, url)
    KilledOnceReader.slowed = False
    stop = threading.Event()
    killer = threading.Thread(
        target=kill_sleeping_query, args=(mysql_server, make_url(url).database, stop), daemon=True
    )
    killer.start()
    try:
        started = time.perf_counter()
        summary = run_extract(
            settings,
            tables=["activity_logs"],
            chunk_rows=1_000,
            reader_factory=lambda u: KilledOnceReader(u, backoff_seconds=0.1),
        )
    finally:
        stop.set()
        killer.join(5)
    assert KilledOnceReader.slowed
    assert time.perf_counter() - started < 15, "the slowed query was not killed"
    report = summary.tables["activity_logs"]
    assert (report.status, report.retries) == ("ok", 1)
    assert_raw_matches_source(url, settings.warehouse_path, "activity_logs")


class DyingReader(SourceReader):
    """Dies like a killed process (not an Exception) on the third activity_logs range."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reads = 0

    def read(self, table, columns, where, stats):  # type: ignore[override]
        if table == "activity_logs":
            self.reads += 1
            if self.reads == 3:
                raise KeyboardInterrupt("simulated process death mid-table")
        return super().read(table, columns, where, stats)


def test_a_run_that_dies_mid_table_is_completed_by_the_next(platform, tmp_path) -> None:
    url, _ = platform
    settings = settings_for(tmp_path, url)
    tables = ["payments", "activity_logs", "refunds"]
    assert run_extract(settings, tables=["payments"]).ok
    execute(url, "UPDATE payments SET updated_at = '2030-01-01 00:00:00' WHERE id <= 50")
    with pytest.raises((KeyboardInterrupt, ExtractError)):
        run_extract(settings, tables=tables, chunk_rows=1_000, reader_factory=DyingReader)
    summary = run_extract(settings, tables=tables, chunk_rows=1_000)
    assert summary.ok
    for table in tables:
        assert_raw_matches_source(url, settings.warehouse_path, table)
    changed = warehouse_rows(
        settings.warehouse_path,
        "select count(*) from raw.payments where updated_at = '2030-01-01 00:00:00'",
    )[0][0]
    assert changed == 50


class CountingReader(SourceReader):
    """Counts the row reads (SELECTs of a table's rows) issued per table."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reads: dict[str, int] = {}

    def read(self, table, columns, where, stats):  # type: ignore[override]
        self.reads[table] = self.reads.get(table, 0) + 1
        return super().read(table, columns, where, stats)


Reader = TypeVar("Reader", bound=SourceReader)


def recording(make: Callable[[str], Reader]) -> tuple[Callable[[str], Reader], list[Reader]]:
    """A reader factory for ``run_extract`` that keeps every reader it makes, and that list."""
    readers: list[Reader] = []

    def factory(url: str) -> Reader:
        readers.append(make(url))
        return readers[-1]

    return factory, readers


def counting_run(settings, **kwargs):
    """``run_extract`` with a CountingReader: (summary, reads per table)."""
    factory, readers = recording(CountingReader)

    summary = run_extract(settings, reader_factory=factory, **kwargs)
    return summary, readers[0].reads


def test_unchanged_tables_are_not_read_and_changes_in_the_window_are(platform, tmp_path) -> None:
    url, _ = platform
    settings = settings_for(tmp_path, url)
    assert run_extract(settings).ok

    # Nothing changed: no table's rows are selected at all, and the log still has every table.
    summary, reads = counting_run(settings)
    assert summary.ok
    assert reads == {}
    assert {t: r.rows_read for t, r in summary.tables.items()} == dict.fromkeys(TABLE_SPECS, 0)
    log = warehouse_rows(
        settings.warehouse_path,
        "select table_name, mode, rows_read, status from raw._extract_log where load_id = ?",
        [summary.load_id],
    )
    assert sorted(t for t, *_ in log) == sorted(TABLE_SPECS)
    assert {(r, s) for _, _, r, s in log} == {(0, "ok")}
    assert dict((t, m) for t, m, *_ in log)["tenants"] == "full"

    # A users row inside the lookback window changes without its cursor moving, a tenant
    # (no cursor at all) is renamed: both tables are read again, nothing else is.
    newest = source_rows(url, "select max(updated_at) from users")[0][0]
    execute(
        url,
        f"UPDATE users SET country_code = 'ZZ' WHERE updated_at = '{newest:%Y-%m-%d %H:%M:%S}'",
        "UPDATE tenants SET name = 'Renamed tenant' WHERE id = 1",
    )
    summary, reads = counting_run(settings)
    assert summary.ok
    assert set(reads) == {"users", "tenants"}
    window = source_rows(
        url,
        "select count(*) from users where updated_at >= "
        f"'{newest:%Y-%m-%d %H:%M:%S}' - interval 2 hour",
    )[0][0]
    assert summary.tables["users"].rows_read == window
    assert summary.tables["tenants"].rows_read == source_count(url, "tenants")
    assert (
        warehouse_rows(
            settings.warehouse_path,
            "select count(*) from raw.users where country_code = 'ZZ'",
        )[0][0]
        == source_rows(url, "select count(*) from users where country_code = 'ZZ'")[0][0]
        > 0
    )
    assert warehouse_rows(settings.warehouse_path, "select name from raw.tenants where id = 1") == [
        ("Renamed tenant",)
    ]
    # The next run finds both unchanged again.
    summary, reads = counting_run(settings)
    assert (summary.ok, reads) == (True, {})


class CatalogueDropsOnce(SourceReader):
    """The server kills the connection of the first catalogue reflection mid-way."""

    dropped = False

    def _catalogue(self, conn):  # type: ignore[override]
        if not CatalogueDropsOnce.dropped:
            CatalogueDropsOnce.dropped = True
            own = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
            killer = create_engine(self.sqlalchemy_url)
            try:
                with killer.connect() as other:
                    other.exec_driver_sql(f"KILL CONNECTION {int(own)}")
            finally:
                killer.dispose()
        return super()._catalogue(conn)


def test_a_connection_lost_during_reflection_is_retried(platform, tmp_path) -> None:
    url, _ = platform
    settings = settings_for(tmp_path, url)
    CatalogueDropsOnce.dropped = False
    factory, readers = recording(lambda u: CatalogueDropsOnce(u, backoff_seconds=0.1))

    summary = run_extract(settings, tables=["payments", "refunds"], reader_factory=factory)
    assert CatalogueDropsOnce.dropped
    assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
    assert readers[0].catalogue_stats.retries == 1
    for table in ("payments", "refunds"):
        assert_raw_matches_source(url, settings.warehouse_path, table)


def test_a_failed_duckdb_load_is_retried(platform, tmp_path) -> None:
    url, _ = platform
    # The load step fails once, after its second job, with the I/O error of a failing disk.
    settings = settings_for(tmp_path, url).model_copy(update={"fault_at": "load_io_error:2"})
    summary = run_extract(settings, tables=["payments", "refunds"])
    assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
    assert summary.load_retries == 1
    assert summary.tables["payments"].rows_landed == source_count(url, "payments")
    for table in ("payments", "refunds"):
        assert_raw_matches_source(url, settings.warehouse_path, table)


def test_reconcile_removes_duplicate_keys(platform, tmp_path) -> None:
    url, _ = platform
    settings = settings_for(tmp_path, url)
    assert run_extract(settings, tables=["refunds", "payments"]).ok
    warehouse = settings.warehouse_path
    import duckdb

    with duckdb.connect(str(warehouse)) as conn:  # what a re-executed load job leaves
        conn.execute("insert into raw.refunds select * from raw.refunds where id <= 7")
        conn.execute("insert into raw.payments select * from raw.payments where id <= 3")
    summary = run_extract(settings, tables=["refunds", "payments"], mode="reconcile")
    assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
    assert (
        summary.tables["refunds"].duplicates_removed,
        summary.tables["payments"].duplicates_removed,
    ) == (7, 3)
    for table in ("payments", "refunds"):
        assert_raw_matches_source(url, warehouse, table)
    logged = warehouse_rows(
        warehouse,
        "select table_name, duplicates_removed from raw._extract_log "
        "where load_id = ? order by table_name",
        [summary.load_id],
    )
    assert logged == [("payments", 3), ("refunds", 7)]


class BatchSizes(SourceReader):
    """Records the size of every batch the generic (keyset or streamed) reads return."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: dict[str, list[int]] = {}

    def keyset_batches(self, table, *args, **kwargs):  # type: ignore[override]
        for batch in super().keyset_batches(table, *args, **kwargs):
            self.batches.setdefault(table, []).append(batch.num_rows)
            yield batch

    def stream_batches(self, table, *args, **kwargs):  # type: ignore[override]
        for batch in super().stream_batches(table, *args, **kwargs):
            self.batches.setdefault(table, []).append(batch.num_rows)
            yield batch


def test_unspecified_tables_without_an_integer_key_are_read_in_bounded_chunks(
    mysql_database, tmp_path
) -> None:
    url = mysql_database("ing")
    tags = ["a", "B", "c'quote", "back\\slash", "🚀 rocket", "Zeta", "é"]
    links = ", ".join(
        f"('t{t:02d}', '{tag.replace(chr(92), chr(92) * 2).replace(chr(39), chr(39) * 2)}', "
        f"{t * 1.25:.2f}, 'note {t}')"
        for t in range(7)
        for tag in tags
    )
    audit = ", ".join(
        f"('2024-01-{1 + i % 28:02d} 10:00:00.{i:06d}', 'line {i}', {i}.5, '0{i % 10}:30:00', "
        f"{i % 2}, {18446744073709551615 - i}, "
        f"{'NULL' if i % 5 else chr(39) + '0000-00-00 00:00:00' + chr(39)})"
        for i in range(43)
    )
    execute(
        url,
        "CREATE TABLE tag_links (tenant VARCHAR(16), tag VARCHAR(32), weight DECIMAL(6,2), "
        "note TEXT, PRIMARY KEY (tenant, tag)) CHARACTER SET utf8mb4",
        f"INSERT INTO tag_links VALUES {links}",
        "CREATE TABLE audit_lines (happened_at DATETIME(6), line VARCHAR(32), amount DECIMAL(12,2), "
        "span TIME, flag TINYINT(1), big BIGINT UNSIGNED, legacy_at DATETIME) CHARACTER SET utf8mb4",
        f"INSERT INTO audit_lines VALUES {audit}",
    )
    settings = settings_for(tmp_path, url)
    factory, readers = recording(BatchSizes)

    summary = run_extract(
        settings, tables=["tag_links", "audit_lines"], chunk_rows=10, reader_factory=factory
    )
    assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
    assert summary.unspecified == ["audit_lines", "tag_links"]
    # 49 keyed rows in pages of 10; 43 unkeyed rows streamed 10 at a time.
    assert readers[0].batches["tag_links"] == [10, 10, 10, 10, 9]
    assert readers[0].batches["audit_lines"] == [10, 10, 10, 10, 3]
    assert summary.tables["audit_lines"].zero_dates_nulled == 9

    source_links = source_rows(url, "select tenant, tag, weight, note from tag_links")
    raw_links = warehouse_rows(
        settings.warehouse_path, "select tenant, tag, weight, note from raw.tag_links"
    )
    assert sorted(raw_links) == sorted(source_links)
    assert len(raw_links) == 49
    source_audit = source_rows(
        url,
        "select happened_at, line, amount, cast(span as char), flag = 1, cast(big as char), "
        "nullif(legacy_at, '0000-00-00 00:00:00') from audit_lines",
    )
    raw_audit = warehouse_rows(
        settings.warehouse_path,
        "select happened_at, line, amount, cast(span as varchar), flag, cast(big as varchar), "
        "legacy_at from raw.audit_lines",
    )
    assert len(raw_audit) == 43
    assert sorted(raw_audit, key=str) == sorted(
        [(*r[:4], bool(r[4]), *r[5:]) for r in source_audit], key=str
    )


class RangeReads(SourceReader):
    """Records every small query and the rows of every key-range read."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.queries: list[str] = []
        self.batches: dict[str, list[int]] = {}

    def rows(self, sql, table, stats):  # type: ignore[override]
        self.queries.append(sql)
        return super().rows(sql, table, stats)

    def read(self, table, columns, where, stats):  # type: ignore[override]
        batch = super().read(table, columns, where, stats)
        self.batches.setdefault(table, []).append(batch.num_rows)
        return batch


def test_a_full_read_takes_key_ranges_of_about_chunk_rows_without_counting(
    platform, tmp_path
) -> None:
    url, _ = platform
    # Keys with a dense run, a gap of a million and a sparse tail (every 1000th key).
    keys = [*range(1, 251), *range(1_000_001, 1_000_101), *range(2_000_000, 2_300_000, 1_000)]
    execute(
        url,
        "CREATE TABLE sparse_keys (id BIGINT PRIMARY KEY, label VARCHAR(16))",
        "INSERT INTO sparse_keys VALUES " + ", ".join(f"({k}, 'k{k}')" for k in keys),
    )
    settings = settings_for(tmp_path, url)
    factory, readers = recording(RangeReads)

    summary = run_extract(
        settings, tables=["sparse_keys", "activity_logs"], chunk_rows=100, reader_factory=factory
    )
    assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
    reader = readers[0]
    for table in ("sparse_keys", "activity_logs"):
        # About chunk_rows: a range is sized from the density of the one before it.
        assert max(reader.batches[table]) <= 110, (table, reader.batches[table])
        assert (
            sum(reader.batches[table])
            == source_count(url, table)
            == raw_count(settings.warehouse_path, table)
        )
    # The sparse tail (300 rows over 300,000 keys) is not read one empty range at a time.
    assert len(reader.batches["sparse_keys"]) < 40, reader.batches["sparse_keys"]
    assert not [q for q in reader.queries if "COUNT(*)" in q and "WHERE" not in q]
    assert (
        sorted(
            r[0] for r in warehouse_rows(settings.warehouse_path, "select id from raw.sparse_keys")
        )
        == keys
    )
