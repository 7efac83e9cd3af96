"""Registry edits stay in their lane (issue 12, item 3), on a real hub subprocess over real HTTP: a
device admin edits devices and nothing else; a caregiver belongs to one community, is seen there only and
linked only there; notify URLs pass the settings' allow-list and are shown by their scheme only; and every
edit is audited with who, when, before and after, while refused ones change nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.api.tokens import Role
from hub.registry import Registry
from tests.api.support import client, make_token, write_registry
from tests.conftest import StartHub
from tests.real_servers import HubProcess


@pytest.fixture
def registry_path(tmp_path: Path) -> Path:
    return write_registry(tmp_path / "registry.yaml")


@pytest.fixture
def hub(start_hub: StartHub, registry_path: Path) -> HubProcess:
    return start_hub(registry_path)


def audited(hub: HubProcess) -> list[Any]:
    store = hub.store()
    try:
        return store.registry_edits()
    finally:
        store.close()


def test_a_device_admin_edits_devices_and_nothing_else(hub: HubProcess, registry_path: Path) -> None:
    admin = make_token(hub, "installer", Role.DEVICE_ADMIN, communities=("sunshine",))
    original = registry_path.read_bytes()
    with client(hub, admin) as api:
        refused = [
            api.patch("/api/v1/registry/caregivers/cg-li", json={"notify": ["mailto://thief@example.com"]}),
            api.post("/api/v1/registry/caregivers",
                     json={"id": "cg-x", "community": "sunshine", "name": "X", "role": "family"}),
            api.delete("/api/v1/registry/caregivers/cg-li"),
            api.patch("/api/v1/registry/residents/r-wang",
                      json={"caregivers": [{"caregiver": "cg-zhou", "tier": 1}]}),
            api.post("/api/v1/registry/households", json={"id": "h3", "grid": "g1"}),
            api.delete("/api/v1/registry/grids/g1"),
            api.patch("/api/v1/registry/communities/sunshine", json={"name": "x"}),
        ]
        for response in refused:
            assert response.status_code == 403, response.text
            assert "device_admin token changes devices only" in response.json()["detail"]
        assert registry_path.read_bytes() == original, "refused edits change nothing"
        assert audited(hub) == [], "and are not audited as edits"

        before = time.time() * 1000
        moved = api.patch("/api/v1/registry/devices/motion-wang", json={"household": "h2"})
        assert moved.status_code == 200, moved.text
        # What installing needs, it may still read.
        assert api.get("/api/v1/registry/households/h2").status_code == 200
    (edit,) = audited(hub)
    assert (edit.actor, edit.role, edit.table, edit.entry_id, edit.action) == (
        "installer", "device_admin", "devices", "motion-wang", "update")
    assert before <= edit.at_ms <= time.time() * 1000
    assert (edit.before["household"], edit.after["household"]) == ("h1", "h2")


def test_caregivers_belong_to_one_community_and_are_linked_only_there(hub: HubProcess,
                                                                       registry_path: Path) -> None:
    sunshine = make_token(hub, "ops-sun", Role.OPERATOR, communities=("sunshine",))
    everywhere = make_token(hub, "ops-all", Role.OPERATOR, communities=("*",))
    with client(hub, everywhere) as api:
        for caregiver, community in (("cg-new", "moon"), ("cg-free", "sunshine")):  # linked to nobody yet
            created = api.post("/api/v1/registry/caregivers",
                               json={"id": caregiver, "community": community, "name": "新", "role": "family"})
            assert created.status_code == 201, created.text
    original = registry_path.read_bytes()
    with client(hub, sunshine) as api:
        listed = {c["id"] for c in api.get("/api/v1/registry/caregivers").json()}
        assert listed == {"cg-li", "cg-grid", "cg-zhou", "cg-free"}, "not another community's caregivers"
        for caregiver in ("cg-moon", "cg-new", "cg-nobody"):  # moon's (linked or not), and none at all
            # Answered exactly as an id that does not exist: a 403 would confirm it, and its community.
            response = api.get(f"/api/v1/registry/caregivers/{caregiver}")
            assert (response.status_code, response.json()) == (
                404, {"detail": f"there is no caregiver {caregiver!r}"}), response.text
            for changed in (api.patch(f"/api/v1/registry/caregivers/{caregiver}", json={"phone": "110"}),
                            api.delete(f"/api/v1/registry/caregivers/{caregiver}")):
                assert (changed.status_code, changed.json()) == (
                    404, {"detail": f"there is no caregivers entry {caregiver!r}"}), changed.text
        linked = api.patch("/api/v1/registry/residents/r-wang",
                           json={"caregivers": [{"caregiver": "cg-li", "tier": 1},
                                                {"caregiver": "cg-moon", "tier": 2}]})
        assert linked.status_code == 403, linked.text
        assert "caregiver 'cg-moon' is in community moon" in linked.json()["detail"]
        joined = api.post("/api/v1/registry/residents", json={
            "id": "r-new", "household": "h2", "name": "新",
            "caregivers": [{"caregiver": "cg-new", "tier": 1}]})
        assert joined.status_code == 403, joined.text
        moved = api.patch("/api/v1/registry/caregivers/cg-free", json={"community": "moon"})
        assert moved.status_code == 403, "nor moved out of the token's communities"
    with client(hub, everywhere) as api:
        # A token that sees both communities still cannot link across them: the registry refuses it.
        crossed = api.patch("/api/v1/registry/residents/r-wang",
                            json={"caregivers": [{"caregiver": "cg-moon", "tier": 1}]})
        assert crossed.status_code == 422, crossed.text
        assert "caregivers are linked within their community" in crossed.json()["detail"][0]["msg"]
    assert registry_path.read_bytes() == original


def test_notify_urls_are_checked_and_never_returned_whole(hub: HubProcess, registry_path: Path) -> None:
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("sunshine",))
    viewer = make_token(hub, "viewer", Role.READ_ONLY, communities=("sunshine",))
    original = registry_path.read_bytes()
    with client(hub, operator) as api:
        for url, why in [("json://hooks.example.com/x", "scheme 'json' is not allowed"),
                         ("mailto://x@127.0.0.1", "not a public address"),
                         ("mailto://x@2130706433", "not a public address"),  # 127.0.0.1 in disguise
                         ("dingtalk://10.1.2.3/token", "not a public address"),
                         ("mailto://x@localhost", "loopback"),
                         ("wecombot://", "names no target")]:
            response = api.patch("/api/v1/registry/caregivers/cg-li",
                                 json={"notify": ["mailto://li@example.com", url]})
            assert response.status_code == 422, (url, response.text)
            (error,) = response.json()["detail"]
            assert error["loc"] == ["body", "notify", 1] and why in error["msg"], (url, error)
        assert registry_path.read_bytes() == original
        created = api.post("/api/v1/registry/caregivers", json={
            "id": "cg-new", "community": "sunshine", "name": "新", "role": "family",
            "notify": ["json://127.0.0.1/x"]})
        assert created.status_code == 422, created.text

        changed = api.patch("/api/v1/registry/caregivers/cg-li",
                            json={"notify": ["wecombot://key-0123", "mailto://li@example.com"]})
        assert changed.status_code == 200, changed.text
        assert changed.json()["notify"] == ["wecombot://", "mailto://"]
        assert api.get("/api/v1/registry/caregivers/cg-li").json()["notify"] == ["wecombot://", "mailto://"]
        renamed = api.patch("/api/v1/registry/caregivers/cg-li", json={"phone": "13900000000"})
        assert renamed.json()["notify"] == ["wecombot://", "mailto://"], "a PATCH without notify keeps it"
    with client(hub, viewer) as api:
        (li,) = [c for c in api.get("/api/v1/registry/caregivers").json() if c["id"] == "cg-li"]
        assert (li["phone"], li["notify"]) == ("", []), "contact details are for roles that act"
    stored = yaml.safe_load(registry_path.read_text(encoding="utf-8"))
    (li_stored,) = [c for c in stored["caregivers"] if c["id"] == "cg-li"]
    assert li_stored["notify"] == ["wecombot://key-0123", "mailto://li@example.com"], "kept whole"
    assert Registry.load(registry_path).file.caregivers[0].phone == "13900000000"

    first, second = audited(hub)
    assert (first.actor, first.table, first.entry_id, first.action) == (
        "ops", "caregivers", "cg-li", "update")
    assert first.before["notify"] == ["mailto://li@example.com"]
    assert first.after["notify"] == ["wecombot://key-0123", "mailto://li@example.com"]
    assert (second.before["phone"], second.after["phone"]) == ("", "13900000000")
    assert first.at_ms <= second.at_ms

    # A resident's phone (for the grid worker and duty officer to call) likewise.
    with client(hub, operator) as api:
        changed = api.patch("/api/v1/registry/residents/r-wang", json={"phone": "13700000000"})
        assert changed.status_code == 200, changed.text
        assert api.get("/api/v1/registry/residents/r-wang").json()["phone"] == "13700000000"
    with client(hub, viewer) as api:
        assert api.get("/api/v1/registry/residents/r-wang").json()["phone"] == ""
