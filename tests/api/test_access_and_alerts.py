"""The caregiver/operator API of a real hub subprocess, over real HTTP, with alerts raised by real MQTT
messages through a real Mosquitto: tokens and roles, scoping, the alert actions and their audit trail,
the live stream, and readiness."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.api.tokens import Role
from tests.api.support import (
    client,
    make_token,
    press_sos,
    sos_alert_of,
    wait_for_alerts,
    write_registry,
)
from tests.conftest import StartHub
from tests.real_servers import HubProcess, Mosquitto, wait_until


@pytest.fixture
def hub(start_hub: StartHub, tmp_path: Path) -> HubProcess:
    return start_hub(write_registry(tmp_path / "registry.yaml"))


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_requests_without_a_valid_token_are_refused_with_401(hub: HubProcess) -> None:
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("*",))
    with client(hub) as anonymous:
        for path in ("/api/v1/me", "/api/v1/alerts", "/api/v1/residents", "/api/v1/registry/devices",
                     "/api/v1/alerts/stream"):
            response = anonymous.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
        assert anonymous.post("/api/v1/alerts/1/acknowledge").status_code == 401
        for bad in ("Bearer sch_not-a-token", "Basic b3BzOm9wcw==", f"Bearer {operator}x", operator):
            response = anonymous.get("/api/v1/me", headers={"Authorization": bad})
            assert response.status_code == 401, bad
            assert "token" in response.json()["detail"]
        # Health, readiness and the OpenAPI document stay open.
        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/openapi.json").status_code == 200
    with client(hub, operator) as api:
        assert api.get("/api/v1/me").json()["name"] == "ops"


def test_tokens_cli_creates_lists_and_revokes_and_the_running_hub_follows(hub: HubProcess) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hub", "tokens", *args],
                              env={**hub.env, "HUB_REGISTRY_PATH": str(hub.registry)},
                              capture_output=True, text=True, timeout=60, check=False)

    # Ids not in the registry would make tokens that silently see nothing.
    for args, why in ((("--role", "caregiver", "--caregiver", "cg-typo"), "caregiver 'cg-typo' is not in"),
                      (("--role", "operator", "--community", "sunshin"), "community 'sunshin' is not in"),
                      (("--role", "read_only", "--community", "sunshine", "--community", "mars"),
                       "community 'mars' is not in")):
        refused = cli("create", "--name", "typo", *args)
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
    assert "typo" not in cli("list", "--json").stdout, "no token was made"

    created = cli("create", "--name", "李女士的手机", "--role", "caregiver", "--caregiver", "cg-li")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("sch_") and len(token) > 40 and "\n" not in token
    with client(hub, token) as api:
        assert api.get("/api/v1/me").json() == {
            "token_id": api.get("/api/v1/me").json()["token_id"], "name": "李女士的手机", "role": "caregiver",
            "caregiver": "cg-li", "communities": ["sunshine"], "all_communities": False, "may_reopen": False,
            "places": {}}

    listing = cli("list", "--json").stdout
    assert token not in listing, "the token itself is never shown again"
    (entry,) = [t for t in map(json.loads, listing.splitlines()) if t["name"] == "李女士的手机"]
    assert entry["role"] == "caregiver" and entry["revoked_ms"] is None
    stored = hub.store_path.read_bytes()
    assert token.encode() not in stored, "only the token's hash is stored"

    refused = cli("create", "--name", "x", "--role", "operator")
    assert refused.returncode == 2 and "--community" in refused.stderr
    refused = cli("create", "--name", "李女士的手机", "--role", "read_only", "--community", "moon")
    assert refused.returncode == 2 and "already exists" in refused.stderr

    assert cli("revoke", entry["id"]).returncode == 0
    with client(hub, token) as api:
        assert api.get("/api/v1/me").status_code == 401, "a revoked token is refused at once"
    assert cli("revoke", entry["id"]).returncode == 2


def test_caregiver_sees_and_acts_only_on_its_own_residents(hub: HubProcess, mosquitto: Mosquitto) -> None:
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("*",))
    li = make_token(hub, "li", Role.CAREGIVER, caregiver="cg-li")
    for band in ("band-wang", "band-zhao", "band-moon"):
        press_sos(mosquitto, band)
    with client(hub, operator) as ops, client(hub, li) as api:
        everything = wait_for_alerts(ops, lambda found: len(found) == 3, "three SOS alerts", kind="sos")
        by_resident = {a["resident"]: a for a in everything}

        assert [a["resident"] for a in api.get("/api/v1/alerts").json()] == ["r-wang"]
        assert [r["id"] for r in api.get("/api/v1/residents").json()] == ["r-wang"]
        assert api.get(f"/api/v1/alerts/{by_resident['r-wang']['id']}").status_code == 200

        # Alerts and residents out of scope are answered as absent ones are: a 403 would confirm the id.
        for other in ("r-zhao", "r-moon"):
            alert_id = by_resident[other]["id"]
            refused = api.get(f"/api/v1/alerts/{alert_id}")
            assert (refused.status_code, refused.json()) == (404, {"detail": f"there is no alert {alert_id}"})
            assert other not in refused.text
        absent = api.get("/api/v1/alerts/999999").json()["detail"]
        assert absent == "there is no alert 999999"
        for action, body in (("acknowledge", None), ("assign", {"to": "cg-li"}),
                             ("resolve", {"outcome": "visited"})):
            refused = api.post(f"/api/v1/alerts/{by_resident['r-zhao']['id']}/{action}", json=body)
            assert refused.status_code == 404, action
        outside = api.get("/api/v1/residents/r-zhao/activity")
        assert (outside.status_code, outside.json()) == (
            404, {"detail": "there is no resident 'r-zhao' in service"})
        assert api.get("/api/v1/residents/r-nobody/activity").json() == {
            "detail": "there is no resident 'r-nobody' in service"}
        assert api.get("/api/v1/alerts", params={"resident": "r-moon"}).status_code == 403
        assert api.get("/api/v1/registry/residents").status_code == 403, "caregivers have no registry access"
        # Nothing the caregiver was refused changed anything.
        assert ops.get(f"/api/v1/alerts/{by_resident['r-zhao']['id']}").json()["state"] == "open"


def test_operator_and_read_only_tokens_are_scoped_to_their_communities(
    hub: HubProcess, mosquitto: Mosquitto
) -> None:
    sunshine = make_token(hub, "sunshine-ops", Role.OPERATOR, communities=("sunshine",))
    moon_viewer = make_token(hub, "moon-viewer", Role.READ_ONLY, communities=("moon",))
    for band in ("band-wang", "band-moon"):
        press_sos(mosquitto, band)
    with client(hub, sunshine) as ops, client(hub, moon_viewer) as viewer:
        (wang,) = wait_for_alerts(ops, lambda found: len(found) == 1, "the sunshine SOS", kind="sos")
        (moon,) = wait_for_alerts(viewer, lambda found: len(found) == 1, "the moon SOS", kind="sos")
        assert (wang["community"], moon["community"]) == ("sunshine", "moon")

        assert ops.get(f"/api/v1/alerts/{moon['id']}").status_code == 404
        assert ops.post(f"/api/v1/alerts/{moon['id']}/acknowledge").status_code == 404
        assert ops.get("/api/v1/alerts", params={"community": "moon"}).status_code == 403
        assert {r["id"] for r in ops.get("/api/v1/residents").json()} == {"r-wang", "r-zhao"}
        assert ops.get("/api/v1/me").json()["communities"] == ["sunshine"]

        assert viewer.get(f"/api/v1/alerts/{moon['id']}").status_code == 200
        refused = viewer.post(f"/api/v1/alerts/{moon['id']}/acknowledge")
        assert refused.status_code == 403 and "read_only" in refused.json()["detail"]
        assert [r["id"] for r in viewer.get("/api/v1/residents").json()] == ["r-moon"]
        assert viewer.get(f"/api/v1/alerts/{moon['id']}").json()["state"] == "open"


def test_acknowledge_assign_resolve_are_audited_with_who_and_when(
    hub: HubProcess, mosquitto: Mosquitto
) -> None:
    li = make_token(hub, "li-phone", Role.CAREGIVER, caregiver="cg-li")
    duty = make_token(hub, "值班员小陈", Role.OPERATOR, communities=("sunshine",))
    admin = make_token(hub, "installer", Role.DEVICE_ADMIN, communities=("sunshine",))
    press_sos(mosquitto, "band-wang")
    with client(hub, li) as caregiver, client(hub, duty) as operator, client(hub, admin) as installer:
        alert = sos_alert_of(caregiver, "r-wang")
        url = f"/api/v1/alerts/{alert['id']}"
        assert installer.post(f"{url}/acknowledge").status_code == 403, "device admins act on no alert"

        before = datetime.now(UTC)
        acknowledged = caregiver.post(f"{url}/acknowledge")
        assert acknowledged.status_code == 200, acknowledged.text
        assert acknowledged.json()["state"] == "acknowledged"
        assert acknowledged.json()["acknowledged_by"] == "cg-li", "a caregiver acts as its caregiver id"
        again = caregiver.post(f"{url}/acknowledge")
        assert again.status_code == 409 and "already acknowledged" in again.json()["detail"]

        assigned = operator.post(f"{url}/assign", json={"to": "cg-grid"})
        assert assigned.status_code == 200 and assigned.json()["assigned_to"] == "cg-grid"
        nobody = operator.post(f"{url}/assign", json={"to": "cg-nobody"})
        assert nobody.status_code == 422 and nobody.json()["detail"][0]["loc"] == ["body", "to"]

        resolved = operator.post(f"{url}/resolve", json={"outcome": "visited", "note": "上门查看，一切正常"})
        assert resolved.status_code == 200
        body = resolved.json()
        assert (body["state"], body["outcome"], body["resolved_by"]) == ("resolved", "visited", "值班员小陈")
        for action, payload in (("acknowledge", None), ("assign", {"to": "cg-li"}),
                                ("resolve", {"outcome": "false_alarm"})):
            late = operator.post(f"{url}/{action}", json=payload)
            assert late.status_code == 409, action
            assert "already resolved" in late.json()["detail"]

        detail = operator.get(url).json()
        history = [(e["action"], e["actor"], e["from_state"], e["to_state"]) for e in detail["history"]]
        assert history == [
            ("raised", "hub", None, "open"),
            ("acknowledged", "cg-li", "open", "acknowledged"),
            ("assigned", "值班员小陈", "acknowledged", "acknowledged"),
            ("resolved", "值班员小陈", "acknowledged", "resolved"),
        ]
        for event in detail["history"][1:]:
            assert before - timedelta(milliseconds=1) <= _iso(event["at"]) <= datetime.now(UTC)
        assert detail["history"][2]["detail"] == {"to": "cg-grid", "previous": None}
        assert detail["history"][3]["detail"] == {"outcome": "visited", "note": "上门查看，一切正常"}
        assert _iso(detail["acknowledged_at"]) <= _iso(detail["resolved_at"])
        assert detail["deadline"] is None, "acknowledging stopped escalation"


def test_bad_input_gets_422_naming_the_field_and_changes_nothing(
    hub: HubProcess, mosquitto: Mosquitto
) -> None:
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("*",))
    press_sos(mosquitto, "band-wang")
    with client(hub, operator) as api:
        alert = sos_alert_of(api, "r-wang")
        url = f"/api/v1/alerts/{alert['id']}"

        def refused(response: httpx.Response, loc: list[Any]) -> str:
            assert response.status_code == 422, response.text
            (error,) = response.json()["detail"]
            assert error["loc"] == loc
            return str(error["msg"])

        bad_outcome = api.post(f"{url}/resolve", json={"outcome": "fine"})
        assert "resident_ok" in refused(bad_outcome, ["body", "outcome"])
        refused(api.post(f"{url}/resolve", json={}), ["body", "outcome"])
        refused(api.post(f"{url}/resolve", json={"outcome": "visited", "by": "x"}), ["body", "by"])
        refused(api.post(f"{url}/assign", json={"to": ""}), ["body", "to"])
        assert "sos" in refused(api.get("/api/v1/alerts", params={"kind": "fire"}), ["query", "kind"])
        refused(api.get("/api/v1/alerts", params={"state": "closed"}), ["query", "state", 0])
        refused(api.get("/api/v1/alerts", params={"limit": 5000}), ["query", "limit"])
        refused(api.get("/api/v1/alerts", params={"since": "2026-11-23T08:00:00"}), ["query", "since"])
        refused(api.get("/api/v1/alerts", params={"since": "2026-11-24T00:00:00Z",
                                                  "until": "2026-11-23T00:00:00Z"}), ["query", "until"])
        assert api.post("/api/v1/alerts/999999/acknowledge").status_code == 404
        assert api.get(url).json()["state"] == "open", "nothing was half-done"


def test_alert_list_filters(hub: HubProcess, mosquitto: Mosquitto) -> None:
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("*",))
    press_sos(mosquitto, "band-wang")
    press_sos(mosquitto, "band-moon")
    with client(hub, operator) as api:
        both = wait_for_alerts(api, lambda found: len(found) == 2, "two SOS alerts", kind="sos")
        assert both[0]["id"] > both[1]["id"], "newest first"
        assert [a["resident"] for a in api.get("/api/v1/alerts", params={"community": "moon"}).json()] \
            == ["r-moon"]
        assert [a["resident"] for a in api.get("/api/v1/alerts", params={"building": "b1"}).json()] \
            == ["r-wang"]
        assert api.get("/api/v1/alerts", params={"severity": "info"}).json() == []
        assert len(api.get("/api/v1/alerts", params=[("state", "open"), ("state", "resolved")]).json()) == 2
        assert api.get("/api/v1/alerts", params={"state": "resolved"}).json() == []
        assert len(api.get("/api/v1/alerts", params={"limit": 1}).json()) == 1
        first_seen = min(_iso(a["first_seen"]) for a in both)
        assert api.get("/api/v1/alerts", params={"until": "2020-01-01T00:00:00Z"}).json() == []
        assert len(api.get("/api/v1/alerts", params={"since": first_seen.isoformat()}).json()) == 2


class _StreamReader(threading.Thread):
    """Reads a text/event-stream from another thread, keeping each event's (name, data)."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self._url = url
        self._token = token
        self.connected = threading.Event()
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.status: int | None = None
        self.content_type = ""

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        with httpx.stream("GET", self._url, headers=headers, timeout=httpx.Timeout(10, read=30)) as response:
            self.status = response.status_code
            self.content_type = response.headers.get("content-type", "")
            name = ""
            for line in response.iter_lines():
                if line == ": connected":
                    self.connected.set()
                elif line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    self.events.append((name, json.loads(line.removeprefix("data: "))))


