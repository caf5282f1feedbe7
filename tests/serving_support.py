"""Synthetic warehouses for the serving tests: real DuckDB tables shaped like the marts.

Shapes follow docs/metrics.md. Values are generated in plain Python from a seed,
so tests can compute expected numbers from the same rows without the code under test.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from serving.checks import CheckSummary

TENANTS = {1: "America/New_York", 2: "Europe/Berlin"}
MONTHS = [date(2025 + (m - 1) // 12, (m - 1) % 12 + 1, 1) for m in range(3, 23)]  # 2025-03..2026-10
#: The metrics' as-of time of every mart these helpers build (their as_of_at column).
AS_OF = datetime(2026, 11, 1, 6, tzinfo=UTC)


def mart_rows(seed: int = 7, scale: float = 1.0) -> dict[str, list[dict]]:
    """Rows of each served table, deterministic for a seed; columns as dbt_project's marts."""
    rng = random.Random(seed)
    as_of = AS_OF
    instructors = [(t, 100 * t + i) for t in TENANTS for i in range(1, 9)]
    learners = []
    person = 0
    for tenant in TENANTS:
        for month in MONTHS:
            for _ in range(int(rng.randint(8, 14) * scale)):
                person += 1
                t0 = datetime(month.year, month.month, rng.randint(1, 28), 12, tzinfo=UTC)
                ltv30 = round(rng.uniform(10, 120), 2)
                ltv90 = round(ltv30 + rng.uniform(0, 80), 2)
                ltv365 = round(ltv90 + rng.uniform(0, 150), 2)
                learners.append(
                    {
                        "person_id": person,
                        "tenant_id": tenant,
                        "first_paid_at": t0,
                        "cohort_month": month,
                        "revenue_payment_count": rng.randint(1, 6),
                        "ltv_30_usd": ltv30,
                        "ltv_90_usd": ltv90,
                        "ltv_365_usd": ltv365,
                        "ltv_to_date_usd": ltv365,
                        "is_mature_30": as_of >= t0 + timedelta(days=30),
                        "is_mature_90": as_of >= t0 + timedelta(days=90),
                        "is_mature_365": as_of >= t0 + timedelta(days=365),
                        "as_of_at": as_of,
                    }
                )
    cohorts = []
    for tenant in TENANTS:
        for month in MONTHS:
            members = [
                r for r in learners if r["tenant_id"] == tenant and r["cohort_month"] == month
            ]
            row = {"tenant_id": tenant, "cohort_month": month, "cohort_size": len(members)}
            for n in (30, 90, 365):
                mature = sorted(r[f"ltv_{n}_usd"] for r in members if r[f"is_mature_{n}"])
                row[f"mature_learners_{n}"] = len(mature)
                row[f"ltv_{n}_mature_sum_usd"] = round(sum(mature), 2)
                row[f"avg_ltv_{n}_usd"] = sum(mature) / len(mature) if mature else None
                row[f"median_ltv_{n}_usd"] = _median(mature)
            row["as_of_at"] = as_of
            cohorts.append(row)
    pnl = []
    for tenant, instructor in instructors:
        share = rng.choice([50, 60, 70])
        balance = 0.0
        rows_for_instructor = []
        for month in MONTHS:
            gross = round(rng.uniform(100, 3000), 2)
            refunds = round(gross * rng.uniform(0, 0.1), 2)
            net = round(gross - refunds, 2)
            earnings = round(net * share / 100, 2)
            platform = round(net - earnings, 2)
            fees = round(gross * 0.029 + 0.3 * rng.randint(3, 30), 2)
            paid = round(earnings * rng.uniform(0.5, 1.0), 2)
            balance += earnings - paid
            rows_for_instructor.append(
                {
                    "instructor_id": instructor,
                    "tenant_id": tenant,
                    "month_start_date": month,
                    "attributed_payment_count": rng.randint(3, 30),
                    "gross_sales_usd": gross,
                    "refunds_usd": refunds,
                    "net_sales_usd": net,
                    "instructor_earnings_usd": earnings,
                    "platform_revenue_usd": platform,
                    "take_rate": platform / gross,
                    "processor_fees_usd": fees,
                    "contribution_margin_usd": round(platform - fees, 2),
                    "payouts_paid_usd": paid,
                    "balance_owed_to_date_usd": round(balance, 2),
                }
            )
        for row in rows_for_instructor:
            row["balance_owed_usd"] = round(balance, 2)
        pnl.extend(rows_for_instructor)
    liquidity = []
    for tenant in TENANTS:
        for month in MONTHS:
            published = rng.randint(5, 20)
            mature = published if month < date(2026, 10, 1) else 0
            sold30 = rng.randint(0, mature)
            sold = min(published, sold30 + rng.randint(0, 3))
            requested = rng.randint(10, 60)
            matched = rng.randint(0, requested)
            cancelled = rng.randint(0, requested - matched)
            buyers, sellers = rng.randint(20, 90), rng.randint(3, 8)
            top, total = round(rng.uniform(500, 4000), 2), round(rng.uniform(4000, 20000), 2)
            liquidity.append(
                {
                    "tenant_id": tenant,
                    "month_start_date": month,
                    "courses_published": published,
                    "sell_through_30d_numerator": sold30,
                    "sell_through_30d_denominator": mature,
                    "sell_through_30d_rate": sold30 / mature if mature else None,
                    "courses_sold": sold,
                    "median_days_to_first_sale": float(rng.randint(1, 25)),
                    "courses_never_sold": published - sold,
                    "never_sold_share": (published - sold) / published,
                    "paying_people": buyers,
                    "selling_instructors": sellers,
                    "buyer_seller_ratio": buyers / sellers,
                    "orders_requested": requested,
                    "orders_matched_within_24h": matched,
                    "fill_rate_24h": matched / requested,
                    "median_hours_to_match": round(rng.uniform(1, 30), 1),
                    "orders_cancelled_without_match": cancelled,
                    "cancelled_without_match_share": cancelled / requested,
                    "instructors_with_sales": sellers,
                    "top_decile_gross_sales_usd": top,
                    "instructor_gross_sales_usd": total,
                    "top_decile_sales_share": top / total,
                    "seller_hhi": rng.uniform(800, 3000),
                }
            )
    quality = []
    for table in ("payments", "refunds", "users", "courses"):
        for load in (1, 2):
            read = rng.randint(500, 2000)
            reasons = {
                "quarantined_orphan": rng.randint(0, 5),
                "quarantined_unknown_enum": rng.randint(0, 4),
                "quarantined_duplicate_person": rng.randint(0, 3),
                "quarantined_parent": rng.randint(0, 2),
            }
            quarantined = sum(reasons.values())
            quality.append(
                {
                    "tenant_id": 0,  # platform-wide, as dbt_project's mart_data_quality
                    "table_name": table,
                    "load_id": f"17640{load}0000.1",
                    "extract_mode": "incremental" if load == 2 else "full",
                    "extract_status": "ok",
                    "extracted_at": as_of - timedelta(days=2 - load),
                    "rows_read": read,
                    "rows_landed": read,
                    "rows_in_raw": read,
                    "rows_used": read - quarantined,
                    "rows_quarantined": quarantined,
                    **reasons,
                    "malformed_json_flagged": rng.randint(0, 3),
                    "zero_dates_nulled": rng.randint(0, 2),
                    "hard_deletes_detected": rng.randint(0, 4),
                    "source_deleted_rows": rng.randint(0, 4),
                }
            )
    dim_instructor = [
        {"instructor_id": i, "tenant_id": t, "revenue_share_pct": 60.0, "is_current": True}
        for t, i in instructors
    ]
    dim_tenant = [
        {"tenant_id": t, "tenant_name": f"Tenant {t}", "reporting_timezone": tz}
        for t, tz in TENANTS.items()
    ]
    dim_date = [{"date_day": MONTHS[0] + timedelta(days=d)} for d in range(40)]
    fct_payments = [
        {
            "payment_id": i,
            "tenant_id": r["tenant_id"],
            "person_id": r["person_id"],
            "created_at": r["first_paid_at"],
            "amount_usd": r["ltv_30_usd"],
            "is_revenue": True,
        }
        for i, r in enumerate(learners, start=1)
    ]
    return {
        "mart_learner_ltv": learners,
        "mart_ltv_cohorts": cohorts,
        "mart_instructor_pnl": pnl,
        "mart_marketplace_liquidity": liquidity,
        "mart_data_quality": quality,
        "dim_instructor": dim_instructor,
        "dim_tenant": dim_tenant,
        "dim_date": dim_date,
        "fct_payments": fct_payments,
    }


