"""The delivery sinks against real receivers on loopback — an HTTP server, an SMTP server, Mosquitto —
and the golden payloads in hub/alerts/testdata/ that pin what they send."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from detectors.severity import Severity
from hub.alerts.delivery import notification_for
from hub.alerts.links import Links
from hub.alerts.messages import render
from hub.alerts.model import Alert
from hub.alerts.notification import (
    MACHINE_SCHEMA,
    Notification,
    body_bytes,
    machine_body,
    machine_body_bytes,
    machine_evidence,
)
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.alerts.sinks import AppriseSink, MqttSink, WebhookSink, build_sinks
from hub.alerts.sinks.sink import Sink
from hub.alerts.sinks.webhook import SIGNATURE_HEADER, TOLERANCE_S, request_headers, signature, verify
from hub.clock import FollowedClock, SystemClock
from hub.registry import Caregiver, Registry
from hub.topics import alert_topic
from tests.alerts.receivers import AlertSubscriber, Mailbox, WebhookReceiver
from tests.alerts.support import MINUTE_MS, T0, alert_service, community_registry, resident_request
from tests.real_servers import Mosquitto, wait_until

TESTDATA = Path(__file__).parents[2] / "hub" / "alerts" / "testdata"
GOLDEN_SECRET = "golden-secret"
GOLDEN_TIME = 1795400001  # the signed unix time in the golden webhook request
# Regenerate the golden files after an intended change with UPDATE_GOLDEN=1, and review the diff.
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"

FAST_RETRIES = AlertSettings(delivery_backoff_initial_s=0.05, delivery_backoff_max_s=0.2, webhook_timeout_s=2,
                             mqtt_publish_timeout_s=5)


# --- golden payloads -----------------------------------------------------------------------------------

def sample_notification() -> Notification:
    daughter = Caregiver(id="cg-li", community="sunshine", name="李女士", role="family", phone="13800000000",
                         notify=["mailto://li@example.com"])
    alert = Alert(
        id=42, kind="sos", severity=Severity.CRITICAL, state="open", subject="r-wang", community="sunshine",
        building="b7", household="h1402", resident="r-wang", device="band-1402",
        evidence={"occurrence": 1795400000000, "location": {"lat": 31.2304, "lon": 121.4737}},
        count=2, first_seen_ms=1795400000000, last_seen_ms=1795400030000, tier=1,
        deadline_ms=1795400300000, assigned_to=None, acknowledged_by=None, acknowledged_ms=None,
        resolved_by=None, resolved_ms=None, outcome=None, note="", grid="g7")
    return Notification(alert=alert, event_id=7, reason="raised", tier=1, recipients=(daughter,),
                        recipient=daughter, resident_name="王奶奶", unit="7-2-1402", timezone="Asia/Shanghai")


def golden_payloads() -> dict[str, dict[str, Any]]:
    n = sample_notification()
    payload = body_bytes(n)
    message = render(n, "text", Links("https://care.example.com", b"golden-key", clock=lambda: GOLDEN_TIME))
    return {
        "mqtt.json": {"topic": alert_topic(n.alert.community, n.alert.kind), "qos": 1,
                      "payload": json.loads(machine_body_bytes(n))},
        "webhook.json": {"secret": GOLDEN_SECRET,
                         "headers": request_headers(GOLDEN_SECRET, payload, GOLDEN_TIME),
                         "body": payload.decode("utf-8")},
        "apprise.json": {"title": message.title, "body": message.body},
    }


@pytest.mark.parametrize("name", ["mqtt.json", "webhook.json", "apprise.json"])
def test_sink_payloads_match_golden_files(name: str) -> None:
    rendered = golden_payloads()[name]
    path = TESTDATA / name
    if UPDATE_GOLDEN:
        path.write_text(json.dumps(rendered, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8")) == rendered


def test_the_body_leaves_out_contact_details() -> None:
    payload = body_bytes(sample_notification()).decode("utf-8")
    assert "13800000000" not in payload and "mailto" not in payload


def test_the_mqtt_body_names_nobody() -> None:
    """What goes onto the broker: ids and what a machine acts on; no name, flat, phone, URL or anything
    people typed (issue 12, item 6)."""
    n = sample_notification()
    handled = replace(n.alert, state="resolved", assigned_to="张师傅", acknowledged_by="张师傅",
                      acknowledged_ms=1795400060000, resolved_by="张师傅", resolved_ms=1795400900000,
                      outcome="resident_ok", note="王奶奶说她没事, 7-2-1402")
    payload = machine_body_bytes(replace(n, alert=handled)).decode("utf-8")
    for personal in ("王奶奶", "李女士", "张师傅", "7-2-1402", "13800000000", "mailto", "没事"):
        assert personal not in payload, (personal, payload)
    body = json.loads(payload)
    assert body["schema"] == MACHINE_SCHEMA
    assert {key: body[key] for key in ("alert_id", "resident", "household", "community", "state", "outcome",
                                       "acknowledged_ms", "resolved_ms")} == {
        "alert_id": 42, "resident": "r-wang", "household": "h1402", "community": "sunshine",
        "state": "resolved", "outcome": "resident_ok", "acknowledged_ms": 1795400060000,
        "resolved_ms": 1795400900000}
    assert "unit" not in body and "resident_name" not in body


def test_the_mqtt_body_keeps_only_evidence_a_machine_acts_on() -> None:
    evidence = {"press_ts": 1, "late": True, "late_s": 900, "device_kind": "wristband", "clip": "c-17.mp4",
                "location": {"lat": 31.2, "lon": 121.4, "address": "7-2-1402"},
                "caller": "王奶奶", "nested": {"battery": 3}, "battery": [1, 2]}
    assert machine_evidence(evidence) == {"press_ts": 1, "late": True, "late_s": 900,
                                          "device_kind": "wristband", "clip": "c-17.mp4",
                                          "location": {"lat": 31.2, "lon": 121.4}}
    assert machine_evidence({"location": {"lat": "31.2", "lon": 121.4}}) == {}
    assert machine_body(sample_notification())["evidence"] == sample_notification().alert.evidence


# --- receivers -----------------------------------------------------------------------------------------

def local_webhook(receiver: WebhookReceiver) -> WebhookSink:
    """The webhook sink sending to the test's receiver: plain http:// on loopback, allowed."""
    return WebhookSink(receiver.url, "s3cret", 2, allow_http=True)


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A URL whose server accepts connections and never answers: a hung webhook."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/alerts"
    listener.close()


