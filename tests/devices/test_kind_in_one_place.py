"""A device kind is one place: registering a kind in `devices.KINDS` is all the hub, the detectors and the
dashboards need, and no module outside `devices/` names a kind.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dashboards import community as community_dashboard
from dashboards.generate import render
from detectors import Evidence, evidence_of, is_activity, is_stillness, live_evidence
from detectors.safety import DeviceFacts, SafetyRules, SafetyThresholds
from devices import KINDS
from devices.kind import CountedEvents, DeviceKind, EpochMs, FieldEdge, Payload, Reading, Sees, parse, present
from hub.intake import Router, RouterLimits
from hub.monitoring_track import Track, track_of
from hub.registry import Registry, RegistryHolder
from hub.store import Observation
from tests.registry_builder import RegistryBuilder

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_400_000_000


class BedSensorEvent(Payload):
    """A pressure mat under the mattress: someone lying on it, or not."""

    ts: EpochMs
    occupied: bool
    battery: int | None = None


def decode_bed_sensor(raw: bytes) -> Reading:
    event = parse(BedSensorEvent, raw)
    return Reading(event.ts, present(occupied=event.occupied, battery=event.battery))


BED_SENSOR = DeviceKind(
    name="bed_sensor",
    title="bed pressure mat",
    event_model=BedSensorEvent,
    decode=decode_bed_sensor,
    example={"ts": T0, "occupied": True},
    checkin_interval=timedelta(hours=2),
    sees=Sees.INDOOR,
    activity=(FieldEdge("occupied"),),  # getting into bed and out of it are both someone moving
    dashboard_events=(CountedEvents((("in bed", "occupied"),), when_true="occupied"),),
)


@pytest.fixture
def bed_sensor(monkeypatch: pytest.MonkeyPatch) -> DeviceKind:
    monkeypatch.setitem(KINDS, BED_SENSOR.name, BED_SENSOR)
    return BED_SENSOR


def registry_with(kind: str) -> Registry:
    return (RegistryBuilder().community("sunshine", "阳光社区").compound("c1").building("b1").grid("g1")
            .household("h101").resident("r1", "王奶奶").device("bed-1", kind).registry())


def test_a_new_kind_is_routed_and_decoded_by_intake(bed_sensor: DeviceKind) -> None:
    router = Router(RegistryHolder(registry_with(bed_sensor.name)).current, "zigbee2mqtt", RouterLimits())
    routed = router.route("sc/sunshine/bed_sensor/bed-1/event", b'{"ts": %d, "occupied": true}' % T0, T0)
    assert isinstance(routed, Observation), routed
    assert (routed.kind, routed.ts, routed.fields) == ("bed_sensor", T0, {"occupied": True})


def test_a_new_kind_is_activity_evidence_by_its_own_rule(bed_sensor: DeviceKind) -> None:
    assert is_activity("bed_sensor", {"occupied": False}, {"occupied": True})
    assert not is_activity("bed_sensor", {"occupied": True}, {"occupied": True}), "a repeated state"
    assert not is_stillness("bed_sensor", {"occupied": True})
    assert live_evidence("bed_sensor", {"occupied": True}) == Evidence.INDOOR
    assert evidence_of("bed_sensor", "bedroom") == Evidence.INDOOR
    assert bed_sensor.home_sensor, "counted in the home's coverage"
    assert track_of(["bed_sensor"]) == Track.INDOOR


def test_a_new_kind_raises_no_door_alerts_it_did_not_declare(bed_sensor: DeviceKind) -> None:
    rules = SafetyRules(SafetyThresholds(door_open_limit_s=60))
    facts = DeviceFacts(id="bed-1", kind="bed_sensor", building="b1", household="h101",
                        household_residents=("r1",))
    assert rules.observe(facts, T0, {"open": True}) == []
    assert rules.tick(T0 + 3_600_000) == []


def test_a_new_kind_appears_on_the_community_dashboard(bed_sensor: DeviceKind) -> None:
    assert ("bed_sensor", {"in bed": "occupied"}, '"occupied" = true') in community_dashboard.events()
    assert 'FROM \\"bed_sensor\\" WHERE \\"occupied\\" = true' in render(community_dashboard.build())


# --- no kind named outside devices/ (imports between packages: the contracts in pyproject.toml) ---


def python_files(*packages: str) -> Iterator[Path]:
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_no_module_outside_devices_names_a_kind() -> None:
    """What a kind means is declared on it; elsewhere a kind is reached through `KINDS` (or its module's
    `KIND`), never by a string of its name."""
    names = set(KINDS)
    offenders = [f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
                 for path in python_files("hub", "detectors", "simulators", "dashboards")
                 for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(node, ast.Constant) and node.value in names]
    assert offenders == []
