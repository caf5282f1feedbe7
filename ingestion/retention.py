"""What dlt keeps in the pipeline folder after a load, and for how long.

dlt deletes a package's row files once they are loaded (``load.delete_completed_jobs``) and
empties its staging tables after each merge (``load.truncate_staging_dataset``); what a
completed package keeps is its schema, state and job list. Those are pruned by count and age
(``WAREHOUSE_KEEP_LOAD_PACKAGES``, ``WAREHOUSE_KEEP_LOAD_PACKAGES_DAYS``) after each extract,
and all of them by ``warehouse forget``. A package that is not loaded yet holds rows and is
never touched here: the next extract completes it, or ``--drop-pending-load`` discards it.
"""

from __future__ import annotations

import shutil
import time

import dlt


def prune_load_packages(
    pipeline: dlt.Pipeline, keep: int, keep_days: float, now: float | None = None
) -> list[str]:
    """Remove the completed packages beyond the newest ``keep`` and those older than
    ``keep_days``; their load ids."""
    load_ids = sorted(pipeline.list_completed_load_packages(), key=float)
    oldest = (time.time() if now is None else now) - keep_days * 86400
    doomed = [
        load_id
        for i, load_id in enumerate(load_ids)
        if i < len(load_ids) - keep or float(load_id) < oldest
    ]
    for load_id in doomed:
        shutil.rmtree(pipeline.get_load_package_info(load_id).package_path, ignore_errors=True)
    return doomed


def purge_load_packages(pipeline: dlt.Pipeline) -> list[str]:
    """Remove every completed package (what an erasure does); their load ids."""
    return prune_load_packages(pipeline, keep=0, keep_days=0.0)
