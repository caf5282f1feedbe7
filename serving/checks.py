"""The gate's verdict as the serving stage sees it: check counts and what blocks a publish.

The verdicts themselves live in the warehouse's ledger (``orchestration/check_ledger.py``),
each tied to the state it judged; ``check_ledger.gate`` turns them into a ``CheckSummary``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class CheckSummary:
    """Counts for the report stamp, the blocking failures that stop a publish, and the
    identity of the warehouse state the verdicts judged (``state``)."""

    passed: int
    failed: int
    blocking_failures: tuple[str, ...] = ()
    data_as_of: datetime | None = None
    source: str = ""
    failures: tuple[str, ...] = field(default=())
    state: str = ""
    reason: str = ""

    @property
    def gate_open(self) -> bool:
        """True when no blocking check failed."""
        return not self.blocking_failures

    def stamp(self) -> str:
        """``checks: N passed, M failed``."""
        return f"checks: {self.passed} passed, {self.failed} failed"


class PublishBlocked(RuntimeError):
    """Raised when a gating check failed or did not judge the warehouse as it is."""