#: The month the as-of has only just begun: the marts hold a few hours of it.
PARTIAL_MONTH = date(2026, 11, 1)


def with_partial_month(rows: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """``rows`` plus ``PARTIAL_MONTH`` as the marts hold it a few hours in: every instructor
    with 2% of October's sales, every tenant with 3 service orders requested, none filled."""
    rows = {name: list(table) for name, table in rows.items()}
    last = MONTHS[-1]
    for row in [r for r in rows["mart_instructor_pnl"] if r["month_start_date"] == last]:
        scaled = {
            k: round(v * 0.02, 2) if k.endswith("_usd") and not k.startswith("balance") else v
            for k, v in row.items()
        }
        rows["mart_instructor_pnl"].append({**scaled, "month_start_date": PARTIAL_MONTH})
    for row in [r for r in rows["mart_marketplace_liquidity"] if r["month_start_date"] == last]:
        rows["mart_marketplace_liquidity"].append(
            {
                **row,
                "month_start_date": PARTIAL_MONTH,
                "orders_requested": 3,
                "orders_matched_within_24h": 0,
                "fill_rate_24h": 0.0,
                "orders_cancelled_without_match": 0,
                "cancelled_without_match_share": 0.0,
            }
        )
    return rows


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else round((values[mid - 1] + values[mid]) / 2, 2)


def build_warehouse(path: Path, rows: dict[str, list[dict]], schema: str = "main_marts") -> Path:
    """Write the rows as tables in ``schema`` plus a staging view that must not be served."""
    con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"create schema if not exists {schema}")
    con.execute("create schema if not exists main_staging")
    con.execute("create or replace view main_staging.stg_app__payments as select 1 as id")
    for name, data in rows.items():
        import pandas as pd

        frame = pd.DataFrame(data)  # noqa: F841 - read by DuckDB's replacement scan
        con.execute(f"create or replace table {schema}.{name} as select * from frame")
    con.execute("create schema if not exists main_raw")
    con.execute(
        "create or replace table main_raw._dlt_loads as select '1' as load_id, 0 as status, "
        "timestamptz '2026-11-01 06:00:00+00' as inserted_at"
    )
    con.close()
    return path


