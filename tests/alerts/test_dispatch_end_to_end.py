"""The dispatch hand-off (hub/alerts/sinks/dispatch.py, docs/integrators/dispatch.md) end to end: a real
hub subprocess, a real Mosquitto, a real HTTP server as the dispatcher. An SOS pressed on a band is
POSTed in the documented shape with a valid signature (after a failed attempt, retried by the durable
queue), and the dispatcher's answer to the callback URL lands in the alert's history."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from hub.alerts.sinks.webhook import SIGNATURE_HEADER, verify
from hub.api.tokens import Role
from tests.alerts.receivers import WebhookReceiver
from tests.api.support import client, make_token, publish, sos_alert_of
from tests.conftest import StartHub
from tests.real_servers import Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder

SECRET = "dispatch-secret"


def test_an_sos_is_handed_to_the_dispatcher_and_its_answer_is_in_the_history(
    start_hub: StartHub, mosquitto: Mosquitto, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    registry = (RegistryBuilder().community("sunshine", "阳光社区").compound("c1")
                .building("b7", name="7号楼").grid("g7").household("h1402", unit="2单元1402")
                .caregiver("cg-li", "李女士", "family", phone="13800000001")
                .caregiver("cg-grid", "张网格员", "grid_worker", phone="13800000002")
                .caregiver("cg-duty", "刘值班", "duty_officer", phone="13800000003")
                .resident("r-wang", "王奶奶", flags=["血透", "糖尿病"], phone="13800000000",
                          caregivers={"cg-li": 1, "cg-grid": 2})
                .device("band-1402", "wristband", resident="r-wang")
                .device("door-1402", "door_sensor", household="h1402")
                .dump(tmp_path / "registry.yaml"))
    webhook_receiver.statuses = [503]  # the first attempt fails: the queue tries again
    hub = start_hub(registry, {"HUB_DISPATCH_URL": webhook_receiver.url, "HUB_DISPATCH_SECRET": SECRET,
                               "HUB_DISPATCH_ALLOW_HTTP": "true", "HUB_PUBLIC_URL": "https://care.example.com",
                               "HUB_ALERTS_DELIVERY_BACKOFF_INITIAL_S": "0.5"})
    operator = client(hub, make_token(hub, "ops", Role.OPERATOR, communities=("sunshine",)))

    now = int(time.time() * 1000)
    publish(mosquitto, [("sc/sunshine/wristband/band-1402/event",
                         {"ts": now, "sos": True, "location": {"lat": 31.2304, "lon": 121.4737,
                                                               "accuracy_m": 8.0}})])
    alert_id = sos_alert_of(operator, "r-wang")["id"]
    wait_until(lambda: len(webhook_receiver.requests) >= 2, 20, what="the dispatch hand-off, retried")

    for headers, body in webhook_receiver.requests:
        assert verify(SECRET, headers[SIGNATURE_HEADER], body), headers
    handed = json.loads(webhook_receiver.requests[-1][1])
    assert handed["schema"] == "sc.dispatch/1"
    assert (handed["alert_id"], handed["kind"], handed["severity"]) == (alert_id, "sos", "critical")
    assert handed["time"].endswith("+08:00")  # the community's time, with its offset
    assert handed["residents"] == [{"name": "王奶奶", "phone": "13800000000", "lives_alone": True,
                                    "medical_flags": ["血透", "糖尿病"]}]
    assert handed["address"] == {"community": "阳光社区", "building": "7号楼", "unit": "2单元1402",
                                 "text": "阳光社区 7号楼 2单元1402"}
    assert handed["location"] == {"lat": 31.2304, "lon": 121.4737, "accuracy_m": 8.0}
    assert {(c["role"], c["phone"]) for c in handed["contacts"]} == {
        ("family", "13800000001"), ("grid_worker", "13800000002"), ("duty_officer", "13800000003")}
    callback = urlsplit(handed["callback_url"])
    assert (callback.scheme, callback.netloc, callback.path) == \
        ("https", "care.example.com", f"/api/v1/alerts/{alert_id}/dispatch-answer")

    def history() -> list[dict[str, object]]:
        found: list[dict[str, object]] = operator.get(f"/api/v1/alerts/{alert_id}").json()["history"]
        return found

    wait_until(lambda: any(e["action"] == "dispatched" for e in history()), 10, what="`dispatched`")
    (dispatched,) = [e for e in history() if e["action"] == "dispatched"]
    assert dispatched["detail"] == {"attempts": 2} and dispatched["role"] == "hub"

    # The dispatcher answers on the callback (the hub's own address here, the path and token as sent).
    with httpx.Client(base_url=hub.http_url, timeout=10) as http:
        answer = f"{callback.path}?{callback.query}"
        en_route = {"status": "en_route", "note": "120 车辆 A12，约 8 分钟"}
        assert http.post(answer, json=en_route).status_code == 204
        assert http.post(answer, json={"status": "lost"}).status_code == 422
        forged = f"{callback.path}?t=AAAA"
        assert http.post(forged, json={"status": "arrived"}).status_code == 403
        other = f"/api/v1/alerts/{alert_id + 1}/dispatch-answer?{callback.query}"
        assert http.post(other, json={"status": "arrived"}).status_code == 403
    (answered,) = [e for e in history() if e["action"] == "dispatch_answer"]
    assert (answered["actor"], answered["role"]) == ("dispatcher", "dispatcher")
    assert answered["detail"] == {"status": "en_route", "note": "120 车辆 A12，约 8 分钟"}
