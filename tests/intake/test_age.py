"""Old or replayed readings never alert as new (issue 12, item 7).

A fall dated a year ago raised a critical alert. Readings older than the maximum age (by default a little
longer than the broker queues messages for a stopped hub) are dead letters (`too_old`) and raise nothing;
an SOS, a fall or a falling object that arrives late but within the limit raises its alert marked late.
Through a real Mosquitto into a hub subprocess.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from detectors.severity import Severity
from hub.alerts.links import Links
from hub.alerts.messages import render
from hub.alerts.model import Alert
from hub.alerts.notification import Notification
from hub.intake import Rejected, Router, RouterLimits
from hub.mqtt import Publisher
from hub.registry import Registry, RegistryHolder
from hub.settings import Settings
from hub.store import Observation
from tests.alerts.receivers import AlertSubscriber, alerts_in
from tests.conftest import StartHub
from tests.real_servers import Mosquitto, wait_until

DAY_MS = 24 * 3600 * 1000
BAND = "sc/sunshine/wristband/band-1/event"
CAMERA = "sc/sunshine/high_altitude_camera/camera-1/event"


def falling_object(ts: int, event_id: str) -> str:
    return json.dumps({"ts": ts, "type": "falling_object", "event_id": event_id, "camera_id": "camera-1",
                       "building": "b1", "floor_min": 5, "floor_max": 6, "trajectory": [], "confidence": 0.9})


def test_the_default_limit_outlasts_the_brokers_session_and_follows_it() -> None:
    settings = Settings()
    assert settings.reading_age_limit_s == settings.mqtt_session_expiry_s + 24 * 3600
    assert RouterLimits.from_settings(settings).max_age_ms == RouterLimits().max_age_ms
    longer = Settings(mqtt_session_expiry_s=30 * 24 * 3600)
    assert longer.reading_age_limit_s > longer.mqtt_session_expiry_s, "never refuses what the broker kept"
    assert Settings(max_reading_age_s=3600).reading_age_limit_s == 3600


def test_a_reading_just_inside_the_limit_is_stored_and_one_just_past_it_is_not(
    one_of_each_registry: Path,
) -> None:
    router = Router(RegistryHolder(Registry.load(one_of_each_registry)).current, "zigbee2mqtt",
                    RouterLimits(max_age_ms=DAY_MS))
    now = int(time.time() * 1000)
    inside = router.route(BAND, json.dumps({"ts": now - DAY_MS, "fall": True}).encode(), now)
    past = router.route(BAND, json.dumps({"ts": now - DAY_MS - 1, "fall": True}).encode(), now)
    assert isinstance(inside, Observation)
    assert isinstance(past, Rejected) and past.reason == "too_old", past
    assert past.device is not None and past.device.id == "band-1", "the device still counts as heard from"


def test_a_fall_dated_a_year_ago_is_a_dead_letter_and_late_urgent_readings_are_marked_late(
    mosquitto: Mosquitto, start_hub: StartHub, one_of_each_registry: Path
) -> None:
    hub = start_hub(one_of_each_registry, {"HUB_MAX_READING_AGE_S": str(2 * 24 * 3600)})
    listening = AlertSubscriber(mosquitto, "sunshine", lambda body: body["kind"] == "fall")
    publisher = Publisher(mosquitto.address)
    publisher.start()
    now = int(time.time() * 1000)
    year_ago, three_days_ago, three_hours_ago, day_ago = now - 365 * DAY_MS, now - 3 * DAY_MS, \
        now - 3 * 3600_000, now - DAY_MS
    messages = [
        (BAND, json.dumps({"ts": year_ago, "fall": True})),  # a replay: past the limit
        (BAND, json.dumps({"ts": three_days_ago, "sos": True})),  # past the limit too
        (CAMERA, falling_object(three_days_ago, "old-object")),
        (BAND, json.dumps({"ts": three_hours_ago, "sos": True})),  # held back, within the limit: late
        (CAMERA, falling_object(day_ago, "late-object")),
        (BAND, json.dumps({"ts": now, "fall": True})),  # in time: the only fall alert, not late
    ]
    for topic, payload in messages:
        assert publisher.publish(topic, payload).wait(10)
    publisher.stop()

    def three_alerts() -> list[Alert]:
        alerts = alerts_in(hub.store_path, one_of_each_registry)
        return alerts if {a.kind for a in alerts} >= {"sos", "fall", "falling_object"} else []

    # This registry names no caregiver, so each alert also raises `unreachable` (an alert about an alert
    # that reached nobody): not what this test is about.
    alerts = {a.kind: a for a in wait_until(three_alerts, 30, what=f"alerts; log:\n{hub.log()[-3000:]}")
              if a.kind != "unreachable"}
    assert set(alerts) == {"sos", "fall", "falling_object"}

    fall = alerts["fall"]
    assert (fall.count, fall.first_seen_ms, fall.evidence["fall_ts"]) == (1, now, now), \
        "the year-old fall raised nothing (else this fall would have folded into it)"
    assert "late" not in fall.evidence

    sos = alerts["sos"]
    assert (sos.count, sos.evidence["press_ts"]) == (1, three_hours_ago), "the 3-day-old press raised nothing"
    assert sos.evidence["late"] is True
    assert 3 * 3600 <= sos.evidence["late_s"] < 3 * 3600 + 60
    assert sos.evidence["received_ms"] - sos.evidence["late_s"] * 1000 <= three_hours_ago + 1000

    objects = alerts["falling_object"]
    assert (objects.count, objects.evidence["event_id"]) == (1, "late-object")
    assert objects.evidence["late"] is True and objects.evidence["late_s"] >= DAY_MS // 1000

    store = hub.store()
    try:
        dead = store.dead_letters(reason="too_old")
        assert len(dead) == 3, [d.detail for d in dead]
        assert {d.device_id for d in dead} == {"band-1", "camera-1"}
        year_old = next(d for d in dead if json.loads(d.payload)["ts"] == year_ago)
        assert "365.0 days before the hub received it, limit 2.0 days" in year_old.detail, year_old.detail
        assert {ts for device, ts in store.observation_keys() if device == "band-1"} == {three_hours_ago, now}
    finally:
        store.close()

    # The fall went out to the alert consumers unmarked; the message bodies carry the same evidence.
    listening.wait(20)
    bodies = [json.loads(payload) for _, payload in listening.received]
    assert [b["evidence"]["fall_ts"] for b in bodies if b["kind"] == "fall"] == [now]


def test_a_late_alert_says_so_in_its_message(one_of_each_registry: Path) -> None:
    received = 1_763_856_000_000  # 2025-11-23 08:00 in Shanghai
    alert = Alert(
        id=7, kind="sos", severity=Severity.CRITICAL, state="open", subject="r1", community="sunshine",
        building="b1", household="h101", resident="r1", device="band-1",
        evidence={"press_ts": received - 3 * 3600_000, "late": True, "late_s": 3 * 3600,
                  "received_ms": received},
        count=1, first_seen_ms=received - 3 * 3600_000, last_seen_ms=received - 3 * 3600_000, tier=1,
        deadline_ms=None, assigned_to=None, acknowledged_by=None, acknowledged_ms=None, resolved_by=None,
        resolved_ms=None, outcome=None, note="")
    def text(notification: Notification) -> str:
        return render(notification, "text", Links(None, b"")).body

    message = text(Notification(alert, 1, "raised", 1, (), None, "王奶奶", "1-101", "Asia/Shanghai"))
    assert "注意：消息迟到 3 小时，事发 05:00，08:00 才收到" in message, message
    on_time = replace(alert, evidence={"press_ts": received})
    on_time_text = text(Notification(on_time, 1, "raised", 1, (), None, "王奶奶", "1-101", "Asia/Shanghai"))
    assert "迟到" not in on_time_text