# how the dbt models declare a ratio's parts (column meta), as lookml.py reads them
RATIO_META = {
    "sell_through_30d": {
        "numerator": "courses_sold_within_30d",
        "denominator": "courses_published",
    },
    "buyer_seller_ratio": {"numerator": "paying_buyers", "denominator": "selling_instructors"},
    "fill_rate_24h": {"numerator": "orders_filled_within_24h", "denominator": "orders_requested"},
}


#: dbt tests for ``write_manifest(..., with_tests=True)``: (test, model, column or columns,
#: relationship target (model, column), severity).
KEY_TESTS: list[tuple[str, str, object, tuple[str, str] | None, str]] = [
    *[
        (test, model, column, None, "ERROR")
        for model, column in (
            ("dim_tenant", "tenant_id"),
            ("dim_date", "date_day"),
            ("fct_payments", "payment_id"),
            ("mart_learner_ltv", "person_id"),
        )
        for test in ("unique", "not_null")
    ],
    (
        "unique_combination_of_columns",
        "mart_ltv_cohorts",
        ["tenant_id", "cohort_month"],
        None,
        "ERROR",
    ),
    ("not_null", "mart_ltv_cohorts", "tenant_id", None, "ERROR"),
    ("not_null", "mart_ltv_cohorts", "cohort_month", None, "ERROR"),
    # a WARN test gates nothing: no key from it
    ("unique", "dim_instructor", "instructor_id", None, "WARN"),
    ("relationships", "fct_payments", "tenant_id", ("dim_tenant", "tenant_id"), "ERROR"),
    ("relationships", "mart_learner_ltv", "tenant_id", ("dim_tenant", "tenant_id"), "ERROR"),
    ("relationships", "fct_payments", "person_id", ("mart_learner_ltv", "person_id"), "ERROR"),
    # a target that is no key (many instructors per tenant): no foreign key
    ("relationships", "mart_instructor_pnl", "tenant_id", ("dim_instructor", "tenant_id"), "ERROR"),
]


def _test_node(index: int, test: str, model: str, columns: object, target, severity: str) -> dict:
    kwargs: dict = {}
    column = None
    if isinstance(columns, list):
        kwargs["columns"] = columns
    else:
        column = columns
        kwargs["column_name"] = columns
    if target:
        kwargs.update({"to": f"ref('{target[0]}')", "field": target[1]})
    return {
        "resource_type": "test",
        "name": f"{test}_{model}_{index}",
        "attached_node": f"model.platform_warehouse.{model}",
        "column_name": column,
        "test_metadata": {"name": test, "kwargs": kwargs},
        "config": {"enabled": True, "severity": severity, "where": None},
    }