def test_sos_published_over_mqtt_reaches_the_alert_list_and_the_live_stream(
    hub: HubProcess, mosquitto: Mosquitto
) -> None:
    li = make_token(hub, "li", Role.CAREGIVER, caregiver="cg-li")
    zhou = make_token(hub, "zhou", Role.CAREGIVER, caregiver="cg-zhou")
    mine = _StreamReader(f"{hub.http_url}/api/v1/alerts/stream", li)
    theirs = _StreamReader(f"{hub.http_url}/api/v1/alerts/stream", zhou)
    for reader in (mine, theirs):
        reader.start()
        assert reader.connected.wait(10), "the stream did not open"
    assert (mine.status, mine.content_type.split(";")[0]) == (200, "text/event-stream")

    press_sos(mosquitto, "band-wang")
    with client(hub, li) as api:
        alert = sos_alert_of(api, "r-wang")
        assert (alert["severity"], alert["state"], alert["subject"]) == ("critical", "open", "r-wang")
        wait_until(lambda: mine.events, 10, what="the raised alert on the stream")
        name, streamed = mine.events[0]
        assert name == "alert"
        assert (streamed["id"], streamed["kind"], streamed["state"]) == (alert["id"], "sos", "open")

        assert api.post(f"/api/v1/alerts/{alert['id']}/acknowledge").status_code == 200
        wait_until(lambda: len(mine.events) >= 2, 10, what="the acknowledgement on the stream")
        assert mine.events[1][1]["state"] == "acknowledged"
        assert mine.events[1][1]["acknowledged_by"] == "cg-li"

    # The duty officer closes it from the command line: the hub takes the change over and streams it.
    resolved = subprocess.run(
        [sys.executable, "-m", "hub", "alerts", "resolve", str(alert["id"]), "--outcome", "resident_ok",
         "--by", "值班员"], env=hub.env, capture_output=True, text=True, timeout=60, check=False)
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    wait_until(lambda: len(mine.events) >= 3, 20, what="the command line's resolution on the stream")
    assert (mine.events[2][1]["state"], mine.events[2][1]["resolved_by"]) == ("resolved", "值班员")
    time.sleep(0.5)
    assert theirs.events == [], "another resident's caregiver sees nothing of it"

    # Each response naming 王奶奶 is a read of her data, in the read audit like a resident list: one row
    # per request, one per streamed event; nothing for zhou, who was shown nothing of her.
    with client(hub, zhou) as api:
        assert api.get("/api/v1/alerts").json() == []
    with client(hub, li) as api:
        assert api.get(f"/api/v1/alerts/{alert['id']}").json()["names"]["resident"] == "王奶奶"
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("*",))
    with client(hub, operator) as api:
        reads = api.get("/api/v1/residents/reads", params={"resident": "r-wang"}).json()
    seen = Counter((r["actor"], r["what"]) for r in reads if r["residents"] == ["r-wang"])
    assert seen[("li", "alert")] == 1 and seen[("li", "alert_stream")] == 3 and seen[("li", "alerts")] >= 1
    assert not [r for r in reads if r["actor"] == "zhou"]


def test_ready_reports_broker_store_and_ingestion_lag(hub: HubProcess) -> None:
    with client(hub) as anonymous:
        ready = anonymous.get("/ready")
    body = ready.json()
    assert ready.status_code == 200, body
    assert body["ready"] is True and body["broker_connected"] is True and body["store_writable"] is True
    assert body["ingestion_lag_ms"] == 0 and body["intake_queue"] == 0
