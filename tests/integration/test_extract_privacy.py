"""Privacy by default against real MariaDB: drift never lands personal data in clear, the PII
key is required however the source is configured, and a changed key stops the run.

After each scenario every table of the warehouse (raw, dlt's staging dataset, the
bookkeeping) and every file of dlt's pipeline folder is searched for the source's personal
values.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from ingestion.pii import PiiKeyError, email_hash
from ingestion.pipeline import run_extract
from orchestration.cli import app
from tests.ingestion_support import (
    PII_KEY,
    child_environment,
    generate_platform,
    run_files_under,
    scan_warehouse_for,
    settings_for,
    source_rows,
    warehouse_rows,
)

pytestmark = pytest.mark.mysql

# Values distinctive enough to search raw files for (postal codes and dates are not: any
# five digits or date may occur in a load id or a timestamp).
DISTINCTIVE = re.compile(r"@|^\+|^\d{3}-\d{2}-\d{4}$|^P\d{8}$| Street$|^[A-Z][a-z]+ [A-Z][a-z]+$")


def execute(url: str, *statements: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def personal_values(url: str, table: str) -> set[str]:
    """Every personal value of the users table (under whatever name it has now)."""
    columns = [
        r[0]
        for r in source_rows(
            url,
            "select column_name from information_schema.columns where table_schema = database() "
            f"and table_name = '{table}' and column_name in ('email', 'full_name', 'phone', 'ssn', "
            "'government_id', 'address_line1', 'personal_email', 'backup_contact')",
        )
    ]
    values: set[str] = set()
    for row in source_rows(url, f"select {', '.join(columns)} from {table}"):
        for value in row:
            if value is not None and str(value).strip():
                values.add(str(value))
                values.add(str(value).strip().lower())
    return values


def scan_pipeline_folder(warehouse: Path, values: set[str]) -> list[str]:
    """Files under dlt's pipeline folder that hold one of the distinctive ``values``."""
    wanted = [v.encode() for v in values if DISTINCTIVE.search(v)]
    hits = []
    for path in (warehouse.parent / ".dlt_pipelines").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(v in data for v in wanted):
                hits.append(str(path))
    return hits


def test_a_new_pii_column_and_a_renamed_pii_table_never_land_in_clear(
    mysql_database, tmp_path
) -> None:
    url = mysql_database("priv")
    generate_platform(url, tmp_path / "platform.manifest.json")
    settings = settings_for(tmp_path, url)
    assert run_extract(settings).ok

    # A personal column appears (by name), and one whose name says nothing but whose values
    # are phone numbers, and free text with an email in it.
    execute(
        url,
        "ALTER TABLE users ADD COLUMN personal_email VARCHAR(255), "
        "ADD COLUMN backup_contact VARCHAR(64), ADD COLUMN remark TEXT",
        "UPDATE users SET personal_email = CONCAT('private.', email), "
        "backup_contact = phone, remark = CONCAT('reach me at ', email, ' after 6'), "
        "updated_at = '2030-01-01 00:00:00' WHERE id <= 40",
    )
    summary = run_extract(settings)
    assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
    users = summary.tables["users"]
    assert set(users.held_back_columns) == {"personal_email"}
    assert users.redacted_values == {"backup_contact": 40, "remark": 40}
    remarks = warehouse_rows(
        settings.warehouse_path,
        "select distinct remark from raw.users where remark is not null",
    )
    assert remarks == [("reach me at [redacted] after 6",)]
    values = personal_values(url, "users")
    assert any(v.startswith("private.") for v in values)

    # The table is renamed: unspecified now, but its columns are users' (a probable rename).
    execute(url, "RENAME TABLE users TO app_users")
    summary = run_extract(settings)
    assert summary.failed == ["users"]  # spec'd, gone: fails as before, the rest lands
    assert "not in the source" in summary.tables["users"].error
    renamed = summary.tables["app_users"]
    assert (renamed.status, renamed.specified, renamed.rename_of) == ("ok", False, "users")
    landed = {
        r[0]
        for r in warehouse_rows(
            settings.warehouse_path,
            "select column_name from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'app_users'",
        )
    }
    assert "email_hash" in landed
    assert not landed & {
        "email",
        "full_name",
        "phone",
        "ssn",
        "government_id",
        "address_line1",
        "personal_email",
    }

    values |= personal_values(url, "app_users")
    staging = {
        r[0]
        for r in warehouse_rows(
            settings.warehouse_path,
            "select distinct table_schema from information_schema.tables",
        )
    }
    assert "raw_staging" in staging  # dlt's staging dataset is part of the scan
    assert scan_warehouse_for(settings.warehouse_path, values) == []
    assert scan_pipeline_folder(settings.warehouse_path, values) == []
    # The scans can find a value: a planted one is found in both.
    canary = tmp_path / "canary" / "w.duckdb"
    canary.parent.mkdir()
    email = next(v for v in values if v.startswith("private."))
    with duckdb.connect(str(canary)) as conn:
        conn.execute("create table leak as select ? as note", [email])
    assert scan_warehouse_for(canary, values) == ['"main"."leak"."note"']
    (canary.parent / ".dlt_pipelines").mkdir()
    (canary.parent / ".dlt_pipelines" / "trace").write_text(f"x {email} y")
    assert len(scan_pipeline_folder(canary, values)) == 1


