"""Right to be forgotten, in raw: erased people keep their facts under an anonymous id.

An erasure request names source user ids. Each account, and every account merged into the
same person (same tenant and email hash), gets an anonymous id: a negative number derived
from the source id with the PII key (HMAC), so the warehouse alone cannot turn it back into
the source id, while the extractor, which holds the key, finds the same id for the same
account on every later read. Every column of the source contract that holds a users.id
(``TableSpec.people``) is rewritten to it, and the owner's personal columns
(``TableSpec.personal``: identity, birth year, postal prefix, what they wrote) are erased;
the email hash becomes a token shared by the person's accounts, so they stay one person.
Payments, refunds and payouts keep their amounts: finance's totals do not move.

``raw._erasure_register`` holds the anonymous ids (never a source id) and the tokens; the
extractor applies it to every batch (``Erasures.apply``) so an incremental run, a
reconcile or a full re-read cannot bring an erased person back. ``raw._erasure_log`` keeps
one row per request: when, how many accounts, what was rewritten where.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.ledger import now
from ingestion.source_reader import snake_case
from ingestion.specs import TABLE_SPECS, PiiTreatment, TableSpec
from ingestion.transaction import transaction

REGISTER = "_erasure_register"
LOG = "_erasure_log"

# The dbt snapshots that copy users' columns: which hold a users.id, which are personal, and
# the key dbt hashes with updated_at into dbt_scd_id (recomputed when the key is rewritten).
SNAPSHOT_SCHEMA = "snapshots"


@dataclass(frozen=True)
class SnapshotRule:
    """How one snapshot table forgets: its users.id columns (the first is the owner) and the
    owner's personal columns; ``scd_key`` when dbt_scd_id hashes a users.id."""

    people: tuple[str, ...]
    personal: tuple[str, ...]
    token: str | None = None
    scd_key: str | None = None


SNAPSHOTS: dict[str, SnapshotRule] = {
    "snap_platform__users": SnapshotRule(
        people=("user_id", "person_id"),
        personal=("birth_year", "postal_prefix", "country_code"),
        token="email_hash",
        scd_key="user_id",
    ),
    "snap_platform__instructor_profiles": SnapshotRule(
        people=("instructor_id",), personal=("payout_account_ref",)
    ),
}


class ErasureError(RuntimeError):
    """An erasure request that cannot be carried out as given."""


def anonymous_id(source_id: int, key: bytes) -> int:
    """The erased account's id in the warehouse: negative (no source id is), stable per key."""
    digest = hmac.new(key, f"erased-user:{int(source_id)}".encode(), hashlib.sha256).digest()
    return -(int.from_bytes(digest[:7], "big") + 1)


def person_token(source_id: int, key: bytes) -> str:
    """The email hash of an erased person: shared by its accounts, 64 hex like any hash."""
    return hmac.new(key, f"erased-person:{int(source_id)}".encode(), hashlib.sha256).hexdigest()


def landed(spec: TableSpec, column: str) -> str:
    """The raw name of a source column of ``spec`` (a masked PII column lands renamed)."""
    rule = spec.pii.get(column)
    return (rule.landed_as if rule and rule.landed_as else None) or snake_case(column)


def _is_token(spec: TableSpec, column: str) -> bool:
    rule = spec.pii.get(column)
    return rule is not None and rule.treatment is PiiTreatment.HASH


def ensure_tables(conn: duckdb.DuckDBPyConnection, dataset: str) -> None:
    """Create the register and the log if this warehouse has none yet."""
    conn.execute(f"create schema if not exists {dataset}")
    conn.execute(
        f"create table if not exists {dataset}.{REGISTER} ("
        "anonymous_id bigint primary key, person_token varchar not null, "
        "request_id varchar not null, registered_at timestamp not null)"
    )
    conn.execute(
        f"create table if not exists {dataset}.{LOG} ("
        "request_id varchar primary key, requested_at timestamp not null, "
        "finished_at timestamp, accounts integer not null, "
        "accounts_in_warehouse integer not null, rows_rewritten bigint not null, "
        "touched varchar not null, status varchar not null)"
    )


def register_file(warehouse_path: Path) -> Path:
    """The register's copy beside the warehouse file: a warehouse rebuilt from nothing (a
    deleted file, a restore from an older backup) still forgets."""
    return warehouse_path.with_name(warehouse_path.stem + ".erasures.json")


def _has_table(conn: duckdb.DuckDBPyConnection, dataset: str, table: str) -> bool:
    row = conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [dataset, table],
    ).fetchone()
    return bool(row and row[0])


