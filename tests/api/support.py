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
from hub.registry import (
    Building,
    Caregiver,
    CaregiverLink,
    Community,
    Compound,
    Device,
    Grid,
    Household,
    Registry,
    RegistryFile,
    Resident,
)
from tests.real_servers import HubProcess, Mosquitto, wait_until

# sunshine: r-wang (cared for by cg-li, tier 1, and cg-grid, tier 2) and r-zhao (cg-zhou) in two homes;
# moon: r-moon (cg-moon). Each resident wears a band; r-wang's home also has a door and a motion sensor.
REGISTRY = RegistryFile(
    communities=[Community(id="sunshine", name="阳光社区"), Community(id="moon", name="月亮社区")],
    compounds=[Compound(id="c1", community="sunshine"), Compound(id="c9", community="moon")],
    buildings=[Building(id="b1", compound="c1"), Building(id="b9", compound="c9")],
    grids=[Grid(id="g1", building="b1"), Grid(id="g9", building="b9")],
    households=[Household(id="h1", grid="g1", unit="1-101"), Household(id="h2", grid="g1", unit="1-102"),
                Household(id="h9", grid="g9", unit="9-901")],
    caregivers=[Caregiver(id="cg-li", community="sunshine", name="李女士", role="family",
                          notify=["mailto://li@example.com"]),
                Caregiver(id="cg-grid", community="sunshine", name="张网格员", role="grid_worker"),
                Caregiver(id="cg-zhou", community="sunshine", name="周先生", role="family"),
                Caregiver(id="cg-moon", community="moon", name="月女士", role="family")],
    residents=[
        Resident(id="r-wang", household="h1", name="王奶奶", flags=["独居老人"],
                 caregivers=[CaregiverLink(caregiver="cg-li", tier=1),
                             CaregiverLink(caregiver="cg-grid", tier=2)]),
        Resident(id="r-zhao", household="h2", name="赵爷爷",
                 caregivers=[CaregiverLink(caregiver="cg-zhou", tier=1)]),
        Resident(id="r-moon", household="h9", name="月奶奶",
                 caregivers=[CaregiverLink(caregiver="cg-moon", tier=1)]),
    ],
    devices=[
        Device(id="band-wang", kind="wristband", household="h1", resident="r-wang"),
        Device(id="door-wang", kind="door_sensor", household="h1"),
        Device(id="motion-wang", kind="motion_sensor", household="h1"),
        Device(id="band-zhao", kind="wristband", household="h2", resident="r-zhao"),
        Device(id="band-moon", kind="wristband", household="h9", resident="r-moon"),
    ],
)
COMMUNITY_OF = {"band-wang": "sunshine", "band-zhao": "sunshine", "band-moon": "moon"}


def write_registry(path: Path) -> Path:
    Registry(REGISTRY).dump(path)
    return path


def make_token(hub: HubProcess, name: str, role: Role, *, communities: tuple[str, ...] = (),
               caregiver: str | None = None) -> str:
    """A token in the running hub's store, as `hub tokens create` makes it."""
    store = TokenStore(hub.store_path)
    try:
        _, secret = store.create(name=name, role=role, communities=list(communities), caregiver=caregiver,
                                 now_ms=int(time.time() * 1000))
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
