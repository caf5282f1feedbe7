"""A tiny code location for the run-queue test: two jobs tagged as the warehouse's writers
carry (the real tags from ``orchestration.defs.automation``), and one that is not. The first
writer holds its run open until the test creates the file named by ``WRITER_TEST_RELEASE``."""

import os
import time
from pathlib import Path

import dagster as dg

from orchestration.defs.automation import WRITER_TAGS


@dg.asset
def held() -> None:
    """Waits (at most 120 s) until the test releases it."""
    release = Path(os.environ["WRITER_TEST_RELEASE"])
    deadline = time.monotonic() + 120
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


@dg.asset
def probe() -> None:
    """Nothing: a run that ends at once."""


defs = dg.Definitions(
    assets=[held, probe],
    jobs=[
        dg.define_asset_job("first_writer", selection=[held], tags=WRITER_TAGS),
        dg.define_asset_job("second_writer", selection=[probe], tags=WRITER_TAGS),
        dg.define_asset_job("reader", selection=[probe]),
    ],
)
