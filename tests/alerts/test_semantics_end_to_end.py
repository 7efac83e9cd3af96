"""Alert semantics end to end (band → real Mosquitto → hub subprocess → real SMTP server): a new SOS press
after the first was acknowledged is told again, its redelivery is not; an acknowledged alert left
unresolved past its resolution deadline is told to the tier above the acknowledger's, once; the caregiver
it is assigned to is told."""

from __future__ import annotations

import json
import time
from contextlib import closing
from pathlib import Path

import httpx

from hub.alerts.model import Alert
from hub.alerts.store import AlertStore
from hub.api.tokens import Role
from hub.mqtt import Publisher
from tests.alerts.receivers import Mailbox, alerts_in
from tests.api.support import client, make_token
from tests.conftest import StartHub
from tests.real_servers import HubProcess, Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder

PUBLIC = "https://care.example.com"


def _press(mosquitto: Mosquitto, *presses: int) -> None:
    publisher = Publisher(mosquitto.address)
    publisher.start()
    try:
        for ts in presses:
            assert publisher.publish("sc/sunshine/wristband/band-1402/event",
                                     json.dumps({"ts": ts, "sos": True})).wait(10)
    finally:
        publisher.stop()


def _sos(hub: HubProcess, registry: Path) -> Alert:
    (alert,) = [a for a in alerts_in(hub.store_path, registry) if a.kind == "sos"]
    return alert


def _acknowledge_by_link(hub: HubProcess, html: str, alert_id: int) -> None:
    """Follow the one-tap link of an e-mail, on the hub (its public address is this loopback one)."""
    link = html.split(f'href="{PUBLIC}/ack/')[1].split('"', maxsplit=1)[0].replace("&amp;", "&")
    token = link.split("?t=")[1]
    done = httpx.post(f"{hub.http_url}/ack/{alert_id}", data={"t": token}, timeout=10)
    assert done.status_code == 200, done.text


def _registry(tmp_path: Path, mailbox: Mailbox, caregivers: dict[str, int]) -> Path:
    return (RegistryBuilder()
            .community("sunshine", "阳光社区").compound("c1").building("b7", name="7号楼")
            .grid("g7").household("h1402", unit="2单元1402")
            .caregiver("cg-li", "李女士", "family", phone="13800000001",
                       notify=[mailbox.url("li@example.com")])
            .caregiver("cg-grid", "张网格员", "grid_worker", phone="13800000002",
                       notify=[mailbox.url("grid@example.com")])
            .caregiver("cg-duty", "刘值班", "duty_officer", phone="13800000003",
                       notify=[mailbox.url("duty@example.com")])
            .resident("r-wang", "王奶奶", phone="13800000000", caregivers=caregivers)
            .device("band-1402", "wristband", resident="r-wang")
            .dump(tmp_path / "registry.yaml"))


def test_a_new_press_after_acknowledging_is_told_again_and_its_redelivery_is_not(
    mosquitto: Mosquitto, start_hub: StartHub, mailbox: Mailbox, tmp_path: Path
) -> None:
    registry = _registry(tmp_path, mailbox, {"cg-li": 1, "cg-grid": 2})
    hub = start_hub(registry, {"HUB_PUBLIC_URL": PUBLIC, "HUB_ALERTS_MQTT_ENABLED": "false"})
    first = int(time.time() * 1000)
    _press(mosquitto, first)
    wait_until(lambda: mailbox.bodies_for("li@example.com", "text/html"), 30, what="the daughter's e-mail")
    alert = _sos(hub, registry)
    _acknowledge_by_link(hub, mailbox.bodies_for("li@example.com", "text/html")[0], alert.id)
    wait_until(lambda: len(mailbox.bodies_for("li@example.com", "text/html")) == 2, 30,
               what="the acknowledgement's e-mail")

    # Pressed again (a new press: a new `ts`), and that press redelivered by the broker.
    again = first + 1000
    _press(mosquitto, again, again)
    wait_until(lambda: len(mailbox.bodies_for("li@example.com", "text/html")) == 3, 30,
               what="the new press's e-mail")
    told = mailbox.bodies_for("li@example.com", "text/html")[2]
    assert "再次发生" in told and "李女士 已确认前一次" in told, told
    time.sleep(2)
    assert len(mailbox.bodies_for("li@example.com", "text/html")) == 3, "the redelivery adds nothing"
    assert mailbox.bodies_for("grid@example.com", "text/html") == [], "tier 2 was never told"
    alert = _sos(hub, registry)
    assert (alert.state, alert.count) == ("acknowledged", 2)


