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
        ("zigbee2mqtt/101/front door", Zigbee2mqttTopic("101/front door", "event")),
        ("zigbee2mqtt/101/front door/availability", Zigbee2mqttTopic("101/front door", "availability")),
        ("zigbee2mqtt/bridge/state", IgnoredTopic("zigbee2mqtt bridge topic")),
        ("zigbee2mqtt/101/front door/set", IgnoredTopic("zigbee2mqtt command topic")),
        ("zigbee2mqtt/lamp/set/state", IgnoredTopic("zigbee2mqtt command topic")),
        ("sim/clock", IgnoredTopic("simulation clock")),
        ("sc/sunshine//door-1/event", None),
        ("sc/sunshine/door_sensor/door-1/event/extra", None),
        ("sc/sunshine/door_sensor/door-1/status", None),
        ("zigbee2mqtt/", None),
        ("zigbee2mqtt//availability", None),
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
    assert parse_topic(zigbee2mqtt_topic("z2m", "a/b", "availability"), "z2m") == Zigbee2mqttTopic(
        "a/b", "availability"
    )


def test_registry_round_trip_and_placement(one_of_each_registry: Path) -> None:
    registry = Registry.load(one_of_each_registry)
    camera = registry.devices["camera-1"]
    assert (camera.community, camera.building, camera.household) == ("sunshine", "b1", None)
    door = registry.by_zigbee2mqtt_name["101/front door"]
    assert (door.id, door.kind, door.household, door.building) == ("door-z", "door_sensor", "h101", "b1")


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
            "zigbee2mqtt name 'x' used 2 times",
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
