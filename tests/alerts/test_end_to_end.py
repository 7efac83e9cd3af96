"""A real SOS press through a real Mosquitto into the hub subprocess comes out as an alert: in the store,
on the MQTT alert topic, and — pressed again in Zigbee2MQTT form with its reset — still one alert."""

from __future__ import annotations

import json
import time
from pathlib import Path

from hub.alerts.model import Alert
from hub.mqtt import Publisher
from tests.alerts.receivers import AlertSubscriber, alerts_in
from tests.conftest import StartHub
from tests.real_servers import Mosquitto, wait_until


def test_sos_press_becomes_one_alert_delivered_on_mqtt(
    mosquitto: Mosquitto, start_hub: StartHub, one_of_each_registry: Path
) -> None:
    hub = start_hub(one_of_each_registry)
    # Alert messages are not retained: listen (proven subscribed) before pressing.
    listening = AlertSubscriber(mosquitto, "sunshine", lambda body: body["kind"] == "sos")
    publisher = Publisher(mosquitto.address)
    publisher.start()
    now = int(time.time() * 1000)
    publisher.publish("sc/sunshine/wristband/band-1/event", json.dumps({"ts": now, "sos": True}))
    listening.wait(20)
    assert listening.received, hub.log()[-2000:]
    body = json.loads(listening.received[-1][1])
    assert (body["kind"], body["subject"], body["severity"], body["reason"]) == (
        "sos",
        "r1",
        "critical",
        "raised",
    )

    # Zigbee2MQTT's SOS button: the press, its reset with the same last_seen, and a redelivery.
    press = json.dumps({"action": "emergency", "battery": 90, "last_seen": now + 60_000})
    reset = json.dumps({"action": "", "battery": 90, "last_seen": now + 60_000})
    for payload in (press, reset, press):
        publisher.publish("zigbee2mqtt/c1/101/sos button", payload).wait(5)
    publisher.stop()

    def sos_alerts() -> list[Alert]:
        alerts = [a for a in alerts_in(hub.store_path, one_of_each_registry) if a.kind == "sos"]
        return alerts if alerts and alerts[0].count >= 2 else []

    (alert,) = wait_until(sos_alerts, 20, what="the second press counted on the open SOS alert")
    assert alert.count == 2, "two presses: the reset and the redelivery add nothing"
    assert alert.severity == "critical"
    time.sleep(1)
    (again,) = [a for a in alerts_in(hub.store_path, one_of_each_registry) if a.kind == "sos"]
    assert again.count == 2
