"""The packages' layering (pyproject.toml [tool.importlinter]): each stage imports only the
stages upstream of it (orchestration -> serving | expectations -> ingestion), only
orchestration imports Dagster, and no package has an import cycle between its modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ingestion.settings import PROJECT_ROOT


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
    assert "3 kept, 0 broken" in result.stdout