def sync_register(conn: duckdb.DuckDBPyConnection, dataset: str, path: Path) -> int:
    """Make the warehouse's register and its file hold the same entries (their union); the
    number of entries."""
    entries = json.loads(path.read_text()) if path.exists() else []
    if not entries and not _has_table(conn, dataset, REGISTER):
        return 0
    ensure_tables(conn, dataset)
    if entries:
        conn.register(
            "erasure_file",
            pa.table(
                {
                    "anonymous_id": pa.array([e["anonymous_id"] for e in entries], pa.int64()),
                    "person_token": pa.array([e["person_token"] for e in entries], pa.string()),
                    "request_id": pa.array([e["request_id"] for e in entries], pa.string()),
                    "registered_at": pa.array(
                        [datetime.fromisoformat(e["registered_at"]) for e in entries],
                        pa.timestamp("us"),
                    ),
                }
            ),
        )
        try:
            conn.execute(
                f"insert into {dataset}.{REGISTER} select f.* from erasure_file f "
                f"anti join {dataset}.{REGISTER} r using (anonymous_id)"
            )
        finally:
            conn.unregister("erasure_file")
    rows = conn.execute(
        f"select anonymous_id, person_token, request_id, registered_at from {dataset}.{REGISTER} "
        "order by registered_at, anonymous_id"
    ).fetchall()
    held = [
        {"anonymous_id": a, "person_token": t, "request_id": r, "registered_at": w.isoformat()}
        for a, t, r, w in rows
    ]
    if held != entries:
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(held, indent=1) + "\n")
        os.replace(partial, path)
    return len(held)


@dataclass
class Erasures:
    """The register as the extractor applies it: anonymous id -> the person's token."""

    key: bytes
    tokens: dict[int, str] = field(default_factory=dict)
    _known: dict[int, int | None] = field(default_factory=dict)  # source id -> anonymous id

    @classmethod
    def load(cls, conn: duckdb.DuckDBPyConnection, dataset: str, key: bytes) -> Erasures:
        """The register of the warehouse behind ``conn`` (empty when it has none)."""
        if not _has_table(conn, dataset, REGISTER):
            return cls(key)
        rows = conn.execute(f"select anonymous_id, person_token from {dataset}.{REGISTER}")
        return cls(key, {int(a): str(t) for a, t in rows.fetchall()})

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def _erased(self, values: pa.ChunkedArray | pa.Array) -> dict[int, int]:
        """Source id -> anonymous id, for the erased ids among ``values``."""
        found: dict[int, int] = {}
        for value in pc.unique(values).to_pylist():
            if value is None:
                continue
            source_id = int(value)
            if source_id not in self._known:
                candidate = anonymous_id(source_id, self.key)
                self._known[source_id] = candidate if candidate in self.tokens else None
            anonymous = self._known[source_id]
            if anonymous is not None:
                found[source_id] = anonymous
        return found

    def apply(self, batch: pa.Table, spec: TableSpec | None) -> tuple[pa.Table, int]:
        """``batch`` (source names, PII already masked) with erased people rewritten; the
        number of rows that were."""
        if not self.tokens or spec is None or not spec.people:
            return batch, 0
        owner: pa.Array | None = None
        tokens: pa.Array | None = None
        touched = pa.array([False] * batch.num_rows)
        for position, column in enumerate(spec.people):
            if column not in batch.column_names:
                continue
            values = pc.cast(batch.column(column), pa.int64())
            erased = self._erased(values)
            if not erased:
                continue
            sources = pa.array(list(erased), pa.int64())
            hit = pc.fill_null(pc.is_in(values, value_set=sources), False)
            when = spec.people_when.get(column)
            if when is not None and when[0] in batch.column_names:
                hit = pc.and_(hit, pc.fill_null(pc.equal(batch.column(when[0]), when[1]), False))
            index = pc.index_in(values, value_set=sources)
            replaced = pc.if_else(
                hit, pc.take(pa.array(list(erased.values()), pa.int64()), index), values
            )
            batch = batch.set_column(
                batch.column_names.index(column), pa.field(column, pa.int64()), replaced
            )
            touched = pc.or_(touched, hit)
            if position == 0:
                owner = hit
                tokens = pc.take(
                    pa.array([self.tokens[a] for a in erased.values()], pa.string()), index
                )
        if owner is not None and pc.any(owner).as_py():
            for column in spec.personal:
                name = landed(spec, column) if _is_token(spec, column) else column
                name = name if name in batch.column_names else landed(spec, column)
                if name not in batch.column_names:
                    continue
                old = batch.column(name)
                new = (
                    pc.if_else(owner, tokens, pc.cast(old, pa.string()))
                    if _is_token(spec, column)
                    else pc.if_else(owner, pa.nulls(batch.num_rows, old.type), old)
                )
                batch = batch.set_column(batch.column_names.index(name), batch.field(name), new)
        return batch, int(pc.sum(pc.cast(touched, pa.int64())).as_py() or 0)


