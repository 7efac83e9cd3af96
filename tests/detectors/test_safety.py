from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from detectors.safety import DeviceFacts, SafetyRules, SafetyThresholds, Scalar
from hub.evaluation import device_facts, thresholds
from hub.registry import Registry
from hub.settings import RuleSettings

SHANGHAI = ZoneInfo("Asia/Shanghai")
MIN = 60_000


def at(hour: int, minute: int = 0) -> int:
    return int(datetime(2026, 11, 23, hour, minute, tzinfo=SHANGHAI).timestamp() * 1000)


BAND = DeviceFacts("band-1", "wristband", "b1", "h1", resident="r1", household_residents=("r1",))
DOOR = DeviceFacts("door-1", "door_sensor", "b1", "h1", household_residents=("r1",))
WANDERER_DOOR = DeviceFacts(
    "door-2", "door_sensor", "b1", "h2", household_residents=("r2",), wandering_risk=True
)
CAM_A = DeviceFacts("cam-a", "high_altitude_camera", "b7")
CAM_B = DeviceFacts("cam-b", "high_altitude_camera", "b7")
CAM_OTHER = DeviceFacts("cam-c", "high_altitude_camera", "b8")


def rules(door_open_limit_s: int = 900) -> SafetyRules:
    checkins = {"wristband": 3600, "door_sensor": 7200}
    return SafetyRules(SafetyThresholds(door_open_limit_s=door_open_limit_s, checkin_interval_s=checkins))


def test_sos_and_fall_are_critical_at_once_and_a_zigbee2mqtt_reset_adds_nothing() -> None:
    r = rules()
    (sos,) = r.observe(BAND, at(9), {"sos": True, "battery": 80})
    assert (sos.kind, sos.severity, sos.subject, sos.evidence["press_ts"]) == ("sos", "critical", "r1", at(9))
    assert r.observe(BAND, at(9), {"battery": 80, "linkquality": 70}) == []  # the reset
    (fall,) = r.observe(BAND, at(10), {"fall": True})
    assert (fall.kind, fall.severity) == ("fall", "critical")


def test_falling_objects_merge_per_event_and_across_cameras() -> None:
    r = rules()
    event: dict[str, Scalar] = {
        "falling_object": True,
        "event_id": "e1",
        "floor_min": 12,
        "floor_max": 14,
        "confidence": 0.9,
    }
    (first,) = r.observe(CAM_A, at(14), event)
    assert (first.subject, first.evidence["floor_min"], first.evidence["floor_max"]) == ("b7", 12, 14)
    assert r.observe(CAM_A, at(14), event) == [], "a redelivery is the same event"
    assert (
        r.observe(CAM_B, at(14) + 5_000, {**event, "event_id": "e2", "floor_min": 13, "floor_max": 15}) == []
    )
    assert len(r.observe(CAM_OTHER, at(14), {**event, "event_id": "e3"})) == 1, "another building"
    assert len(r.observe(CAM_A, at(15), {**event, "event_id": "e4"})) == 1, "later: a new object"


def test_door_left_open_fires_after_the_limit_once_and_not_when_closed_in_time() -> None:
    r = rules(door_open_limit_s=600)
    assert r.observe(DOOR, at(9), {"open": True}) == []
    assert r.tick(at(9, 9)) == []
    (left,) = [s for s in r.tick(at(9, 11)) if s.kind == "door_left_open"]
    assert (left.subject, left.evidence["opened_at_ms"]) == ("r1", at(9))
    assert [s for s in r.tick(at(9, 20)) if s.kind == "door_left_open"] == []
    r.observe(DOOR, at(9, 30), {"open": False})
    r.observe(DOOR, at(10), {"open": True})
    r.observe(DOOR, at(10, 5), {"open": False})
    assert [s for s in r.tick(at(10, 30)) if s.kind == "door_left_open"] == []


