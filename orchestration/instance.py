"""The Dagster instance: a project-local DAGSTER_HOME with this project's dagster.yaml.

DAGSTER_HOME defaults to the git-ignored ``.dagster_home/`` (the Makefile exports the
same); the instance settings come from the top-level ``dagster.yaml`` (telemetry off,
one writer run at a time, a one-slot writer pool), copied in whenever the home is the
project's own. A DAGSTER_HOME of the user's with its own ``dagster.yaml`` is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from ingestion.settings import PROJECT_ROOT
from orchestration.config import OrchestrationSettings

INSTANCE_TEMPLATE = PROJECT_ROOT / "dagster.yaml"


def prepare_dagster_home(settings: OrchestrationSettings) -> Path:
    """Create DAGSTER_HOME with the project's instance settings; export it; return it."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = INSTANCE_TEMPLATE.read_text()
    is_project_home = home == settings.dagster_home.resolve()
    if not config.exists() or (is_project_home and config.read_text() != template):
        config.write_text(template)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    return home
