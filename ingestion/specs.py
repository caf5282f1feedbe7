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
    # The source's columns the warehouse relies on, by source name, in the source's order.
    columns: tuple[str, ...] = ()
    # The money column whose sum the reconciliation compares with raw's (None: no money).
    money: str | None = None
    # Columns holding a users.id (source names), which an erasure request rewrites to the
    # person's anonymous id; the first is the row's owner.
    people: tuple[str, ...] = ()
    # A people column that holds a users.id only on rows where another column has a value:
    # {column: (that column, value)}.
    people_when: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Columns about the row's owner (source names: who they are, what they wrote), erased
    # with them; a HASH column becomes the erased person's token instead of NULL.
    personal: tuple[str, ...] = ()

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


def _columns(names: str) -> tuple[str, ...]:
    return tuple(names.split())


DROP = PiiRule(PiiTreatment.DROP)

TABLE_SPECS: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        # Small tables without an updated_at (or whose rows change without one) are re-read whole.
        _whole(
            "tenants",
            columns=_columns("id name slug region default_currency reporting_timezone created_at"),
        ),
        _mutable(
            "users",
            columns=_columns(
                "id tenant_id email full_name role country_code phone date_of_birth ssn "
                "government_id address_line1 postal_code marketing_consent created_at "
                "updated_at deleted_at twoFactorLastVerifiedAt legacyImportedAt"
            ),
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
            people=("id",),
            personal=(
                "email",
                "full_name",
                "phone",
                "date_of_birth",
                "ssn",
                "government_id",
                "address_line1",
                "postal_code",
                "country_code",
            ),
        ),
        _mutable(
            "instructor_profiles",
            columns=_columns(
                "id user_id accountId revenue_share_pct tax_id bank_account_number "
                "payout_currency created_at updated_at"
            ),
            pii={"tax_id": DROP, "bank_account_number": DROP},
            people=("user_id",),
            personal=("accountId", "tax_id", "bank_account_number"),
        ),
        _mutable(
            "courses",
            columns=_columns(
                "id tenant_id instructor_id title slug category level price_amount "
                "currency status published_at created_at updated_at"
            ),
            money="price_amount",
            people=("instructor_id",),
        ),
        _mutable(
            "enrollments",
            columns=_columns(
                "id tenant_id user_id course_id status acquisition_channel progress_pct "
                "enrolled_at completed_at created_at updated_at"
            ),
            stale_cursor=True,
            people=("user_id",),
        ),
        _mutable(
            "payments",
            columns=_columns(
                "id tenant_id user_id product_type product_id enrollment_id amount "
                "currency processor processor_fee status created_at updated_at"
            ),
            money="amount",
            local_columns=("created_at",),
            people=("user_id",),
        ),
        _append_only(
            "refunds",
            columns=_columns("id payment_id amount reason created_at"),
            money="amount",
        ),
        # Status moves open -> completed without a timestamp.
        _whole(
            "payout_batches",
            columns=_columns("id status created_at"),
        ),
        _mutable(
            "payouts",
            columns=_columns(
                "id tenant_id instructor_id batch_id amount currency status "
                "period_start period_end paid_at created_at updated_at"
            ),
            money="amount",
            people=("instructor_id",),
        ),
        _mutable(
            "subscriptions",
            columns=_columns(
                "id tenant_id user_id plan status monthly_amount currency started_at "
                "cancelled_at updated_at"
            ),
            money="monthly_amount",
            people=("user_id",),
        ),
        _mutable(
            "ebooks",
            columns=_columns(
                "id tenant_id instructor_id title price_amount currency published_at "
                "created_at updated_at"
            ),
            money="price_amount",
            people=("instructor_id",),
        ),
        _mutable(
            "communities",
            columns=_columns(
                "id tenant_id owner_id name slug visibility metadata created_at "
                "archived_at updated_at"
            ),
            people=("owner_id",),
        ),
        # left_at changes without an updated_at.
        _whole(
            "community_members",
            columns=_columns("id community_id user_id role joined_at left_at"),
            people=("user_id",),
        ),
        _mutable(
            "community_posts",
            columns=_columns("id community_id author_id title body created_at updated_at"),
            people=("author_id",),
            personal=("title", "body"),
        ),
        _mutable(
            "field_service_providers",
            columns=_columns(
                "id tenant_id user_id region service_types rating created_at updated_at"
            ),
            people=("user_id",),
        ),
        _mutable(
            "field_service_orders",
            columns=_columns(
                "id tenant_id customer_id provider_id service_type region status "
                "quoted_amount currency metadata requested_at matched_at completed_at "
                "cancelled_at updated_at"
            ),
            money="quoted_amount",
            people=("customer_id",),
            personal=("metadata",),
        ),
        _append_only(
            "field_service_events",
            columns=_columns("id order_id event_type payload occurred_at"),
        ),
        _append_only(
            "activity_logs",
            columns=_columns("id tenant_id user_id course_id activity_type occurred_at"),
            people=("user_id",),
        ),
        _append_only(
            "assessment_attempts",
            columns=_columns("id user_id course_id score max_score attempted_at"),
            people=("user_id",),
        ),
        # Decision and decided_at change without an updated_at.
        _whole(
            "moderation_cases",
            columns=_columns(
                "id tenant_id target_type target_id reason decision moderator_id "
                "created_at decided_at"
            ),
            people=("moderator_id", "target_id"),
            people_when={"target_id": ("target_type", "user")},
        ),
        _append_only(
            "domain_events",
            columns=_columns("id aggregate_type aggregate_id event_type payload occurred_at"),
        ),
        _whole(
            "learning_paths",
            columns=_columns("id tenant_id region_id title created_at"),
        ),
        _whole(
            "integrations",
            columns=_columns("id tenant_id provider api_key created_at"),
            secret=("api_key",),
        ),
        _whole(
            "webhooks", columns=_columns("id tenant_id url secret created_at"), secret=("secret",)
        ),
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


def contract_columns(table: str) -> frozenset[str]:
    """The columns the source contract (the spec's ``columns``) classifies for a spec'd table:
    a PII rule, a SECRET or plain data. Empty for any other table."""
    spec = TABLE_SPECS.get(table)
    return frozenset(spec.columns) if spec else frozenset()


def contract_integer_keys(table: str) -> frozenset[str]:
    """The contract's integer keys of a spec'd table (``id``, ``*_id`` that are not PII or
    SECRET: ``government_id`` is a document number): BIGINT in raw, even where the source
    declares them unsigned."""
    spec = TABLE_SPECS.get(table)
    if spec is None:
        return frozenset()
    return frozenset(
        c
        for c in spec.columns
        if (c == "id" or c.endswith("_id")) and c not in spec.pii and c not in spec.secret
    )
