"""The hub's side of the inactivity detector: which readings are whose activity, one alert per silence,
and a restart (the state rebuilt from stored observations) that keeps a pending alert pending."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from detectors import NO_ROOM, ROOMS
from hub.registry import Device, Registry, RegistryFile, Resident
from hub.resident_activity import ResidentActivity
from hub.store import StoredObservation

SHANGHAI = ZoneInfo("Asia/Shanghai")
MIN = 60_000


def local(day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).timestamp() * 1000)


def history() -> list[StoredObservation]:
    """Three ordinary days of the resident moving about the living room, then nothing from 09:00."""
    rows, i = [], 0
    for day in (16, 17, 18, 19):
        for hour in range(7, 22):
            for minute in (5, 25, 45):
                t = local(day, hour, minute)
                if day == 19 and t > local(19, 9):
                    break
                for occupied in (True, False):
                    i += 1
                    rows.append(
                        StoredObservation(
                            i,
                            "motion-1",
                            "motion_sensor",
                            t + (0 if occupied else MIN),
                            {"occupancy": occupied},
                        )
                    )
    return rows


def test_a_silence_alerts_once_and_survives_a_restart(one_of_each_registry: Path) -> None:
    registry = Registry.load(one_of_each_registry)
    rows = history()
    live = ResidentActivity(registry)
    live.observe(rows)
    assert live.tick(local(19, 9, 30), offline=set()) == [], "half an hour of quiet is nothing"
    due = int(live.detector.deadline_ms_[0])
    assert due < local(19, 16), "a daytime silence of this resident is due within hours"
    signals = live.tick(due, offline=set())
    assert [(s.kind, s.severity, s.resident) for s in signals] == [("inactivity", "warning", "r1")]
    assert live.tick(due + MIN, offline=set()) == [], "one alert per silence, not one per tick"

    calmer = Registry(RegistryFile.model_validate({**registry.file.model_dump(), "residents": [
        {**r.model_dump(), "inactivity_sensitivity": 0.5} for r in registry.file.residents]}))
    watched_less = ResidentActivity(calmer)
    watched_less.observe(rows)
    assert watched_less.tick(due, offline=set()) == [], "a resident set to half the sensitivity"

    restarted = ResidentActivity(registry)
    restarted.observe(rows)  # what the evaluator does at start: relearn from the store
    again = restarted.tick(due, offline=set())
    assert [(s.kind, s.severity) for s in again] == [("inactivity", "warning")], "still pending after restart"


def test_silent_sensors_raise_coverage_not_inactivity(one_of_each_registry: Path) -> None:
    activity = ResidentActivity(Registry.load(one_of_each_registry))
    activity.observe(history())
    home_sensors = {"door-1", "door-z", "motion-1", "motion-z"}
    signals = activity.tick(local(19, 16), offline=home_sensors)
    assert [(s.kind, s.resident) for s in signals] == [("coverage", "r1")]


def test_a_registry_edit_adds_a_resident_keeps_what_was_learned_and_silences_a_deactivated_one(
    one_of_each_registry: Path,
) -> None:
    before = Registry.load(one_of_each_registry)
    live = ResidentActivity(before)
    live.observe(history())
    learned = live.detector.counts_[live.index["r1"]].copy()

    newcomer = Resident(id="r9", household="h9", name="新住户")
    household = before.file.households[0].model_copy(update={"id": "h9"})
    motion = Device(id="motion-9", kind="motion_sensor", household="h9")
    edited = before.file.model_copy(update={
        "households": [*before.file.households, household],
        "residents": [*before.file.residents, newcomer],
        "devices": [*before.file.devices, motion],
    })
    live.follow(Registry(RegistryFile.model_validate(edited.model_dump())))
    np.testing.assert_array_equal(live.detector.counts_[live.index["r1"]], learned)
    live.observe([StoredObservation(0, "motion-9", "motion_sensor", local(19, 8), {"occupancy": True})])
    assert {s.resident for s in live.tick(local(19, 23), offline=set()) if s.kind == "inactivity"} == {
        "r1", "r9"}, "the newcomer is watched, on the prior's conservative timeout"

    later = ResidentActivity(before)
    later.observe(history())
    r1_off = [r.model_copy(update={"active": False}) if r.id == "r1" else r for r in edited.residents]
    later.follow(Registry(RegistryFile.model_validate({**edited.model_dump(), "residents": [
        r.model_dump() for r in r1_off]})))
    assert later.tick(local(19, 23), offline=set()) == [], "a deactivated resident raises nothing"


def test_a_thinned_out_day_raises_one_activity_decline(one_of_each_registry: Path) -> None:
    rows: list[StoredObservation] = []

    def motion(day: int, hour: int, minute: int) -> None:
        rows.append(StoredObservation(len(rows) + 1, "motion-1", "motion_sensor", local(day, hour, minute),
                                      {"occupancy": True}))
        rows.append(StoredObservation(len(rows) + 1, "motion-1", "motion_sensor",
                                      local(day, hour, minute) + MIN, {"occupancy": False}))

    for day in range(2, 12):  # ten ordinary days, six times an hour
        for hour in range(7, 22):
            for minute in range(5, 60, 10):
                motion(day, hour, minute)
    for hour in range(8, 21, 2):  # then a day of one stir every two hours
        motion(12, hour, 0)
    motion(13, 7, 5)  # the next morning closes it
    live = ResidentActivity(Registry.load(one_of_each_registry))
    live.observe(rows)
    (decline,) = [s for s in live.tick(local(13, 7, 10), offline=set()) if s.kind == "activity_decline"]
    assert (decline.resident, decline.severity) == ("r1", "warning")
    assert float(decline.evidence["share_of_usual"]) < 0.3
    assert [s for s in live.tick(local(13, 7, 20), offline=set()) if s.kind == "activity_decline"] == []


def test_a_read_overlapped_by_a_change_is_read_again(one_of_each_registry: Path) -> None:
    """The API reads a resident's row while the evaluation thread learns: a read that a change overlapped
    could pair the new last activity with the old deadline, so it is made again."""
    activity = ResidentActivity(Registry.load(one_of_each_registry))
    rows = history()
    reads: list[int] = []

    def read() -> tuple[int, int]:
        reads.append(1)
        if len(reads) == 1:
            activity.observe(rows)  # as if the evaluation learned in the middle of this read
        return int(activity.detector.last_activity_ms_[0]), int(activity.detector.deadline_ms_[0])

    last, _ = activity.read_consistent(read)
    assert len(reads) == 2 and last == local(19, 8, 45), "the second read sees what was learned"


def test_a_sensor_s_room_in_the_registry_reaches_the_detector(one_of_each_registry: Path) -> None:
    """Silences are learned by the room they began in; the live hub gets the room from the registry (in
    either language), and a device without one leaves it unknown."""
    registry = Registry.load(one_of_each_registry)
    with_rooms = Registry(RegistryFile.model_validate({**registry.file.model_dump(), "devices": [
        {**d.model_dump(), "room": "卧室"} if d.id == "motion-1" else d.model_dump()
        for d in registry.file.devices]}))
    unknown = ResidentActivity(registry)
    unknown.observe(history()[:2])
    assert unknown.detector.last_room_[0] == NO_ROOM
    bedroom = ResidentActivity(with_rooms)
    bedroom.observe(history()[:2])
    assert ROOMS[bedroom.detector.last_room_[0]] == "bedroom"
