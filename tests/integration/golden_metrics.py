"""An independent computation of every docs/metrics.md metric, in pandas, over the source database.

It reads the generator's SQLite file directly (never raw or staging) and follows docs/metrics.md
literally; test_golden_metrics.py compares it with the dbt marts to the cent. The only thing
shared with the dbt project is the shipped FX reference table (seeds/fx_rates_daily.csv),
which docs/metrics.md names as an input.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

CENT = Decimal("0.01")
REVENUE = {"succeeded", "refunded", "partially_refunded"}
PAYMENT_STATUSES = {
    "succeeded": "succeeded",
    "success": "succeeded",
    "failed": "failed",
    "pending": "pending",
    "refunded": "refunded",
    "partially_refunded": "partially_refunded",
}


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def money(value: object) -> Decimal | None:
    """SQLite stores DECIMAL as REAL: back to exact cents."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return Decimal(f"{float(value):.2f}")


class Source:
    """The source tables, as the platform's database holds them."""

    def __init__(self, sqlite_path: Path, fx_csv: Path) -> None:
        with sqlite3.connect(sqlite_path) as con:
            read = lambda sql: pd.read_sql(sql, con)  # noqa: E731
            self.tenants = read("select * from tenants").set_index("id")
            self.users = read("select id, tenant_id, email, role from users")
            self.payments = read("select * from payments")
            self.refunds = read("select * from refunds")
            self.courses = read("select * from courses")
            self.ebooks = read("select * from ebooks")
            self.profiles = read("select * from instructor_profiles")
            self.payouts = read("select * from payouts")
            self.orders = read("select * from field_service_orders")
            self.enrollments = read("select updated_at from enrollments")
            self.activity = read("select max(occurred_at) as occurred_at from activity_logs")
            self.counts = {
                name: read(f'select count(*) as n from "{name}"')["n"].iloc[0]
                for name in read("select name from sqlite_master where type = 'table'")["name"]
            }
            self.community_ids = set(read("select id from communities")["id"])
            self.posts = read("select id, community_id from community_posts")
            self.attempts = read("select id, course_id from assessment_attempts")
            self.batch_ids = set(read("select id from payout_batches")["id"])
            self.learning_paths = read("select id, region_id from learning_paths")
        fx = pd.read_csv(fx_csv, dtype=str)
        self.fx = {
            (row.currency_code, row.rate_date): Decimal(row.usd_per_unit)
            for row in fx.itertuples(index=False)
        }

    def tz(self, tenant_id: int) -> str:
        return self.tenants.loc[tenant_id, "reporting_timezone"]

    def local_month(self, at: pd.Timestamp, tenant_id: int) -> pd.Timestamp:
        local = at.tz_localize("UTC").tz_convert(self.tz(tenant_id)).tz_localize(None)
        return pd.Timestamp(local.year, local.month, 1)


def utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series)


def new_york_to_utc(series: pd.Series) -> pd.Series:
    """LOCAL columns: New York wall time; the repeated autumn hour is read as standard time."""
    wall = pd.to_datetime(series)
    return (
        wall.dt.tz_localize("America/New_York", ambiguous=False)
        .dt.tz_convert("UTC")
        .dt.tz_localize(None)
    )


