"""Alerting: failed runs and failed checks reach a Slack-compatible webhook and the alert log.

The webhook is a local HTTP server on 127.0.0.1 that records what it receives.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from orchestration.alerting import Alert, send_alert
from orchestration.config import SELF_ALERTING_TAG, OrchestrationSettings
from orchestration.defs.automation import alert_sensors


class Webhook:
    """A local incoming-webhook: records every JSON body posted to it."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                webhook.received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/warehouse"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def settings(tmp_path: Path, webhook: Webhook) -> OrchestrationSettings:
    return OrchestrationSettings(alert_webhook_url=webhook.url, alert_log=tmp_path / "alerts.jsonl")


@dg.asset
def orders() -> None:
    """A stand-in asset whose checks fail on purpose."""


@dg.asset_check(asset=orders, name="orders_reconcile")
def orders_reconcile() -> dg.AssetCheckResult:
    """Fails with WARN: the run still succeeds, the alert must still go out."""
    return dg.AssetCheckResult(
        passed=False, severity=dg.AssetCheckSeverity.WARN, description="3 rows missing in raw"
    )


@dg.asset
def broken() -> None:
    """Fails: the run fails."""
    raise RuntimeError("the source went away")


def _log_lines(settings: OrchestrationSettings) -> list[dict]:
    if not settings.alert_log.exists():
        return []
    return [json.loads(line) for line in settings.alert_log.read_text().splitlines()]


def _status_event(
    instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult, kind: dg.DagsterEventType
) -> dg.DagsterEvent:
    (entry,) = instance.all_logs(result.run_id, of_type=kind)
    assert entry.dagster_event is not None
    return entry.dagster_event


def test_check_failure_sensor_posts_the_failed_checks_of_a_successful_run(
    settings, webhook: Webhook
) -> None:
    _, check_sensor = alert_sensors(settings)
    defs = dg.Definitions(
        assets=[orders],
        asset_checks=[orders_reconcile],
        jobs=[dg.define_asset_job("hourly", selection=[orders])],
    )
    job = defs.resolve_job_def("hourly")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance)
        assert result.success  # WARN does not fail the run, but it is alerted
        context = dg.build_run_status_sensor_context(
            sensor_name="check_failure_alerts",
            dagster_event=_status_event(instance, result, dg.DagsterEventType.RUN_SUCCESS),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        )
        check_sensor(context)

        own = job.execute_in_process(instance=instance, tags={SELF_ALERTING_TAG: "true"})
        check_sensor(
            dg.build_run_status_sensor_context(
                sensor_name="check_failure_alerts",
                dagster_event=_status_event(instance, own, dg.DagsterEventType.RUN_SUCCESS),
                dagster_instance=instance,
                dagster_run=own.dagster_run,
            )
        )
    assert len(webhook.received) == 1  # `warehouse run` alerts for its own runs
    message = webhook.received[0]
    assert message["text"] == ":rotating_light: WARN check orders_reconcile failed on orders"
    assert message["alert"]["asset"] == "orders" and message["alert"]["run_id"] == result.run_id
    assert message["blocks"][1]["text"]["text"] == "3 rows missing in raw"
    assert [a["check"] for a in _log_lines(settings)] == ["orders_reconcile"]


def test_run_failure_sensor_posts_the_failed_run(settings, webhook: Webhook) -> None:
    run_sensor, _ = alert_sensors(settings)
    job = dg.Definitions(
        assets=[broken], jobs=[dg.define_asset_job("nightly", selection=[broken])]
    ).resolve_job_def("nightly")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alerts",
            dagster_event=_status_event(instance, result, dg.DagsterEventType.RUN_FAILURE),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        ).for_run_failure()
        run_sensor(context)
    assert len(webhook.received) == 1
    alert = webhook.received[0]["alert"]
    assert alert["kind"] == "run_failure" and alert["job"] == "nightly"
    assert alert["run_id"] == result.run_id
    assert _log_lines(settings)[0]["title"] == "Run of nightly failed"


def test_alert_is_logged_when_the_webhook_is_down(tmp_path: Path) -> None:
    settings = OrchestrationSettings(
        alert_webhook_url="http://127.0.0.1:9/nothing-listens-here",
        alert_log=tmp_path / "nested" / "alerts.jsonl",
    )
    alert = Alert(kind="run_failure", title="Run of reconcile failed", detail="boom")
    assert send_alert(alert, settings, timeout=2) is False
    assert _log_lines(settings) == [json.loads(json.dumps(alert.__dict__))]
