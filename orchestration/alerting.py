"""Alerting without a paid service: a Slack-compatible webhook post and a local alert log.

Every alert is appended to the JSON-lines alert log first (so nothing is lost when
the webhook is down), then posted as ``{"text": ..., "blocks": ..., "alert": ...}`` to
the configured incoming-webhook URL. Slack reads ``text``/``blocks``; any other
receiver gets the structured ``alert``.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from orchestration.config import OrchestrationSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """One thing a human should look at: a failed run or a failed check."""

    kind: str  # "run_failure" | "check_failure"
    title: str
    detail: str
    run_id: str | None = None
    job: str | None = None
    asset: str | None = None
    check: str | None = None
    severity: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def slack_message(self) -> dict:
        """The webhook payload: Slack's ``text`` and ``blocks``, plus the alert itself."""
        text = f":rotating_light: {self.title}"
        return {
            "text": text,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": self.title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": self.detail[:2900]}},
            ],
            "alert": asdict(self),
        }


# An alert is read on a phone: the reason in one short line, the rest is in the run.
REASON_CHARS = 240


def short_reason(text: str | None, fallback: str) -> str:
    """The first line of ``text``, whitespace collapsed, at most ``REASON_CHARS`` long."""
    first = next((line for line in (text or "").splitlines() if line.strip()), "")
    line = " ".join(first.split())
    if not line:
        return fallback
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1].rstrip() + "…"


def check_alert(
    asset: str,
    check: str,
    severity: str,
    description: str | None,
    run_id: str | None,
    job: str | None,
) -> Alert:
    """The alert for a failed check: which check on which asset, and why."""
    return Alert(
        kind="check_failure",
        title=f"{severity} check {check} failed on {asset}",
        detail=short_reason(
            description, "the check gave no reason: its run in the Dagster UI has the details"
        ),
        run_id=run_id,
        job=job,
        asset=asset,
        check=check,
        severity=severity,
    )


def run_alert(job: str | None, run_id: str | None, failure: str | None) -> Alert:
    """The alert for a failed run: which job, and why (the run id is in the alert)."""
    return Alert(
        kind="run_failure",
        title=f"Run of {job} failed",
        detail=short_reason(failure, f"run {run_id} failed without a message: see its log"),
        run_id=run_id,
        job=job,
    )


def send_alert(alert: Alert, settings: OrchestrationSettings, timeout: float = 5.0) -> bool:
    """Log ``alert`` locally, then post it to the webhook; True when the post succeeded."""
    settings.alert_log.parent.mkdir(parents=True, exist_ok=True)
    with settings.alert_log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(alert), sort_keys=True) + "\n")
    if not settings.alert_webhook_url:
        return False
    request = urllib.request.Request(
        settings.alert_webhook_url,
        data=json.dumps(alert.slack_message()).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except OSError as exc:  # the local log already holds the alert
        log.warning("alert webhook %s failed: %s", settings.alert_webhook_url, exc)
        return False
