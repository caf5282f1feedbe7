"""dagster-dbt finds dbt when the warehouse is started by its path (cron, systemd), with no
virtualenv on PATH."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ingestion.settings import PROJECT_ROOT, WarehouseSettings
from orchestration.defs.transform import dbt_project, dbt_resource, profile_warehouse_path

BARE_PATH = "/usr/bin:/bin"


def test_dbt_runs_without_the_virtualenv_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", BARE_PATH)
    # dagster-dbt validates its executable when the resource is made: a bare "dbt" that is not
    # on PATH raises here.
    resource = dbt_resource(dbt_project(tmp_path / "target"))
    version = subprocess.run(
        [resource.dbt_executable, "--version"],
        env={"PATH": BARE_PATH},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Core:" in version.stdout and "duckdb" in version.stdout


def test_the_cli_hands_dbt_the_profile_plain_dbt_sees(tmp_path: Path) -> None:
    """dbt re-parses the whole project when its profile's text changes: the CLI must not turn
    profiles.yml's default into another string for the same file."""
    profile = (PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text()
    default = re.search(r"env_var\('WAREHOUSE_PATH', '([^']+)'\)", profile)
    assert default, "profiles.yml no longer defaults WAREHOUSE_PATH"
    default_file = (PROJECT_ROOT / "dbt_project" / default.group(1)).resolve()

    at_default = WarehouseSettings(path=default_file)
    assert profile_warehouse_path(at_default, {}) is None
    assert profile_warehouse_path(at_default, {"WAREHOUSE_PATH": str(default_file)}) == str(
        default_file
    )
    elsewhere = WarehouseSettings(path=tmp_path / "w.duckdb")
    assert profile_warehouse_path(elsewhere, {}) == str((tmp_path / "w.duckdb").resolve())
