"""Shared pieces of the API tests: a two-community registry with caregivers, tokens, device messages
published to the real broker, and an HTTP client for the real hub."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from hub.api.tokens import Role, TokenStore
from hub.mqtt import Publisher
from hub.registry import Registry
from tests.real_servers import HubProcess, Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder

# In one subdistrict of one city's district, sunshine: r-wang (cared for by cg-li, tier 1, and cg-grid,
# tier 2) and r-zhao (cg-zhou) in two homes;
# moon: r-moon (cg-moon). Each resident wears a band; r-wang's home also has a door and a motion sensor.
REGISTRY = (
    RegistryBuilder()
    .city("sh", "上海市").district("pd", "浦东新区").subdistrict("hm", "花木街道")
    .community("sunshine", "阳光社区").compound("c1").building("b1").grid("g1")
    .household("h1", unit="1-101").household("h2", unit="1-102")
    .community("moon", "月亮社区").compound("c9").building("b9").grid("g9").household("h9", unit="9-901")
    .caregiver("cg-li", "李女士", "family", community="sunshine", notify=["mailto://li@example.com"])
    .caregiver("cg-grid", "张网格员", "grid_worker", community="sunshine")
    .caregiver("cg-zhou", "周先生", "family", community="sunshine")
    .caregiver("cg-moon", "月女士", "family", community="moon")
    .resident("r-wang", "王奶奶", household="h1", flags=["独居老人"], caregivers={"cg-li": 1, "cg-grid": 2})
    .resident("r-zhao", "赵爷爷", household="h2", caregivers={"cg-zhou": 1})
    .resident("r-moon", "月奶奶", household="h9", caregivers={"cg-moon": 1})
    .device("band-wang", "wristband", resident="r-wang")
    .device("door-wang", "door_sensor", household="h1")
    .device("motion-wang", "motion_sensor", household="h1")
    .device("band-zhao", "wristband", resident="r-zhao")
    .device("band-moon", "wristband", resident="r-moon")
    .build()
)
COMMUNITY_OF = {"band-wang": "sunshine", "band-zhao": "sunshine", "band-moon": "moon"}


def write_registry(path: Path) -> Path:
    Registry(REGISTRY).dump(path)
    return path


def make_token(hub: HubProcess, name: str, role: Role, *, communities: tuple[str, ...] = (),
               caregiver: str | None = None, places: dict[str, list[str]] | None = None) -> str:
    """A token in the running hub's store, as `hub tokens create` makes it; `places`: its cities,
    districts, subdistricts or grids (`{"grids": ["g1"]}`)."""
    store = TokenStore(hub.store_path, url=hub.store_url)
    try:
        _, secret = store.create(name=name, role=role, communities=list(communities), caregiver=caregiver,
                                 now_ms=int(time.time() * 1000), places=places)
    finally:
        store.close()
    return secret


def client(hub: HubProcess, token: str | None = None) -> httpx.Client:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=hub.http_url, headers=headers, timeout=10)


@contextmanager
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.address)
    pub.start()
    try:
        yield pub
    finally:
        pub.stop()


def publish(mosquitto: Mosquitto, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Publish (topic, payload) pairs at QoS 1 and wait for the broker's acknowledgements."""
    with publisher(mosquitto) as pub:
        for topic, payload in messages:
            assert pub.publish(topic, json.dumps(payload)).wait(10), f"{topic} not acknowledged"


def press_sos(mosquitto: Mosquitto, band: str, ts_ms: int | None = None) -> None:
    ts = int(time.time() * 1000) if ts_ms is None else ts_ms
    publish(mosquitto, [(f"sc/{COMMUNITY_OF[band]}/wristband/{band}/event", {"ts": ts, "sos": True})])


def wait_for_alerts(api: httpx.Client, check: Callable[[list[dict[str, Any]]], bool],
                    what: str, **params: Any) -> list[dict[str, Any]]:
    def alerts() -> list[dict[str, Any]] | None:
        response = api.get("/api/v1/alerts", params=params)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found if check(found) else None

    result = wait_until(alerts, 20, what=what)
    assert result is not None
    return result


def sos_alert_of(api: httpx.Client, resident: str) -> dict[str, Any]:
    (alert,) = wait_for_alerts(api, lambda found: len(found) == 1, f"the SOS alert of {resident}",
                               kind="sos", resident=resident)
    return alert
