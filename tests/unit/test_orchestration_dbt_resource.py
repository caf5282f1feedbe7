"""dagster-dbt finds dbt when the warehouse is started by its path (cron, systemd), with no
virtualenv on PATH."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestration.defs.transform import dbt_project, dbt_resource


def test_dbt_is_the_one_beside_this_python_without_the_virtualenv_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    resource = dbt_resource(dbt_project(tmp_path / "target"))
    assert Path(resource.dbt_executable) == Path(sys.executable).parent / "dbt"
    assert Path(resource.dbt_executable).exists()