@dataclass
class ErasureResult:
    """What one request did in the warehouse."""

    request_id: str
    requested_at: datetime
    accounts: int  # accounts registered by this request (named and merged)
    accounts_in_warehouse: int  # of them, accounts raw held
    already_forgotten: int  # named ids that an earlier request had erased
    rows_rewritten: dict[str, int] = field(default_factory=dict)  # schema.table -> rows

    @property
    def total_rows(self) -> int:
        """Rows rewritten in all tables."""
        return sum(self.rows_rewritten.values())


def _accounts(
    conn: duckdb.DuckDBPyConnection, dataset: str, ids: Sequence[int]
) -> tuple[dict[int, int], set[int]]:
    """(account -> the smallest account of its person, the accounts raw holds) for ``ids``
    and every account merged with them (same tenant and email hash)."""
    conn.register("erasure_request_ids", pa.table({"id": pa.array(ids, pa.int64())}))
    try:
        rows = conn.execute(
            f"select r.id, m.id from erasure_request_ids r "
            f"join {dataset}.users u on u.id = r.id "
            f"left join {dataset}.users m on m.tenant_id = u.tenant_id "
            f"and m.email_hash = u.email_hash and m.id >= 0"
        ).fetchall()
    finally:
        conn.unregister("erasure_request_ids")
    members: dict[int, set[int]] = {}
    for named, merged in rows:
        members.setdefault(int(named), {int(named)}).update([] if merged is None else [int(merged)])
    person = {account: min(group) for group in members.values() for account in group}
    held = set(person)
    for source_id in ids:
        person.setdefault(int(source_id), int(source_id))
    return person, held


