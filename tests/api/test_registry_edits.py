"""Registry edits through the API of a real hub subprocess: they take effect in the running hub (a new
device's messages are stored, a deactivated one's become dead letters, a new caregiver link counts for
scoping) and are persisted to the registry file; invalid or out-of-scope edits change nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.api.tokens import Role
from hub.registry import Registry
from hub.store import Store
from tests.api.support import client, make_token, press_sos, publish, write_registry
from tests.conftest import StartHub
from tests.real_servers import HubProcess, Mosquitto


@pytest.fixture
def registry_path(tmp_path: Path) -> Path:
    return write_registry(tmp_path / "registry.yaml")


@pytest.fixture
def hub(start_hub: StartHub, registry_path: Path) -> HubProcess:
    return start_hub(registry_path)


def _refused_422(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    return detail


def test_created_updated_and_deactivated_devices_take_effect_in_the_running_hub_and_are_persisted(
    hub: HubProcess, mosquitto: Mosquitto, registry_path: Path
) -> None:
    admin = make_token(hub, "installer", Role.DEVICE_ADMIN, communities=("sunshine",))
    now = int(time.time() * 1000)
    with client(hub, admin) as api:
        created = api.post("/api/v1/registry/devices",
                           json={"id": "motion-new", "kind": "motion_sensor", "household": "h2"})
        assert created.status_code == 201, created.text
        assert created.json()["active"] is True
        assert "motion-new" in Registry.load(registry_path).devices, "persisted"
        publish(mosquitto, [("sc/sunshine/motion_sensor/motion-new/event",
                             {"ts": now - 1000, "occupancy": True, "battery": 90})])
        hub.wait_for(lambda store: store.recent_observations(["motion-new"], 1, 0), 15,
                     "the new device's reading stored")

        updated = api.patch("/api/v1/registry/devices/motion-new", json={"checkin_interval_s": 900})
        assert updated.status_code == 200, updated.text
        assert updated.json()["checkin_interval_s"] == 900
        assert api.get("/api/v1/registry/devices/motion-new").json()["checkin_interval_s"] == 900
        assert Registry.load(registry_path).file.devices[-1].checkin_interval_s == 900

        deactivated = api.delete("/api/v1/registry/devices/band-zhao")
        assert deactivated.status_code == 200, deactivated.text
        assert deactivated.json()["active"] is False
        press_sos(mosquitto, "band-zhao", now)

        def dead_letter(store: Store) -> bool:
            return any(d.device_id is None and "band-zhao" in d.topic for d in store.dead_letters())

        hub.wait_for(dead_letter, 15, "the deactivated device's message kept as a dead letter")
        store = hub.store()
        try:
            (letter,) = [d for d in store.dead_letters() if "band-zhao" in d.topic]
        finally:
            store.close()
        assert (letter.reason, letter.detail) == ("unknown_device", "device 'band-zhao' is deactivated")
        assert api.get("/api/v1/alerts", params={"kind": "sos"}).json() == [], "no alert from it"

        reloaded = Registry.load(registry_path)
        assert "band-zhao" not in reloaded.devices and "band-zhao" in reloaded.deactivated_devices
        listed = {d["id"]: d["active"] for d in api.get("/api/v1/registry/devices").json()}
        assert listed["band-zhao"] is False and listed["motion-new"] is True
        assert "band-moon" not in listed, "another community's device is not listed"

        reactivated = api.patch("/api/v1/registry/devices/band-zhao", json={"active": True})
        assert reactivated.status_code == 200 and reactivated.json()["active"] is True
        assert "band-zhao" in Registry.load(registry_path).devices


def test_invalid_or_out_of_scope_registry_edits_are_refused_and_change_nothing(
    hub: HubProcess, registry_path: Path
) -> None:
    admin = make_token(hub, "installer", Role.DEVICE_ADMIN, communities=("sunshine",))
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("sunshine",))
    viewer = make_token(hub, "viewer", Role.READ_ONLY, communities=("*",))
    original = registry_path.read_bytes()
    with client(hub, admin) as api:
        (error,) = _refused_422(api.post("/api/v1/registry/devices",
                                         json={"id": "door-x", "kind": "door_sensor", "household": "h-nope"}))
        assert "household 'h-nope' is not in households" in error["msg"]
        (error,) = _refused_422(api.post("/api/v1/registry/devices",
                                         json={"id": "door-x", "kind": "door_sensor", "household": "h1",
                                               "checkin_interval_s": 1}))
        assert error["loc"] == ["body", "checkin_interval_s"]
        (error,) = _refused_422(api.post("/api/v1/registry/devices", json={"id": "d x", "kind": "door_sensor",
                                                                           "household": "h1"}))
        assert error["loc"] == ["body", "id"]
        (error,) = _refused_422(api.post("/api/v1/registry/devices",
                                         json={"id": "door-x", "kind": "toaster", "household": "h1"}))
        assert "unknown kind 'toaster'" in error["msg"]
        assert api.post("/api/v1/registry/devices",
                        json={"id": "band-wang", "kind": "wristband", "household": "h1"}).status_code == 409
        assert api.patch("/api/v1/registry/devices/band-wang", json={"id": "band-new"}).status_code == 409
        assert api.patch("/api/v1/registry/devices/nope", json={"checkin_interval_s": 60}).status_code == 404
        assert api.get("/api/v1/registry/grids/nope").status_code == 404

        outside = api.post("/api/v1/registry/devices",
                           json={"id": "door-m", "kind": "door_sensor", "household": "h9"})
        assert outside.status_code == 403 and "moon" in outside.json()["detail"]
        moved = api.patch("/api/v1/registry/devices/band-wang", json={"household": "h9"})
        assert moved.status_code == 403, "moving a device out of the token's communities"
        for path in ("residents/r-moon", "devices/band-moon"):  # another community's: as if absent
            assert api.get(f"/api/v1/registry/{path}").status_code == 404
        assert api.delete("/api/v1/registry/devices/band-moon").status_code == 404
        assert api.delete("/api/v1/registry/communities/moon").status_code == 403, "not a device: its role"
    with client(hub, operator) as api:
        (error,) = _refused_422(api.patch("/api/v1/registry/residents/r-wang", json={"colour": "red"}))
        assert error["loc"] == ["body", "colour"]
        (error,) = _refused_422(api.patch("/api/v1/registry/residents/r-wang",
                                          json={"caregivers": [{"caregiver": "cg-ghost", "tier": 1}]}))
        assert "caregiver 'cg-ghost' is not in caregivers" in error["msg"]
        (error,) = _refused_422(api.delete("/api/v1/registry/households/h1"))
        assert "household 'h1' is deactivated" in error["msg"], "in-service residents and devices live there"
    with client(hub, viewer) as api:
        assert len(api.get("/api/v1/registry/communities").json()) == 2
        refused = api.delete("/api/v1/registry/devices/band-wang")
        assert refused.status_code == 403 and "read_only" in refused.json()["detail"]
        assert api.get("/api/v1/registry/devices/band-wang").json()["active"] is True
    assert registry_path.read_bytes() == original, "the registry file is unchanged"


def test_a_new_resident_and_caregiver_count_for_scoping_at_once(
    start_hub: StartHub, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    registry_json = write_registry(tmp_path / "registry.json")  # edits are written back as JSON
    hub = start_hub(registry_json)
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("sunshine",))
    newcomer = make_token(hub, "sun-phone", Role.CAREGIVER, caregiver="cg-sun")
    with client(hub, operator) as api:
        assert api.post("/api/v1/registry/caregivers",
                        json={"id": "cg-sun", "community": "sunshine", "name": "孙女士",
                              "role": "family"}).status_code == 201
        created = api.post("/api/v1/registry/residents", json={
            "id": "r-sun", "household": "h2", "name": "孙奶奶", "flags": ["独居老人", "血透患者"],
            "caregivers": [{"caregiver": "cg-sun", "tier": 1}]})
        assert created.status_code == 201, created.text
        assert api.post("/api/v1/registry/devices", json={
            "id": "band-sun", "kind": "wristband", "household": "h2", "resident": "r-sun"}).status_code == 201
    with client(hub, newcomer) as api:
        (resident,) = api.get("/api/v1/residents").json()
        assert resident == {"id": "r-sun", "name": "孙奶奶", "household": "h2", "unit": "1-102",
                            "building": "b1", "building_name": None, "grid": "g1", "community": "sunshine",
                            "timezone": "Asia/Shanghai", "lives_alone": True,
                            "flags": ["独居老人", "血透患者"], "wandering_risk": False,
                            "caregivers": [{"caregiver": "cg-sun", "tier": 1}]}
        activity = api.get("/api/v1/residents/r-sun/activity")
        assert activity.status_code == 200
        # Nothing heard yet (the evaluation may or may not have taken the newcomer on by now).
        assert activity.json()["last_activity"] is None
        sos_press = {"ts": int(time.time() * 1000), "sos": True}
        publish(mosquitto, [("sc/sunshine/wristband/band-sun/event", sos_press)])

        def sos() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = api.get("/api/v1/alerts", params={"kind": "sos"}).json()
            return found

        deadline = time.monotonic() + 20
        while not sos() and time.monotonic() < deadline:
            time.sleep(0.2)
        (alert,) = sos()
        assert (alert["resident"], alert["household"]) == ("r-sun", "h2")
        assert api.post(f"/api/v1/alerts/{alert['id']}/acknowledge").json()["acknowledged_by"] == "cg-sun"
    reloaded = Registry.load(registry_json)
    assert [link.caregiver for r in reloaded.data.residents if r.id == "r-sun" for link in r.caregivers] \
        == ["cg-sun"]