def test_a_source_from_dlt_credentials_needs_the_pii_key(mysql_database, tmp_path) -> None:
    url = mysql_database("priv")
    generate_platform(url, tmp_path / "platform.manifest.json")
    result = CliRunner().invoke(
        app,
        ["extract", "--warehouse", str(tmp_path / "w.duckdb")],
        env={
            "SOURCES__PLATFORM__CREDENTIALS": url,
            "WAREHOUSE_DATA_DIR": str(tmp_path),
            "WAREHOUSE_PII_KEY": None,
            "WAREHOUSE_SOURCE_URL": None,
        },
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith("error: WAREHOUSE_PII_KEY is not set")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "pii.key").exists()
    assert not (tmp_path / "w.duckdb").exists()


def test_another_pii_key_stops_the_run_unless_asked_to_rehash(mysql_database, tmp_path) -> None:
    url = mysql_database("priv")
    generate_platform(url, tmp_path / "platform.manifest.json")
    settings = settings_for(tmp_path, url)
    assert run_extract(settings, tables=["users", "tenants"]).ok
    execute(url, "DELETE FROM users WHERE id = 1")  # a row raw keeps, the source no longer has

    other = settings.model_copy(update={"pii_key": "another-key"})
    with pytest.raises(PiiKeyError, match="not the key raw's hashes were made with"):
        run_extract(other, tables=["users", "tenants"])
    before = warehouse_rows(
        settings.warehouse_path, "select id, email_hash from raw.users order by id"
    )
    assert before[0][1] is not None  # nothing was written by the refused run

    summary = run_extract(other, tables=["users", "tenants"], rehash_pii=True)
    assert summary.ok, {t: summary.tables[t].error for t in summary.failed}
    emails = dict(source_rows(url, "select id, email from users"))
    hashes = dict(warehouse_rows(settings.warehouse_path, "select id, email_hash from raw.users"))
    assert hashes.pop(1) is None  # gone from the source: its old-key hash is dropped
    assert hashes == {i: email_hash(e, b"another-key") for i, e in emails.items()}
    # The new key is the key now: the old one is refused, the new one accepted.
    with pytest.raises(PiiKeyError):
        run_extract(settings, tables=["users"])
    assert run_extract(other, tables=["users"]).ok
    assert PII_KEY != "another-key"


@pytest.mark.slow
def test_no_password_or_key_in_any_output_log_event_or_file_of_a_run(
    mysql_database, mysql_server, tmp_path
) -> None:
    """A whole `warehouse run` with a distinctive password and PII key: neither appears in
    stdout, stderr, dbt's log, the alert log, Dagster's event log and run storage (run config
    and tags included), the Data Docs, the warehouse or dlt's pipeline folder."""
    import subprocess
    import sys
    import uuid

    from sqlalchemy.engine import make_url

    password, key = "Wombat-Secret-8642-xyz", "pii-key-Narwhal-9753"
    url = mysql_database("secret")
    generate_platform(url, tmp_path / "platform.manifest.json")
    user = f"ing_s_{uuid.uuid4().hex[:8]}"
    database = make_url(url).database
    execute(
        mysql_server,
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT SELECT ON `{database}`.* TO '{user}'@'%'",
    )
    try:
        source = (
            make_url(url)
            .set(username=user, password=password)
            .render_as_string(hide_password=False)
        )
        env = {
            **child_environment(),
            "WAREHOUSE_SOURCE_URL": source,
            "WAREHOUSE_PII_KEY": key,
            **run_files_under(tmp_path),
        }
        done = subprocess.run(
            [sys.executable, "-c", "from orchestration.cli import app; app()", "run"],
            capture_output=True,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "Succeeded" in done.stdout
    finally:
        execute(mysql_server, f"DROP USER IF EXISTS '{user}'@'%'")
    secrets = [password.encode(), key.encode()]
    outputs = [done.stdout.encode(), done.stderr.encode()]
    assert not [s for s in secrets for text in outputs if s in text]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("dagster_home" in str(p) for p in files)  # the event log was searched
    leaked = [str(p) for p in files for s in secrets if s in p.read_bytes()]
    assert leaked == []
