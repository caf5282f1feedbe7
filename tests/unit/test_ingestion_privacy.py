"""Privacy by default: which unclassified columns are held back, which values are redacted,
which tables are probable renames; secrets never reach a message."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ingestion.errors import describe_warehouse_error
from ingestion.privacy import held_back, personal_word, probable_rename, redact_personal_values
from ingestion.settings import WarehouseSettings, redact, redacted_url
from ingestion.source_reader import SourceColumn
from ingestion.specs import TABLE_SPECS, contract_columns


@pytest.mark.parametrize(
    ("name", "kind", "word"),
    [
        ("personal_email", "text", "email"),
        ("phoneNumber", "text", "phone"),
        ("Full Name", "text", "name"),
        ("ip_address", "text", "ip"),
        ("birthdate", "date", "birth"),
        ("api_key", "text", "key"),
        ("government_id", "text", None),  # no personal word: content and rename rules cover it
        ("tax_id", "text", "tax"),
        ("card_id", "integer", None),  # an integer reference, not a card number
        ("zipcode", "text", "zip"),
        ("description", "text", None),  # "ip" is a word, not a substring
        ("title", "text", None),
    ],
)
def test_a_personal_word_in_an_unclassified_name(name, kind, word) -> None:
    assert personal_word(SourceColumn(name, kind)) == word


def test_classified_columns_and_the_key_are_never_held_back() -> None:
    columns = [
        SourceColumn("id", "integer", primary=True),
        SourceColumn("email", "text"),
        SourceColumn("personal_email", "text"),
        SourceColumn("name", "text"),
    ]
    assert set(held_back(columns, {"email", "name"})) == {"personal_email"}


def test_personal_looking_values_are_redacted_in_place() -> None:
    values = pa.array(
        [
            "reach me at a.b@example.com after 6",
            "+1-555-123-4567",
            "card 4111 1111 1111 1111 ok",
            "ssn 123-45-6789",
            "2024-01-02 10:00:00",
            "18446744073709551615",
            "v1.2.3",
            None,
        ]
    )
    redacted, changed = redact_personal_values(values)
    assert changed == 4
    assert redacted.to_pylist() == [
        "reach me at [redacted] after 6",
        "[redacted]",
        "card [redacted] ok",
        "ssn [redacted]",
        "2024-01-02 10:00:00",
        "18446744073709551615",
        "v1.2.3",
        None,
    ]


def test_a_table_with_most_of_a_specd_tables_columns_is_a_probable_rename() -> None:
    contracts = {t: contract_columns(t) for t in TABLE_SPECS}
    users = sorted(contract_columns("users"))
    assert probable_rename([*users, "extra"], contracts) == ("users", 1.0)
    assert probable_rename(users[:5], contracts) is None
    assert probable_rename(["id", "title", "body"], contracts) is None


def test_passwords_and_keys_are_redacted_from_messages() -> None:
    url = "mysql+pymysql://reader:s3cr3t-Pa55@db:3306/platform"
    assert redacted_url(url) == "mysql+pymysql://reader:***@db:3306/platform"
    text = f'(2003, "can\'t connect") while using {url} with key the-pii-key'
    cleaned = redact(text, ["the-pii-key"])
    assert "s3cr3t-Pa55" not in cleaned and "the-pii-key" not in cleaned
    # the examples messages give are not anybody's password
    assert redact("use mysql+pymysql://user:password@host:3306/db") == (
        "use mysql+pymysql://user:password@host:3306/db"
    )
    settings = WarehouseSettings(source_url=url, pii_key="the-pii-key")
    assert "s3cr3t" not in repr(settings) and "the-pii-key" not in repr(settings)
    assert set(settings.secrets()) == {"s3cr3t-Pa55", "the-pii-key"}


def test_the_lock_hint_goes_with_a_lock_only() -> None:
    lock = OSError('IO Error: Could not set lock on file "/w/x.duckdb": Conflicting lock is held')
    assert "one writing process" in describe_warehouse_error(None, lock)
    damaged = describe_warehouse_error(
        None,
        OSError(
            'IO Error: The file "/w/x.duckdb" exists, but it is not a valid DuckDB database file!'
        ),
    )
    denied = describe_warehouse_error(
        None, OSError('IO Error: Cannot open file "/w/x.duckdb": Permission denied')
    )
    full = describe_warehouse_error(
        None, OSError("IO Error: Could not write: No space left on device")
    )
    assert "not a readable DuckDB database" in damaged and "/w/x.duckdb" in damaged
    assert "permission denied" in denied and "/w/x.duckdb" in denied
    assert "the disk is full" in full
    assert not [m for m in (damaged, denied, full) if "one writing process" in m]
