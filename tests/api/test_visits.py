"""Patrol visits through the API of a real hub subprocess over real HTTP, its clock following simulated
time on a real Mosquitto: visits listed by any level within the token's scope, recorded once by a worker
of the visit's grid (or an operator in scope), and the overdue alert resolved by the visit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.api.tokens import Role
from hub.clock import CLOCK_TOPIC
from hub.registry import Registry
from tests.api.support import client, make_token, publisher
from tests.conftest import StartHub
from tests.real_servers import HubProcess, Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder

T0 = 1_795_400_000_000  # 2026-11-23
DAY_MS = 24 * 3600 * 1000

# sunshine: grid g1 (worker cg-grid) holds r-wang (独居老人, weekly; her daughter cg-li), grid g2 (worker
# cg-grid2) holds r-zhao (失能, every 3 days); cg-boss supervises. moon: r-moon, weekly.
REGISTRY = (
    RegistryBuilder()
    .city("sh", name="上海市").district("pd", name="浦东新区").subdistrict("hm", name="花木街道")
    .community("sunshine", "阳光社区", visit_plans={"独居老人": 7, "失能": 3})
    .compound("c1").building("b1", name="1号楼")
    .grid("g1", workers=["cg-grid"]).household("h1", unit="1-101")
    .grid("g2", workers=["cg-grid2"]).household("h2", unit="1-102")
    .caregiver("cg-li", "李女士", "family").caregiver("cg-grid", "张网格员", "grid_worker")
    .caregiver("cg-grid2", "陈网格员", "grid_worker").caregiver("cg-boss", "刘主任", "supervisor")
    .resident("r-wang", "王奶奶", household="h1", flags=["独居老人"], caregivers={"cg-li": 1})
    .resident("r-zhao", "赵爷爷", household="h2", flags=["失能"])
    .community("moon", "月亮社区").compound("c9").building("b9").grid("g9").household("h9", unit="9-901")
    .resident("r-moon", "月奶奶", household="h9", flags=["独居老人"])
    .build()
)


def tick(mosquitto: Mosquitto, now_ms: int) -> None:
    """Simulated time moves on: the hub's clock follows the clock topic."""
    with publisher(mosquitto) as pub:
        assert pub.publish(CLOCK_TOPIC, str(now_ms), retain=True).wait(10)


@pytest.fixture
def hub(start_hub: StartHub, tmp_path: Path, mosquitto: Mosquitto) -> HubProcess:
    path = tmp_path / "registry.yaml"
    Registry(REGISTRY).dump(path)
    tick(mosquitto, T0)
    return start_hub(path, env={"HUB_CLOCK": "mqtt", "HUB_VISITS_INTERVAL_S": "60"})


