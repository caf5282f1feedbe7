"""``warehouse generate --mutate``: the platform keeps running between two loads.

One mutation advances the platform's clock by a simulated day past the newest
timestamp in the database and, at the chosen volume (share of each table's rows):

- inserts users, enrollments, payments (with refunds), community posts, service
  orders and activity logs;
- updates rows the way the product does, bumping ``updated_at`` - except enrollment
  progress, which the product changes without bumping it (docs/source.md: stale cursor);
- soft-deletes users (``deleted_at``) and hard-deletes enrollments, failed payments
  and community posts (the rows vanish); with ``--rate revenue_hard_delete=R`` also a share
  R of the revenue payments, their refunds left behind.

It is deterministic: the n-th mutation of a database draws from (seed, n) and from
the database's own state. Every touched id is appended to the manifest.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from generator import encode as enc
from generator import read_manifest, write_manifest
from generator.platform import DAY, person_names, personal_details
from generator.target import Target

MUTATION_SPAN = DAY


class MutationError(RuntimeError):
    """A one-line, actionable reason the mutation cannot run."""


def mutate_source(
    source_url: str, manifest_path: Any, volume: float, revenue_hard_delete: float = 0.0
) -> dict[str, Any]:
    """Apply one deterministic mutation to a generated database and record it in its manifest
    (``revenue_hard_delete``: the share of revenue payments it hard-deletes)."""
    if not manifest_path.exists():
        raise MutationError(
            f"no manifest at {manifest_path}: --mutate needs a database made by `warehouse generate` "
            "(run it first, or pass --manifest)"
        )
    manifest = read_manifest(manifest_path)
    index = len(manifest["mutations"]) + 1
    target = Target(source_url)
    try:
        with target.engine.begin() as conn:
            record = Mutation(
                conn,
                seed=int(manifest["seed"]),
                index=index,
                volume=volume,
                revenue_hard_delete=revenue_hard_delete,
            ).apply()
    finally:
        target.dispose()
    manifest["mutations"].append(record)
    write_manifest(manifest_path, manifest)
    return record


class Mutation:
    """One mutation, applied inside a single transaction."""

    def __init__(
        self,
        conn: Connection,
        seed: int,
        index: int,
        volume: float,
        revenue_hard_delete: float = 0.0,
    ) -> None:
        self.conn = conn
        self.rng = np.random.default_rng([seed, 7_919, index])
        self.seed = seed
        self.index = index
        self.volume = volume
        self.revenue_hard_delete = revenue_hard_delete
        self.quote = conn.dialect.identifier_preparer.quote
        self.record: dict[str, dict[str, list[int]]] = {}
        latest = [
            self._scalar("select max(updated_at) from users"),
            self._scalar("select max(updated_at) from payments"),
            self._scalar("select max(updated_at) from enrollments"),
            self._scalar("select max(occurred_at) from activity_logs"),
        ]
        newest = max(_epoch(v) for v in latest if v is not None)
        self.clock_start = newest + 1
        self.clock_end = self.clock_start + MUTATION_SPAN

    # -- helpers ---------------------------------------------------------------------------------

    def _scalar(self, sql: str) -> Any:
        return self.conn.execute(text(sql)).scalar()

    def _ids(self, sql: str) -> np.ndarray:
        return np.array([row[0] for row in self.conn.execute(text(sql))], dtype=np.int64)

    def _count(self, table: str, share: float = 1.0) -> int:
        rows = int(self._scalar(f"select count(*) from {table}"))
        return max(1, math.ceil(rows * self.volume * share)) if rows else 0

    def _times(self, n: int) -> np.ndarray:
        return np.sort(self.rng.integers(self.clock_start, self.clock_end, n))

    def _note(self, table: str, kind: str, ids: np.ndarray | list[int]) -> None:
        bucket = self.record.setdefault(table, {}).setdefault(kind, [])
        bucket.extend(int(i) for i in ids)

    def _insert(self, table: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        frame = frame.astype(object).where(frame.notna(), None)  # NaN from pandas -> SQL NULL
        columns = ", ".join(self.quote(c) for c in frame.columns)
        params = ", ".join(f":p{i}" for i in range(len(frame.columns)))
        rows = [
            {f"p{i}": value for i, value in enumerate(row)}
            for row in frame.itertuples(index=False, name=None)
        ]
        self.conn.execute(text(f"insert into {table} ({columns}) values ({params})"), rows)
        self._note(table, "inserted", [int(x) for x in frame["id"]])

    def _update(
        self, table: str, assignments: str, rows: list[dict[str, Any]], kind: str = "updated"
    ) -> None:
        if not rows:
            return
        self.conn.execute(text(f"update {table} set {assignments} where id = :id"), rows)
        self._note(table, kind, [r["id"] for r in rows])

    def _delete(self, table: str, ids: np.ndarray) -> None:
        if ids.size == 0:
            return
        self.conn.execute(
            text(f"delete from {table} where id = :id"), [{"id": int(i)} for i in ids]
        )
        self._note(table, "hard_deleted", ids)

    def _next_id(self, table: str) -> int:
        return int(self._scalar(f"select coalesce(max(id), 0) from {table}")) + 1

    # -- the mutation ------------------------------------------------------------------------------

    def apply(self) -> dict[str, Any]:
        self._users()
        new_enrollments = self._enrollments()
        self._payments(new_enrollments)
        self._community_posts()
        self._service_orders()
        self._activity_logs()
        return {
            "index": self.index,
            "volume": self.volume,
            "revenue_hard_delete": self.revenue_hard_delete,
            "clock_start": _iso(self.clock_start),
            "clock_end": _iso(self.clock_end),
            "tables": {
                t: {k: sorted(v) for k, v in kinds.items()}
                for t, kinds in sorted(self.record.items())
            },
        }

    def _users(self) -> None:
        rng = self.rng
        n = self._count("users", 0.5)
        tenants = self._ids("select id from tenants order by id")
        first_id = self._next_id("users")
        ids = np.arange(first_id, first_id + n)
        first, last, email = person_names(rng, ids)
        at = self._times(n)
        self._insert(
            "users",
            pd.DataFrame(
                {
                    "id": enc.integers(ids),
                    "tenant_id": enc.integers(tenants[rng.integers(0, tenants.size, n)]),
                    "email": enc.strings(email),
                    "full_name": enc.join(first, " ", last),
                    "role": enc.strings(np.where(rng.random(n) < 0.9, "learner", "instructor")),
                    **personal_details(rng, n),
                    "marketing_consent": enc.integers(rng.random(n) < 0.5),
                    "created_at": enc.timestamps(at),
                    "updated_at": enc.timestamps(at),
                    "deleted_at": enc.timestamps(np.full(n, -1)),
                    "twoFactorLastVerifiedAt": enc.timestamps(np.full(n, -1)),
                    "legacyImportedAt": enc.timestamps(np.full(n, -1)),
                }
            ),
        )
        existing = self._ids(
            f"select id from users where id < {first_id} and deleted_at is null order by id"
        )
        touched = rng.choice(
            existing, size=min(existing.size, self._count("users", 0.5)), replace=False
        )
        soft = touched[: max(1, touched.size // 5)]
        consent = touched[soft.size :]
        stamp = enc.timestamps(self._times(touched.size))
        self._update(
            "users",
            "marketing_consent = 1 - marketing_consent, updated_at = :at",
            [{"id": int(i), "at": stamp[k]} for k, i in enumerate(consent)],
        )
        self._update(
            "users",
            "deleted_at = :at, updated_at = :at",
            [{"id": int(i), "at": stamp[consent.size + k]} for k, i in enumerate(soft)],
            kind="soft_deleted",
        )

    def _enrollments(self) -> pd.DataFrame:
        rng = self.rng
        learners = pd.DataFrame(
            self.conn.execute(
                text("select id, tenant_id from users where deleted_at is null")
            ).fetchall(),
            columns=["user", "tenant"],
        )
        courses = pd.DataFrame(
            self.conn.execute(
                text(
                    "select id, tenant_id, price_amount, currency from courses "
                    "where published_at is not null order by id"
                )
            ).fetchall(),
            columns=["course", "tenant", "price", "currency"],
        )
        n = self._count("enrollments")
        pick = courses.iloc[rng.integers(0, len(courses), n)].reset_index(drop=True)
        users = np.empty(n, dtype=np.int64)
        for tenant, where in pick.groupby("tenant").groups.items():
            pool = learners["user"].to_numpy()[learners["tenant"].to_numpy() == tenant]
            users[np.asarray(where)] = pool[rng.integers(0, pool.size, len(where))]
        first_id = self._next_id("enrollments")
        ids = np.arange(first_id, first_id + n)
        at = self._times(n)
        self._insert(
            "enrollments",
            pd.DataFrame(
                {
                    "id": enc.integers(ids),
                    "tenant_id": enc.integers(pick["tenant"].to_numpy()),
                    "user_id": enc.integers(users),
                    "course_id": enc.integers(pick["course"].to_numpy()),
                    "status": "active",
                    "acquisition_channel": enc.strings(
                        np.array(["organic", "paid_ads", "referral", "community"])[
                            rng.integers(0, 4, n)
                        ]
                    ),
                    "progress_pct": "0.00",
                    "enrolled_at": enc.timestamps(at),
                    "completed_at": enc.timestamps(np.full(n, -1)),
                    "created_at": enc.timestamps(at),
                    "updated_at": enc.timestamps(at),
                }
            ),
        )
        # Progress moves on without touching updated_at: the stale cursor of docs/source.md.
        active = self._ids(
            f"select id from enrollments where status = 'active' and id < {first_id} order by id"
        )
        k = min(active.size, self._count("enrollments"))
        moved = rng.choice(active, size=k, replace=False)
        finish = rng.random(k) < 0.3
        stamps = enc.timestamps(self._times(k))
        self._update(
            "enrollments",
            "progress_pct = :progress, status = :status, completed_at = :completed",
            [
                {
                    "id": int(i),
                    "progress": "100.00" if finish[j] else f"{rng.integers(1, 99)}.50",
                    "status": "completed" if finish[j] else "active",
                    "completed": stamps[j] if finish[j] else None,
                }
                for j, i in enumerate(moved)
            ],
            kind="updated_stale",
        )
        # Cancellations are saved through the ORM, which does bump updated_at.
        rest = np.setdiff1d(active, moved)
        cancelled = rng.choice(rest, size=min(rest.size, max(1, k // 5)), replace=False)
        stamps = enc.timestamps(self._times(cancelled.size))
        self._update(
            "enrollments",
            "status = 'cancelled', updated_at = :at",
            [{"id": int(i), "at": stamps[j]} for j, i in enumerate(cancelled)],
        )
        # Erasure requests hard-delete a few enrollments outright.
        others = np.setdiff1d(rest, cancelled)
        self._delete(
            "enrollments", rng.choice(others, size=min(others.size, max(1, k // 20)), replace=False)
        )
        pick["user"], pick["enrollment"], pick["at"] = users, ids, at
        return pick

    def _payments(self, enrollments: pd.DataFrame) -> None:
        rng = self.rng
        paid = enrollments[enrollments["price"].astype(float) > 0].reset_index(drop=True)
        n = len(paid)
        first_id = self._next_id("payments")
        ids = np.arange(first_id, first_id + n)
        at = paid["at"].to_numpy() - rng.integers(5, 180, n)
        cents = np.round(paid["price"].astype(float).to_numpy() * 100).astype(np.int64)
        processor = np.where(rng.random(n) < 0.7, "stripe", "paypal")
        self._insert(
            "payments",
            pd.DataFrame(
                {
                    "id": enc.integers(ids),
                    "tenant_id": enc.integers(paid["tenant"].to_numpy()),
                    "user_id": enc.integers(paid["user"].to_numpy()),
                    "product_type": "course",
                    "product_id": enc.integers(paid["course"].to_numpy()),
                    "enrollment_id": enc.integers(paid["enrollment"].to_numpy()),
                    "amount": enc.money(cents),
                    "currency": enc.strings(paid["currency"].to_numpy()),
                    "processor": enc.strings(processor),
                    "processor_fee": enc.money(np.round(cents * 0.029 + 30).astype(np.int64)),
                    "status": enc.strings(np.where(rng.random(n) < 0.97, "succeeded", "pending")),
                    "created_at": enc.timestamps(enc.new_york_wall_seconds(at)),
                    "updated_at": enc.timestamps(paid["at"].to_numpy()),
                }
            ),
        )
        # Pending checkouts settle; some captured payments are refunded in full.
        pending = self._ids(
            f"select id from payments where status = 'pending' and id < {first_id} order by id"
        )
        settled = rng.choice(
            pending, size=min(pending.size, self._count("payments", 0.2)), replace=False
        )
        stamps = enc.timestamps(self._times(settled.size))
        self._update(
            "payments",
            "status = 'succeeded', updated_at = :at",
            [{"id": int(i), "at": stamps[j]} for j, i in enumerate(settled)],
        )
        captured = pd.DataFrame(
            self.conn.execute(
                text(
                    f"select id, amount from payments where status = 'succeeded' and id < {first_id} order by id"
                )
            ).fetchall(),
            columns=["id", "amount"],
        )
        k = min(len(captured), self._count("payments", 0.3))
        refunded = captured.iloc[np.sort(rng.choice(len(captured), size=k, replace=False))]
        stamps_ts = self._times(k)
        stamps = enc.timestamps(stamps_ts)
        self._update(
            "payments",
            "status = 'refunded', updated_at = :at",
            [{"id": int(i), "at": stamps[j]} for j, i in enumerate(refunded["id"])],
        )
        refund_first = self._next_id("refunds")
        self._insert(
            "refunds",
            pd.DataFrame(
                {
                    "id": enc.integers(np.arange(refund_first, refund_first + k)),
                    "payment_id": enc.integers(refunded["id"].to_numpy()),
                    "amount": [f"{float(a):.2f}" for a in refunded["amount"]],
                    "reason": "requested_by_customer",
                    "created_at": stamps,
                }
            ),
        )
        # A cleanup job hard-deletes some old failed payments.
        failed = self._ids("select id from payments where status = 'failed' order by id")
        self._delete(
            "payments", rng.choice(failed, size=min(failed.size, max(1, k // 3)), replace=False)
        )
        if self.revenue_hard_delete > 0:
            # Captured payments vanish outright; their refunds stay (the source has no foreign
            # keys). Its own stream: the rest of the mutation draws as without the rate.
            captured_ids = self._ids(
                "select id from payments where lower(trim(status)) in "
                "('succeeded', 'success', 'refunded', 'partially_refunded') order by id"
            )
            n = min(captured_ids.size, math.ceil(captured_ids.size * self.revenue_hard_delete))
            purge = np.random.default_rng([self.seed, 104_729, self.index]).choice(
                captured_ids, size=n, replace=False
            )
            self._delete("payments", np.sort(purge))

    def _community_posts(self) -> None:
        rng = self.rng
        n = self._count("community_posts")
        communities = self._ids("select id from communities order by id")
        authors = self._ids("select id from users where deleted_at is null order by id")
        first_id = self._next_id("community_posts")
        ids = np.arange(first_id, first_id + n)
        at = enc.timestamps(self._times(n))
        self._insert(
            "community_posts",
            pd.DataFrame(
                {
                    "id": enc.integers(ids),
                    "community_id": enc.integers(communities[rng.integers(0, communities.size, n)]),
                    "author_id": enc.integers(authors[rng.integers(0, authors.size, n)]),
                    "title": enc.join("Post ", ids.astype(str)),
                    "body": "Week in review \u2728",
                    "created_at": at,
                    "updated_at": at,
                }
            ),
        )
        existing = self._ids(f"select id from community_posts where id < {first_id} order by id")
        edited = rng.choice(existing, size=min(existing.size, n), replace=False)
        stamps = enc.timestamps(self._times(edited.size))
        self._update(
            "community_posts",
            "title = :title, updated_at = :at",
            [
                {"id": int(i), "title": f"Post {i} (edited)", "at": stamps[j]}
                for j, i in enumerate(edited)
            ],
        )
        remaining = np.setdiff1d(existing, edited)
        self._delete(
            "community_posts",
            rng.choice(remaining, size=min(remaining.size, max(1, n // 4)), replace=False),
        )

    def _service_orders(self) -> None:
        rng = self.rng
        open_orders = pd.DataFrame(
            self.conn.execute(
                text(
                    "select id, tenant_id from field_service_orders where status = 'requested' order by id"
                )
            ).fetchall(),
            columns=["id", "tenant"],
        )
        providers = self._ids("select id from field_service_providers order by id")
        k = min(len(open_orders), self._count("field_service_orders"))
        matched = open_orders.iloc[np.sort(rng.choice(len(open_orders), size=k, replace=False))]
        stamps = enc.timestamps(self._times(k))
        self._update(
            "field_service_orders",
            "status = 'matched', provider_id = :provider, matched_at = :at, updated_at = :at",
            [
                {
                    "id": int(i),
                    "provider": int(providers[rng.integers(0, providers.size)]),
                    "at": stamps[j],
                }
                for j, i in enumerate(matched["id"])
            ],
        )

    def _activity_logs(self) -> None:
        rng = self.rng
        n = self._count("activity_logs")
        sample = pd.DataFrame(
            self.conn.execute(
                text(
                    "select user_id, tenant_id, course_id from enrollments order by id desc limit 5000"
                )
            ).fetchall(),
            columns=["user", "tenant", "course"],
        )
        row = rng.integers(0, len(sample), n)
        first_id = self._next_id("activity_logs")
        self._insert(
            "activity_logs",
            pd.DataFrame(
                {
                    "id": enc.integers(np.arange(first_id, first_id + n)),
                    "tenant_id": enc.integers(sample["tenant"].to_numpy()[row]),
                    "user_id": enc.integers(sample["user"].to_numpy()[row]),
                    "course_id": enc.integers(sample["course"].to_numpy()[row]),
                    "activity_type": enc.strings(
                        np.array(["lesson_viewed", "video_played", "quiz_submitted"])[
                            rng.integers(0, 3, n)
                        ]
                    ),
                    "occurred_at": enc.timestamps(self._times(n)),
                }
            ),
        )


def _epoch(value: Any) -> int:
    """A DATETIME as returned by either driver (datetime or text) -> epoch seconds (UTC wall)."""
    return int(pd.Timestamp(value).value // 1_000_000_000)  # naive: read as UTC wall time


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
