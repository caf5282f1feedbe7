"""The table specs, PII rules, type mapping and drift rules, without any database."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pyarrow as pa
import pytest
from sqlalchemy import types as sa
from sqlalchemy.dialects import mysql

from generator.schema import LOCAL_COLUMNS, SOURCE_TIMEZONE, TABLE_NAMES
from ingestion.drift import LandedType, TableDriftError, detect_drift
from ingestion.pii import PiiKeyError, email_hash, mask_pii, resolve_pii_key
from ingestion.settings import WarehouseSettings
from ingestion.source_reader import SourceColumn, classify
from ingestion.specs import EXCLUDED_TABLES, TABLE_SPECS, PiiTreatment
from ingestion.specs import SOURCE_TIMEZONE as SPEC_TZ

# docs/source.md's sensitive columns, written out here rather than read from the specs.
PII_COLUMNS = {
    "users": {
        "email",
        "full_name",
        "phone",
        "date_of_birth",
        "ssn",
        "government_id",
        "address_line1",
        "postal_code",
    },
    "instructor_profiles": {"tax_id", "bank_account_number"},
}
SECRET_COLUMNS = {"integrations": {"api_key"}, "webhooks": {"secret"}}
APPEND_ONLY = {"activity_logs", "refunds", "field_service_events", "domain_events"}


def test_every_generator_table_is_specified_or_excluded_with_a_reason() -> None:
    assert set(TABLE_NAMES) == set(TABLE_SPECS) | set(EXCLUDED_TABLES)
    assert not set(TABLE_SPECS) & set(EXCLUDED_TABLES)
    assert set(EXCLUDED_TABLES) == {
        "course_drip_schedules",
        "ads_governance_rules",
        "data_partitions",
    }
    assert all(reason.strip() for reason in EXCLUDED_TABLES.values())


def test_every_pii_column_has_a_rule_and_secrets_are_never_selected() -> None:
    for table, columns in PII_COLUMNS.items():
        assert set(TABLE_SPECS[table].pii) == columns
    for table, columns in SECRET_COLUMNS.items():
        assert columns <= TABLE_SPECS[table].never_selected
    users = TABLE_SPECS["users"]
    assert users.pii["email"].treatment is PiiTreatment.HASH
    assert users.pii["email"].landed_as == "email_hash"
    assert {"full_name", "phone", "ssn", "government_id", "address_line1"} <= users.never_selected
    assert {"tax_id", "bank_account_number"} <= TABLE_SPECS["instructor_profiles"].never_selected


def test_cursors_dispositions_and_local_columns_follow_source_md() -> None:
    for name in APPEND_ONLY:
        assert (TABLE_SPECS[name].cursor, TABLE_SPECS[name].write_disposition) == ("id", "append")
    for name in ("users", "payments", "enrollments", "courses"):
        assert (TABLE_SPECS[name].cursor, TABLE_SPECS[name].write_disposition) == (
            "updated_at",
            "merge",
        )
        assert TABLE_SPECS[name].lag_seconds > 0
    assert [n for n, s in TABLE_SPECS.items() if s.stale_cursor] == ["enrollments"]
    local = {n: s.local_columns for n, s in TABLE_SPECS.items() if s.local_columns}
    assert local == LOCAL_COLUMNS
    assert SPEC_TZ == SOURCE_TIMEZONE == "America/New_York"


def test_email_hash_is_keyed_hmac_of_trimmed_lowercase() -> None:
    expected = hmac.new(b"k", b"ada.lovelace1@example.com", hashlib.sha256).hexdigest()
    assert email_hash(" Ada.Lovelace1@example.com ", b"k") == expected
    assert email_hash("ada.lovelace1@example.com", b"other") != expected


def test_mask_pii_hashes_reduces_and_renames() -> None:
    batch = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "email": pa.array(["A@x.test", None]),
            "date_of_birth": pa.array([date(1984, 5, 6), None], pa.date32()),
            "postal_code": pa.array(["94107", "1"]),
        }
    )
    masked = mask_pii(batch, TABLE_SPECS["users"], b"k")
    assert masked.column_names == ["id", "email_hash", "birth_year", "postal_prefix"]
    assert masked.column("email_hash").to_pylist() == [
        hmac.new(b"k", b"a@x.test", hashlib.sha256).hexdigest(),
        None,
    ]
    assert masked.column("birth_year").to_pylist() == [1984, None]
    assert masked.column("postal_prefix").to_pylist() == ["941", "1"]


def test_a_real_source_without_a_pii_key_is_an_error(tmp_path) -> None:
    real = WarehouseSettings(data_dir=tmp_path, source_url="mysql+pymysql://u@h/db")
    with pytest.raises(PiiKeyError, match="WAREHOUSE_PII_KEY"):
        resolve_pii_key(real)


def test_the_demo_keeps_one_generated_key(tmp_path) -> None:
    demo = WarehouseSettings(data_dir=tmp_path)
    first = resolve_pii_key(demo)
    assert len(first) == 64 and resolve_pii_key(demo) == first
    assert (tmp_path / "pii.key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("column_type", "is_key", "expected"),
    [
        (mysql.TINYINT(display_width=1), False, SourceColumn("c", "boolean")),
        (mysql.TINYINT(display_width=4), False, SourceColumn("c", "integer")),
        (mysql.BIGINT(unsigned=True), True, SourceColumn("c", "integer", unsigned=True)),
        (mysql.BIGINT(unsigned=True), False, SourceColumn("c", "decimal", True, 20, 0, True)),
        (mysql.DECIMAL(12, 2), False, SourceColumn("c", "decimal", True, 12, 2)),
        (mysql.DECIMAL(65, 10), False, SourceColumn("c", "text", as_text=True)),
        (mysql.TIME(), False, SourceColumn("c", "text", as_text=True)),
        (mysql.BIT(64), False, SourceColumn("c", "decimal", True, 20, 0, True, bit=True)),
        (mysql.BIT(8), False, SourceColumn("c", "integer", bit=True)),
        (mysql.DATETIME(fsp=6), False, SourceColumn("c", "timestamp")),
        (mysql.ENUM("a", "b"), False, SourceColumn("c", "text")),
        (mysql.SET("x", "y"), False, SourceColumn("c", "text")),
        (mysql.LONGTEXT(), False, SourceColumn("c", "text")),
        (sa.Date(), False, SourceColumn("c", "date")),
    ],
)
def test_mysql_types_map_to_faithful_raw_types(column_type, is_key, expected) -> None:
    assert classify("c", column_type, True, is_key, False) == expected


def test_an_unmappable_type_is_skipped_with_a_reason() -> None:
    class Geometry(sa.UserDefinedType):
        cache_ok = True

        def get_col_spec(self) -> str:
            return "GEOMETRY"

    reason = classify("shape", Geometry(), True, False, False)
    assert isinstance(reason, str) and "no faithful" in reason


def test_drift_reports_new_and_dropped_and_casts_a_narrowing() -> None:
    existing = {
        "id": LandedType("bigint", 64),
        "amount": LandedType("decimal", 12, 2),
        "note": LandedType("text"),
        "_dlt_id": LandedType("text"),
    }
    landed = {
        "id": LandedType("bigint", 64),
        "amount": LandedType("decimal", 10, 2),
        "extra": LandedType("text"),
    }
    drift = detect_drift("payments", existing, landed)
    assert drift.new_columns == ["extra"]
    assert drift.dropped_columns == ["note"]
    assert drift.casts == {"amount": LandedType("decimal", 12, 2)}
    assert drift.narrowed == {
        "amount": (LandedType("decimal", 12, 2), LandedType("decimal", 10, 2))
    }
    assert drift.widened == {}


@pytest.mark.parametrize(
    ("old", "new", "raw_becomes"),
    [
        (LandedType("decimal", 12, 2), LandedType("decimal", 16, 2), LandedType("decimal", 16, 2)),
        # more scale, fewer integer digits: raw takes both (14,4), the values land as (14,4)
        (LandedType("decimal", 12, 2), LandedType("decimal", 12, 4), LandedType("decimal", 14, 4)),
        (LandedType("bigint", 32), LandedType("bigint", 64), LandedType("bigint", 64)),
        (LandedType("bigint", 64), LandedType("decimal", 20, 0), LandedType("decimal", 20, 0)),
        (LandedType("date"), LandedType("timestamp"), LandedType("timestamp")),
        (LandedType("time"), LandedType("text"), LandedType("text")),
    ],
)
def test_a_widening_evolves_raw(old, new, raw_becomes) -> None:
    drift = detect_drift("payments", {"amount": old}, {"amount": new})
    assert drift.widened == {"amount": (old, raw_becomes)}
    assert drift.narrowed == {}
    assert drift.casts == ({} if raw_becomes == new else {"amount": raw_becomes})


def test_a_lossy_type_change_names_table_column_and_both_types() -> None:
    existing = {"amount": LandedType("decimal", 12, 2)}
    with pytest.raises(TableDriftError) as caught:
        detect_drift("payments", existing, {"amount": LandedType("text")})
    message = str(caught.value)
    assert "payments.amount" in message
    assert "decimal(12,2)" in message and "text" in message
    # no DECIMAL holds both 28 integer digits and 20 decimals
    wide = {"amount": LandedType("decimal", 30, 2)}
    with pytest.raises(TableDriftError, match=r"decimal\(30,2\) to decimal\(30,20\)"):
        detect_drift("payments", wide, {"amount": LandedType("decimal", 30, 20)})
    with pytest.raises(TableDriftError, match=r"from timestamp to bigint"):
        detect_drift(
            "payments", {"paid": LandedType("timestamp")}, {"paid": LandedType("bigint", 64)}
        )