def test_an_acknowledged_alert_left_unresolved_is_told_to_the_tier_above_once(
    mosquitto: Mosquitto, start_hub: StartHub, mailbox: Mailbox, tmp_path: Path
) -> None:
    registry = _registry(tmp_path, mailbox, {"cg-grid": 1, "cg-duty": 2})
    hub = start_hub(registry, {"HUB_PUBLIC_URL": PUBLIC, "HUB_ALERTS_MQTT_ENABLED": "false",
                               "HUB_ALERTS_RESOLVE_DEADLINE_CRITICAL_S": "3",
                               "HUB_ALERTS_TICK_INTERVAL_S": "0.5"})
    _press(mosquitto, int(time.time() * 1000))
    wait_until(lambda: mailbox.bodies_for("grid@example.com", "text/html"), 30,
               what="the grid worker's e-mail")
    alert = _sos(hub, registry)
    _acknowledge_by_link(hub, mailbox.bodies_for("grid@example.com", "text/html")[0], alert.id)

    wait_until(lambda: mailbox.bodies_for("duty@example.com", "text/html"), 30, what="the overdue e-mail")
    (overdue,) = mailbox.bodies_for("duty@example.com", "text/html")
    assert "张网格员 已确认，但超过处理时限仍未结案" in overdue, overdue
    time.sleep(2)
    assert len(mailbox.bodies_for("duty@example.com", "text/html")) == 1, "once per deadline"
    with closing(AlertStore(hub.store_path)) as store:
        (event,) = [e for e in store.history(alert.id) if e.action == "overdue"]
    assert (event.actor, event.detail["acknowledged_by"], event.detail["recipients"]) == \
        ("hub", "cg-grid", ["cg-duty"])


def test_the_caregiver_an_alert_is_assigned_to_is_told_by_e_mail(
    mosquitto: Mosquitto, start_hub: StartHub, mailbox: Mailbox, tmp_path: Path
) -> None:
    registry = _registry(tmp_path, mailbox, {"cg-li": 1, "cg-grid": 2, "cg-duty": 3})
    hub = start_hub(registry, {"HUB_PUBLIC_URL": PUBLIC, "HUB_ALERTS_MQTT_ENABLED": "false"})
    _press(mosquitto, int(time.time() * 1000))
    wait_until(lambda: mailbox.bodies_for("li@example.com", "text/html"), 30, what="the daughter's e-mail")
    alert = _sos(hub, registry)
    assert mailbox.bodies_for("duty@example.com", "text/html") == [], "tier 3 not told yet"

    duty = make_token(hub, "值班员小陈", Role.OPERATOR, communities=("sunshine",))
    with client(hub, duty) as operator:
        assigned = operator.post(f"/api/v1/alerts/{alert.id}/assign", json={"to": "cg-duty"})
    assert assigned.status_code == 200, assigned.text
    wait_until(lambda: mailbox.bodies_for("duty@example.com", "text/html"), 30,
               what="the assignee's e-mail")
    (told,) = mailbox.bodies_for("duty@example.com", "text/html")
    assert "已指派给 刘值班 负责处理" in told and "王奶奶" in told, told
    with closing(AlertStore(hub.store_path)) as store:
        assert [e.action for e in store.history(alert.id)].count("assigned") == 1
