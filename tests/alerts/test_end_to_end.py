"""A real SOS press through a real Mosquitto into the hub subprocess comes out as an alert: in the store,
on the MQTT alert topic, and — pressed again in Zigbee2MQTT form with its reset — still one alert; and
as an e-mail to the family through a real SMTP server, whose acknowledge link works."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from hub.alerts.model import Alert
from hub.mqtt import Publisher
from tests.alerts.receivers import AlertSubscriber, Mailbox, alerts_in
from tests.conftest import StartHub
from tests.real_servers import Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder


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
    # This household has no caregiver, so the `unreachable` alert about the SOS may come in the same burst.
    bodies = [json.loads(payload) for _, payload in listening.received]
    sos = [body for body in bodies if body["kind"] == "sos"]
    assert sos, hub.log()[-2000:]
    body = sos[-1]
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


def test_an_sos_press_reaches_the_family_by_email_with_working_links(
    mosquitto: Mosquitto, start_hub: StartHub, mailbox: Mailbox, tmp_path: Path
) -> None:
    """Band → Mosquitto → hub → a real SMTP server: the e-mail is written for the daughter (name, flags,
    home, what happened, where, whom to call) and its acknowledge link, followed, acknowledges."""
    registry = (RegistryBuilder()
                .community("sunshine", "阳光社区").compound("c1").building("b7", name="7号楼")
                .grid("g7").household("h1402", unit="2单元1402")
                .caregiver("cg-li", "李女士", "family", phone="13800000001",
                           notify=[mailbox.url("li@example.com")])
                .caregiver("cg-grid", "张网格员", "grid_worker", phone="13800000002")
                .resident("r-wang", "王奶奶", flags=["血透"], phone="13800000000",
                          caregivers={"cg-li": 1, "cg-grid": 2})
                .device("band-1402", "wristband", resident="r-wang")
                .dump(tmp_path / "registry.yaml"))
    public = "https://care.example.com"
    hub = start_hub(registry, {"HUB_PUBLIC_URL": public, "HUB_ALERTS_MQTT_ENABLED": "false"})
    publisher = Publisher(mosquitto.address)
    publisher.start()
    try:
        press = {"ts": int(time.time() * 1000), "sos": True,
                 "location": {"lat": 31.2304, "lon": 121.4737, "accuracy_m": 12}}
        assert publisher.publish("sc/sunshine/wristband/band-1402/event", json.dumps(press)).wait(10)
    finally:
        publisher.stop()
    wait_until(lambda: mailbox.bodies_for("li@example.com", "text/html"), 30, what="the daughter's e-mail")
    assert mailbox.subjects_for("li@example.com") == ["[紧急] SOS 求助 · 王奶奶 · 2单元1402"]
    (html,) = mailbox.bodies_for("li@example.com", "text/html")
    assert "王奶奶（独居、血透）" in html and "阳光社区 · 7号楼 · 2单元1402" in html
    assert "按下 SOS 求助" in html and "手环位置 31.23040, 121.47370（误差约 12 米）" in html
    assert "张网格员 13800000002" in html and "13800000000" not in html  # whom she calls; not her mother
    (alert,) = [a for a in alerts_in(hub.store_path, registry) if a.kind == "sos"]
    assert f'href="{public}/#alert={alert.id}"' in html
    link = html.split(f'href="{public}/ack/')[1].split('"')[0].replace("&amp;", "&")

    # Followed on the hub (its public address is this loopback one here): a button, then done.
    ack_url = f"{hub.http_url}/ack/{link}"
    page = httpx.get(ack_url, timeout=10)
    assert page.status_code == 200, page.text
    token = ack_url.split("?t=")[1]
    done = httpx.post(f"{hub.http_url}/ack/{alert.id}", data={"t": token}, timeout=10)
    assert done.status_code == 200, done.text
    (acknowledged,) = [a for a in alerts_in(hub.store_path, registry) if a.kind == "sos"]
    assert (acknowledged.state, acknowledged.acknowledged_by) == ("acknowledged", "cg-li")
    # Everyone told hears it (here the daughter herself), in words, without a link to acknowledge again.
    wait_until(lambda: len(mailbox.bodies_for("li@example.com", "text/html")) == 2, 30,
               what="the acknowledgement's e-mail")
    told = mailbox.bodies_for("li@example.com", "text/html")[1]
    assert "李女士 已确认，正在处理" in told and "/ack/" not in told
