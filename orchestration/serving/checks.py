"""The gate: check results decide whether a build may be published.

Two inputs are understood: the small JSON the orchestration layer writes
(``{"as_of": ..., "checks": [{"name", "passed", "blocking"}]}``, see
``write_check_results``) and dbt's ``run_results.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class CheckSummary:
    """Counts for the report stamp and the blocking failures that stop a publish."""

    passed: int
    failed: int
    blocking_failures: tuple[str, ...] = ()
    data_as_of: datetime | None = None
    source: str = ""
    failures: tuple[str, ...] = field(default=())

    @property
    def gate_open(self) -> bool:
        """True when no blocking check failed."""
        return not self.blocking_failures

    def stamp(self) -> str:
        """``checks: N passed, M failed``."""
        return f"checks: {self.passed} passed, {self.failed} failed"


class PublishBlocked(RuntimeError):
    """Raised when a gating check failed or no check results exist."""


def write_check_results(path: Path, checks: list[dict], as_of: datetime | None = None) -> Path:
    """Write check results for ``publish`` and ``report`` (for the orchestration layer).

    Each check is ``{"name": str, "passed": bool, "blocking": bool}``; ``blocking``
    defaults to True (a failed blocking check stops the publish).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"as_of": as_of.isoformat() if as_of else None, "checks": checks}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)
    return path


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def load_check_results(path: Path) -> CheckSummary:
    """Read either format; raise ``PublishBlocked`` when there are no results to trust."""
    if not path.exists():
        raise PublishBlocked(f"no check results at {path}: run the checks before publishing")
    data = json.loads(path.read_text())
    if "results" in data and "metadata" in data:  # dbt run_results.json
        passed, failed, blocking, failures = 0, 0, [], []
        for result in data["results"]:
            if not result["unique_id"].startswith(("test.", "unit_test.")):
                if result["status"] in ("error", "fail"):
                    blocking.append(result["unique_id"])  # a model that failed to build
                continue
            if result["status"] == "pass":
                passed += 1
            else:
                failed += 1
                failures.append(result["unique_id"])
                if result["status"] in ("fail", "error"):
                    blocking.append(result["unique_id"])
        as_of = _parse_time(data["metadata"].get("generated_at"))
        return CheckSummary(passed, failed, tuple(blocking), as_of, str(path), tuple(failures))
    checks = data.get("checks", [])
    failed_checks = [c for c in checks if not c["passed"]]
    return CheckSummary(
        passed=len(checks) - len(failed_checks),
        failed=len(failed_checks),
        blocking_failures=tuple(c["name"] for c in failed_checks if c.get("blocking", True)),
        data_as_of=_parse_time(data.get("as_of")),
        source=str(path),
        failures=tuple(c["name"] for c in failed_checks),
    )
