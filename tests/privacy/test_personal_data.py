"""A resident's data exported and erased through a real hub's API, with readings that went through real
MQTT into the store and a real InfluxDB-compatible server (VictoriaMetrics); the health flags shown only
to roles that act on them; the read audit; the store and registry files private to their owner."""

from __future__ import annotations

import stat
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import yaml

from hub.alerts.model import AlertRequest
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.alerts.store import AlertFilter, AlertStore
from hub.api.tokens import Role
from hub.clock import FollowedClock
from hub.personal_data import Who, erase_resident, export_resident
from hub.registry import Registry
from hub.store import Batch, DeadLetter, Observation, Store, VisitFilter
from hub.visits.patrol import patrol
from tests.api.support import (
    REGISTRY,
    client,
    make_token,
    press_sos,
    publish,
    sos_alert_of,
    write_registry,
)
from tests.conftest import OpenStore, StartHub
from tests.real_servers import Mosquitto, VictoriaMetrics, wait_until

NAME = "王奶奶"  # r-wang, in sunshine: band-wang, door-wang and motion-wang are hers (she lives alone)
PHONE = "13800138000"
HERS = ("band-wang", "door-wang", "motion-wang")


def _exported(vm: VictoriaMetrics, device: str) -> list[dict[str, Any]]:
    return vm.export('{device="' + device + '"}')


def _file_bytes(store_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(store_path.parent.glob(store_path.name + "*")))


