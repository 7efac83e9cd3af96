"""Shared pieces of the alert tests: a small community registry and request/service builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.alerts.model import AlertRequest
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.alerts.sinks.sink import Sink
from hub.clock import Clock
from hub.registry import Registry
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
                  settings: AlertSettings | None = None, sinks: list[Sink] | None = None, *,
                  store_url: str | None = None) -> AlertService:
    fixed = registry or community_registry()
    return AlertService(store_path, lambda: fixed, clock, settings or AlertSettings(), sinks or [],
                        store_url=store_url)

