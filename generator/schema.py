"""The platform's transactional schema, exactly as ``docs/source.md`` names it.

One SQLAlchemy ``MetaData`` renders real DDL on both targets: InnoDB tables with
DATETIME, DECIMAL, TEXT and TINYINT(1) columns on MySQL/MariaDB, and the same
tables on SQLite (the embedded demo source). The camelCase columns are kept on
purpose. Foreign keys exist only where the audited database has them; every
relationship that docs/source.md lists with orphans has none.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

_MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}

ID = (
    BigInteger()
    .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
    .with_variant(Integer(), "sqlite")
)
REF = BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
MONEY = Numeric(12, 2)
BOOL = Integer().with_variant(mysql.TINYINT(1), "mysql", "mariadb")
# Plain DATETIME (seconds), spelled out for MySQL: Dagster's storage module registers a global
# compile hook that renders the generic DateTime as DATETIME(6) on MySQL once it is imported.
DATETIME = DateTime().with_variant(mysql.DATETIME(), "mysql", "mariadb")


def _id() -> Column:
    return Column("id", ID, primary_key=True, autoincrement=True)


def _table(name: str, *columns: Column, indexes: tuple[str, ...] = ()) -> Table:
    table = Table(name, metadata, *columns, **_MYSQL)
    for column_name in indexes:
        Index(f"ix_{name}_{column_name}", table.c[column_name])
    return table


tenants = _table(
    "tenants",
    _id(),
    Column("name", String(120), nullable=False),
    Column("slug", String(80), nullable=False, unique=True),
    Column("region", String(8), nullable=False),
    Column("default_currency", String(3), nullable=False),
    Column("reporting_timezone", String(64), nullable=False),
    Column("created_at", DATETIME, nullable=False),
)

users = _table(
    "users",
    _id(),
    Column("tenant_id", REF, ForeignKey("tenants.id"), nullable=False),
    Column("email", String(255), nullable=False),
    Column("full_name", String(255)),
    Column("role", String(32)),
    Column("country_code", String(2)),
    Column("phone", String(32)),
    Column("date_of_birth", Date),
    Column("ssn", String(16)),
    Column("government_id", String(32)),
    Column("address_line1", String(255)),
    Column("postal_code", String(16)),
    Column("marketing_consent", BOOL, nullable=False),
    Column("created_at", DATETIME, nullable=False),
    Column("updated_at", DATETIME, nullable=False),
    Column("deleted_at", DATETIME),
    Column("twoFactorLastVerifiedAt", DATETIME),
    Column("legacyImportedAt", DATETIME),
    indexes=("tenant_id", "email", "updated_at"),
)

instructor_profiles = _table(
    "instructor_profiles",
    _id(),
    Column("user_id", REF, nullable=False),
    Column("accountId", String(64), nullable=False),
    Column("revenue_share_pct", Numeric(5, 2), nullable=False),
    Column("tax_id", String(32)),
    Column("bank_account_number", String(34)),
    Column("payout_currency", String(3)),
    Column("created_at", DATETIME, nullable=False),
    Column("updated_at", DATETIME, nullable=False),
    indexes=("user_id", "updated_at"),
)

courses = _table(
    "courses",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("instructor_id", REF, nullable=False),
    Column("title", String(255), nullable=False),
    Column("slug", String(255), nullable=False),
    Column("category", String(64)),
    Column("level", String(32)),
    Column("price_amount", MONEY, nullable=False),
    Column("currency", String(3)),
    Column("status", String(32)),
    Column("published_at", DATETIME),
    Column("created_at", DATETIME, nullable=False),
    Column("updated_at", DATETIME, nullable=False),
    indexes=("tenant_id", "instructor_id", "slug", "updated_at"),
)

enrollments = _table(
    "enrollments",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("user_id", REF, nullable=False),
    Column("course_id", REF, nullable=False),
    Column("status", String(32), nullable=False),
    Column("acquisition_channel", String(32)),
    Column("progress_pct", Numeric(5, 2), nullable=False),
    Column("enrolled_at", DATETIME, nullable=False),
    Column("completed_at", DATETIME),
    Column("created_at", DATETIME, nullable=False),
    Column("updated_at", DATETIME, nullable=False),
    indexes=("tenant_id", "user_id", "course_id", "updated_at"),
)

payments = _table(
    "payments",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("user_id", REF, nullable=False),
    Column("product_type", String(32), nullable=False),
    Column("product_id", REF, nullable=False),
    Column("enrollment_id", REF),
    Column("amount", MONEY, nullable=False),
    Column("currency", String(3)),
    Column("processor", String(16), nullable=False),
    Column("processor_fee", MONEY),
    Column("status", String(32), nullable=False),
    Column("created_at", DATETIME, nullable=False),
    Column("updated_at", DATETIME, nullable=False),
    indexes=("tenant_id", "user_id", "updated_at"),
)

refunds = _table(
    "refunds",
    _id(),
    Column("payment_id", REF, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("reason", String(64)),
    Column("created_at", DATETIME, nullable=False),
    indexes=("payment_id", "created_at"),
)

payout_batches = _table(
    "payout_batches",
    _id(),
    Column("status", String(16), nullable=False),
    Column("created_at", DATETIME, nullable=False),
)

payouts = _table(
    "payouts",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("instructor_id", REF, nullable=False),
    Column("batch_id", REF),
    Column("amount", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("paid_at", DATETIME),
    Column("created_at", DATETIME, nullable=False),
    Column("updated_at", DATETIME, nullable=False),
    indexes=("instructor_id", "batch_id", "updated_at"),
)

subscriptions = _table(
    "subscriptions",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("user_id", REF, nullable=False),
    Column("plan", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("monthly_amount", MONEY, nullable=False),
    Column("currency", String(3)),
    Column("started_at", DATETIME, nullable=False),
    Column("cancelled_at", DATETIME),
    Column("updated_at", DATETIME, nullable=False),
    indexes=("user_id", "updated_at"),
)

ebooks = _table(
    "ebooks",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("instructor_id", REF, nullable=False),
    Column("title", String(255), nullable=False),
    Column("price_amount", MONEY, nullable=False),
    Column("currency", String(3)),
    Column("published_at", DATETIME),
    Column("created_at", DATETIME, nullable=False),
    Column("updated_at", DATETIME, nullable=False),
    indexes=("instructor_id", "updated_at"),
)

communities = _table(
    "communities",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("owner_id", REF, nullable=False),
    Column("name", String(255), nullable=False),
    Column("slug", String(255), nullable=False),
    Column("visibility", String(16), nullable=False),
    Column("metadata", Text),
    Column("created_at", DATETIME, nullable=False),
    Column("archived_at", DATETIME),
    Column("updated_at", DATETIME, nullable=False),
    indexes=("tenant_id", "slug", "updated_at"),
)

community_members = _table(
    "community_members",
    _id(),
    Column("community_id", REF, nullable=False),
    Column("user_id", REF, nullable=False),
    Column("role", String(16), nullable=False),
    Column("joined_at", DATETIME, nullable=False),
    Column("left_at", DATETIME),
    indexes=("community_id", "user_id"),
)

community_posts = _table(
    "community_posts",
    _id(),
    Column("community_id", REF, nullable=False),
    Column("author_id", REF, nullable=False),
    Column("title", String(255)),
    Column("body", Text),
    Column("created_at", DATETIME, nullable=False),
    Column("updated_at", DATETIME, nullable=False),
    indexes=("community_id", "updated_at"),
)

field_service_providers = _table(
    "field_service_providers",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("user_id", REF, nullable=False),
    Column("region", String(32), nullable=False),
    Column("service_types", Text),
    Column("rating", Numeric(3, 2)),
    Column("created_at", DATETIME, nullable=False),
    Column("updated_at", DATETIME, nullable=False),
    indexes=("tenant_id", "updated_at"),
)

field_service_orders = _table(
    "field_service_orders",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("customer_id", REF, nullable=False),
    Column("provider_id", REF),
    Column("service_type", String(32), nullable=False),
    Column("region", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("quoted_amount", MONEY, nullable=False),
    Column("currency", String(3)),
    Column("metadata", Text),
    Column("requested_at", DATETIME, nullable=False),
    Column("matched_at", DATETIME),
    Column("completed_at", DATETIME),
    Column("cancelled_at", DATETIME),
    Column("updated_at", DATETIME, nullable=False),
    indexes=("tenant_id", "provider_id", "updated_at"),
)

field_service_events = _table(
    "field_service_events",
    _id(),
    Column("order_id", REF, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("payload", Text),
    Column("occurred_at", DATETIME, nullable=False),
    indexes=("order_id",),
)

activity_logs = _table(
    "activity_logs",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("user_id", REF, nullable=False),
    Column("course_id", REF),
    Column("activity_type", String(32), nullable=False),
    Column("occurred_at", DATETIME, nullable=False),
    indexes=("user_id", "occurred_at"),
)

assessment_attempts = _table(
    "assessment_attempts",
    _id(),
    Column("user_id", REF, nullable=False),
    Column("course_id", REF, nullable=False),
    Column("score", Numeric(6, 2), nullable=False),
    Column("max_score", Numeric(6, 2), nullable=False),
    Column("attempted_at", DATETIME, nullable=False),
    indexes=("user_id", "course_id"),
)

moderation_cases = _table(
    "moderation_cases",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("target_type", String(16), nullable=False),
    Column("target_id", REF, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("decision", String(16)),
    Column("moderator_id", REF),
    Column("created_at", DATETIME, nullable=False),
    Column("decided_at", DATETIME),
    indexes=("tenant_id",),
)

domain_events = _table(
    "domain_events",
    _id(),
    Column("aggregate_type", String(32), nullable=False),
    Column("aggregate_id", REF, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", Text),
    Column("occurred_at", DATETIME, nullable=False),
)

learning_paths = _table(
    "learning_paths",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("region_id", REF),
    Column("title", String(255), nullable=False),
    Column("created_at", DATETIME, nullable=False),
)

integrations = _table(
    "integrations",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("api_key", String(128), nullable=False),
    Column("created_at", DATETIME, nullable=False),
)

webhooks = _table(
    "webhooks",
    _id(),
    Column("tenant_id", REF, nullable=False),
    Column("url", String(255), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("created_at", DATETIME, nullable=False),
)

course_drip_schedules = _table(
    "course_drip_schedules",
    _id(),
    Column("course_id", REF, nullable=False),
    Column("release_offset_days", Integer, nullable=False),
    Column("created_at", DATETIME, nullable=False),
)

ads_governance_rules = _table(
    "ads_governance_rules",
    _id(),
    Column("rule_name", String(64), nullable=False),
    Column("definition", Text),
    Column("created_at", DATETIME, nullable=False),
)

data_partitions = _table(
    "data_partitions",
    _id(),
    Column("table_name", String(64), nullable=False),
    Column("partition_key", String(64), nullable=False),
    Column("created_at", DATETIME, nullable=False),
)

TABLE_NAMES: tuple[str, ...] = tuple(metadata.tables)

# Columns holding New York wall time instead of UTC (docs/source.md: LOCAL).
LOCAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("twoFactorLastVerifiedAt",),
    "payments": ("created_at",),
}
SOURCE_TIMEZONE = "America/New_York"
