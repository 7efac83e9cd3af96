from __future__ import annotations

from pathlib import Path

import pytest

from hub.registry import Registry, RegistryError
from hub.topics import (
    IgnoredTopic,
    NativeTopic,
    Zigbee2mqttTopic,
    availability_topic,
    event_topic,
    parse_topic,
    zigbee2mqtt_topic,
)


@pytest.mark.parametrize(
    ("topic", "parsed"),
    [
        ("sc/sunshine/door_sensor/door-1/event", NativeTopic("sunshine", "door_sensor", "door-1", "event")),
        (
            "sc/sunshine/wristband/b-1/availability",
            NativeTopic("sunshine", "wristband", "b-1", "availability"),
        ),
        ("zigbee2mqtt/c1/101/front door", Zigbee2mqttTopic("c1", "101/front door", "event")),
        ("zigbee2mqtt/c1/101/front door/availability",
         Zigbee2mqttTopic("c1", "101/front door", "availability")),
        ("zigbee2mqtt/c1/bridge/state", IgnoredTopic("zigbee2mqtt bridge topic")),
        ("zigbee2mqtt/c1/101/front door/set", IgnoredTopic("zigbee2mqtt command topic")),
        ("zigbee2mqtt/c1/lamp/set/state", IgnoredTopic("zigbee2mqtt command topic")),
        ("sim/clock", IgnoredTopic("simulation clock")),
        ("sc/sunshine//door-1/event", None),
        ("sc/sunshine/door_sensor/door-1/event/extra", None),
        ("sc/sunshine/door_sensor/door-1/status", None),
        ("zigbee2mqtt/", None),
        ("zigbee2mqtt//availability", None),
        ("zigbee2mqtt/c1", None),  # a gateway's base topic names a compound, then a device
        ("zigbee2mqtt/c1/", None),
        ("zigbee2mqtt/c1//availability", None),
        ("zigbee2mqtt/no compound/front door", None),
        ("elsewhere/door-1", None),
    ],
)
def test_parse_topic(topic: str, parsed: object) -> None:
    assert parse_topic(topic, "zigbee2mqtt") == parsed


def test_built_topics_parse_back() -> None:
    assert parse_topic(event_topic("c", "motion_sensor", "m1"), "z2m") == NativeTopic(
        "c", "motion_sensor", "m1", "event"
    )
    assert parse_topic(availability_topic("c", "motion_sensor", "m1"), "z2m") == NativeTopic(
        "c", "motion_sensor", "m1", "availability"
    )
    assert parse_topic(zigbee2mqtt_topic("z2m", "c1", "a/b", "availability"), "z2m") == Zigbee2mqttTopic(
        "c1", "a/b", "availability"
    )


def test_registry_round_trip_and_placement(one_of_each_registry: Path) -> None:
    registry = Registry.load(one_of_each_registry)
    camera = registry.devices["camera-1"]
    assert (camera.community, camera.building, camera.household) == ("sunshine", "b1", None)
    door = registry.by_zigbee2mqtt_name["c1", "101/front door"]
    assert (door.id, door.kind, door.household, door.building) == ("door-z", "door_sensor", "h101", "b1")


def test_zigbee2mqtt_names_are_per_compound(tmp_path: Path) -> None:
    """Each compound's gateway has its own base topic, so two compounds may both name a device `x`."""
    two_compounds = """
communities: [{id: s, name: S}]
compounds: [{id: c, community: s}, {id: c2, community: s}]
buildings: [{id: b, compound: c}, {id: b2, compound: c2}]
grids: [{id: g, building: b}]
households: [{id: h, grid: g}]
devices: [{id: a, kind: door_sensor, household: h, zigbee2mqtt: x},
          {id: d, kind: door_sensor, building: b2, zigbee2mqtt: x}]
"""
    registry = Registry.load(write(tmp_path, two_compounds))
    assert registry.by_zigbee2mqtt_name["c", "x"].id == "a"
    assert registry.by_zigbee2mqtt_name["c2", "x"].id == "d"
    assert registry.zigbee2mqtt_name_compounds["x"] == {"c", "c2"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = """
communities: [{id: s, name: S}]
compounds: [{id: c, community: s}]
buildings: [{id: b, compound: c}]
grids: [{id: g, building: b}]
households: [{id: h, grid: g}]
"""


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ("devices: [{id: d, kind: toaster, household: h}]", "unknown kind 'toaster'"),
        ("devices: [{id: d, kind: door_sensor}]", "exactly one of `household` or `building`"),
        ("devices: [{id: d, kind: door_sensor, household: h, building: b}]", "exactly one of"),
        (
            "devices: [{id: d, kind: door_sensor, household: nowhere}]",
            "household 'nowhere' is not in households",
        ),
        (
            "devices: [{id: d, kind: door_sensor, household: h}, {id: d, kind: motion_sensor, household: h}]",
            "duplicate id 'd'",
        ),
        ("devices: [{id: 'd/1', kind: door_sensor, household: h}]", "should match pattern"),
        (
            "devices: [{id: a, kind: door_sensor, household: h, zigbee2mqtt: x},"
            " {id: b, kind: door_sensor, household: h, zigbee2mqtt: x}]",
            "zigbee2mqtt name 'x' used 2 times in compound 'c'",
        ),
        (
            "residents: [{id: r, household: h, name: R, caregivers: [{caregiver: ghost, tier: 1}]}]",
            "caregiver 'ghost' is not in caregivers",
        ),
        (
            "devices: [{id: d, kind: door_sensor, household: h, colour: red}]",
            "Extra inputs are not permitted",
        ),
    ],
)
def test_registry_errors_say_what_is_wrong(tmp_path: Path, devices: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        Registry.load(write(tmp_path, BASE + devices))


def test_registry_file_problems_are_clear(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read registry"):
        Registry.load(tmp_path / "missing.yaml")
    with pytest.raises(RegistryError, match="not valid YAML"):
        Registry.load(write(tmp_path, "devices: [unclosed"))
