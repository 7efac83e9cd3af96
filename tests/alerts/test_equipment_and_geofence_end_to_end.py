"""Through a real Mosquitto into the hub subprocess: a door sensor's tamper switch becomes an equipment
alert for the duty officer that clears itself when the case is closed (in the history as cleared by the
hub, and told on MQTT); a device that says it is offline (its last will) is `device_offline` at once,
dropping out again soon after it came back continues that alert, and its `online` clears it once it has
stayed back; a wristband leaving its wearer's geofence is a critical alert with the location."""

from __future__ import annotations

import json
import time
from pathlib import Path

from hub.alerts.model import Alert, AlertDetail
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.clock import CLOCK_TOPIC, SystemClock
from hub.mqtt import Publisher
from hub.registry import Registry
from hub.store import Store
from tests.alerts.receivers import AlertSubscriber, alerts_in
from tests.conftest import StartHub
from tests.real_servers import Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder

HOME = {"lat": 31.2304, "lon": 121.4737}


def registry(path: Path) -> Path:
    return (RegistryBuilder().community("sunshine", "阳光社区").compound("c1").building("b1", floors=18)
            .grid("g1").household("h101", unit="1-101")
            .caregiver("cg-li", "李女士", "family").caregiver("cg-duty", "值班员", "duty_officer")
            .resident("r1", "王奶奶", wandering_risk=True, caregivers={"cg-li": 1},
                      geofence={"centre": HOME, "radius_m": 500})
            .device("door-1", "door_sensor").device("band-1", "wristband", resident="r1")
            .dump(path / "registry.yaml"))


def detail(store_path: Path, registry_path: Path, alert_id: int) -> AlertDetail:
    reg = Registry.load(registry_path)
    service = AlertService(store_path, lambda: reg, SystemClock(), AlertSettings())
    try:
        return service.get(alert_id)
    finally:
        service.close()


def test_tamper_alerts_the_duty_officer_and_clears_itself_and_leaving_the_geofence_is_critical(
    mosquitto: Mosquitto, start_hub: StartHub, tmp_path: Path
) -> None:
    registry_path = registry(tmp_path)
    hub = start_hub(registry_path)
    publisher = Publisher(mosquitto.address)
    publisher.start()
    now = int(time.time() * 1000)

    raised = AlertSubscriber(mosquitto, "sunshine", lambda body: body["kind"] == "tamper")
    publisher.publish("sc/sunshine/door_sensor/door-1/event",
                      json.dumps({"ts": now, "contact": "closed", "tamper": True})).wait(5)
    raised.wait(20)
    assert raised.received, hub.log()[-2000:]
    body = json.loads(raised.received[-1][1])
    assert (body["kind"], body["subject"], body["severity"], body["reason"]) == (
        "tamper", "door-1", "warning", "raised")
    assert [r["id"] for r in body["recipients"]] == ["cg-duty"], "equipment: the duty officer, not family"

    cleared = AlertSubscriber(mosquitto, "sunshine",
                              lambda body: body["kind"] == "tamper" and body["reason"] == "cleared")
    publisher.publish("sc/sunshine/door_sensor/door-1/event",
                      json.dumps({"ts": now + 1000, "contact": "closed", "tamper": False})).wait(5)
    cleared.wait(20)
    assert cleared.received, hub.log()[-2000:]
    body = json.loads(cleared.received[-1][1])
    assert (body["state"], body["outcome"]) == ("resolved", "cleared")

    def tamper_alerts() -> list[Alert]:
        return [a for a in alerts_in(hub.store_path, registry_path) if a.kind == "tamper"]

    (alert,) = wait_until(tamper_alerts, 10, what="the tamper alert in the store")
    history = detail(hub.store_path, registry_path, alert.id).history
    assert [(e.action, e.actor, e.to_state) for e in history] == [
        ("raised", "hub", "open"), ("cleared", "hub", "resolved")]
    assert history[-1].detail["evidence"] == {"tamper": False}

    left = AlertSubscriber(mosquitto, "sunshine", lambda body: body["kind"] == "left_geofence")
    inside = {"lat": HOME["lat"] + 0.001, "lon": HOME["lon"]}
    outside = {"lat": HOME["lat"] + 0.01, "lon": HOME["lon"], "accuracy_m": 15.0}  # about 1.1 km north
    for ts, location in ((now, inside), (now + 60_000, outside)):
        publisher.publish("sc/sunshine/wristband/band-1/event",
                          json.dumps({"ts": ts, "steps": 40, "worn": True, "location": location})).wait(5)
    left.wait(20)
    publisher.stop()
    assert left.received, hub.log()[-2000:]
    body = json.loads(left.received[-1][1])
    assert (body["kind"], body["subject"], body["severity"], body["reason"]) == (
        "left_geofence", "r1", "critical", "raised")
    assert body["evidence"]["location"] == {"lat": outside["lat"], "lon": outside["lon"]}
    assert body["evidence"]["accuracy_m"] == 15.0
    assert [r["id"] for r in body["recipients"]] == ["cg-li"]


