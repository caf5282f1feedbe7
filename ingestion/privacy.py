"""Privacy by default: what the specs do not classify never lands in clear when it looks
like personal data.

The table specs (``specs``) classify every column of the platform's contract: a PII
rule, a SECRET, or plain data. Anything else the source grows (a new column of a
spec'd table, every column of an unspecified table) is unclassified, and:

- a column whose name looks personal (``PII_NAME_WORDS``: ``personal_email``,
  ``full_name``, ``ip_address``, ``api_key``...) is held back: never selected, reported;
- every other unclassified text value is searched for what looks like an email, a phone
  number, a card number or a US SSN; each match is replaced by ``[redacted]`` before the
  row leaves the extractor, and the count is reported;
- an unspecified table whose columns are mostly those of a spec'd table is reported as a
  probable rename (or copy) of it, and that spec's PII and SECRET rules apply to it.

``CLEARED_COLUMNS`` in ``specs`` is where a reviewed column is declared not personal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.source_reader import SourceColumn, snake_case
from ingestion.specs import TableSpec

#: Words of a column name (in snake_case) that make an unclassified column personal.
PII_NAME_WORDS = frozenset(
    {
        "email",
        "phone",
        "ssn",
        "name",
        "address",
        "birth",
        "dob",
        "postal",
        "zip",
        "tax",
        "bank",
        "iban",
        "card",
        "passport",
        "license",
        "ip",
        "token",
        "secret",
        "password",
        "key",
        "salt",
    }
)

# Words that also match as a prefix (``emails``, ``birthdate``, ``zipcode``); the short ones
# only whole (``ip`` is not ``description``'s, ``tax`` not ``taxonomy``'s).
_PREFIXES = frozenset(w for w in PII_NAME_WORDS if len(w) >= 4) | {"zip"}

REDACTED = "[redacted]"

# RE2 patterns (pyarrow): what personal data looks like inside any text value.
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_PHONE = (
    r"\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b"
)
_CARD = r"\b\d(?:[ -]?\d){12,18}\b"
_SSN = r"\b\d{3}-\d{2}-\d{4}\b"
CONTENT_PATTERN = f"(?:{_EMAIL})|(?:{_PHONE})|(?:{_CARD})|(?:{_SSN})"

# Share of a spec'd table's columns an unspecified table must have to be a probable rename.
RENAME_SIMILARITY = 0.8


def personal_word(column: SourceColumn) -> str | None:
    """The PII word in ``column``'s name, or None.

    An integer column named like a reference (``card_id``, ``ip_id``) is a key to another
    row, not personal data; a text one (``government_id``, ``tax_id``) may well be.
    """
    words = snake_case(column.name).split("_")
    if column.kind == "integer" and words[-1] == "id":
        return None
    for word in words:
        for pii in PII_NAME_WORDS:
            if word == pii or word == pii + "s" or (pii in _PREFIXES and word.startswith(pii)):
                return pii
    return None


def held_back(columns: Sequence[SourceColumn], classified: Iterable[str]) -> dict[str, str]:
    """Unclassified columns whose name looks personal: column -> why it is held back."""
    known = set(classified)
    reasons: dict[str, str] = {}
    for column in columns:
        if column.name in known or column.primary:
            continue
        word = personal_word(column)
        if word:
            reasons[column.name] = f"unclassified, its name looks personal ({word!r})"
    return reasons


def redact_personal_values(values: pa.ChunkedArray | pa.Array) -> tuple[pa.ChunkedArray, int]:
    """``values`` (text) with every email, phone, card or SSN-looking part replaced by
    ``[redacted]``, and how many values changed."""
    has_personal = pc.fill_null(pc.match_substring_regex(values, CONTENT_PATTERN), False)
    found = int(pc.sum(has_personal).as_py() or 0)
    if not found:
        return pa.chunked_array([values]) if isinstance(values, pa.Array) else values, 0
    replaced = pc.replace_substring_regex(values, CONTENT_PATTERN, REDACTED)
    result = pc.if_else(has_personal, replaced, values)
    return pa.chunked_array([result]) if isinstance(result, pa.Array) else result, found


def redact_batch(batch: pa.Table, columns: Iterable[str]) -> tuple[pa.Table, dict[str, int]]:
    """Redact the personal-looking parts of the text ``columns`` of ``batch``."""
    counts: dict[str, int] = {}
    for name in columns:
        if name not in batch.column_names:
            continue
        index = batch.column_names.index(name)
        values, found = redact_personal_values(batch.column(index))
        if found:
            batch = batch.set_column(index, batch.schema.field(index), values)
            counts[name] = found
    return batch, counts


def probable_rename(
    columns: Iterable[str], contracts: Mapping[str, frozenset[str]]
) -> tuple[str, float] | None:
    """The spec'd table whose contract columns ``columns`` mostly has, and the share, or None."""
    names = {snake_case(c) for c in columns}
    best: tuple[str, float] | None = None
    for table, contract in contracts.items():
        wanted = {snake_case(c) for c in contract}
        if len(wanted) < 3:
            continue
        share = len(names & wanted) / len(wanted)
        if share >= RENAME_SIMILARITY and (best is None or share > best[1]):
            best = (table, share)
    return best


def rules_for_rename(spec: TableSpec, table: str) -> TableSpec:
    """``spec``'s PII and SECRET rules, applied to ``table`` (a probable rename of it)."""
    return TableSpec(
        name=table,
        primary_key=spec.primary_key,
        cursor=None,
        pii=dict(spec.pii),
        secret=spec.secret,
        booleans=spec.booleans,
    )
