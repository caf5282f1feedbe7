"""Synthetic warehouses for the serving tests: real DuckDB tables shaped like the marts.

Shapes follow /work/shared/METRICS.md. Values are generated in plain Python from a seed,
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

TENANTS = {1: "America/New_York", 2: "Europe/Berlin"}
MONTHS = [date(2025 + (m - 1) // 12, (m - 1) % 12 + 1, 1) for m in range(3, 23)]  # 2025-03..2026-10


def mart_rows(seed: int = 7, scale: float = 1.0) -> dict[str, list[dict]]:
    """Rows of each served table, deterministic for a seed."""
    rng = random.Random(seed)
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
                as_of = datetime(2026, 11, 1, tzinfo=UTC)
                learners.append(
                    {
                        "tenant_id": tenant,
                        "person_id": person,
                        "first_paid_at": t0,
                        "cohort_month": month,
                        "ltv_30_usd": ltv30,
                        "ltv_90_usd": ltv90,
                        "ltv_365_usd": ltv365,
                        "ltv_to_date_usd": ltv365,
                        "is_mature_30": as_of >= t0 + timedelta(days=30),
                        "is_mature_90": as_of >= t0 + timedelta(days=90),
                        "is_mature_365": as_of >= t0 + timedelta(days=365),
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
                row[f"avg_ltv_{n}_usd"] = round(sum(mature) / len(mature), 2) if mature else None
                row[f"median_ltv_{n}_usd"] = _median(mature)
            cohorts.append(row)
    pnl = []
    for tenant, instructor in instructors:
        share = rng.choice([50, 60, 70])
        for month in MONTHS:
            gross = round(rng.uniform(100, 3000), 2)
            refunds = round(gross * rng.uniform(0, 0.1), 2)
            net = round(gross - refunds, 2)
            earnings = round(net * share / 100, 2)
            platform = round(net - earnings, 2)
            fees = round(gross * 0.029 + 0.3 * rng.randint(3, 30), 2)
            pnl.append(
                {
                    "tenant_id": tenant,
                    "instructor_id": instructor,
                    "month": month,
                    "gross_sales_usd": gross,
                    "refunds_usd": refunds,
                    "net_sales_usd": net,
                    "revenue_share_pct": float(share),
                    "instructor_earnings_usd": earnings,
                    "platform_revenue_usd": platform,
                    "take_rate": round(platform / gross, 6),
                    "processor_fees_usd": fees,
                    "contribution_margin_usd": round(platform - fees, 2),
                    "payouts_paid_usd": round(earnings * rng.uniform(0.5, 1.0), 2),
                }
            )
    liquidity = []
    for tenant in TENANTS:
        for month in MONTHS:
            published = rng.randint(5, 20)
            sold = rng.randint(0, published)
            requested = rng.randint(10, 60)
            filled = rng.randint(0, requested)
            buyers, sellers = rng.randint(20, 90), rng.randint(3, 8)
            liquidity.append(
                {
                    "tenant_id": tenant,
                    "month": month,
                    "courses_published": published,
                    "courses_sold_within_30d": sold,
                    "sell_through_30d": sold / published,
                    "median_days_to_first_sale": float(rng.randint(1, 25)),
                    "share_never_sold": (published - sold) / published,
                    "paying_buyers": buyers,
                    "selling_instructors": sellers,
                    "buyer_seller_ratio": buyers / sellers,
                    "orders_requested": requested,
                    "orders_filled_within_24h": filled,
                    "fill_rate_24h": filled / requested,
                    "median_hours_to_match": round(rng.uniform(1, 30), 1),
                    "share_cancelled_unmatched": rng.uniform(0, 0.2),
                    "top_decile_gross_share": rng.uniform(0.1, 0.5),
                    "hhi": rng.uniform(800, 3000),
                }
            )
    quality = []
    for tenant in TENANTS:
        for table in ("payments", "refunds", "users", "courses"):
            read = rng.randint(500, 2000)
            reasons = {
                "orphan": rng.randint(0, 5),
                "malformed_json": rng.randint(0, 3),
                "unknown_enum": rng.randint(0, 4),
                "zero_date": rng.randint(0, 2),
                "duplicate_person": rng.randint(0, 3),
            }
            quarantined = sum(reasons.values())
            quality.append(
                {
                    "tenant_id": tenant,
                    "source_table": table,
                    "load_id": "1764240000.1",
                    "rows_read": read,
                    "rows_landed": read - quarantined,
                    "rows_quarantined": quarantined,
                    **{f"quarantined_{k}": v for k, v in reasons.items()},
                    "hard_deletes_detected": rng.randint(0, 4),
                }
            )
    dim_instructors = [
        {"tenant_id": t, "instructor_id": i, "instructor_name": f"Instructor {i}"}
        for t, i in instructors
    ]
    dim_tenants = [
        {"tenant_id": t, "tenant_name": f"Tenant {t}", "reporting_timezone": tz}
        for t, tz in TENANTS.items()
    ]
    fct_payments = [
        {
            "tenant_id": r["tenant_id"],
            "payment_id": i,
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
        "dim_instructors": dim_instructors,
        "dim_tenants": dim_tenants,
        "fct_payments": fct_payments,
    }


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


def write_manifest(path: Path, warehouse: Path, schema: str = "main_marts") -> Path:
    """A minimal dbt manifest for the tables in ``warehouse`` (names, columns, types, docs)."""
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


def passing_checks(path: Path, passed: int = 12, failed_warn: int = 1) -> Path:
    """Check results JSON with ``passed`` passing and ``failed_warn`` non-blocking failures."""
    from orchestration.serving.checks import write_check_results

    checks = [{"name": f"check_{i}", "passed": True, "blocking": True} for i in range(passed)]
    checks += [
        {"name": f"warn_{i}", "passed": False, "blocking": False} for i in range(failed_warn)
    ]
    return write_check_results(path, checks, as_of=datetime(2026, 11, 1, 6, tzinfo=UTC))


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