def started(store_path: Path, sinks: list[Sink], *, registry: Registry | None = None,
            clock: SystemClock | FollowedClock | None = None) -> AlertService:
    service = alert_service(store_path, clock or SystemClock(), registry, FAST_RETRIES, sinks)
    service.start()
    return service


def sent_notification(service: AlertService, alert_id: int, sink: str, registry: Registry) -> Notification:
    detail = service.get(alert_id)
    delivery = next(d for d in detail.deliveries if d.sink == sink)
    return notification_for(delivery, detail.alert, registry)


# --- webhook -------------------------------------------------------------------------------------------

def test_webhook_is_signed_and_retried_after_a_server_error(tmp_path: Path,
                                                            webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.statuses = [500]
    registry = community_registry()
    service = started(tmp_path / "hub.sqlite3", [local_webhook(webhook_receiver)],
                      registry=registry)
    try:
        alert = service.raise_alert(resident_request("sos", "critical"))
        wait_until(lambda: len(webhook_receiver.requests) >= 2, 10, what="the webhook's second attempt")
        [delivery] = wait_until(
            lambda: [d for d in service.get(alert.id).deliveries if d.status == "sent"], 5,
            what="the delivery marked sent")
        assert delivery.attempts == 2 and delivery.last_error is None
        expected = body_bytes(sent_notification(service, alert.id, "webhook", registry))
    finally:
        service.close()
    for (headers, body), arrived in zip(webhook_receiver.requests, webhook_receiver.arrived, strict=True):
        assert body == expected
        header = headers[SIGNATURE_HEADER]
        assert verify("s3cret", header, body, now=arrived), header
        signed_at = int(header.split(",")[0].removeprefix("t="))
        assert abs(signed_at - arrived) <= 2, "each attempt is signed when it is sent"
        assert header == signature("s3cret", body, signed_at)
        assert headers["Content-Type"].startswith("application/json")
    received = json.loads(webhook_receiver.requests[0][1])
    assert (received["alert_id"], received["reason"], received["kind"]) == (alert.id, "raised", "sos")
    assert received["recipients"] == [{"id": "cg-li", "name": "李女士", "role": "family"}]


def test_tick_delivers_inline_when_the_workers_are_not_started(tmp_path: Path,
                                                               webhook_receiver: WebhookReceiver) -> None:
    service = alert_service(tmp_path / "hub.sqlite3", SystemClock(), settings=FAST_RETRIES,
                            sinks=[local_webhook(webhook_receiver)])
    try:
        alert = service.raise_alert(resident_request("sos", "critical"))
        assert webhook_receiver.requests == []  # queued, not sent, until something works the queue
        service.tick(SystemClock().now_ms())
        assert len(webhook_receiver.requests) == 1
        assert service.get(alert.id).deliveries[0].status == "sent"
    finally:
        service.close()


def test_webhook_gives_up_on_a_client_error(tmp_path: Path, webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.statuses = [400]
    service = started(tmp_path / "hub.sqlite3", [local_webhook(webhook_receiver)])
    try:
        alert = service.raise_alert(resident_request())
        wait_until(lambda: service.get(alert.id).deliveries[0].status == "failed", 10,
                   what="the delivery given up")
        time.sleep(0.3)  # longer than the back-off: a retry would have happened by now
        assert len(webhook_receiver.requests) == 1
        event = service.get(alert.id).history[-1]
        assert (event.action, event.detail["sink"], event.detail["error"]) == \
            ("delivery_failed", "webhook", "HTTP 400 Bad Request")
    finally:
        service.close()


def test_a_captured_webhook_request_cannot_be_replayed_or_altered(
        tmp_path: Path, webhook_receiver: WebhookReceiver) -> None:
    service = started(tmp_path / "hub.sqlite3", [local_webhook(webhook_receiver)])
    try:
        service.raise_alert(resident_request("sos", "critical"))
        wait_until(lambda: webhook_receiver.requests, 10, what="the webhook request")
    finally:
        service.close()
    (headers, body), arrived = webhook_receiver.requests[0], webhook_receiver.arrived[0]
    header = headers[SIGNATURE_HEADER]
    assert verify("s3cret", header, body, now=arrived)
    # Replayed later than the tolerance, the same bytes are refused: the time is inside the signature.
    assert not verify("s3cret", header, body, now=arrived + TOLERANCE_S + 5)
    signed_at = int(header.split(",")[0].removeprefix("t="))
    moved = header.replace(f"t={signed_at}", f"t={int(arrived) + TOLERANCE_S + 5}")
    assert not verify("s3cret", moved, body, now=arrived + TOLERANCE_S + 5), "a re-dated signature fails"
    altered = body.replace(b'"critical"', b'"info"')
    assert altered != body and not verify("s3cret", header, altered, now=arrived)
    assert not verify("another secret", header, body, now=arrived)
    old_scheme = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()  # no timestamp: refused
    assert not verify("s3cret", old_scheme, body, now=arrived)


@pytest.mark.integration
def test_plain_http_webhooks_are_refused_unless_allowed(tmp_path: Path, one_of_each_registry: Path) -> None:
    with pytest.raises(ValueError, match="plain http://"):
        WebhookSink("http://pms.example.com/hook", "s3cret", 2)
    with pytest.raises(ValidationError, match="HUB_ALERTS_WEBHOOK_ALLOW_HTTP"):
        AlertSettings(webhook_url="http://pms.example.com/hook")
    with pytest.raises(ValidationError, match="must start with https://"):
        AlertSettings(webhook_url="ftp://pms.example.com/hook")
    assert AlertSettings(webhook_url="https://pms.example.com/hook").webhook_url
    assert AlertSettings(webhook_url="http://127.0.0.1:9/hook", webhook_allow_http=True).webhook_allow_http
    # The hub itself refuses to start on one, saying why, before it touches its store.
    env = {**os.environ, "HUB_ALERTS_WEBHOOK_URL": "http://pms.example.com/hook",
           "HUB_STORE_PATH": str(tmp_path / "hub.sqlite3"), "HUB_HTTP_PORT": "0",
           "HUB_MQTT_URL": "mqtt://127.0.0.1:1"}
    result = subprocess.run([sys.executable, "-m", "hub", "run", "--registry", str(one_of_each_registry),
                             "--no-view"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "plain http://" in " ".join(result.stderr.split()), result.stderr[-2000:]
    assert not (tmp_path / "hub.sqlite3").exists()


# --- e-mail through apprise ----------------------------------------------------------------------------

def test_caregivers_get_mail_and_escalation_mails_the_next_tier(tmp_path: Path, mailbox: Mailbox) -> None:
    registry = community_registry({"cg-li": [mailbox.url("li@example.com")],
                                   "cg-grid": [mailbox.url("grid@example.com")]})
    clock = FollowedClock()
    clock.advance_to(T0)
    service = started(tmp_path / "hub.sqlite3", [AppriseSink()], registry=registry, clock=clock)
    try:
        alert = service.raise_alert(resident_request("fall", "critical"))
        wait_until(lambda: mailbox.subjects_for("li@example.com"), 20, what="the daughter's e-mail")
        assert mailbox.subjects_for("li@example.com") == ["[紧急] 跌倒 · 王奶奶 · 7-2-1402"]
        assert mailbox.subjects_for("grid@example.com") == []

        clock.advance_to(T0 + 5 * MINUTE_MS)  # nobody acknowledged within the critical deadline
        service.tick(clock.now_ms())
        wait_until(lambda: mailbox.subjects_for("grid@example.com"), 20, what="the grid worker's e-mail")
        # The delivery is marked sent after the mail server took it: wait for the mark, not the mail.
        wait_until(lambda: [d.status for d in service.get(alert.id).deliveries] == ["sent", "sent"], 10,
                   what="both deliveries marked sent")
        deliveries = service.get(alert.id).deliveries
        assert [(d.recipient, d.tier, d.reason) for d in deliveries] == [
            ("cg-li", 1, "raised"), ("cg-grid", 2, "escalated")]
    finally:
        service.close()
    (html,) = mailbox.bodies_for("grid@example.com", "text/html")  # e-mail gets the HTML rendering
    assert "<p>紧急 · 无人确认，已升级 · 第 2 级通知</p>" in html
    assert f"告警 #{alert.id}" in html


# --- MQTT ----------------------------------------------------------------------------------------------

def test_mqtt_sink_publishes_the_alert(tmp_path: Path, mosquitto: Mosquitto) -> None:
    registry = community_registry()
    subscriber = AlertSubscriber(mosquitto, "sunshine", lambda body: body["kind"] == "sos")
    service = started(tmp_path / "hub.sqlite3", [MqttSink(mosquitto.address, "alerts-test", 5)],
                      registry=registry)
    try:
        alert = service.raise_alert(resident_request("sos", "critical"))
        subscriber.wait()
        wait_until(lambda: service.get(alert.id).deliveries[0].status == "sent", 10, what="sent")
        expected = machine_body_bytes(sent_notification(service, alert.id, "mqtt", registry))
    finally:
        service.close()
    assert subscriber.received[-1][1] == expected


def test_a_dead_webhook_does_not_delay_mqtt(tmp_path: Path, mosquitto: Mosquitto, black_hole: str) -> None:
    subscriber = AlertSubscriber(mosquitto, "sunshine", lambda body: body["kind"] == "fall")
    webhook = WebhookSink(black_hole, "s3cret", timeout_s=5, allow_http=True)
    service = started(tmp_path / "hub.sqlite3", [webhook, MqttSink(mosquitto.address, "alerts-test", 5)])
    try:
        service.raise_alert(resident_request("inactivity", "warning"))  # the webhook now hangs on this
        time.sleep(0.2)
        raised_at = time.monotonic()
        alert = service.raise_alert(resident_request("fall", "critical"))
        subscriber.wait()
        arrived_at = subscriber.received[-1][0]
        assert arrived_at - raised_at < 2.0, "MQTT waited for the hung webhook"
        webhook_deliveries = [d for d in service.get(alert.id).deliveries if d.sink == "webhook"]
        assert [d.status for d in webhook_deliveries] == ["pending"]
    finally:
        service.close()


def test_build_sinks_from_settings(mosquitto: Mosquitto) -> None:
    settings = AlertSettings(webhook_url="https://127.0.0.1:9/hook", apprise_urls=["mailto://a@example.com"])
    assert [s.name for s in build_sinks(settings, mosquitto.address)] == ["mqtt", "webhook", "apprise"]
    assert [s.name for s in build_sinks(AlertSettings(apprise_enabled=False))] == []
