"""The GX suites catch what they promise, validated through pandas batches read from DuckDB."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from expectations.marts import mart_suites
from expectations.raw import raw_columns, raw_columns_suite, raw_suite
from expectations.validation import Severity, build_data_docs, run_suite
from orchestration.source_catalog import source_table

USERS_RAW = [
    "id",
    "tenant_id",
    "email_hash",
    "role",
    "country_code",
    "birth_year",
    "postal_prefix",
    "marketing_consent",
    "created_at",
    "updated_at",
    "deleted_at",
    "two_factor_last_verified_at",
    "legacy_imported_at",
    "_dlt_load_id",
    "_source_deleted_at",
]


def test_raw_columns_follow_the_contract() -> None:
    assert sorted(raw_columns("users", source_table("users").columns)) == sorted(USERS_RAW)
    assert "api_key" not in raw_columns("integrations", source_table("integrations").columns)
    assert "account_id" in raw_columns(
        "instructor_profiles", source_table("instructor_profiles").columns
    )


def _users(con: duckdb.DuckDBPyConnection, extra_column: str | None = None) -> None:
    columns = ", ".join(
        f"{'1' if c in ('id', 'tenant_id', 'birth_year') else repr('x')} as {c}"
        for c in USERS_RAW
        if c not in ("email_hash", "id")
    )
    digest = hashlib.sha256(b"a@example.com").hexdigest()
    con.sql(
        f"create or replace table raw.users as select range as id, '{digest}' as email_hash, "
        f"{columns}{', 1 as ' + extra_column if extra_column else ''} from range(5)"
    )


def test_raw_suite_passes_a_contract_table_and_fails_a_leaked_pii_column() -> None:
    con = duckdb.connect()
    con.sql("create schema raw")
    _users(con)
    suite = raw_suite("users", source_table("users").columns)
    assert suite.severity is Severity.ERROR
    outcome = run_suite(suite, con, "raw.users")
    assert outcome.success, outcome.describe_failures()
    assert outcome.rows == 5

    _users(con, extra_column="ssn")
    leaked = run_suite(suite, con, "raw.users")
    assert not leaked.success
    assert [f.expectation for f in leaked.failures] == ["expect_table_columns_to_match_set"]
    assert "ssn" not in leaked.failures[0].kwargs["column_set"]


def test_an_added_column_warns_and_a_missing_one_fails() -> None:
    con = duckdb.connect()
    con.sql("create schema raw")
    _users(con, extra_column="coupon_code")
    blocking = run_suite(raw_suite("users", source_table("users").columns), con, "raw.users")
    assert blocking.success, blocking.describe_failures()
    columns = raw_columns_suite("users", source_table("users").columns)
    assert columns.severity is Severity.WARN
    warned = run_suite(columns, con, "raw.users")
    assert not warned.success
    assert "coupon_code" in warned.failures[0].observed
    con.sql("alter table raw.users drop column coupon_code")
    con.sql("alter table raw.users drop column role")
    missing = run_suite(raw_suite("users", source_table("users").columns), con, "raw.users")
    assert [f.expectation for f in missing.failures] == ["expect_table_columns_to_match_set"]


def test_ltv_rule_flags_exactly_the_decreasing_mature_learner(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.sql(
        "create schema raw; create table raw.instructor_profiles(revenue_share_pct decimal(5,2), _source_deleted_at timestamp)"
    )
    con.sql(
        """
        create table ltv as select * from (values
            (1, 1, 10.0, 20.0, 30.0, 40.0, true, true, date '2025-01-01'),
            (2, 1, 10.0, 5.0, 30.0, 40.0, true, true, date '2025-01-01'),   -- 90 < 30: broken
            (3, 1, 10.0, 5.0, 5.0, 5.0, false, false, date '2025-01-01')    -- immature: ignored
        ) t(person_id, tenant_id, ltv_30_usd, ltv_90_usd, ltv_365_usd, ltv_to_date_usd,
            is_mature_90, is_mature_365, cohort_month)
        """
    )
    rules, distribution = mart_suites("mart_learner_ltv")
    assert (rules.severity, distribution.severity) == (Severity.ERROR, Severity.WARN)
    outcome = run_suite(rules, con, "ltv", docs_dir=tmp_path / "gx")
    failed = [(f.expectation, f.kwargs["column_A"], f.unexpected_count) for f in outcome.failures]
    assert failed == [("expect_column_pair_values_a_to_be_greater_than_b", "mature_ltv_90_usd", 1)]
    assert outcome.docs_page is not None
    assert build_data_docs(tmp_path / "gx") == outcome.docs_page
    assert "marts.mart_learner_ltv.rules" in outcome.docs_page.read_text()


@pytest.mark.parametrize(
    ("platform_revenue", "passes"),
    [
        ("19.20", True),  # 19.20 / 30.99 = 0.61955 > 0.6195, but only by the cent's rounding
        ("19.21", False),  # (19.21 - 0.005) / 30.99 = 0.61972: more than any share allows
        ("-1.00", False),
    ],
)
def test_take_rate_bound_comes_from_the_lowest_live_revenue_share(
    platform_revenue: str, passes: bool
) -> None:
    con = duckdb.connect()
    con.sql("create schema raw")
    # Lowest live share 38.05% -> the platform keeps at most 61.95% of gross; the 20% profile
    # was deleted at the source and no longer bounds anything.
    con.sql(
        "create table raw.instructor_profiles as select * from (values "
        "(38.05, null::timestamp), (97.00, null), (20.00, now()::timestamp)) "
        "t(revenue_share_pct, _source_deleted_at)"
    )
    con.sql(
        f"create table pnl as select 1 as tenant_id, 30.99::decimal(12,2) as gross_sales_usd, "
        f"30.99::decimal(12,2) as net_sales_usd, {platform_revenue}::decimal(12,2) as "
        f"platform_revenue_usd, {platform_revenue} / 30.99 as take_rate"
    )
    outcome = run_suite(mart_suites("mart_instructor_pnl")[0], con, "pnl")
    assert outcome.success is passes, outcome.describe_failures()
