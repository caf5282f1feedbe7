"""The platform generator: the golden source database, defects included.

``generate`` builds every table of ``docs/source.md`` deterministically into a
MySQL/MariaDB server or a SQLite file and writes a JSON manifest of what it
planted beside the data; ``mutate`` (``generator.mutate``) simulates the
platform running on. It is a simulator of the platform, not part of the warehouse: it
imports nothing from the project, and its tests check it against the source contract
(``ingestion.specs``). Nothing here reads the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from generator.encode import frame_to_tsv
from generator.platform import (
    SCALES,
    WINDOW_END,
    WINDOW_START,
    DefectRates,
    PlatformGenerator,
)
from generator.schema import TABLE_NAMES
from generator.target import Target, TargetError

GENERATOR_VERSION = 1

__all__ = ["SCALES", "DefectRates", "TargetError", "generate", "manifest_path_for", "read_manifest"]


def manifest_path_for(source_url: str, data_dir: Path) -> Path:
    """Beside the data: next to a SQLite file, or under ``data/manifests`` for a server."""
    url = make_url(source_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return Path(url.database).with_suffix(".manifest.json")
    name = f"{url.get_backend_name()}_{url.host or 'localhost'}_{url.port or 3306}_{url.database}"
    return data_dir / "manifests" / f"{name}.manifest.json"


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)


def generate(
    source_url: str,
    seed: int,
    scale: str,
    rates: DefectRates,
    replace: bool,
    manifest_path: Path,
    progress: Any = None,
) -> dict[str, Any]:
    """Build the platform database and return (and write) its manifest."""
    generator = PlatformGenerator(seed=seed, scale=scale, rates=rates)
    target = Target(source_url)
    started = time.perf_counter()
    try:
        target.prepare(replace=replace)
        digests = {name: hashlib.sha256() for name in TABLE_NAMES}
        rows = dict.fromkeys(TABLE_NAMES, 0)
        for table, frame in generator.tables():
            digests[table].update(frame_to_tsv(frame))
            rows[table] += len(frame)
            target.load(table, frame)
            if progress:
                progress(table, len(frame))
    finally:
        target.dispose()
    seconds = time.perf_counter() - started
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "scale": scale,
        "rates": asdict(rates),
        "target": target.description,
        "window": {"start": _iso(WINDOW_START), "end": _iso(WINDOW_END)},
        "total_rows": sum(rows.values()),
        "seconds": round(seconds, 2),
        "tables": {t: {"rows": rows[t], "checksum": digests[t].hexdigest()} for t in TABLE_NAMES},
        "defects": generator.planted.summary(),
        "hard_deleted": {
            t: {"count": len(ids), "ids": ids} for t, ids in sorted(generator.hard_deleted.items())
        },
        "structural": {
            "camel_case_columns": {
                "users": ["twoFactorLastVerifiedAt", "legacyImportedAt"],
                "instructor_profiles": ["accountId"],
            },
            "local_time_columns": {
                "users": ["twoFactorLastVerifiedAt"],
                "payments": ["created_at"],
            },
            "pii_columns": {
                "users": [
                    "email",
                    "full_name",
                    "phone",
                    "date_of_birth",
                    "ssn",
                    "government_id",
                    "address_line1",
                    "postal_code",
                ],
                "instructor_profiles": ["tax_id", "bank_account_number"],
            },
            "secret_columns": {"integrations": ["api_key"], "webhooks": ["secret"]},
            "missing_tables": ["regions"],
            "dark_matter_tables": [
                "course_drip_schedules",
                "ads_governance_rules",
                "data_partitions",
            ],
        },
        "mutations": [],
    }
    write_manifest(manifest_path, manifest)
    return manifest


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
