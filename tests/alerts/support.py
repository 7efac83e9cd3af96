"""Shared pieces of the alert tests: a small community registry, request/service builders, the alerts in
a store, and receivers of what the sinks send (an HTTP server's record, an MQTT subscriber)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hub.alerts.model import Alert, AlertRequest
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.alerts.sinks.sink import Sink
from hub.clock import Clock, SystemClock
from hub.mqtt import Publisher, wait_for_message
from hub.registry import Registry
from hub.topics import alert_topic
from tests.real_servers import Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder

T0 = 1_795_400_000_000  # 2026-11-23, epoch ms
MINUTE_MS = 60_000


def community_registry(notify: dict[str, list[str]] | None = None) -> Registry:
    """One building, one household with 王奶奶 (daughter tier 1, grid worker tier 2), and staff."""
    notify = notify or {}
    staff = [("cg-li", "李女士", "family"), ("cg-grid", "张网格员", "grid_worker"),
             ("cg-duty", "值班员", "duty_officer"), ("cg-guard", "保安", "property_security")]
    builder = (RegistryBuilder().community("sunshine", "阳光社区").compound("c1").building("b7", floors=18)
               .grid("g7").household("h1402", unit="7-2-1402"))
    for cg, name, role in staff:
        builder.caregiver(cg, name, role, notify=notify.get(cg, []))
    return (builder.resident("r-wang", "王奶奶", caregivers={"cg-li": 1, "cg-grid": 2})
            .device("band-1402", "wristband", resident="r-wang")
            .device("hac-07", "high_altitude_camera", building="b7")
            .registry())


def resident_request(kind: str = "inactivity", severity: str = "warning", *, raised_at_ms: int = T0,
                     evidence: dict[str, Any] | None = None) -> AlertRequest:
    return AlertRequest(kind=kind, severity=severity, subject="r-wang", community="sunshine", building="b7",
                        household="h1402", resident="r-wang", device="band-1402", evidence=evidence or {},
                        raised_at_ms=raised_at_ms)


def falling_object_request(event_id: str, *, raised_at_ms: int = T0) -> AlertRequest:
    return AlertRequest(kind="falling_object", severity="critical", subject="b7", community="sunshine",
                        building="b7", device="hac-07", raised_at_ms=raised_at_ms,
                        evidence={"occurrence": event_id, "floor_min": 12, "floor_max": 14})


def alert_service(store_path: Path, clock: Clock, registry: Registry | None = None,
                  settings: AlertSettings | None = None, sinks: list[Sink] | None = None) -> AlertService:
    fixed = registry or community_registry()
    return AlertService(store_path, lambda: fixed, clock, settings or AlertSettings(), sinks or [])


def alerts_in(store_path: Path, registry: Path) -> list[Alert]:
    reg = Registry.load(registry)
    service = AlertService(store_path, lambda: reg, SystemClock(), AlertSettings())
    try:
        return service.list()
    finally:
        service.close()


@dataclass
class WebhookReceiver:
    """An HTTP server that answers each POST with the next status of `statuses` (then 200)."""

    statuses: list[int]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # the receiver's clock, per request
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"


class AlertSubscriber:
    """`wait_for_message` in a thread on `sc/<community>/alerts/#`, proven subscribed (a probe message
    came back) before the test raises anything: alerts are not retained, so a late subscriber misses them."""

    def __init__(self, broker: Mosquitto, community: str, want: Any) -> None:
        self.ready = threading.Event()
        self.received: list[tuple[float, bytes]] = []
        probe_topic = alert_topic(community, "probe")

        def predicate(payload: bytes) -> bool:
            if payload == b"probe":
                self.ready.set()
                return False
            self.received.append((time.monotonic(), payload))
            return bool(want(json.loads(payload)))

        self._thread = threading.Thread(
            target=lambda: wait_for_message(broker.address, f"sc/{community}/alerts/#", predicate, 30),
            daemon=True)
        self._thread.start()
        prober = Publisher(broker.address)
        prober.start()
        try:
            wait_until(lambda: self.ready.is_set() or not prober.publish(probe_topic, b"probe").wait(1), 10,
                       interval=0.1, what="the alert subscriber")
        finally:
            prober.stop()

    def wait(self, timeout: float = 15) -> None:
        self._thread.join(timeout)