def test_export_then_erase_leaves_no_trace_in_sqlite_the_registry_or_influxdb(
    start_hub: StartHub, mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    registry_path = write_registry(tmp_path / "registry.yaml")
    hub = start_hub(registry_path, {"HUB_INFLUX_URL": victoria_metrics.url,
                                    "HUB_INFLUX_SERVER": "victoriametrics"})
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("sunshine",))
    moon_operator = make_token(hub, "moon-ops", Role.OPERATOR, communities=("moon",))
    read_only = make_token(hub, "viewer", Role.READ_ONLY, communities=("*",))
    li = make_token(hub, "li", Role.CAREGIVER, caregiver="cg-li")
    now = (int(time.time() * 1000) // 1000) * 1000
    publish(mosquitto, [
        ("sc/sunshine/motion_sensor/motion-wang/event", {"ts": now - 600_000, "occupancy": True}),
        ("sc/sunshine/door_sensor/door-wang/event", {"ts": now - 500_000, "contact": "open"}),
        ("sc/sunshine/wristband/band-wang/event", {"ts": now - 400_000, "steps": 120, "worn": True}),
        ("sc/sunshine/wristband/band-zhao/event", {"ts": now - 300_000, "steps": 30, "worn": True}),
    ])
    press_sos(mosquitto, "band-wang", now - 200_000)
    all_devices = (*HERS, "band-zhao")
    wait_until(lambda: all(_exported(victoria_metrics, d) for d in all_devices), 60, interval=1,
               what="every device's points in VictoriaMetrics")

    with client(hub, operator) as api:
        # Her caregiver's phone goes into the alert's note, as a duty officer would write it.
        alert = sos_alert_of(api, "r-wang")
        assert api.post(f"/api/v1/alerts/{alert['id']}/acknowledge").status_code == 200
        refused = api.post("/api/v1/residents/r-wang/erase")
        assert refused.status_code == 409, "an unresolved alert is dealt with before anything is erased"
        assert api.post(f"/api/v1/alerts/{alert['id']}/resolve",
                        json={"outcome": "visited", "note": f"女儿电话 {PHONE}"}).status_code == 200
        # An edit through the API puts her name into the registry audit too.
        patched = api.patch("/api/v1/registry/residents/r-wang", json={"wandering_risk": True})
        assert patched.status_code == 200, patched.text

        export = api.get("/api/v1/residents/r-wang/export")
        assert export.status_code == 200, export.text
        data = export.json()
        assert data["resident"]["name"] == NAME
        assert [c["id"] for c in data["caregivers"]] == ["cg-li", "cg-grid"]
        assert sorted(d["id"] for d in data["devices"]) == sorted(HERS)
        assert {r["device"] for r in data["readings"]} == set(HERS), "her readings, nobody else's"
        assert [a["kind"] for a in data["alerts"]] == ["sos"]
        assert [e["action"] for e in data["alerts"][0]["history"]][:1] == ["raised"]
        assert {p["series"]["device"] for p in data["influxdb_points"]} == set(HERS)
        assert PHONE in export.text

    for token, status in ((read_only, 403), (li, 403), (moon_operator, 404)):
        with client(hub, token) as api:
            assert api.get("/api/v1/residents/r-wang/export").status_code == status
            assert api.post("/api/v1/residents/r-wang/erase").status_code == status
    assert NAME.encode() in _file_bytes(hub.store_path)

    with client(hub, operator) as api:
        erased = api.post("/api/v1/residents/r-wang/erase")
        assert erased.status_code == 200, erased.text
        counts = erased.json()["counts"]
        assert counts["readings"] == 4 and counts["alerts"] == 1 and counts["devices"] == 3
        # Statistics still count the alert; it no longer names her.
        (kept,) = api.get("/api/v1/alerts", params={"kind": "sos"}).json()
        assert (kept["resident"], kept["subject"], kept["note"], kept["evidence"]) == (
            "erased", "erased", "", {})
        assert [r["id"] for r in api.get("/api/v1/residents").json()] == ["r-zhao"]

    # No trace in SQLite (every byte of the store's files), the registry file, or InfluxDB.
    raw = _file_bytes(hub.store_path)
    assert NAME.encode() not in raw and PHONE.encode() not in raw
    store = Store(hub.store_path, read_only=True)
    try:
        kept_readings = {key[0] for key in store.observation_keys()}
        erasures = store.erasures()
    finally:
        store.close()
    assert kept_readings == {"band-zhao"}, "her readings are gone, her neighbour's are not"
    assert [(e["resident"], e["actor"], e["role"]) for e in erasures] == [("r-wang", "ops", "operator")]
    text = registry_path.read_text(encoding="utf-8")
    assert NAME not in text and "独居老人" not in text
    on_file = Registry.load(registry_path).file
    (tombstone,) = [r for r in on_file.residents if r.id == "r-wang"]
    assert (tombstone.active, tombstone.name, tombstone.caregivers) == (False, "", [])
    assert [d.id for d in on_file.devices if d.resident is None and not d.active] == ["band-wang"]
    assert all(not _exported(victoria_metrics, d) for d in HERS)
    assert _exported(victoria_metrics, "band-zhao"), "only her points were deleted"
    assert [r.name for r in on_file.residents if r.id != "r-wang"] == [
        r.name for r in REGISTRY.residents if r.id != "r-wang"]


def test_health_flags_are_shown_only_to_roles_that_act_and_reads_are_audited(
    start_hub: StartHub, tmp_path: Path
) -> None:
    hub = start_hub(write_registry(tmp_path / "registry.yaml"))
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("*",))
    read_only = make_token(hub, "viewer", Role.READ_ONLY, communities=("*",))
    admin = make_token(hub, "installer", Role.DEVICE_ADMIN, communities=("*",))
    li = make_token(hub, "li", Role.CAREGIVER, caregiver="cg-li")

    def wang(token: str) -> dict[str, Any]:
        with client(hub, token) as api:
            found: dict[str, dict[str, Any]] = {r["id"]: r for r in api.get("/api/v1/residents").json()}
        return found["r-wang"]

    assert wang(operator)["flags"] == ["独居老人"] and wang(li)["flags"] == ["独居老人"]
    assert wang(read_only)["flags"] is None and wang(read_only)["wandering_risk"] is None
    for token in (read_only, admin):
        with client(hub, token) as api:
            entry = api.get("/api/v1/registry/residents/r-wang").json()
            listed = {r["id"]: r for r in api.get("/api/v1/registry/residents").json()}
        assert entry.get("flags", []) == [] and listed["r-wang"].get("flags", []) == []
    with client(hub, li) as api:
        assert api.get("/api/v1/residents/r-wang/activity").status_code == 200
        assert api.get("/api/v1/residents/reads").status_code == 403

    with client(hub, operator) as api:
        reads = api.get("/api/v1/residents/reads", params={"resident": "r-wang"}).json()
        moon = api.get("/api/v1/residents/reads", params={"resident": "r-moon"}).json()
    seen = {(r["actor"], r["what"]) for r in reads}
    assert {("li", "activity"), ("li", "residents"), ("viewer", "residents"), ("viewer", "registry"),
            ("installer", "registry"), ("ops", "residents")} <= seen
    assert all(r["residents"] == ["r-moon"] or "r-moon" in r["residents"] for r in moon)
    assert ("li", "residents") not in {(r["actor"], r["what"]) for r in moon}, "li was never shown r-moon"


