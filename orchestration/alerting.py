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
