"""The table specs: how every platform table is extracted, declared in one place.

One ``TableSpec`` per source table says what the pipeline needs to know and nothing
else: the primary key, the cursor column (``updated_at`` for mutable tables, ``id``
for append-only ones, none for small tables re-read whole), the write disposition,
the lookback window, which columns are PII and how each is treated, which columns
are never selected, and the time zone of the LOCAL columns. Tables excluded on
purpose are listed with the reason. A table of the source that is in neither list
is extracted generically (full replace) and reported as unspecified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Literal

WriteDisposition = Literal["merge", "append"]

SOURCE_TIMEZONE = "America/New_York"
# Rows committed late (long transactions, replica lag) carry a cursor older than the last
# value seen; re-reading this window on every incremental run picks them up.
DEFAULT_LAG_SECONDS = 2 * 3600


class PiiTreatment(StrEnum):
    """What happens to a PII column before its rows leave the extractor."""

    HASH = "hash"  # HMAC-SHA256 of lower(trim(value)), lands as <column>_hash
    BIRTH_YEAR = "birth_year"  # a DATE reduced to its year, lands as birth_year
    PREFIX3 = "prefix3"  # the first three characters, lands as <stem>_prefix
    DROP = "drop"  # never selected


@dataclass(frozen=True)
class PiiRule:
    """One PII column and what it becomes in raw (``landed_as`` is None when dropped)."""

    treatment: PiiTreatment
    landed_as: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """How one source table is extracted into ``raw.<name>``."""

    name: str
    primary_key: str = "id"
    # None: no trustworthy cursor; the (small) table is re-read whole and merged on the key.
    cursor: str | None = "updated_at"
    write_disposition: WriteDisposition = "merge"
    lag_seconds: float = DEFAULT_LAG_SECONDS
    pii: dict[str, PiiRule] = field(default_factory=dict)
    secret: tuple[str, ...] = ()
    local_columns: tuple[str, ...] = ()
    # Integer columns that hold booleans where the source engine has no TINYINT(1) (SQLite).
    booleans: tuple[str, ...] = ()
    # The cursor is not bumped on every change (docs/source.md: enrollments): reconcile compares
    # a hash of every row with raw, not only the keys.
    stale_cursor: bool = False

    @property
    def never_selected(self) -> frozenset[str]:
        """SECRET columns and dropped PII: neither appears in the SELECT."""
        dropped = {c for c, rule in self.pii.items() if rule.treatment is PiiTreatment.DROP}
        return frozenset(self.secret) | dropped

    @property
    def masked_columns(self) -> tuple[str, ...]:
        """PII columns that are selected and transformed before landing."""
        return tuple(c for c, r in self.pii.items() if r.treatment is not PiiTreatment.DROP)


def _mutable(name: str, **kwargs: object) -> TableSpec:
    return TableSpec(name=name, cursor="updated_at", write_disposition="merge", **kwargs)  # type: ignore[arg-type]


def _append_only(name: str, **kwargs: object) -> TableSpec:
    # Append-only tables never change a row, so the auto-increment key is the cursor; a lag
    # on it would only re-append rows already landed. Late commits below the last id seen are
    # found by --reconcile's key comparison instead.
    return TableSpec(name=name, cursor="id", write_disposition="append", lag_seconds=0, **kwargs)  # type: ignore[arg-type]


def _whole(name: str, **kwargs: object) -> TableSpec:
    return TableSpec(name=name, cursor=None, write_disposition="merge", lag_seconds=0, **kwargs)  # type: ignore[arg-type]


DROP = PiiRule(PiiTreatment.DROP)

TABLE_SPECS: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        # Small tables without an updated_at (or whose rows change without one) are re-read whole.
        _whole("tenants"),
        _mutable(
            "users",
            pii={
                "email": PiiRule(PiiTreatment.HASH, "email_hash"),
                "full_name": DROP,
                "phone": DROP,
                "date_of_birth": PiiRule(PiiTreatment.BIRTH_YEAR, "birth_year"),
                "ssn": DROP,
                "government_id": DROP,
                "address_line1": DROP,
                "postal_code": PiiRule(PiiTreatment.PREFIX3, "postal_prefix"),
            },
            local_columns=("twoFactorLastVerifiedAt",),
            booleans=("marketing_consent",),
        ),
        _mutable("instructor_profiles", pii={"tax_id": DROP, "bank_account_number": DROP}),
        _mutable("courses"),
        _mutable("enrollments", stale_cursor=True),
        _mutable("payments", local_columns=("created_at",)),
        _append_only("refunds"),
        _whole("payout_batches"),  # status moves open -> completed without a timestamp
        _mutable("payouts"),
        _mutable("subscriptions"),
        _mutable("ebooks"),
        _mutable("communities"),
        _whole("community_members"),  # left_at changes without an updated_at
        _mutable("community_posts"),
        _mutable("field_service_providers"),
        _mutable("field_service_orders"),
        _append_only("field_service_events"),
        _append_only("activity_logs"),
        _append_only("assessment_attempts"),
        _whole("moderation_cases"),  # decision and decided_at change without an updated_at
        _append_only("domain_events"),
        _whole("learning_paths"),
        _whole("integrations", secret=("api_key",)),
        _whole("webhooks", secret=("secret",)),
    )
}

EXCLUDED_TABLES: dict[str, str] = {
    "course_drip_schedules": "dark matter: exists in the schema, never used by the product",
    "ads_governance_rules": "dark matter: exists in the schema, never used by the product",
    "data_partitions": "dark matter: exists in the schema, never used by the product",
}


def spec_for(table: str) -> TableSpec | None:
    """The spec of a source table, or None when the table is unspecified."""
    return TABLE_SPECS.get(table)


#: Columns a reviewer declared not personal although their name or content looks so, by table
#: (source names). The platform's own columns need no entry: the contract classifies them.
CLEARED_COLUMNS: dict[str, frozenset[str]] = {}


@cache
def contract_columns(table: str) -> frozenset[str]:
    """The columns the contract (``docs/source.md``, as the platform schema) classifies for a
    spec'd table: a PII rule, a SECRET or plain data. Empty for any other table."""
    from ingestion.generator.schema import metadata

    if table not in TABLE_SPECS or table not in metadata.tables:
        return frozenset()
    return frozenset(c.name for c in metadata.tables[table].columns)


@cache
def contract_integer_keys(table: str) -> frozenset[str]:
    """The contract's integer keys of a spec'd table (``id``, ``*_id``): BIGINT in raw, even
    where the source declares them unsigned."""
    from sqlalchemy import Integer

    from ingestion.generator.schema import metadata

    if table not in TABLE_SPECS or table not in metadata.tables:
        return frozenset()
    return frozenset(
        c.name
        for c in metadata.tables[table].columns
        if isinstance(c.type, Integer) and (c.name == "id" or c.name.endswith("_id"))
    )
