"""Named points at which ``warehouse extract`` can be made to die, to prove that a rerun
repairs whatever a killed run left (tests only: ``WAREHOUSE_FAULT_AT=<point>``).

The process kills itself with SIGKILL at the point, exactly as ``kill -9`` or the OOM
killer would: no ``finally`` block, no ``atexit``, no flush. The points, in run order:

- ``state_sync``: after dlt synced its state with the warehouse, before anything else;
- ``read``: after the first batch of the first table was handed to dlt (mid-extract);
- ``extract``: dlt's extract committed the load package, before the log knows about it;
- ``log_loading``: the log's ``loading`` rows written, before normalize;
- ``normalize``: inside dlt's normalize step, after its first table;
- ``load_job:<n>``: inside dlt's load step, after its n-th load job finished;
- ``load``: dlt committed the load, before the log rows are settled;
- ``log_settled``: the log rows settled, before the probes and column types are stored;
- ``checkpoint``: everything written, before DuckDB's checkpoint.

And one that does not kill: ``load_io_error:<n>`` makes dlt's load step fail once, after
its n-th job, with the I/O error a full or failing disk gives (the load is retried).

Points inside dlt's steps are reached through dlt's progress ``Collector`` (the public
protocol dlt reports progress to), so no dlt code is replaced.
"""

from __future__ import annotations

import os
import signal

import duckdb
from dlt.common.runtime.collector import NullCollector

POINTS = (
    "state_sync",
    "read",
    "extract",
    "log_loading",
    "normalize",
    "load_job:<n>",
    "load",
    "log_settled",
    "checkpoint",
    "load_io_error:<n>",
)


class FaultPoints:
    """Kills the process when the run reaches the point named in the settings."""

    def __init__(self, at: str | None) -> None:
        self.at = (at or "").strip() or None
        self.failed_once = False

    def reached(self, point: str) -> None:
        """Die here if this is the point asked for."""
        if self.at is not None and self.at == point:
            os.kill(os.getpid(), signal.SIGKILL)

    def collector(self) -> FaultCollector | None:
        """A dlt progress collector that reaches the points inside dlt's steps, if needed."""
        if self.at is None or not (
            self.at == "normalize" or self.at.startswith(("load_job:", "load_io_error:"))
        ):
            return None
        return FaultCollector(self)


class FaultCollector(NullCollector):
    """Counts what dlt reports while it normalizes and loads, and reaches ``normalize``
    (after the first table normalized) and ``load_job:<n>`` (after n load jobs finished)."""

    def __init__(self, faults: FaultPoints) -> None:
        super().__init__()
        self.faults = faults
        self.jobs_finished = 0

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = None,
    ) -> None:
        """dlt's progress report: one counter update."""
        step = (getattr(self, "step", "") or "").lower()
        if step.startswith("normalize") and name != "Files":
            self.faults.reached("normalize")
        elif step.startswith("load") and name == "Jobs" and inc > 0 and not label:
            self.jobs_finished += inc
            self.faults.reached(f"load_job:{self.jobs_finished}")
            if (
                self.faults.at == f"load_io_error:{self.jobs_finished}"
                and not self.faults.failed_once
            ):
                self.faults.failed_once = True
                raise duckdb.IOException("IO Error: simulated: could not write the warehouse file")
