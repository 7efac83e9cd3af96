"""The signals devices send besides activity and emergencies: equipment faults (and their clearing), an
unsure falling object, the floor from the trajectory, lingering at night, heart rate, a band left off,
and a geofence left. Each rule is shown raising, and not raising where it must not cry wolf."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from detectors.safety import DeviceFacts, SafetyRules, SafetyThresholds, Scalar, Signal, floors_from_row
from devices.registry import Geofence, LatLon
from hub.evaluation import device_facts, thresholds
from hub.settings import RuleSettings
from tests.registry_builder import RegistryBuilder

SHANGHAI = ZoneInfo("Asia/Shanghai")
MIN = 60_000
DAY = 24 * 60 * MIN


def at(hour: int, minute: int = 0, day: int = 23) -> int:
    return int(datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).timestamp() * 1000)


DOOR = DeviceFacts("door-1", "door_sensor", "b1", "h1", household_residents=("r1",))
CAM = DeviceFacts("cam-a", "high_altitude_camera", "b7")
PEEPHOLE = DeviceFacts("eye-1", "smart_peephole", "b1", "h1", household_residents=("r1",), lives_alone=True)
BAND = DeviceFacts("band-1", "wristband", "b1", "h1", resident="r1", household_residents=("r1",))
HOME = LatLon(lat=31.2304, lon=121.4737)
FENCED = replace(BAND, geofence=Geofence(centre=HOME, radius_m=500))


def rules(**thresholds: object) -> SafetyRules:
    return SafetyRules(SafetyThresholds(**thresholds))  # type: ignore[arg-type]


def kinds(signals: list[Signal]) -> list[str]:
    return [s.kind for s in signals]


# --- equipment faults and their clearing -------------------------------------------------------------

def test_tamper_is_an_equipment_alert_once_and_clears_when_closed() -> None:
    r = rules()
    assert r.observe(DOOR, at(3), {"open": False}) == [], "a reading without the switch says nothing"
    (tamper,) = r.observe(DOOR, at(3, 1), {"open": False, "tamper": True})
    assert (tamper.kind, tamper.severity, tamper.subject, dict(tamper.evidence)) == (
        "tamper", "warning", "door-1", {"tamper": True})
    r.take_clears()
    assert r.observe(DOOR, at(3, 2), {"open": False, "tamper": True}) == [], "raised once"
    assert r.take_clears() == []
    r.observe(DOOR, at(3, 10), {"open": False, "tamper": False})
    (cleared,) = [c for c in r.take_clears() if c.kind == "tamper"]
    assert (cleared.subject, cleared.at_ms, cleared.evidence) == ("door-1", at(3, 10), {"tamper": False})
    r.observe(DOOR, at(3, 11), {"open": False, "tamper": False})
    assert r.take_clears() == [], "once known healthy, nothing more to clear"
    assert kinds(r.observe(DOOR, at(4), {"open": False, "tamper": True})) == ["tamper"], "tampered again"


def test_camera_health_faults_each_raise_their_own_alert_and_clear_when_healthy() -> None:
    r = rules()
    broken: dict[str, Scalar] = {"health": True, "online": False, "lens_blocked": True, "storage_ok": False,
                                 "fps": 4.0}
    assert sorted(kinds(r.observe(CAM, at(2), broken))) == ["camera_offline", "lens_blocked",
                                                            "storage_failed"], "one slow sample is no fault"
    (slow,) = r.observe(CAM, at(2, 5), broken)
    assert (slow.kind, slow.severity, slow.evidence["fps"], slow.evidence["below"]) == (
        "low_frame_rate", "warning", 4.0, 10.0)
    r.take_clears()
    r.observe(CAM, at(2, 10), {"health": True, "online": True, "lens_blocked": False, "storage_ok": True,
                               "fps": 25.0})
    assert sorted(c.kind for c in r.take_clears()) == ["camera_offline", "lens_blocked", "low_frame_rate",
                                                       "storage_failed"]


def test_a_slow_sample_between_healthy_ones_is_not_a_fault() -> None:
    r = rules()
    for minute, fps in enumerate((25.0, 8.0, 25.0, 9.0, 25.0)):
        assert r.observe(CAM, at(2, minute), {"health": True, "online": True, "fps": fps}) == []


def test_after_a_restart_the_first_healthy_reading_clears_what_may_have_been_raised_before() -> None:
    r = rules()  # a fresh hub: it does not know what the previous one raised
    r.observe(DOOR, at(9), {"open": False, "tamper": False, "battery": 95})
    assert sorted(c.kind for c in r.take_clears()) == ["battery_low", "tamper"]
    r.tick(at(9, 10))
    assert [(c.kind, c.at_ms) for c in r.take_clears()] == [("device_offline", at(9))], \
        "once back for the damping time, from when it came back"


def test_offline_and_battery_alerts_clear_when_heard_again_and_when_replaced() -> None:
    r = rules(checkin_interval_s={"door_sensor": 7200})
    r.observe(DOOR, at(8), {"open": False, "battery": 50})
    r.take_clears()
    assert kinds(r.tick(at(10, 1))) == ["device_offline"]
    assert kinds(r.observe(DOOR, at(11), {"open": False, "battery": 19})) == ["battery_low"]
    assert r.take_clears() == []
    r.tick(at(11, 10))
    assert [c.kind for c in r.take_clears()] == ["device_offline"], "heard again, and for 10 minutes"
    r.observe(DOOR, at(12), {"open": False, "battery": 22})
    assert r.take_clears() == [], "hovering at the threshold is not a new battery: no clear, no flapping"
    r.observe(DOOR, at(13), {"open": False, "battery": 100})
    assert [(c.kind, c.evidence) for c in r.take_clears()] == [("battery_low", {"battery": 100})]


def test_a_device_that_keeps_dropping_out_continues_its_offline_alert_until_back_for_long_enough() -> None:
    r = rules()  # offline_clear_after_s: 600
    assert kinds(r.went_offline(DOOR, at(8))) == ["device_offline"]
    r.came_online(DOOR, at(8, 2))
    r.tick(at(8, 5))
    assert r.take_clears() == [], "back 3 minutes: not yet"
    assert kinds(r.went_offline(DOOR, at(8, 6))) == ["device_offline"], "the same alert, one more drop"
    r.came_online(DOOR, at(8, 7))
    r.tick(at(8, 16))
    assert r.take_clears() == []
    r.tick(at(8, 17))
    assert [(c.kind, c.at_ms, c.evidence) for c in r.take_clears()] == [
        ("device_offline", at(8, 7), {"availability": "online"})]
    r.tick(at(8, 30))
    assert r.take_clears() == [], "cleared once"


def test_without_damping_a_device_back_clears_at_once() -> None:
    r = rules(offline_clear_after_s=0)
    r.went_offline(DOOR, at(8))
    r.observe(DOOR, at(8, 1), {"open": False})
    assert [(c.kind, c.evidence) for c in r.take_clears()] == [("device_offline", {"heard_ms": at(8, 1)})]


# --- falling objects ------------------------------------------------------------------------------

OBJECT: dict[str, Scalar] = {"falling_object": True, "event_id": "e1", "floor_min": 10, "floor_max": 14,
                             "confidence": 0.9, "first_row": 400.0}


def test_a_falling_object_below_the_confidence_threshold_pages_nobody() -> None:
    r = rules(falling_object_min_confidence=0.6)
    assert r.observe(CAM, at(14), {**OBJECT, "confidence": 0.55}) == []
    sure = {**OBJECT, "event_id": "e2", "confidence": 0.6}
    assert kinds(r.observe(CAM, at(14), sure)) == ["falling_object"]


def test_the_floor_comes_from_the_trajectory_where_the_camera_s_floor_lines_are_known() -> None:
    lines = ((1, 1000.0), (19, 100.0))  # two lines: floors evenly spaced, 50 pixels each
    assert floors_from_row(lines, 400.0) == (13, 14)
    assert floors_from_row(lines, 1050.0) == (1, 2), "below the lowest line"
    assert floors_from_row(lines, 50.0) == (19, 19), "above the top line"
    uneven = ((1, 1000.0), (2, 900.0), (3, 500.0), (4, 450.0))
    assert floors_from_row(uneven, 700.0) == (2, 3)
    assert floors_from_row(uneven, 480.0) == (3, 4)

    (known,) = rules().observe(replace(CAM, floor_lines=lines), at(14), OBJECT)
    assert (known.evidence["floor_min"], known.evidence["floor_max"], known.evidence["floor_source"]) == (
        13, 14, "trajectory")
    (unknown,) = rules().observe(CAM, at(14), OBJECT)
    assert (unknown.evidence["floor_min"], unknown.evidence["floor_max"], unknown.evidence["floor_source"]) \
        == (10, 14, "camera")
    no_rows = {k: v for k, v in OBJECT.items() if k != "first_row"}
    (empty,) = rules().observe(replace(CAM, floor_lines=lines), at(14), no_rows)
    assert empty.evidence["floor_source"] == "camera", "no trajectory: the camera's own range"


# --- lingering at night ---------------------------------------------------------------------------

LINGERING: dict[str, Scalar] = {"lingering": True, "lingering_s": 240, "snapshot": "https://m.example/s.jpg"}


def test_lingering_at_night_at_the_door_of_someone_living_alone_is_a_warning_with_the_snapshot() -> None:
    r = rules()
    (warning,) = r.observe(PEEPHOLE, at(2, 30), LINGERING)
    assert (warning.kind, warning.severity, warning.subject) == ("door_lingering", "warning", "r1")
    assert warning.evidence == {"event_ts": at(2, 30), "lingering_s": 240, "snapshot": "https://m.example/s.jpg"}
    assert warning.occurrence == f"eye-1@{at(2, 30)}", "a redelivery is the same lingering"


def test_lingering_by_day_or_where_others_live_too_raises_nothing() -> None:
    r = rules()
    assert r.observe(PEEPHOLE, at(14), LINGERING) == [], "by day: couriers, neighbours"
    assert r.observe(replace(PEEPHOLE, lives_alone=False), at(2, 30), LINGERING) == []
    assert r.observe(PEEPHOLE, at(2, 40), {"motion": True}) == [], "plain motion in the corridor"


# --- heart rate -----------------------------------------------------------------------------------

def test_heart_rate_out_of_range_for_several_reports_in_a_row_is_one_warning() -> None:
    r = rules(heart_rate_reports=3)
    for minute in (0, 10):
        assert r.observe(BAND, at(9, minute), {"heart_rate": 150, "worn": True}) == []
    (warning,) = r.observe(BAND, at(9, 20), {"heart_rate": 155, "worn": True})
    assert (warning.kind, warning.severity, warning.subject) == ("heart_rate", "warning", "r1")
    assert dict(warning.evidence) == {"heart_rate": 155, "min": 40, "max": 130, "reports": 3,
                                      "since_ms": at(9)}
    assert r.observe(BAND, at(9, 30), {"heart_rate": 150, "worn": True}) == [], "one warning per episode"


def test_heart_rate_out_of_range_once_a_redelivery_or_off_the_wrist_raises_nothing() -> None:
    r = rules(heart_rate_reports=3)
    assert r.observe(BAND, at(9), {"heart_rate": 150, "worn": True}) == []
    assert r.observe(BAND, at(9), {"heart_rate": 150, "worn": True}) == [], "redelivered: not a 2nd report"
    assert r.observe(BAND, at(9, 10), {"heart_rate": 80, "worn": True}) == [], "back in range"
    assert r.observe(BAND, at(9, 20), {"heart_rate": 150, "worn": True}) == []
    assert r.observe(BAND, at(9, 30), {"heart_rate": 150, "worn": True}) == []
    assert r.observe(BAND, at(9, 40), {"heart_rate": 30, "worn": False}) == [], "on the table"


def test_a_resident_s_own_range_overrides_the_default() -> None:
    r = rules(heart_rate_reports=1)
    athlete = replace(BAND, heart_rate_min=35)
    assert r.observe(athlete, at(9), {"heart_rate": 38, "worn": True}) == []
    assert kinds(r.observe(BAND, at(9, 10), {"heart_rate": 38, "worn": True})) == ["heart_rate"]


# --- a band left off ------------------------------------------------------------------------------

def wear(r: SafetyRules, days: list[bool], *, first_day: int = 1) -> None:
    """A band reporting at 10:00 on each day of November from `first_day`, worn or not."""
    for n, worn in enumerate(days):
        r.observe(BAND, at(10, day=first_day + n), {"worn": worn, "battery": 80})


def test_a_band_usually_worn_and_left_off_a_whole_day_earns_a_reminder_that_clears_when_worn() -> None:
    r = rules()
    wear(r, [True] * 10 + [False])  # worn Nov 1-10, not on the 11th
    assert r.tick(at(23, 59, day=11)) == [], "the day is not over yet"
    (reminder,) = r.tick(at(0, 1, day=12))
    assert (reminder.kind, reminder.severity, reminder.subject) == ("not_worn", "info", "r1")
    assert dict(reminder.evidence) == {"day": "2026-11-11", "worn_days": 10, "of_days": 10}
    assert r.tick(at(0, 2, day=12)) == [], "once"
    r.take_clears()
    r.observe(BAND, at(8, day=12), {"worn": True})
    assert [(c.kind, c.subject) for c in r.take_clears()] == [("not_worn", "r1")]


def test_the_habit_kept_in_a_checkpoint_is_known_after_a_start_that_relearns_only_what_came_after() -> None:
    before = rules()
    wear(before, [True] * 10)  # worn Nov 1-10, then a checkpoint
    saved = json.loads(json.dumps(before.habits(["band-1", "cam-a"])))
    assert saved == {"band-1": {f"2026-11-{d:02}": True for d in range(1, 11)}}
    after = rules()
    after.restore_habits({"band-1": BAND}, SafetyRules.read_habits(saved))
    wear(after, [False], first_day=11)  # the only reading relearned: not worn on the 11th
    assert kinds(after.tick(at(0, 1, day=12))) == ["not_worn"]
    gone = rules()
    gone.restore_habits({}, SafetyRules.read_habits(saved))  # the band no longer placed: nothing taken
    assert gone.habits(["band-1"]) == {}
    broken: object
    for broken in ([], {"band-1": [True]}, {"band-1": {"2026-11-01": "yes"}}, {"band-1": {"Nov 1": True}}):
        with pytest.raises(ValueError, match="not habits"):
            SafetyRules.read_habits(broken)


def test_no_reminder_for_a_band_rarely_worn_a_short_history_or_a_silent_day() -> None:
    rarely = rules()
    wear(rarely, [True, False, False] * 4 + [False])
    assert rarely.tick(at(0, 1, day=14)) == []
    short = rules()
    wear(short, [True] * 3 + [False])
    assert short.tick(at(0, 1, day=5)) == [], "three days of history are no habit"
    silent = rules()
    wear(silent, [True] * 10)
    assert silent.tick(at(0, 1, day=12)) == [], "silent on the 11th: the offline check's business"
    pendant = rules()
    for day in range(1, 12):
        pendant.observe(BAND, at(10, day=day), {"battery": 80})  # never says whether it is worn
    assert pendant.tick(at(0, 1, day=12)) == []


# --- geofence -------------------------------------------------------------------------------------

def north_of_home(metres: float) -> float:
    return HOME.lat + metres / 111_195


def test_leaving_the_geofence_is_critical_with_the_location_once_per_time_out() -> None:
    r = rules()
    inside = {"steps": 5, "worn": True, "lat": north_of_home(300), "lon": HOME.lon}
    assert r.observe(FENCED, at(2), inside) == []
    (left,) = r.observe(FENCED, at(2, 10), {"steps": 5, "worn": True, "lat": north_of_home(800),
                                            "lon": HOME.lon, "accuracy_m": 20.0})
    assert (left.kind, left.severity, left.subject) == ("left_geofence", "critical", "r1")
    assert left.evidence["location"] == {"lat": north_of_home(800), "lon": HOME.lon}
    assert left.evidence["accuracy_m"] == 20.0
    assert left.evidence["outside_m"] == pytest.approx(300, abs=1)
    assert r.observe(FENCED, at(2, 20), {"lat": north_of_home(900), "lon": HOME.lon}) == [], "still out"
    r.observe(FENCED, at(3), {"lat": north_of_home(100), "lon": HOME.lon})
    assert kinds(r.observe(FENCED, at(4), {"lat": north_of_home(700), "lon": HOME.lon})) == ["left_geofence"]


def test_a_fix_outside_only_within_its_accuracy_or_a_resident_without_a_fence_raises_nothing() -> None:
    r = rules()
    blurred = {"lat": north_of_home(600), "lon": HOME.lon, "accuracy_m": 150.0}
    assert r.observe(FENCED, at(2), blurred) == []
    assert r.observe(BAND, at(2), {"lat": north_of_home(5000), "lon": HOME.lon}) == []


def test_a_polygon_geofence() -> None:
    square = Geofence(polygon=[LatLon(lat=north_of_home(-500), lon=HOME.lon - 0.005),
                               LatLon(lat=north_of_home(500), lon=HOME.lon - 0.005),
                               LatLon(lat=north_of_home(500), lon=HOME.lon + 0.005),
                               LatLon(lat=north_of_home(-500), lon=HOME.lon + 0.005)])
    r = rules()
    fenced = replace(BAND, geofence=square)
    assert r.observe(fenced, at(2), {"lat": north_of_home(400), "lon": HOME.lon}) == []
    (left,) = r.observe(fenced, at(2, 10), {"lat": north_of_home(700), "lon": HOME.lon})
    assert left.evidence["outside_m"] == pytest.approx(200, abs=1)


# --- the registry's part --------------------------------------------------------------------------

def test_the_registry_gives_who_lives_alone_heart_rate_ranges_geofences_and_floor_lines() -> None:
    fence = {"centre": {"lat": HOME.lat, "lon": HOME.lon}, "radius_m": 400}
    registry = (RegistryBuilder().community("s").compound("c").building("b", floors=18).grid("g")
                .household("alone").resident("r1", "王奶奶", wandering_risk=True, geofence=fence,
                                             heart_rate_min=45, heart_rate_max=110)
                .device("eye-1", "smart_peephole").device("band-1", "wristband", resident="r1")
                .household("couple").resident("r2", "李爷爷", geofence=fence).resident("r3", "李奶奶")
                .device("eye-2", "smart_peephole").device("band-2", "wristband", resident="r2")
                .household("flagged").resident("r4", "赵奶奶", flags=["独居老人"]).resident("r5", "护工",
                                                                                     lives_alone=False)
                .device("eye-3", "smart_peephole")
                .household("not-alone").resident("r6", "钱爷爷", lives_alone=False)
                .device("eye-4", "smart_peephole")
                .device("cam-1", "high_altitude_camera", building="b", floor_lines={1: 1000.0, 18: 150.0})
                .registry())
    facts = device_facts(registry)
    assert [facts[e].lives_alone for e in ("eye-1", "eye-2", "eye-3", "eye-4")] == [True, False, True, False]
    assert (facts["band-1"].heart_rate_min, facts["band-1"].heart_rate_max) == (45, 110)
    assert facts["band-1"].geofence is not None
    assert facts["band-2"].geofence is None, "a geofence is followed only for a resident at risk of wandering"
    assert facts["cam-1"].floor_lines == ((1, 1000.0), (18, 150.0))


@pytest.mark.parametrize("bad", [
    {"centre": {"lat": 31.0, "lon": 121.0}},
    {"radius_m": 100},
    {"centre": {"lat": 31.0, "lon": 121.0}, "radius_m": 100, "polygon": [{"lat": 31, "lon": 121}] * 3},
    {"polygon": [{"lat": 31.0, "lon": 121.0}] * 2},
])
def test_a_geofence_is_a_circle_or_a_polygon(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Geofence.model_validate(bad)


def test_floor_lines_and_heart_rate_ranges_are_checked() -> None:
    base = RegistryBuilder().community("s").compound("c").building("b").grid("g").household("h")
    with pytest.raises(ValidationError, match="higher in the picture"):
        base.device("cam-1", "high_altitude_camera", building="b", floor_lines={1: 100.0, 2: 900.0})
    with pytest.raises(ValidationError, match="reports no pixel rows"):
        base.device("door-1", "door_sensor", floor_lines={1: 900.0, 2: 100.0})
    with pytest.raises(ValidationError, match="not below"):
        base.resident("r1", "王奶奶", heart_rate_min=120, heart_rate_max=100)


def test_thresholds_for_the_new_rules_come_from_settings() -> None:
    t = thresholds(RuleSettings(falling_object_min_confidence=0.7, heart_rate_max=120, heart_rate_reports=2,
                                not_worn_share=0.8))
    assert (t.falling_object_min_confidence, t.heart_rate_max, t.heart_rate_reports, t.not_worn_share) == (
        0.7, 120, 2, 0.8)
    assert timedelta(days=t.not_worn_days) == timedelta(days=14)