class Golden:
    """Every mart of docs/metrics.md, recomputed from the source, as of ``as_of`` (default: the
    latest source timestamp, as the warehouse defaults)."""

    def __init__(self, src: Source, as_of: pd.Timestamp | None = None) -> None:
        self.src = src
        users = src.users.copy()
        users["email_key"] = users["email"].str.strip().str.lower()
        users["person_id"] = users.groupby(["tenant_id", "email_key"])["id"].transform("min")
        self.person_of = dict(zip(users["id"], users["person_id"], strict=True))
        self.tenant_of_user = dict(zip(users["id"], users["tenant_id"], strict=True))

        p = src.payments.copy()
        p["status_norm"] = p["status"].str.strip().str.lower().map(PAYMENT_STATUSES)
        p = p[p["status_norm"].notna()].copy()  # unknown statuses are quarantined
        p["created_utc"] = new_york_to_utc(p["created_at"])
        p["currency"] = [
            c if isinstance(c, str) else src.tenants.loc[t, "default_currency"]
            for c, t in zip(p["currency"], p["tenant_id"], strict=True)
        ]
        p["amount_d"] = p["amount"].map(money)
        p["rate"] = [
            src.fx[(c, at.date().isoformat())]
            for c, at in zip(p["currency"], p["created_utc"], strict=True)
        ]
        p["amount_usd"] = [cents(a * r) for a, r in zip(p["amount_d"], p["rate"], strict=True)]
        fee = [
            money(f) if money(f) is not None else cents(a * Decimal("0.029") + Decimal("0.30"))
            for f, a in zip(p["processor_fee"], p["amount_d"], strict=True)
        ]
        p["fee_usd"] = [cents(f * r) for f, r in zip(fee, p["rate"], strict=True)]
        p["person_id"] = p["user_id"].map(self.person_of)
        course_owner = dict(zip(src.courses["id"], src.courses["instructor_id"], strict=True))
        ebook_owner = dict(zip(src.ebooks["id"], src.ebooks["instructor_id"], strict=True))
        p["instructor_id"] = [
            course_owner.get(pid)
            if kind == "course"
            else ebook_owner.get(pid)
            if kind == "ebook"
            else None
            for kind, pid in zip(p["product_type"], p["product_id"], strict=True)
        ]
        p["month"] = [
            src.local_month(at, t) for at, t in zip(p["created_utc"], p["tenant_id"], strict=True)
        ]
        self.payments = p

        r = src.refunds.merge(
            p[["id", "rate"]].rename(columns={"id": "payment_id"}), on="payment_id", how="inner"
        )  # refunds of missing (or quarantined) payments are excluded
        r["created_utc"] = utc(r["created_at"])
        r["amount_usd"] = [
            cents(money(a) * rate) for a, rate in zip(r["amount"], r["rate"], strict=True)
        ]
        self.refunds = r

        stamps = [
            utc(src.payments["updated_at"]).max(),
            new_york_to_utc(src.payments["created_at"]).max(),
            utc(src.refunds["created_at"]).max(),
            utc(src.payouts["updated_at"]).max(),
            utc(src.enrollments["updated_at"]).max(),
            utc(src.orders["updated_at"]).max(),
            utc(src.courses["updated_at"]).max(),
            utc(src.activity["occurred_at"]).max(),
        ]
        self.as_of = as_of if as_of is not None else max(stamps)

    # -- shared pieces -----------------------------------------------------------------------

    def revenue_payments(self) -> pd.DataFrame:
        """Revenue payments by as-of, with refunds (by as-of) posted back to them."""
        p = self.payments
        p = p[p["status_norm"].isin(REVENUE) & (p["created_utc"] <= self.as_of)].copy()
        r = self.refunds[self.refunds["created_utc"] <= self.as_of]
        refunded = r.groupby("payment_id")["amount_usd"].apply(lambda s: sum(s, Decimal(0)))
        p["refunded_usd"] = (
            p["id"].map(refunded).apply(lambda v: v if isinstance(v, Decimal) else Decimal(0))
        )
        p["net_usd"] = p["amount_usd"] - p["refunded_usd"]
        return p

    # -- marts -------------------------------------------------------------------------------

    def learner_ltv(self) -> dict[int, dict]:
        p = self.revenue_payments()
        out: dict[int, dict] = {}
        # One row per person; the person's tenant is their (canonical) account's tenant.
        for person, rows in p.groupby("person_id"):
            tenant = self.tenant_of_user[person]
            t0 = rows["created_utc"].min()
            row = {
                "tenant_id": tenant,
                "first_paid_at": t0,
                "cohort_month": self.src.local_month(t0, tenant),
            }
            for n in (30, 90, 365):
                inside = rows[rows["created_utc"] < t0 + timedelta(days=n)]
                row[f"ltv_{n}_usd"] = sum(inside["net_usd"], Decimal(0))
                row[f"is_mature_{n}"] = bool(self.as_of >= t0 + timedelta(days=n))
            row["ltv_to_date_usd"] = sum(rows["net_usd"], Decimal(0))
            out[int(person)] = row
        return out

    def ltv_cohorts(self) -> dict[tuple, dict]:
        learners = pd.DataFrame.from_dict(self.learner_ltv(), orient="index")
        out: dict[tuple, dict] = {}
        for (tenant, month), rows in learners.groupby(["tenant_id", "cohort_month"]):
            row: dict = {"cohort_size": len(rows)}
            for n in (30, 90, 365):
                mature = rows[rows[f"is_mature_{n}"]]
                total = sum(mature[f"ltv_{n}_usd"], Decimal(0))
                row[f"mature_learners_{n}"] = len(mature)
                row[f"ltv_{n}_mature_sum_usd"] = total
                row[f"avg_ltv_{n}_usd"] = float(total) / len(mature) if len(mature) else None
                row[f"median_ltv_{n}_usd"] = (
                    float(pd.Series([float(v) for v in mature[f"ltv_{n}_usd"]]).median())
                    if len(mature)
                    else None
                )
            out[(int(tenant), month.date())] = row
        return out

    def instructor_pnl(self) -> dict[tuple, dict]:
        p = self.revenue_payments()
        p = p[p["instructor_id"].notna()].copy()
        share = {
            uid: Decimal(f"{float(v):.2f}")
            for uid, v in zip(
                self.src.profiles["user_id"], self.src.profiles["revenue_share_pct"], strict=True
            )
        }
        rows: dict[tuple, dict] = {}
        zero = Decimal(0)

        def blank() -> dict:
            return {k: zero for k in ("gross", "refunds", "net", "weighted", "fees", "payouts")}

        for rec in p.itertuples(index=False):
            key = (int(rec.instructor_id), int(rec.tenant_id), rec.month.date())
            acc = rows.setdefault(key, blank())
            acc["gross"] += rec.amount_usd
            acc["refunds"] += rec.refunded_usd
            acc["net"] += rec.net_usd
            acc["weighted"] += rec.net_usd * share[int(rec.instructor_id)]
            acc["fees"] += rec.fee_usd
        po = self.src.payouts.copy()
        po = po[po["status"].str.strip().str.lower() == "paid"].copy()
        po["paid_utc"] = utc(po["paid_at"])
        po = po[po["paid_utc"] <= self.as_of]
        for rec in po.itertuples(index=False):
            rate = self.src.fx[(rec.currency, rec.paid_utc.date().isoformat())]
            key = (
                int(rec.instructor_id),
                int(rec.tenant_id),
                self.src.local_month(rec.paid_utc, rec.tenant_id).date(),
            )
            rows.setdefault(key, blank())["payouts"] += cents(money(rec.amount) * rate)
        out: dict[tuple, dict] = {}
        for key, acc in rows.items():
            earnings = cents(acc["weighted"] * CENT)
            platform = acc["net"] - earnings
            out[key] = {
                "gross_sales_usd": acc["gross"],
                "refunds_usd": acc["refunds"],
                "net_sales_usd": acc["net"],
                "instructor_earnings_usd": earnings,
                "platform_revenue_usd": platform,
                "take_rate": float(platform) / float(acc["gross"]) if acc["gross"] else None,
                "processor_fees_usd": acc["fees"],
                "contribution_margin_usd": platform - acc["fees"],
                "payouts_paid_usd": acc["payouts"],
            }
        balance: dict[tuple, Decimal] = {}
        for (inst, tenant, _), row in out.items():
            balance[(inst, tenant)] = (
                balance.get((inst, tenant), zero)
                + row["instructor_earnings_usd"]
                - row["payouts_paid_usd"]
            )
        for (inst, tenant, _), row in out.items():
            row["balance_owed_usd"] = balance[(inst, tenant)]
        return out

    def marketplace_liquidity(self) -> dict[tuple, dict]:
        src, as_of = self.src, self.as_of
        out: dict[tuple, dict] = {}

        def row(tenant: int, month: pd.Timestamp) -> dict:
            return out.setdefault((int(tenant), month.date()), {})

        c = src.courses.copy()
        # Every course published by the as-of counts, whatever its (possibly unknown) status.
        c = c[c["published_at"].notna()].copy()
        c["published_utc"] = utc(c["published_at"])
        c = c[c["published_utc"] <= as_of].copy()
        p = self.revenue_payments()
        first_sale = p[p["product_type"] == "course"].groupby("product_id")["created_utc"].min()
        c["first_sale"] = c["id"].map(first_sale)
        c["month"] = [
            src.local_month(at, t) for at, t in zip(c["published_utc"], c["tenant_id"], strict=True)
        ]
        for (tenant, month), rows in c.groupby(["tenant_id", "month"]):
            closed = rows[rows["published_utc"] + timedelta(days=30) <= as_of]
            sold_30 = closed[closed["first_sale"] < closed["published_utc"] + timedelta(days=30)]
            sold = rows[rows["first_sale"].notna()]
            days = (sold["first_sale"] - sold["published_utc"]).dt.total_seconds() / 86400
            r = row(tenant, month)
            r.update(
                courses_published=len(rows),
                sell_through_30d_numerator=len(sold_30),
                sell_through_30d_denominator=len(closed),
                sell_through_30d_rate=len(sold_30) / len(closed) if len(closed) else None,
                median_days_to_first_sale=float(days.median()) if len(sold) else None,
                courses_never_sold=len(rows) - len(sold),
                never_sold_share=(len(rows) - len(sold)) / len(rows),
            )
        for (tenant, month), rows in p.groupby(["tenant_id", "month"]):
            buyers = rows["person_id"].nunique()
            sellers = rows["instructor_id"].dropna().nunique()
            r = row(tenant, month)
            r.update(
                paying_people=buyers,
                selling_instructors=sellers,
                buyer_seller_ratio=buyers / sellers if sellers else None,
            )
            gross = (
                rows[rows["instructor_id"].notna()]
                .groupby("instructor_id")["amount_usd"]
                .apply(lambda s: sum(s, Decimal(0)))
            )
            if len(gross):
                total = sum(gross, Decimal(0))
                k = math.ceil(len(gross) * 0.1)
                top = sum(sorted(gross, reverse=True)[:k], Decimal(0))
                r.update(
                    instructors_with_sales=len(gross),
                    top_decile_gross_sales_usd=top,
                    instructor_gross_sales_usd=total,
                    top_decile_sales_share=float(top) / float(total),
                    seller_hhi=sum((float(g) / float(total) * 100) ** 2 for g in gross),
                )
        o = src.orders.copy()
        o["requested_utc"] = utc(o["requested_at"])
        o["matched_utc"] = utc(o["matched_at"])
        o["cancelled_utc"] = utc(o["cancelled_at"])
        o = o[o["requested_utc"] <= as_of].copy()
        # What is known at the as-of: a match after it has not happened yet.
        o.loc[o["matched_utc"] > as_of, "matched_utc"] = pd.NaT
        o["month"] = [
            src.local_month(at, t) for at, t in zip(o["requested_utc"], o["tenant_id"], strict=True)
        ]
        for (tenant, month), rows in o.groupby(["tenant_id", "month"]):
            within = rows[rows["matched_utc"] < rows["requested_utc"] + timedelta(hours=24)]
            matched = rows[rows["matched_utc"].notna()]
            hours = (matched["matched_utc"] - matched["requested_utc"]).dt.total_seconds() / 3600
            cancelled = rows[
                (rows["status"].str.strip().str.lower() == "cancelled")
                & rows["matched_utc"].isna()
                & ~(rows["cancelled_utc"] > as_of)  # no recorded time: known from the status
            ]
            r = row(tenant, month)
            r.update(
                orders_requested=len(rows),
                orders_matched_within_24h=len(within),
                fill_rate_24h=len(within) / len(rows),
                median_hours_to_match=float(hours.median()) if len(matched) else None,
                orders_cancelled_without_match=len(cancelled),
                cancelled_without_match_share=len(cancelled) / len(rows),
            )
        return out

    def data_quality(self) -> dict[str, dict]:
        """Per table: rows in the source, rows quarantined by reason, and orphans kept."""
        src = self.src
        payments_kept = set(self.payments["id"])
        all_payments = set(src.payments["id"])
        all_courses = set(src.courses["id"])
        out = {
            name: {
                "rows_in_raw": int(n),
                "orphan": 0,
                "unknown_enum": 0,
                "duplicate_person": 0,
                "parent": 0,
                "orphan_flagged": 0,
            }
            for name, n in src.counts.items()
        }
        batch = src.payouts["batch_id"]
        out["payouts"]["orphan_flagged"] = int((batch.notna() & ~batch.isin(src.batch_ids)).sum())
        # There is no regions table: every region_id dangles.
        out["learning_paths"]["orphan_flagged"] = int(src.learning_paths["region_id"].notna().sum())
        out["users"]["duplicate_person"] = len(src.users) - len(set(self.person_of.values()))
        out["payments"]["unknown_enum"] = len(src.payments) - len(self.payments)
        out["refunds"]["orphan"] = int((~src.refunds["payment_id"].isin(all_payments)).sum())
        out["refunds"]["parent"] = int(
            (
                src.refunds["payment_id"].isin(all_payments)
                & ~src.refunds["payment_id"].isin(payments_kept)
            ).sum()
        )
        out["community_posts"]["orphan"] = int(
            (~src.posts["community_id"].isin(src.community_ids)).sum()
        )
        out["assessment_attempts"]["orphan"] = int(
            (~src.attempts["course_id"].isin(all_courses)).sum()
        )
        return out
