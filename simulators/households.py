"""A household's day, choreographed across its devices.

Each resident's `ResidentDay` says where they are each minute; this turns those places into what the
household's devices see: the door opening and closing and the peephole recognizing the resident when
they leave and come back, motion sensors switching on when someone moves in their room and off again
after their occupancy timeout, and the people who come to the door (neighbours passing, visitors who
ring and some who stay a while, couriers lingering). With two residents, each device sees both: their
intervals are merged first, so a sensor never reports "occupied" twice in a row.

Installations are not perfect, and the ways they fail are what an inactivity detector's false alarms on
real homes are made of (docs/detection-on-real-homes.md): a motion sensor now and then chatters for a few
hours (sunlight on a radiator, a curtain in a draught) whoever is at home; a front-door contact misses a
passage now and then; and a sensor goes blind for hours or days (knocked askew, covered, its magnet
slipped) while it keeps checking in, so that to the hub its room is simply quiet. Households with an
incident are spared all three around it, so that its ground truth (no motion after a collapse, the door
at a night exit) stays exactly as planned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal, Protocol

import numpy as np

from devices.smart_peephole import PeepholeEventType
from simulators.calendar import LocalDay
from simulators.door_sensor import DoorSensor
from simulators.message import DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS
from simulators.motion_sensor import MotionSensor
from simulators.residents import (
    AWAKE_AT_HOME,
    ILL_ACTIVITY,
    ROOM_OF,
    Place,
    ResidentConditions,
    ResidentDay,
    ResidentProfile,
    ResidentTimeline,
    Room,
    plan_day,
)
from simulators.smart_peephole import SmartPeephole

Action = Callable[[int], None]  # something a device does at a simulated time
Interval = tuple[int, int]

OCCUPANCY_TIMEOUT_MS = 90 * SECOND_MS  # a PIR reports "clear" this long after the last motion it saw
_CHATTER_CHANCE = 0.03                 # per household and day
# A front-door contact that misses a passage (the door pulled to without the magnet parting, a slipped
# magnet, a step out through a door held ajar). In the two real homes whose front-door contact works
# (C and D), 2 of 62 labelled outings left no door event in time: one left from the couch without the
# contact firing, one had none within 10 min of leaving. About 3 % of passages, either way.
DOOR_MISS_CHANCE = 0.03
# A sensor going blind for a while, per household and day: one of its motion sensors or its door contact
# sees nothing for 3 h to 2 days (log-uniform) while the resident is fine. Of the four real homes
# (77 resident-days), house B's installation broke once (its last ten days: one PIR chattering, the
# other sixteen sensors silent, then almost nothing for four days): 1 / 77 = 1.3 %.
OUTAGE_CHANCE = 0.013
_OUTAGE_HOURS = (3.0, 48.0)
_DOOR: Literal["door"] = "door"  # the door contact, in the blind devices' keys beside the rooms


class Schedule(Protocol):
    def at(self, sim_ms: int, action: Action) -> None: ...


@dataclass
class Occupant:
    resident_id: str
    profile: ResidentProfile
    conditions: ResidentConditions
    timeline: ResidentTimeline
    rng: np.random.Generator


class HouseholdSim:
    def __init__(self, household_id: str, occupants: list[Occupant], *, door: DoorSensor | None,
                 peephole: SmartPeephole | None, sensors: dict[Room, MotionSensor],
                 rng: np.random.Generator) -> None:
        self.id = household_id
        self.occupants = occupants
        self.door = door
        self.peephole = peephole
        self.sensors = sensors
        self.rng = rng
        self.blind: list[tuple[Room | Literal["door"], Interval]] = []  # sensor outages planned so far
        # Outages end a day before the first thing any incident imposes on the household (none: never).
        moments = [moment for o in occupants for moment in o.conditions.moments()]
        self._outages_until = min(moments) - DAY_MS if moments else None

    def plan_day(self, day: LocalDay, schedule: Schedule) -> None:
        door_open: list[Interval] = []
        occupied: defaultdict[Room, list[Interval]] = defaultdict(list)
        for occupant in self.occupants:
            previous = occupant.timeline.last_place
            resident_day = plan_day(occupant.profile, occupant.conditions, day, occupant.rng,
                                    away_overnight=previous == Place.OUT)
            occupant.timeline.add(resident_day)
            self._comings_and_goings(resident_day, previous, occupant, door_open, schedule)
            self._movement(resident_day, occupant, occupied)
        self._callers(day, door_open, occupied, schedule)
        self._chatter(day, occupied)
        self._outage(day)
        door_open = self._unseen(_DOOR, door_open)
        for room in list(occupied):
            occupied[room] = self._unseen(room, occupied[room])
        if self.door is not None:
            _schedule_intervals(schedule, door_open, partial(self.door.set_open, is_open=True),
                                partial(self.door.set_open, is_open=False))
        for room, intervals in occupied.items():
            sensor = self.sensors[room]
            _schedule_intervals(schedule, intervals, partial(sensor.set_occupied, occupied=True),
                                partial(sensor.set_occupied, occupied=False))

    def _comings_and_goings(self, resident_day: ResidentDay, previous: Place | None, occupant: Occupant,
                            door_open: list[Interval], schedule: Schedule) -> None:
        out = resident_day.places == Place.OUT
        was_out = bool(out[0]) if previous is None else previous == Place.OUT
        changes = np.flatnonzero(np.diff(np.concatenate(([was_out], out)).astype(np.int8)))
        rng, day = occupant.rng, resident_day.day
        for minute in changes:
            pinned = resident_day.pinned_ms.get(int(minute))
            at = pinned if pinned is not None else day.at(int(minute)) + int(rng.integers(0, MINUTE_MS))
            # A passage the door contact misses; never one the scenario pinned (its ground truth).
            missed = pinned is None and rng.random() < DOOR_MISS_CHANCE
            if out[minute]:  # leaving
                if not missed:
                    door_open.append((at, at + int(rng.integers(6, 20)) * SECOND_MS))
                self._peephole(schedule, at + int(rng.integers(3, 8)) * SECOND_MS, "resident_left")
            else:            # coming back: the peephole sees them approach, then the door opens
                self._peephole(schedule, at - int(rng.integers(6, 12)) * SECOND_MS, "motion")
                self._peephole(schedule, at - int(rng.integers(1, 4)) * SECOND_MS, "resident_returned")
                closes = occupant.conditions.door_closes.get(at, at + int(rng.integers(5, 15)) * SECOND_MS)
                if not missed:
                    door_open.append((at, closes))

    def _movement(self, resident_day: ResidentDay, occupant: Occupant,
                  occupied: defaultdict[Room, list[Interval]]) -> None:
        places, day, rng = resident_day.places, resident_day.day, occupant.rng
        ill = occupant.conditions.ill_on(day)
        liveliness = occupant.profile.liveliness * resident_day.liveliness * (ILL_ACTIVITY if ill else 1.0)
        bounds = np.flatnonzero(np.diff(places)) + 1
        for first, last in zip(np.concatenate(([0], bounds)), np.concatenate((bounds, [len(places)])),
                               strict=True):
            place = Place(places[first])
            room = ROOM_OF.get(place)
            if room is None or room not in self.sensors:
                continue
            start, end = day.at(int(first)), day.at(int(last))
            if first > 0 and places[first - 1] == Place.OUT and end - start > MINUTE_MS:
                start += MINUTE_MS  # home again: the door opens (some time in that minute) before they move
            intervals = occupied[room]
            if place == Place.ASLEEP:      # turning over in bed now and then, as restless as they sleep
                turns = occupant.profile.turns_per_hour * (ILL_ACTIVITY if ill else 1.0)
                for _ in range(rng.poisson((last - first) / 60 * turns)):
                    moved = int(rng.integers(start, end))
                    still = moved + int(rng.integers(10, 40)) * SECOND_MS
                    intervals.append((moved, still + OCCUPANCY_TIMEOUT_MS))
            elif place == Place.SEATED:    # still for hours: only reaching for the remote, now and then
                for _ in range(rng.poisson((last - first) / 240)):
                    moved = int(rng.integers(start, end))
                    intervals.append((moved, moved + OCCUPANCY_TIMEOUT_MS))
            elif place == Place.BATHROOM:  # a small room: in view the whole time
                intervals.append((start + int(rng.integers(3, 20)) * SECOND_MS, end + OCCUPANCY_TIMEOUT_MS))
            else:                          # bouts of moving about, with still spells between
                moment = start + int(rng.integers(2, 30)) * SECOND_MS
                while moment < end:
                    # A livelier day brings more bouts rather than longer ones: more for a sensor to see.
                    stop = min(end, moment + int(rng.exponential(3 * MINUTE_MS)))
                    intervals.append((moment, stop + OCCUPANCY_TIMEOUT_MS))
                    moment = stop + int(rng.exponential(12 * MINUTE_MS / liveliness))

    def _callers(self, day: LocalDay, door_open: list[Interval], occupied: defaultdict[Room, list[Interval]],
                 schedule: Schedule) -> None:
        rng = self.rng

        def moments(per_day: float, from_hour: float, to_hour: float) -> list[int]:
            return sorted(day.at(float(rng.uniform(from_hour * 60, to_hour * 60)))
                          for _ in range(rng.poisson(per_day)))

        for moment in moments(5.0, 7, 22):                    # neighbours passing in the corridor
            self._peephole(schedule, moment, "motion")
        for moment in moments(0.5 if day.is_weekend else 0.15, 9, 19):  # a visitor rings
            self._peephole(schedule, moment, "doorbell", snapshot=True)
            if any(o.timeline.place_at(moment) in AWAKE_AT_HOME for o in self.occupants):
                opens = moment + int(rng.integers(15, 60)) * SECOND_MS
                door_open.append((opens, opens + int(rng.integers(30, 180)) * SECOND_MS))
                if rng.random() < 0.4:  # comes in and stays: the living room is busier, then the door again
                    leaves = opens + int(rng.uniform(20, 150) * MINUTE_MS)
                    if "living" in self.sensors:
                        moving = opens
                        while moving < leaves:
                            stop = min(leaves, moving + int(rng.exponential(5 * MINUTE_MS)))
                            occupied["living"].append((moving, stop + OCCUPANCY_TIMEOUT_MS))
                            moving = stop + int(rng.exponential(6 * MINUTE_MS))
                    door_open.append((leaves, leaves + int(rng.integers(10, 40)) * SECOND_MS))
        for moment in moments(0.03, 8, 20):                   # someone hangs about outside the door
            self._peephole(schedule, moment, "lingering", lingering_s=int(rng.integers(30, 180)),
                           snapshot=True)

    def _chatter(self, day: LocalDay, occupied: defaultdict[Room, list[Interval]]) -> None:
        """A motion sensor false-triggering for a few hours. Not in a household with an incident: its
        ground truth (no motion after a collapse) must stay true, as with clock faults and outages."""
        rng = self.rng
        if not self.sensors or rng.random() >= _CHATTER_CHANCE or any(
                o.conditions != ResidentConditions() for o in self.occupants):
            return
        room = list(self.sensors)[int(rng.integers(len(self.sensors)))]
        moment = day.at(float(rng.uniform(0, 24 * 60)))
        until = min(day.end_ms, moment + int(rng.uniform(1, 6) * HOUR_MS))
        while moment < until:
            occupied[room].append((moment, moment + OCCUPANCY_TIMEOUT_MS))
            moment += int(rng.exponential(10 * MINUTE_MS))

    def _outage(self, day: LocalDay) -> None:
        """Maybe one of the household's sensors goes blind today, for hours or days: it keeps checking
        in (its battery and radio are fine), so the hub's heartbeat check cannot tell, but it sees nothing.
        A sensor that stops checking in is a `device_offline` incident, with its own ground truth."""
        rng = self.rng
        devices: list[Room | Literal["door"]] = [*self.sensors, *([_DOOR] if self.door is not None else [])]
        if not devices or rng.random() >= OUTAGE_CHANCE:
            return
        device = devices[int(rng.integers(len(devices)))]
        start = day.at(float(rng.uniform(0, 24 * 60)))
        end = start + int(np.exp(rng.uniform(*np.log(_OUTAGE_HOURS))) * HOUR_MS)
        if self._outages_until is not None:
            end = min(end, self._outages_until)
        if end > start:
            self.blind.append((device, (start, end)))

    def _unseen(self, device: Room | Literal["door"], intervals: list[Interval]) -> list[Interval]:
        """`intervals` less those that begin while `device` is blind (what it sees once it sees again
        begins with its next change)."""
        windows = [window for blind, window in self.blind if blind == device]
        if not windows:
            return intervals
        return [(start, end) for start, end in intervals if not any(s <= start < e for s, e in windows)]

    def _peephole(self, schedule: Schedule, sim_ms: int, event: PeepholeEventType, *,
                  lingering_s: int | None = None, snapshot: bool = False) -> None:
        if self.peephole is not None:
            schedule.at(sim_ms, partial(self.peephole.event, event=event, lingering_s=lingering_s,
                                        snapshot=snapshot))


def _schedule_intervals(schedule: Schedule, intervals: list[Interval], on: Action, off: Action) -> None:
    """Schedule on/off for the union of `intervals` (overlapping ones merge into one)."""
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in merged:
        schedule.at(start, on)
        schedule.at(end, off)

