"""sqlfluff (dbt templater, config in pyproject.toml) passes on every dbt model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingestion.settings import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt")]


def test_sqlfluff_lint_passes_on_the_models(tmp_path: Path) -> None:
    env = {**os.environ, "WAREHOUSE_PATH": str(tmp_path / "lint.duckdb")}
    result = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "dbt_project/models", "--processes", "4"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
