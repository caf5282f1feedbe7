"""PII rules applied inside the extractor, before any row reaches the warehouse.

Dropped PII and SECRET columns are never selected (see ``specs``); this module
transforms the PII columns that are selected: a keyed hash for identifiers that
analysts join on, a reduced value (birth year, postal prefix) where a use is named.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.settings import WarehouseSettings
from ingestion.specs import PiiTreatment, TableSpec

DEMO_KEY_FILE = "pii.key"


class PiiKeyError(RuntimeError):
    """The HMAC key is missing or unusable for this source."""


def resolve_pii_key(settings: WarehouseSettings) -> bytes:
    """The HMAC key: ``WAREHOUSE_PII_KEY``; for the demo source only, a local key file.

    A real source without a key is an error: a default key would make the hashes
    reversible by anyone who reads this code.
    """
    if settings.pii_key:
        return settings.pii_key.encode()
    if not settings.is_demo_source:
        raise PiiKeyError(
            "WAREHOUSE_PII_KEY is not set: extracting a real source needs an HMAC key for PII "
            "(set it in the environment; keep it out of git)"
        )
    return _demo_key(settings.data_dir / DEMO_KEY_FILE)


def _demo_key(path: Path) -> bytes:
    # Generated once and kept beside the demo data, so hashes stay stable across demo runs.
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32) + "\n")
        path.chmod(0o600)
    return path.read_text().strip().encode()


def email_hash(value: str, key: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``lower(trim(value))``: duplicates still match."""
    return hmac.new(key, value.strip().lower().encode(), hashlib.sha256).hexdigest()


def mask_pii(batch: pa.Table, spec: TableSpec, key: bytes) -> pa.Table:
    """Replace every selected PII column of ``batch`` by its masked form, per ``spec``."""
    for column, rule in spec.pii.items():
        if column not in batch.column_names:
            continue
        values = batch.column(column)
        if rule.treatment is PiiTreatment.HASH:
            masked = pa.array(
                [None if v is None else email_hash(v, key) for v in values.to_pylist()],
                type=pa.string(),
            )
        elif rule.treatment is PiiTreatment.BIRTH_YEAR:
            masked = pc.cast(pc.year(values), pa.int32())
        elif rule.treatment is PiiTreatment.PREFIX3:
            masked = pc.utf8_slice_codeunits(pc.cast(values, pa.string()), 0, 3)
        else:  # DROP: never selected, but never let it through either
            batch = batch.drop_columns([column])
            continue
        index = batch.column_names.index(column)
        batch = batch.set_column(index, rule.landed_as or column, masked)
    return batch
