"""Every MySQL value lands faithfully (or its column is skipped with a warning), every
drift is handled as the contract says, and a foreign database extracts: real MariaDB."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from ingestion.pipeline import run_extract
from ingestion.specs import TABLE_SPECS
from orchestration.cli import app
from tests.ingestion_support import (
    PII_KEY,
    generate_platform,
    settings_for,
    warehouse_rows,
)

pytestmark = pytest.mark.mysql


def execute(url: str, *statements: str) -> None:
    """DDL/DML with MariaDB's default sql_mode, which accepts zero-part dates."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET SESSION sql_mode = DEFAULT"))
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def raw_types(path, table: str) -> dict[str, str]:
    return dict(
        warehouse_rows(
            path,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = ?",
            [table],
        )
    )


# (column DDL, the value inserted, the value raw must hold, the raw type)
CASES = {
    "zero_part_datetime": ("DATETIME", "'2022-05-00 00:00:00'", None, "TIMESTAMP"),
    "zero_part_date": ("DATE", "'2022-00-10'", None, "DATE"),
    "zero_datetime": ("DATETIME", "'0000-00-00 00:00:00'", None, "TIMESTAMP"),
    "unsigned_top": (
        "BIGINT UNSIGNED",
        "18446744073709551615",
        Decimal(2**64 - 1),
        "DECIMAL(20,0)",
    ),
    "account_id": ("BIGINT UNSIGNED", "18446744073709551615", Decimal(2**64 - 1), "DECIMAL(20,0)"),
    "wide_decimal": (
        "DECIMAL(65,30)",
        "12345678901234567890123456789012345.123456789012345678901234567891",
        "12345678901234567890123456789012345.123456789012345678901234567891",
        "VARCHAR",
    ),
    "bits": ("BIT(64)", "b'" + "1" * 64 + "'", Decimal(2**64 - 1), "DECIMAL(20,0)"),
    "short_bits": ("BIT(5)", "b'10101'", 21, "BIGINT"),
    "negative_time": ("TIME", "'-838:59:59'", "-838:59:59", "VARCHAR"),
    "top_time": ("TIME(6)", "'838:59:58.999999'", "838:59:58.999999", "VARCHAR"),
}


@pytest.fixture(scope="module")
def odd_values(mysql_server, tmp_path_factory):
    """One table with a column per case (and a normal row), extracted once."""
    import uuid

    from sqlalchemy.engine import make_url

    name = f"values_{uuid.uuid4().hex[:8]}"
    engine = create_engine(mysql_server)
    with engine.begin() as conn:
        conn.execute(text(f"create database `{name}` character set utf8mb4"))
    url = make_url(mysql_server).set(database=name).render_as_string(hide_password=False)
    columns = ", ".join(f"{c} {ddl}" for c, (ddl, *_) in CASES.items())
    execute(
        url,
        f"CREATE TABLE odd_values (id INT PRIMARY KEY, {columns}, note VARCHAR(8))",
        f"INSERT INTO odd_values VALUES (1, {', '.join(v for _, v, *_ in CASES.values())}, 'odd')",
        "INSERT INTO odd_values (id, note) VALUES (2, 'plain')",
    )
    root = tmp_path_factory.mktemp("values")
    settings = settings_for(root, url)
    summary = run_extract(settings)
    yield url, settings, summary
    with engine.begin() as conn:
        conn.execute(text(f"drop database if exists `{name}`"))
    engine.dispose()


@pytest.mark.parametrize("column", list(CASES))
def test_each_odd_mysql_value_round_trips(odd_values, column) -> None:
    _, settings, summary = odd_values
    report = summary.tables["odd_values"]
    assert report.status == "ok", report.error
    _, _, expected, raw_type = CASES[column]
    rows = warehouse_rows(
        settings.warehouse_path, f'select "{column}", note from raw.odd_values order by id'
    )
    assert rows == [(expected, "odd"), (None, "plain")]
    assert raw_types(settings.warehouse_path, "odd_values")[column] == raw_type


def test_zero_part_dates_are_counted_like_zero_dates(odd_values) -> None:
    _, settings, summary = odd_values
    assert summary.tables["odd_values"].zero_dates_nulled == 3
    logged = warehouse_rows(
        settings.warehouse_path,
        "select zero_dates_nulled from raw._extract_log where table_name = 'odd_values'",
    )
    assert logged == [(3,)]


def test_colliding_column_and_table_names_land_distinct(mysql_database, tmp_path) -> None:
    url = mysql_database("values")
    execute(
        url,
        "CREATE TABLE people (id INT PRIMARY KEY, userId INT, user_id INT, `User Id` INT)",
        "INSERT INTO people VALUES (1, 10, 20, 30)",
        "CREATE TABLE `Mixed Case Tbl` (id INT PRIMARY KEY, v VARCHAR(8))",
        "CREATE TABLE mixed_case_tbl (id INT PRIMARY KEY, v VARCHAR(8))",
        "INSERT INTO `Mixed Case Tbl` VALUES (1, 'spaced'), (2, 'spaced')",
        "INSERT INTO mixed_case_tbl VALUES (1, 'snake')",
    )
    settings = settings_for(tmp_path, url)
    summary = run_extract(settings)
    assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
    people = warehouse_rows(
        settings.warehouse_path, "select user_id, user_id_2, user_id_3 from raw.people"
    )
    assert people == [(20, 10, 30)]  # user_id keeps its name; the others, in source order
    assert summary.tables["people"].renamed_columns == {
        "userId": "user_id_2",
        "User Id": "user_id_3",
    }
    assert warehouse_rows(settings.warehouse_path, "select v from raw.mixed_case_tbl") == [
        ("snake",)
    ]
    assert warehouse_rows(settings.warehouse_path, "select v from raw.mixed_case_tbl_2") == [
        ("spaced",),
        ("spaced",),
    ]
    assert summary.tables["Mixed Case Tbl"].raw_table == "mixed_case_tbl_2"


