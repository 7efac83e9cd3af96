"""Scopes at every level of the registry (issue 16), on a real hub subprocess over real HTTP, with alerts
raised by real MQTT messages: grid workers see their grids' homes and the people-alerts of the buildings
those cover, supervisors and operators everything below their city, district or subdistrict, and every
list filters by any level within the token's scope."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hub.api.tokens import Role
from hub.registry import Registry
from tests.api.support import client, make_token, publish, wait_for_alerts
from tests.conftest import StartHub
from tests.real_servers import HubProcess, Mosquitto
from tests.registry_builder import RegistryBuilder

# 上海市 → 浦东新区 → 花木街道 → sunshine; 浦东新区 → 陆家嘴街道 → moon; 上海市 → 徐汇区 → 田林街道 → star.
# In sunshine, grid g1 spans b1 (h101) and b2 (h201); g2 covers the rest of b2 (h202) and all of b3
# (h301). Each resident wears a band; b2 and b3 have a high-altitude camera.
REGISTRY = (
    RegistryBuilder()
    .city("sh", "上海市").district("pd", "浦东新区").subdistrict("hm", "花木街道")
    .community("sunshine", "阳光社区").compound("c1")
    .grid("g1", workers=["cg-g1"]).building("b1").household("h101").building("b2").household("h201")
    .grid("g2", workers=["cg-g2"]).household("h202").building("b3").household("h301")
    .caregiver("cg-g1", "一网格员", "grid_worker").caregiver("cg-g2", "二网格员", "grid_worker")
    .caregiver("cg-sup", "督导", "supervisor")
    .subdistrict("lj", "陆家嘴街道").community("moon", "月亮社区").compound("c9").building("b9").grid("g9")
    .household("h901")
    .district("xh", "徐汇区").subdistrict("tl", "田林街道").community("star", "星星社区").compound("cs")
    .building("bs").grid("gs").household("hs1")
)
for _home in ("h101", "h201", "h202", "h301", "h901", "hs1"):
    REGISTRY.resident(f"r{_home[1:]}", f"住户{_home}", household=_home).device(
        f"band{_home[1:]}", "wristband", household=_home, resident=f"r{_home[1:]}")
REGISTRY.device("cam-b2", "high_altitude_camera", building="b2").device(
    "cam-b3", "high_altitude_camera", building="b3")
# Those the messages raise; besides them, `unreachable` alerts about them (the registry has no one to tell).
KINDS = ["sos", "falling_object"]
COMMUNITY = {"101": "sunshine", "201": "sunshine", "202": "sunshine", "301": "sunshine", "901": "moon",
             "s1": "star"}


def _falling_object(camera: str, building: str, ts_ms: int) -> tuple[str, dict[str, Any]]:
    return (f"sc/sunshine/high_altitude_camera/{camera}/event",
            {"type": "falling_object", "ts": ts_ms, "event_id": f"{camera}-{ts_ms}", "camera_id": camera,
             "building": building, "floor_min": 5, "floor_max": 6, "confidence": 0.9,
             "trajectory": [{"t": ts_ms, "x": 10.0, "y": 20.0}]})


@pytest.fixture
def hub(start_hub: StartHub, mosquitto: Mosquitto, tmp_path: Path) -> HubProcess:
    """A hub with one alert per home (an SOS) and a falling object on each of b2 and b3."""
    path = tmp_path / "registry.yaml"
    Registry(REGISTRY.build()).dump(path)
    hub = start_hub(path)
    now = int(time.time() * 1000)
    publish(mosquitto, [(f"sc/{community}/wristband/band{home}/event", {"ts": now, "sos": True})
                        for home, community in COMMUNITY.items()]
            + [_falling_object("cam-b2", "2", now), _falling_object("cam-b3", "3", now)])
    everyone = make_token(hub, "all", Role.OPERATOR, communities=("*",))
    with client(hub, everyone) as api:
        wait_for_alerts(api, lambda found: len(found) == 8, "every SOS and both falling objects",
                        kind=KINDS)
    return hub


def _seen(api: Any, **params: Any) -> set[str]:
    """The alerts listed, each as its resident, or as `fall:<building>` for a falling object."""
    response = api.get("/api/v1/alerts", params={"kind": KINDS, **params})
    assert response.status_code == 200, response.text
    return {a["resident"] or f"fall:{a['building']}" for a in response.json()}


def _ids(api: Any, path: str, **params: Any) -> set[str]:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return {e["id"] for e in response.json()}


def test_a_grid_worker_sees_and_acts_on_its_grids_only(hub: HubProcess) -> None:
    worker = make_token(hub, "一网格员的手机", Role.GRID_WORKER, caregiver="cg-g1", places={"grids": ["g1"]})
    with client(hub, worker) as api:
        # Its homes across two buildings, and the falling object of b2, a building it covers a home of;
        # not g2's homes (one in b2 too), nor b3's falling object, nor other communities.
        assert _seen(api) == {"r101", "r201", "fall:b2"}
        alerts = {a["resident"] or a["building"]: a
                  for a in api.get("/api/v1/alerts", params={"kind": KINDS}).json()}
        assert (alerts["r101"]["grid"], alerts["r201"]["grid"], alerts["b2"]["grid"]) == ("g1", "g1", None)
        assert _seen(api, building="b2") == {"r201", "fall:b2"}
        assert _seen(api, grid="g1", building="b1") == {"r101"}
        refused = api.get("/api/v1/alerts", params={"grid": "g2"})
        assert refused.status_code == 403 and "outside token '一网格员的手机''s grids" in refused.text
        assert api.get("/api/v1/alerts", params={"community": "moon"}).status_code == 403

        residents = {r["id"]: r for r in api.get("/api/v1/residents").json()}
        assert {r: (v["grid"], v["building"]) for r, v in residents.items()} == {
            "r101": ("g1", "b1"), "r201": ("g1", "b2")}
        assert _ids(api, "/api/v1/registry/households") == {"h101", "h201"}
        assert _ids(api, "/api/v1/registry/devices") == {"band101", "band201"}
        assert _ids(api, "/api/v1/registry/caregivers") == set(), "not the community's people"
        assert api.get("/api/v1/registry/households/h202").status_code == 404

        acknowledged = api.post(f"/api/v1/alerts/{alerts['r201']['id']}/acknowledge")
        assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged_by"] == "cg-g1"
        assert api.post(f"/api/v1/alerts/{alerts['b2']['id']}/acknowledge").status_code == 200
    other = make_token(hub, "二网格员", Role.GRID_WORKER, places={"grids": ["g2"]})
    with client(hub, other) as api:
        assert _seen(api) == {"r202", "r301", "fall:b2", "fall:b3"}
        (r202,) = api.get("/api/v1/alerts", params={"resident": "r202", "kind": "sos"}).json()
        assert api.post(f"/api/v1/alerts/{alerts['r101']['id']}/resolve",
                        json={"outcome": "visited"}).status_code == 404, "another grid's alert"
        assert api.post(f"/api/v1/alerts/{r202['id']}/acknowledge").status_code == 200


def test_supervisors_and_operators_see_everything_below_their_level(hub: HubProcess) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hub", "tokens", *args],
                              env={**hub.env, "HUB_REGISTRY_PATH": str(hub.registry)},
                              capture_output=True, text=True, timeout=60, check=False)

    for args, why in ((("--role", "grid_worker"), "needs --grid"),
                      (("--role", "grid_worker", "--grid", "nowhere"), "grid 'nowhere' is not in"),
                      (("--role", "operator", "--grid", "g1"), "only grid_worker tokens take --grid"),
                      (("--role", "supervisor", "--district", "pudong"), "district 'pudong' is not in"),
                      (("--role", "grid_worker", "--grid", "g1", "--district", "pd"),
                       "takes no --community")):
        refused = cli("create", "--name", "bad", *args)
        assert refused.returncode == 2 and why in refused.stderr, (args, refused.stderr)
    made = cli("create", "--name", "花木督导", "--role", "supervisor", "--subdistrict", "hm")
    assert made.returncode == 0, made.stderr
    assert "supervisor, subdistricts hm" in made.stderr
    worker = cli("create", "--name", "网格员", "--role", "grid_worker", "--grid", "g1", "--grid", "g2",
                 "--caregiver", "cg-g1")
    assert worker.returncode == 0, worker.stderr
    listed = {t["name"]: t for t in map(json.loads, cli("list", "--json").stdout.splitlines())}
    assert (listed["花木督导"]["subdistricts"], listed["网格员"]["grids"]) == (["hm"], ["g1", "g2"])

    with client(hub, made.stdout.strip()) as api:
        me = api.get("/api/v1/me").json()
        assert (me["communities"], me["places"]) == (["sunshine"], {"subdistricts": ["hm"]})
        assert _seen(api) == {"r101", "r201", "r202", "r301", "fall:b2", "fall:b3"}
        assert _seen(api, district="pd") == _seen(api), "a wider level, intersected with its scope"
        assert _seen(api, compound="c1", grid="g2") == {"r202", "r301"}
        for outside in ({"community": "moon"}, {"subdistrict": "lj"}, {"district": "nowhere"}):
            assert api.get("/api/v1/alerts", params=outside).status_code == 403, outside
        assert _ids(api, "/api/v1/registry/communities") == {"sunshine"}
        assert _ids(api, "/api/v1/registry/caregivers") == {"cg-g1", "cg-g2", "cg-sup"}
        assert _ids(api, "/api/v1/residents", grid="g1") == {"r101", "r201"}
        first = api.get("/api/v1/alerts", params={"grid": "g1", "kind": "sos"}).json()[0]
        assert api.post(f"/api/v1/alerts/{first['id']}/acknowledge").status_code == 200
        edit = api.patch("/api/v1/registry/grids/g1", json={"name": "x"})
        assert edit.status_code == 403, "a supervisor reads the registry, and edits nothing"
    with client(hub, worker.stdout.strip()) as api:
        assert _seen(api) == {"r101", "r201", "r202", "r301", "fall:b2", "fall:b3"}

    district = make_token(hub, "浦东", Role.OPERATOR, places={"districts": ["pd"]})
    with client(hub, district) as api:
        assert _seen(api) == {"r101", "r201", "r202", "r301", "fall:b2", "fall:b3", "r901"}
        assert _seen(api, subdistrict="lj") == {"r901"}
        assert _ids(api, "/api/v1/residents", city="sh") == {"r101", "r201", "r202", "r301", "r901"}
    city = make_token(hub, "上海", Role.READ_ONLY, places={"cities": ["sh"]})
    with client(hub, city) as api:
        assert len(_seen(api)) == 8 and _seen(api, district="xh") == {"rs1"}
        assert _ids(api, "/api/v1/registry/subdistricts") == {"hm", "lj", "tl"}
    everywhere = make_token(hub, "全部", Role.OPERATOR, communities=("*",))
    with client(hub, everywhere) as api:
        unknown = api.get("/api/v1/alerts", params={"district": "nowhere"})
        assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["query", "district"]
        assert "there is no district 'nowhere'" in unknown.json()["detail"][0]["msg"]
        assert _seen(api, community="star") == {"rs1"}