def test_store_and_registry_files_are_private_to_their_owner(tmp_path: Path) -> None:
    store_path = tmp_path / "var" / "hub.sqlite3"
    Store(store_path).close()
    registry_path = write_registry(tmp_path / "var" / "registry.yaml")
    for path in (store_path, registry_path, Path(f"{store_path}.writer-lock")):
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    store = Store(store_path)
    store.record_erasure("r", {}, at_ms=1, actor="a", token_id=None, role="cli")  # creates the WAL
    for path in store_path.parent.glob("hub.sqlite3*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    store.close()
    assert yaml.safe_load(registry_path.read_text())["residents"]


def test_export_and_erasure_of_the_store_on_each_backend(open_store: OpenStore) -> None:
    """The store's part of an export and an erasure, on SQLite and on PostgreSQL alike (the test above
    runs the whole path through a hub's API on SQLite)."""
    registry = Registry(REGISTRY)
    now = 1_795_400_000_000
    store = open_store()
    batch = Batch()
    for i, device in enumerate((*HERS, "band-zhao")):
        batch.add_observation(Observation(device, "wristband", now - i, {"steps": i}, now), now)
    batch.dead_letters.append(DeadLetter("sc/x", "invalid_json", "bad", b"\x00raw", 4, now, "band-wang"))
    store.commit(batch)
    clock = FollowedClock()
    clock.advance_to(now)
    alerts = AlertService(open_store.path, lambda: registry, clock, AlertSettings(), store_url=open_store.url)
    sos = alerts.raise_alert(AlertRequest(kind="sos", severity="critical", subject="r-wang",
                                          community="sunshine", building="b1", household="h1",
                                          resident="r-wang", device="band-wang", raised_at_ms=now))
    alerts.resolve(sos.id, "visited", by="ops", note=f"女儿电话 {PHONE}")
    alerts.report_missed("r-wang", now, by="ops", note="found on the floor")
    patrol(store, registry, now, alerts.raise_alert)  # her planned visit (独居老人 weekly)
    alerts.close()
    who = Who("ops", None, "operator")

    data = export_resident("r-wang", registry, store_path=open_store.path, store_url=open_store.url,
                           influx=None, who=who, now_ms=now)
    assert {r["device"] for r in data["readings"]} == set(HERS), "her readings, nobody else's"
    assert [d["payload_hex"] for d in data["dead_letters"]] == [b"\x00raw".hex().upper()]
    assert [a["kind"] for a in data["alerts"]] == ["sos"] and data["alerts"][0]["note"].endswith(PHONE)
    assert [c["note"] for c in data["sensitivity_changes"]] == ["found on the floor"]
    assert [v["resident"] for v in data["visits"]] == ["r-wang"]
    counts = erase_resident("r-wang", registry.file, store_path=open_store.path, store_url=open_store.url,
                            influx=None, who=who, now_ms=now, write_registry=lambda file: None)
    assert (counts["readings"], counts["dead_letters"], counts["alerts"], counts["visits"]) == (3, 1, 1, 1)
    assert store.visits(VisitFilter()) == [], "her visits go with her"
    assert {device for device, _ in store.observation_keys()} == {"band-zhao"}
    assert [e["resident"] for e in store.erasures()] == ["r-wang"]
    with closing(AlertStore(open_store.path, url=open_store.url)) as alert_store:
        (kept,) = alert_store.alerts(AlertFilter())
        assert alert_store.sensitivity_changes("r-wang") == [], "what her verdicts taught goes with her"
    assert (kept.subject, kept.resident, kept.note, kept.evidence) == ("erased", "erased", "", {})
    assert [r.what for r in store.reads("r-wang")] == ["export"], "the export is in the read audit"