def test_drift_widening_evolves_raw_narrowing_is_reported_lossy_stops(
    mysql_database, tmp_path
) -> None:
    url = mysql_database("values")
    generate_platform(url, tmp_path / "platform.manifest.json")
    settings = settings_for(tmp_path, url)
    tables = ["payments", "refunds", "courses", "tenants"]
    assert run_extract(settings, tables=tables).ok
    execute(
        url,
        # widened: a 14-digit amount fits DECIMAL(16,2), not raw's (12,2)
        "ALTER TABLE payments MODIFY amount DECIMAL(16,2)",
        "UPDATE payments SET amount = 12345678901234.56, updated_at = '2030-01-01' WHERE id = 1",
        # narrowed at the source: every new value fits raw's DECIMAL(12,2)
        "ALTER TABLE refunds MODIFY amount DECIMAL(11,1)",
        "INSERT INTO refunds (payment_id, amount, reason, created_at) "
        "SELECT payment_id, 1.5, reason, created_at FROM refunds LIMIT 1",
        # lossy: a price becomes text
        "ALTER TABLE courses MODIFY price_amount VARCHAR(32)",
        "UPDATE courses SET updated_at = '2030-01-01' WHERE id = 1",
        # a VARCHAR made longer: raw's VARCHAR holds it already, reported all the same
        "ALTER TABLE tenants MODIFY name VARCHAR(200) NOT NULL",
    )
    summary = run_extract(settings, tables=tables)
    payments, refunds, courses, tenants = (summary.tables[t] for t in tables)
    assert payments.status == "ok", payments.error
    assert payments.widened_columns == {"amount": "decimal(12,2) -> decimal(16,2)"}
    assert raw_types(settings.warehouse_path, "payments")["amount"] == "DECIMAL(16,2)"
    assert warehouse_rows(
        settings.warehouse_path, "select amount from raw.payments where id = 1"
    ) == [(Decimal("12345678901234.56"),)]
    assert refunds.status == "ok", refunds.error
    assert refunds.narrowed_columns == {"amount": "decimal(11,1) into decimal(12,2)"}
    assert raw_types(settings.warehouse_path, "refunds")["amount"] == "DECIMAL(12,2)"
    assert courses.status == "failed"
    assert courses.error.startswith(
        "courses.price_amount changed type from decimal(12,2) to text, which would lose data"
    )
    assert tenants.status == "ok"
    assert tenants.widened_columns == {
        "name": "VARCHAR(120) -> VARCHAR(200) at the source; raw's type holds it"
    }
    # The next run finds raw already widened: nothing more to report or alter.
    again = run_extract(settings, tables=["payments"])
    assert again.ok and again.tables["payments"].widened_columns == {}


def test_a_database_without_the_platform_tables_extracts_with_rc_0(
    mysql_database, tmp_path
) -> None:
    url = mysql_database("foreign")
    execute(
        url,
        "CREATE TABLE film (film_id SMALLINT UNSIGNED PRIMARY KEY, title VARCHAR(64), rental_rate DECIMAL(4,2))",
        "INSERT INTO film VALUES (1, 'ACADEMY DINOSAUR', 0.99), (2, 'ACE GOLDFINGER', 4.99)",
        "CREATE TABLE rental_log (happened_at DATETIME, film_id SMALLINT UNSIGNED)",
        "INSERT INTO rental_log VALUES ('2024-01-01 10:00:00', 1)",
        "CREATE VIEW film_list AS SELECT film_id, title FROM film",
    )
    warehouse = tmp_path / "w.duckdb"
    env = {"WAREHOUSE_PII_KEY": PII_KEY, "WAREHOUSE_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    result = CliRunner().invoke(
        app, ["extract", "--source", url, "--warehouse", str(warehouse)], env=env
    )
    assert result.exit_code == 0, result.output
    assert "views skipped (--include-views lands them): film_list" in result.output
    assert "spec'd" not in result.stderr
    assert sorted(
        r[0]
        for r in warehouse_rows(
            warehouse,
            "select table_name from information_schema.tables where table_schema = 'raw' "
            "and table_name not like '\\_%' escape '\\'",
        )
    ) == ["film", "rental_log"]
    inventory = CliRunner().invoke(
        app, ["extract", "--inventory", "--source", url, "--warehouse", str(warehouse)], env=env
    )
    assert inventory.exit_code == 0, inventory.output
    assert "film_list" in inventory.output and "view" in inventory.output
    assert inventory.output.count("not in source") == len(TABLE_SPECS)

    with_views = CliRunner().invoke(
        app,
        ["extract", "--include-views", "--source", url, "--warehouse", str(warehouse)],
        env=env,
    )
    assert with_views.exit_code == 0, with_views.output
    assert warehouse_rows(warehouse, "select film_id, title from raw.film_list order by 1") == [
        (1, "ACADEMY DINOSAUR"),
        (2, "ACE GOLDFINGER"),
    ]
