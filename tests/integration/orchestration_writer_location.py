"""A tiny code location for the run-queue test: two jobs tagged as the warehouse's writers
carry (the real tags from ``orchestration.defs.automation``), and one that is not."""

import dagster as dg

from orchestration.defs.automation import WRITER_TAGS


@dg.asset
def probe() -> None:
    """Nothing: the queue never launches the run in the test."""


defs = dg.Definitions(
    assets=[probe],
    jobs=[
        dg.define_asset_job("first_writer", selection=[probe], tags=WRITER_TAGS),
        dg.define_asset_job("second_writer", selection=[probe], tags=WRITER_TAGS),
        dg.define_asset_job("reader", selection=[probe]),
    ],
)