def _raw_columns(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    """Column name -> type of a table (empty when there is no such table)."""
    return dict(
        conn.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    )


def _rewrite(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    present: dict[str, str],
    people: Sequence[str],
    when: dict[str, tuple[str, str]],
    personal: Sequence[str],
    token: str | None,
) -> int:
    """Erase the owner's personal columns, then rewrite every users.id column of
    ``relation`` through ``erasure_map``; the number of rows changed."""
    matches = []
    for column in people:
        if column in present:
            condition = f'"{column}" in (select source_id from erasure_map)'
            if column in when and when[column][0] in present:
                other, value = when[column]
                condition = f"({condition} and \"{other}\" = '{value}')"
            matches.append(condition)
    if not matches:
        return 0
    counted = conn.execute(f"select count(*) from {relation} where {' or '.join(matches)}")
    touched = int(counted.fetchone()[0])  # type: ignore[index]
    owner = people[0] if people and people[0] in present else None
    erased = [c for c in personal if c in present]
    if owner is not None and (erased or (token and token in present)):
        sets = [f'"{c}" = NULL' for c in erased]
        if token and token in present:
            sets.append(f'"{token}" = m.person_token')
        conn.execute(
            f"update {relation} t set {', '.join(sets)} from erasure_map m "
            f'where t."{owner}" = m.source_id'
        )
    for column in people:
        if column not in present:
            continue
        if present[column] != "BIGINT":  # an anonymous id needs 64 bits
            conn.execute(f'alter table {relation} alter column "{column}" type bigint')
        condition = ""
        if column in when and when[column][0] in present:
            other, value = when[column]
            condition = f" and t.\"{other}\" = '{value}'"
        conn.execute(
            f'update {relation} t set "{column}" = m.anonymous_id from erasure_map m '
            f'where t."{column}" = m.source_id{condition}'
        )
    return touched


def _rewrite_snapshots(conn: duckdb.DuckDBPyConnection, result: ErasureResult) -> None:
    for table, rule in SNAPSHOTS.items():
        present = _raw_columns(conn, SNAPSHOT_SCHEMA, table)
        if not present:
            continue
        relation = f'{SNAPSHOT_SCHEMA}."{table}"'
        if rule.scd_key:
            # dbt matches snapshot rows by dbt_scd_id = md5(key | updated_at): keep that true
            # for the new key, and leave no hash of the source id behind.
            scd = (
                f"md5(coalesce(cast({rule.scd_key} as varchar), '') || '|' || "
                "coalesce(cast(updated_at as varchar), ''))"
            )
            row = conn.execute(
                f"select count(*) filter (where dbt_scd_id <> {scd}) from {relation}"
            ).fetchone()
            if row and row[0]:
                raise ErasureError(
                    f"{relation}'s dbt_scd_id is not md5({rule.scd_key} | updated_at) on "
                    f"{row[0]} rows: this dbt version hashes snapshots differently, so the "
                    "erasure cannot rewrite them safely (nothing was changed)"
                )
        rows = _rewrite(conn, relation, present, rule.people, {}, rule.personal, rule.token)
        if rule.scd_key:
            conn.execute(
                f"update {relation} set dbt_scd_id = {scd} where {rule.scd_key} < 0 "
                f"and dbt_scd_id <> {scd}"
            )
        if rows:
            result.rows_rewritten[f"{SNAPSHOT_SCHEMA}.{table}"] = rows


def forget(
    conn: duckdb.DuckDBPyConnection,
    dataset: str,
    source_ids: Iterable[int],
    key: bytes,
    register: Path,
    staging_dataset: str | None = None,
) -> ErasureResult:
    """Register ``source_ids`` (and the accounts merged with them) as erased and rewrite raw,
    the snapshots and dlt's staging dataset, in one transaction; then copy the register to
    the file ``register``."""
    ids = sorted({int(i) for i in source_ids})
    if not ids:
        raise ErasureError("no user id to forget: give --user-id, --file or a request table")
    if any(i < 0 for i in ids):
        raise ErasureError("user ids are the source's users.id: positive numbers")
    ensure_tables(conn, dataset)
    requested_at = now()
    request_id = uuid.uuid4().hex
    registered = {
        int(r[0]) for r in conn.execute(f"select anonymous_id from {dataset}.{REGISTER}").fetchall()
    }
    raw_tables = {
        r[0]
        for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = ?", [dataset]
        ).fetchall()
    }
    if "users" in raw_tables:
        person, held = _accounts(conn, dataset, ids)
    else:
        person, held = {i: i for i in ids}, set()
    already = sum(1 for i in ids if i not in held and anonymous_id(i, key) in registered)
    mapping = pa.table(
        {
            "source_id": pa.array(list(person), pa.int64()),
            "anonymous_id": pa.array([anonymous_id(s, key) for s in person], pa.int64()),
            "person_token": pa.array([person_token(p, key) for p in person.values()]),
        }
    )
    result = ErasureResult(
        request_id,
        requested_at,
        accounts=len(person),
        accounts_in_warehouse=len(held),
        already_forgotten=already,
    )
    with transaction(conn):
        conn.register("erasure_new", mapping)
        try:
            conn.execute(
                f"insert into {dataset}.{REGISTER} select n.anonymous_id, n.person_token, ?, ? "
                f"from erasure_new n anti join {dataset}.{REGISTER} r using (anonymous_id)",
                [request_id, requested_at],
            )
            conn.execute("create or replace temp table erasure_map as select * from erasure_new")
        finally:
            conn.unregister("erasure_new")
        for name, spec in TABLE_SPECS.items():
            table = snake_case(name)
            if not spec.people or table not in raw_tables:
                continue
            present = _raw_columns(conn, dataset, table)
            rows = _rewrite(
                conn,
                f'{dataset}."{table}"',
                present,
                [snake_case(c) for c in spec.people],
                {snake_case(c): (snake_case(o), v) for c, (o, v) in spec.people_when.items()},
                [landed(spec, c) for c in spec.personal if not _is_token(spec, c)],
                next((landed(spec, c) for c in spec.personal if _is_token(spec, c)), None),
            )
            if rows:
                result.rows_rewritten[f"{dataset}.{table}"] = rows
        _rewrite_snapshots(conn, result)
        if staging_dataset:
            # dlt's staging copies of merged loads: nothing there is needed after a load.
            for (table,) in conn.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [staging_dataset],
            ).fetchall():
                conn.execute(f'drop table "{staging_dataset}"."{table}"')
        conn.execute("drop table erasure_map")
        conn.execute(
            f"insert into {dataset}.{LOG} values (?, ?, ?, ?, ?, ?, ?, 'applied')",
            [
                request_id,
                requested_at,
                now(),
                result.accounts,
                result.accounts_in_warehouse,
                result.total_rows,
                json.dumps(result.rows_rewritten, sort_keys=True),
            ],
        )
    sync_register(conn, dataset, register)
    return result


def erasure_log(conn: duckdb.DuckDBPyConnection, dataset: str) -> list[tuple]:
    """Every request in the log, oldest first (empty when there is none)."""
    if not _has_table(conn, dataset, LOG):
        return []
    return conn.execute(
        f"select request_id, requested_at, finished_at, accounts, accounts_in_warehouse, "
        f"rows_rewritten, touched, status from {dataset}.{LOG} order by requested_at"
    ).fetchall()


def finish(
    conn: duckdb.DuckDBPyConnection, dataset: str, request_id: str, touched: str, status: str
) -> None:
    """Record how far a request got beyond raw (``touched``: JSON of what was rewritten)."""
    conn.execute(
        f"update {dataset}.{LOG} set finished_at = ?, touched = ?, status = ? where request_id = ?",
        [now(), touched, status, request_id],
    )