def visits(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/api/v1/visits", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def visits_once(api: httpx.Client, count: int, **params: Any) -> list[dict[str, Any]]:
    """The visits, once there are `count` of them (the patrol runs beside the requests)."""
    def listed() -> list[dict[str, Any]] | None:
        found = visits(api, **params)
        return found if len(found) == count else None

    found = wait_until(listed, 20, what=f"{count} visits {params}")
    assert found is not None
    return found


def test_a_grid_worker_records_an_overdue_visit_and_that_resolves_its_alert(
        hub: HubProcess, mosquitto: Mosquitto) -> None:
    operator = client(hub, make_token(hub, "ops", Role.OPERATOR, communities=("sunshine",)))
    worker = client(hub, make_token(hub, "grid", Role.CAREGIVER, caregiver="cg-grid"))
    (zhao, wang) = visits_once(operator, 2)  # soonest due first; moon is outside the operator's communities
    assert (zhao["resident"], zhao["due"], zhao["assigned_to"], zhao["status"]) == (
        "r-zhao", "2026-11-26T02:13:20Z", "cg-grid2", "scheduled")
    assert (wang["resident_name"], wang["building_name"], wang["unit"], wang["grid"]) == (
        "王奶奶", "1号楼", "1-101", "g1")
    # Any level filters; the worker sees its own grid's.
    for level, value, residents in (("grid", "g2", ["r-zhao"]), ("building", "b1", ["r-zhao", "r-wang"]),
                                    ("subdistrict", "hm", ["r-zhao", "r-wang"]), ("city", "sh", [
                                        "r-zhao", "r-wang"])):
        assert [v["resident"] for v in visits(operator, **{level: value})] == residents, level
    assert [v["resident"] for v in visits(worker)] == ["r-wang"]

    tick(mosquitto, T0 + 8 * DAY_MS)  # a week and a day later, nobody visited
    overdue = visits_once(operator, 2, status="overdue")
    alerts = operator.get("/api/v1/alerts", params={"kind": "visit_overdue", "resident": "r-wang"}).json()
    assert [(a["state"], a["severity"]) for a in alerts] == [("open", "warning")]
    (wang,) = [v for v in overdue if v["resident"] == "r-wang"]
    assert wang["alert_id"] == alerts[0]["id"]
    # The worker, whom the resident does not list as a caregiver, sees the alert about its grid's resident.
    seen = worker.get("/api/v1/alerts", params={"kind": "visit_overdue"}).json()
    assert [a["id"] for a in seen] == [wang["alert_id"]]

    body = {"resident_seen": True, "outcome": "ok", "note": "血压正常", "lat": 31.2304, "lon": 121.4737}
    response = worker.post(f"/api/v1/visits/{wang['id']}/record", json=body)
    assert response.status_code == 200, response.text
    done = response.json()
    assert (done["status"], done["outcome"], done["note"], done["recorded_by"], done["lat"]) == (
        "done", "ok", "血压正常", "cg-grid", 31.2304)
    assert done["done_at"].startswith("2026-12-01")
    again = worker.post(f"/api/v1/visits/{wang['id']}/record", json=body)
    assert again.status_code == 409 and "recorded by cg-grid" in again.json()["detail"]
    alert = operator.get(f"/api/v1/alerts/{wang['alert_id']}").json()
    assert (alert["state"], alert["outcome"], alert["resolved_by"]) == ("resolved", "visited", "cg-grid")
    assert "血压正常" in alert["note"]
    (following,) = visits(worker, status="scheduled")
    assert following["due"].startswith("2026-12-08"), "the next visit a week after this one"


def test_who_may_see_and_record_visits_and_bad_input_is_refused(hub: HubProcess) -> None:
    operator = client(hub, make_token(hub, "ops", Role.OPERATOR, communities=("sunshine",)))
    moon_operator = client(hub, make_token(hub, "moon", Role.OPERATOR, communities=("moon",)))
    daughter = client(hub, make_token(hub, "li", Role.CAREGIVER, caregiver="cg-li"))
    other_worker = client(hub, make_token(hub, "grid2", Role.CAREGIVER, caregiver="cg-grid2"))
    reader = client(hub, make_token(hub, "ro", Role.READ_ONLY, communities=("sunshine",)))
    (_, wang) = visits_once(operator, 2)
    url = f"/api/v1/visits/{wang['id']}/record"
    body = {"resident_seen": True, "outcome": "ok"}

    assert [v["resident"] for v in visits(daughter)] == ["r-wang"], "family sees their resident's visits"
    assert daughter.post(url, json=body).status_code == 403, "but the visit is the grid worker's"
    assert reader.post(url, json=body).status_code == 403
    assert other_worker.post(url, json=body).status_code == 404, "another grid's visit is not there"
    assert moon_operator.post(url, json=body).status_code == 404
    assert moon_operator.get("/api/v1/visits", params={"community": "sunshine"}).status_code == 403
    for bad, field in (({**body, "outcome": "fine"}, "outcome"), ({**body, "note": "长" * 501}, "note"),
                       ({**body, "lat": 31.2}, "lon"), ({**body, "lat": 95, "lon": 121}, "lat"),
                       ({"outcome": "ok"}, "resident_seen"), ({**body, "extra": 1}, "extra")):
        response = operator.post(url, json=bad)
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"][-1] == field, response.json()
    for params in ({"grid": "g-typo"}, {"status": "late"}, {"due_after": "2026-12-02T00:00:00Z",
                                                             "due_before": "2026-12-01T00:00:00Z"}):
        assert operator.get("/api/v1/visits", params=params).status_code == 422, params
    assert operator.post("/api/v1/visits/999/record", json=body).status_code == 404
    response = operator.post(url, json={**body, "outcome": "referred", "resident_seen": False})
    assert response.status_code == 200 and response.json()["recorded_by"] == "ops", "an operator in scope may"