def test_availability_offline_raises_device_offline_a_flap_continues_it_and_online_clears_it(
    mosquitto: Mosquitto, start_hub: StartHub, tmp_path: Path
) -> None:
    registry_path = registry(tmp_path)
    hub = start_hub(registry_path, env={"HUB_CLOCK": "mqtt", "HUB_ALERTS_APPRISE_ENABLED": "false"})
    publisher = Publisher(mosquitto.address)
    publisher.start()
    minute = 60_000
    t0 = SystemClock().now_ms() - 60 * minute
    availability = "sc/sunshine/door_sensor/door-1/availability"

    def at(minutes: int) -> None:
        publisher.publish(CLOCK_TOPIC, str(t0 + minutes * minute), retain=True).wait(5)

    def evaluated(store: Store) -> bool:
        return store.export_cursor("evaluation") >= store.last_observation_id() > 0

    def offline_alerts() -> list[Alert]:
        return [a for a in alerts_in(hub.store_path, registry_path) if a.kind == "device_offline"]

    try:
        at(0)
        raised = AlertSubscriber(mosquitto, "sunshine", lambda body: body["kind"] == "device_offline")
        publisher.publish(availability, b"offline", retain=True).wait(5)  # what its last will says
        raised.wait(20)
        assert raised.received, hub.log()[-2000:]
        body = json.loads(raised.received[-1][1])
        assert (body["subject"], body["reason"], body["evidence"]["reason"]) == (
            "door-1", "raised", "availability offline")
        assert [r["id"] for r in body["recipients"]] == ["cg-duty"]

        at(2)  # back for two minutes (a reading), then gone again: the same alert, one more drop
        publisher.publish("sc/sunshine/door_sensor/door-1/event",
                          json.dumps({"ts": t0 + 2 * minute, "contact": "closed"})).wait(5)
        hub.wait_for(evaluated, 20, "the reading evaluated")
        at(5)
        publisher.publish(availability, b"offline", retain=True).wait(5)
        (alert,) = wait_until(lambda: [a for a in offline_alerts() if a.count == 2], 20,
                              what="the second drop counted on the first alert")

        cleared = AlertSubscriber(mosquitto, "sunshine", lambda body: body["reason"] == "cleared")
        at(6)
        publisher.publish(availability, json.dumps({"state": "online"}), retain=True).wait(5)
        at(15)  # back 9 minutes: still open (HUB_RULES_OFFLINE_CLEAR_AFTER_S, 600 s)
        at(17)
        cleared.wait(20)
        assert cleared.received, hub.log()[-2000:]
        assert (json.loads(cleared.received[-1][1])["outcome"]) == "cleared"
    finally:
        publisher.stop()

    assert [(a.id, a.count, a.state, a.outcome) for a in offline_alerts()] == [
        (alert.id, 2, "resolved", "cleared")], "one alert for the flapping device, not one per drop"
    history = detail(hub.store_path, registry_path, alert.id).history
    assert [(e.action, e.actor) for e in history] == [
        ("raised", "hub"), ("repeated", "hub"), ("cleared", "hub")]
    assert history[-1].detail["evidence"] == {"availability": "online"}
    assert history[-1].detail["cause_ended_ms"] == t0 + 6 * minute
    assert history[-1].at_ms >= t0 + 16 * minute, "not before it had stayed back for 10 minutes"
