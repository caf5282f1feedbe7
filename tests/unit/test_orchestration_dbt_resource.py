"""dagster-dbt finds dbt when the warehouse is started by its path (cron, systemd), with no
virtualenv on PATH."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestration.defs.transform import dbt_project, dbt_resource

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