def test_a_door_closed_past_the_limit_between_two_ticks_is_still_reported() -> None:
    """A backlog can carry the opening and the closing in one chunk with no tick between them."""
    r = rules(door_open_limit_s=600)
    r.observe(DOOR, at(9), {"open": True})
    (late,) = [s for s in r.observe(DOOR, at(11), {"open": False}) if s.kind == "door_left_open"]
    assert (late.at_ms, late.evidence["closed_at_ms"]) == (at(9, 10), at(11))
    assert [s for s in r.tick(at(11, 30)) if s.kind == "door_left_open"] == []
    r.observe(DOOR, at(12), {"open": True})
    assert r.observe(DOOR, at(12, 5), {"open": False}) == [], "closed in time"


def test_a_redelivered_open_after_the_close_does_not_reopen_the_door() -> None:
    r = rules(door_open_limit_s=600)
    r.observe(DOOR, at(9), {"open": True})
    r.observe(DOOR, at(9, 1), {"open": False})
    assert r.observe(DOOR, at(9), {"open": True}) == [], "the same reading again"
    assert [s for s in r.tick(at(10)) if s.kind == "door_left_open"] == []


def test_night_exit_only_for_residents_at_risk_of_wandering_and_only_at_night() -> None:
    r = rules()
    (exit_,) = r.observe(WANDERER_DOOR, at(23, 30), {"open": True})
    assert (exit_.kind, exit_.severity, exit_.subject) == ("night_exit", "critical", "r2")
    r.observe(WANDERER_DOOR, at(23, 31), {"open": False})
    assert r.observe(WANDERER_DOOR, at(10), {"open": True}) == []
    assert r.observe(DOOR, at(23, 30), {"open": True}) == []


def test_offline_after_the_checkin_interval_and_back_when_heard() -> None:
    r = rules()
    r.observe(BAND, at(8), {"steps": 10})
    assert r.tick(at(8, 59)) == []
    (offline,) = r.tick(at(9, 1))
    assert (offline.kind, offline.subject, offline.evidence["last_heard_ms"]) == (
        "device_offline",
        "band-1",
        at(8),
    )
    assert r.tick(at(9, 30)) == [], "reported once"
    r.observe(BAND, at(10), {"steps": 3})
    assert r.tick(at(10, 30)) == []
    assert [s.kind for s in r.tick(at(11, 1))] == ["device_offline"], "and again after the next silence"


def test_explicit_offline_is_reported_at_once() -> None:
    r = rules()
    (offline,) = r.went_offline(DOOR, at(8))
    assert offline.evidence["reason"] == "availability offline"
    assert r.went_offline(DOOR, at(8, 1)) == []


def test_low_battery_once_until_replaced() -> None:
    r = rules()
    assert r.observe(DOOR, at(8), {"open": False, "battery": 20}) == []
    (low,) = r.observe(DOOR, at(9), {"open": False, "battery": 19})
    assert (low.kind, low.severity, low.evidence["battery"]) == ("battery_low", "info", 19)
    assert r.observe(DOOR, at(10), {"open": False, "battery": 18}) == []
    r.observe(DOOR, at(11), {"open": False, "battery": 100})
    assert len(r.observe(DOOR, at(12), {"open": False, "battery": 15})) == 1


def test_thresholds_come_from_settings_and_the_registry(one_of_each_registry: Path) -> None:
    """Per kind from HUB_RULES_*, per resident and per device from the registry."""
    registry = Registry.load(one_of_each_registry)
    resident = registry.data.residents[0].model_copy(update={"door_open_limit_s": 300})
    registry = Registry(registry.data.model_copy(update={"residents": [resident]}))
    facts = device_facts(registry)
    assert facts["door-1"].door_open_limit_s == 300
    rules = SafetyRules(
        thresholds(RuleSettings(checkin_interval_s={"wristband": 600}, battery_low_percent=30))
    )
    assert rules.thresholds.checkin_interval_s["wristband"] == 600
    assert rules.thresholds.checkin_interval_s["door_sensor"] == 7200, "other kinds keep their own"
    rules.observe(facts["door-1"], at(9), {"open": True})
    assert [s.kind for s in rules.tick(at(9, 6))] == ["door_left_open"], "the resident's 5 minutes"
    assert [s.kind for s in rules.observe(facts["door-1"], at(9, 7), {"open": False, "battery": 29})] == [
        "battery_low"
    ]