def write_manifest(
    path: Path, warehouse: Path, schema: str = "main_marts", with_tests: bool = False
) -> Path:
    """A minimal dbt manifest for the tables in ``warehouse`` (names, columns, types, docs;
    with ``with_tests``, the key tests of ``KEY_TESTS``)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    cols = con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = ? order by table_name, ordinal_position",
        [schema],
    ).fetchall()
    con.close()
    nodes: dict[str, dict] = {}
    for table, column, data_type in cols:
        node = nodes.setdefault(
            f"model.platform_warehouse.{table}",
            {
                "resource_type": "model",
                "name": table,
                "alias": table,
                "schema": schema,
                "database": "warehouse",
                "description": f"The {table} model.",
                "config": {"enabled": True, "materialized": "table"},
                "fqn": ["platform_warehouse", "marts", table],
                "columns": {},
            },
        )
        node["columns"][column] = {
            "name": column,
            "description": f"{column} of {table}",
            "data_type": data_type.lower(),
            "meta": RATIO_META.get(column, {}),
        }
    if with_tests:
        for i, spec in enumerate(KEY_TESTS):
            nodes[f"test.platform_warehouse.{spec[0]}_{spec[1]}_{i}"] = _test_node(i, *spec)
    nodes["model.platform_warehouse.stg_app__payments"] = {
        "resource_type": "model",
        "name": "stg_app__payments",
        "alias": "stg_app__payments",
        "schema": "main_staging",
        "config": {"enabled": True, "materialized": "view"},
        "columns": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"metadata": {"project_name": "platform_warehouse"}, "nodes": nodes})
    )
    return path


def passing_checks(passed: int = 12, failed_warn: int = 1) -> CheckSummary:
    """An open gate: ``passed`` passing checks and ``failed_warn`` non-blocking failures."""
    return CheckSummary(
        passed=passed,
        failed=failed_warn,
        data_as_of=datetime(2026, 11, 1, 6, tzinfo=UTC),
        failures=tuple(f"warn_{i}" for i in range(failed_warn)),
    )


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_available() -> bool:
    """Whether the local PostgreSQL answers."""
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def scratch_database(tag: str):
    """A throwaway database and role names private to this test; dropped afterwards."""
    import psycopg
    from psycopg import sql

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    suffix = f"{worker}_{uuid.uuid4().hex[:6]}"
    name = f"warehouse_serving_test_{tag}_{suffix}"
    prefix = f"wst_{suffix}_"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    roles = {"bi": f"{prefix}bi", "tenant_prefix": f"{prefix}tenant_"}
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}", roles
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
            for (role,) in conn.execute(
                "select rolname from pg_roles where rolname like %s", [prefix + "%"]
            ).fetchall():
                conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


def require(kind: str, available: bool, detail: str = "") -> None:
    """Skip when a service is missing, but fail when CI is set (CI must provide it)."""
    import pytest

    if available:
        return
    message = f"{kind} is not available{': ' + detail if detail else ''}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must provide it (.ci/run)")
    pytest.skip(message)


class LocalSmtpServer:
    """A minimal SMTP server on 127.0.0.1 that keeps every message it receives (for tests)."""

    def __init__(self) -> None:
        import socketserver
        import threading

        self.messages: list[dict] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                def reply(line: str) -> None:
                    self.wfile.write((line + "\r\n").encode())

                reply("220 localhost test SMTP")
                sender, recipients = None, []
                while line := self.rfile.readline():
                    command = line.decode().rstrip("\r\n")
                    verb = command[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        reply("250 localhost")
                    elif verb == "MAIL":
                        sender, recipients = command.split(":", 1)[1].strip(" <>"), []
                        reply("250 OK")
                    elif verb == "RCPT":
                        recipients.append(command.split(":", 1)[1].strip(" <>"))
                        reply("250 OK")
                    elif verb == "DATA":
                        reply("354 End data with <CR><LF>.<CR><LF>")
                        body = []
                        while (data := self.rfile.readline()) not in (b".\r\n", b""):
                            body.append(data[1:] if data.startswith(b"..") else data)
                        outer.messages.append(
                            {"from": sender, "to": recipients, "data": b"".join(body)}
                        )
                        reply("250 OK queued")
                    elif verb == "QUIT":
                        reply("221 Bye")
                        return
                    else:
                        reply("250 OK")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalSmtpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
