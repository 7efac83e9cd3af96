"""Incidents the scenario stages, each with its ground truth: what happened, to whom, when, and which
alert the hub is expected to raise.

Incidents are planned before anything is simulated, at exact times, and then imposed on the residents
(`ResidentConditions`) and devices (`DevicePlan`s), so the ground truth never depends on how a day
happened to unfold. Every incident gets its own resident or device, and the devices of households with
an incident are kept clear of clock faults and outages, so that one incident never hides another.

Ground truth is JSON Lines, one `Incident` per line, in start order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from detectors.severity import Severity
from devices import KINDS
from devices.kind import Sees, epoch_ms_to_iso
from devices.registry import Device, Geofence, LatLon, RegistryFile, Resident, place_devices
from simulators.calendar import Calendar, LocalDay
from simulators.device import (
    Coordinates,
    DevicePlan,
    DrainingBattery,
    PlannedFault,
    PlannedPosition,
    PlannedVital,
    Window,
)
from simulators.message import DAY_MS, HOUR_MS, MINUTE_MS
from simulators.residents import Outing, ResidentConditions
from simulators.scenario import IncidentCounts

BATTERY_LOW_THRESHOLD = 20  # percent: the level below which a battery counts as low
_RUNDOWN_PER_DAY = 6.0


class IncidentKind(StrEnum):
    COLLAPSE = "collapse"                # all of the resident's activity stops
    ILLNESS = "illness"                  # activity thins out from one day on
    SOS = "sos"                          # SOS button pressed
    FALL = "fall"                        # the wristband detects a fall
    FALLING_OBJECT = "falling_object"    # a camera sees something fall from a building
    DOOR_LEFT_OPEN = "door_left_open"    # the resident comes home and does not shut the door
    NIGHT_EXIT = "night_exit"            # a resident at risk of wandering leaves at night
    DEVICE_OFFLINE = "device_offline"    # availability offline, then silence
    BATTERY_LOW = "battery_low"          # a battery runs down past the threshold
    # Staged only when a scenario asks for them (their counts default to 0), so that scenarios written
    # before them simulate the same messages.
    TAMPER = "tamper"                    # a door sensor's case is opened, then closed again
    CAMERA_OFFLINE = "camera_offline"    # a camera's video goes down for a while
    LENS_BLOCKED = "lens_blocked"        # something covers a camera's lens for a while
    STORAGE_FAILED = "storage_failed"    # a camera's storage fails for a while
    LOW_FRAME_RATE = "low_frame_rate"    # a camera's encoder is overloaded for a while
    NIGHT_LINGERING = "night_lingering"  # someone hangs about at night at the door of a resident alone
    HEART_RATE = "heart_rate"            # a wearer's pulse races for half an hour
    LEFT_GEOFENCE = "left_geofence"      # a wearer at risk of wandering walks off, far beyond the fence
    NOT_WORN = "not_worn"                # a wearer leaves the band off a whole day (needs 9 days or more)


_ALERTS: dict[IncidentKind, tuple[str, Severity]] = {
    IncidentKind.COLLAPSE: ("inactivity", Severity.CRITICAL),
    IncidentKind.ILLNESS: ("activity_decline", Severity.WARNING),
    IncidentKind.SOS: ("sos", Severity.CRITICAL),
    IncidentKind.FALL: ("fall", Severity.CRITICAL),
    IncidentKind.FALLING_OBJECT: ("falling_object", Severity.CRITICAL),
    IncidentKind.DOOR_LEFT_OPEN: ("door_left_open", Severity.WARNING),
    IncidentKind.NIGHT_EXIT: ("night_exit", Severity.CRITICAL),
    IncidentKind.DEVICE_OFFLINE: ("device_offline", Severity.WARNING),
    IncidentKind.BATTERY_LOW: ("battery_low", Severity.INFO),
    IncidentKind.NIGHT_LINGERING: ("door_lingering", Severity.WARNING),
    IncidentKind.HEART_RATE: ("heart_rate", Severity.WARNING),
    IncidentKind.LEFT_GEOFENCE: ("left_geofence", Severity.CRITICAL),
    IncidentKind.NOT_WORN: ("not_worn", Severity.INFO),
} | {
    # Equipment faults: the alert and severity their kind declares.
    IncidentKind(fault.alert): (fault.alert, Severity(fault.severity))
    for kind in KINDS.values() for fault in kind.faults if fault.alert in set(map(str, IncidentKind))
}
EQUIPMENT_FAULTS = frozenset(kind for kind in IncidentKind if any(
    fault.alert == kind.value for device_kind in KINDS.values() for fault in device_kind.faults))
HEART_RATE_FIELD = "heart_rate"
# A wearer's fence when they wander off in a scenario: wide enough that an ordinary outing (fixes within a
# kilometre or so of home) never leaves it.
GEOFENCE_RADIUS_M = 3000.0
NOT_WORN_HABIT_DAYS = 7  # the hub's default: days of history before it knows a band is usually worn


class ExpectedAlert(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str
    severity: Severity
    subject: str  # the resident, device or building the alert is about


class Incident(BaseModel):
    """One line of ground truth. `start_ms` is when it happened; an alert can only follow it."""

    model_config = ConfigDict(frozen=True)

    incident: IncidentKind
    start_ms: int
    start: str
    end_ms: int | None = None
    resident: str | None = None
    household: str | None = None
    device: str | None = None
    building: str | None = None
    details: dict[str, int | float | str] = {}
    expected_alert: ExpectedAlert


def write_ground_truth(incidents: Iterable[Incident], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(i.model_dump_json(exclude_none=True) + "\n" for i in incidents), encoding="utf-8")


def read_ground_truth(path: Path) -> list[Incident]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Incident.model_validate_json(line) for line in lines if line]


def plan_incidents(counts: IncidentCounts, registry: RegistryFile, calendar: Calendar,
                   rng: np.random.Generator) -> list[Incident]:
    planner = _Planner(registry, calendar, rng)
    for kind in IncidentKind:
        for _ in range(getattr(counts, kind.value)):
            planner.stage(kind)
    return sorted(planner.incidents, key=lambda incident: (incident.start_ms, incident.incident))


def resident_conditions(incidents: Iterable[Incident]) -> dict[str, ResidentConditions]:
    """What the incidents impose on each resident they concern."""
    collapse: dict[str, int] = {}
    ill_from: dict[str, int] = {}
    outings: defaultdict[str, list[Outing]] = defaultdict(list)
    at_home: defaultdict[str, list[int]] = defaultdict(list)
    falls: defaultdict[str, list[int]] = defaultdict(list)
    door_closes: defaultdict[str, dict[int, int]] = defaultdict(dict)
    band_off: defaultdict[str, list[int]] = defaultdict(list)
    for incident in incidents:
        resident = incident.resident
        if resident is None:
            continue
        match incident.incident:
            case IncidentKind.COLLAPSE:
                collapse[resident] = incident.start_ms
            case IncidentKind.ILLNESS:
                ill_from[resident] = incident.start_ms
            case IncidentKind.SOS:
                at_home[resident].append(incident.start_ms)
            case IncidentKind.FALL:
                falls[resident].append(incident.start_ms)
            case IncidentKind.NIGHT_EXIT:
                assert incident.end_ms is not None
                outings[resident].append(Outing(incident.start_ms, incident.end_ms))
            case IncidentKind.NOT_WORN:
                band_off[resident].append(incident.start_ms)
            case IncidentKind.DOOR_LEFT_OPEN:
                assert incident.end_ms is not None
                left = int(incident.details["left_ms"])
                outings[resident].append(Outing(left, incident.start_ms, last_of_day=True))
                door_closes[resident][incident.start_ms] = incident.end_ms
    residents = {*collapse, *ill_from, *outings, *at_home, *falls, *band_off}
    return {r: ResidentConditions(collapse_ms=collapse.get(r), ill_from_ms=ill_from.get(r),
                                  outings=tuple(outings[r]), at_home_awake=tuple(at_home[r]),
                                  falls=tuple(falls[r]), door_closes=door_closes[r],
                                  band_off_days=tuple(band_off[r])) for r in residents}


def device_plans(incidents: Iterable[Incident], start_ms: int) -> dict[str, DevicePlan]:
    """The outages and run-down batteries the incidents impose on devices."""
    plans: dict[str, DevicePlan] = {}
    for incident in incidents:
        device = incident.device
        if device is None:
            continue
        if incident.incident == IncidentKind.DEVICE_OFFLINE:
            assert incident.end_ms is not None
            plans[device] = DevicePlan(offline=(Window(incident.start_ms, incident.end_ms),))
        elif incident.incident in EQUIPMENT_FAULTS:
            assert incident.end_ms is not None
            plans[device] = DevicePlan(faults=(PlannedFault(incident.incident.value,
                                                            Window(incident.start_ms, incident.end_ms)),))
        elif incident.incident == IncidentKind.HEART_RATE:
            assert incident.end_ms is not None
            plans[device] = DevicePlan(vitals=(PlannedVital(HEART_RATE_FIELD,
                                                            Window(incident.start_ms, incident.end_ms),
                                                            int(incident.details["heart_rate"])),))
        elif incident.incident == IncidentKind.LEFT_GEOFENCE:
            assert incident.end_ms is not None
            plans[device] = DevicePlan(positions=(PlannedPosition(Window(incident.start_ms, incident.end_ms),
                                                                  float(incident.details["north_m"])),))
        elif incident.incident == IncidentKind.BATTERY_LOW:
            plans[device] = DevicePlan(battery=DrainingBattery(
                start_ms, float(incident.details["level_at_start"]), float(incident.details["drain_per_day"]),
                replaced_below=None))
    return plans


def with_geofences(registry: RegistryFile, incidents: Iterable[Incident],
                   locations: dict[str, Coordinates]) -> RegistryFile:
    """The registry with a geofence around the community for each resident a scenario makes wander off
    (other residents have none: nothing to follow)."""
    bands = {i.resident: i.device for i in incidents if i.incident == IncidentKind.LEFT_GEOFENCE}
    if not bands:
        return registry
    placed = place_devices(registry)

    def fence(resident: Resident) -> Resident:
        device = bands.get(resident.id)
        if device is None:
            return resident
        home = locations[placed[device].community]
        return resident.model_copy(update={"geofence": Geofence(centre=LatLon(lat=home.lat, lon=home.lon),
                                                                radius_m=GEOFENCE_RADIUS_M)})

    return registry.model_copy(update={"residents": [fence(r) for r in registry.residents]})


T = TypeVar("T")


@dataclass
class _Planner:
    registry: RegistryFile
    calendar: Calendar
    rng: np.random.Generator
    incidents: list[Incident] = field(default_factory=list)
    used_residents: set[str] = field(default_factory=set)
    used_households: set[str] = field(default_factory=set)
    used_devices: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        devices = self.registry.devices
        self.bands = {d.resident: d for d in devices if KINDS[d.kind].sees is Sees.WEARER and d.resident}
        self.doors = {d.household: d for d in devices if KINDS[d.kind].door_open_field and d.household}
        self.peepholes = {d.household: d for d in devices if KINDS[d.kind].night_events and d.household}
        alone = {h for h, n in Counter(r.household for r in self.registry.residents).items() if n == 1}
        self.alone = {r.id for r in self.registry.residents if r.lives_alone and r.household in alone}
        self.floors = {b.id: b.floors or 6 for b in self.registry.buildings}

    def stage(self, kind: IncidentKind) -> None:
        match kind:
            case IncidentKind.COLLAPSE:
                self._collapse()
            case IncidentKind.ILLNESS:
                self._illness()
            case IncidentKind.SOS:
                self._sos()
            case IncidentKind.FALL:
                self._fall()
            case IncidentKind.FALLING_OBJECT:
                self._falling_object()
            case IncidentKind.DOOR_LEFT_OPEN:
                self._door_left_open()
            case IncidentKind.NIGHT_EXIT:
                self._night_exit()
            case IncidentKind.DEVICE_OFFLINE:
                self._device_offline()
            case IncidentKind.BATTERY_LOW:
                self._battery_low()
            case IncidentKind.NIGHT_LINGERING:
                self._night_lingering()
            case IncidentKind.HEART_RATE:
                self._heart_rate()
            case IncidentKind.LEFT_GEOFENCE:
                self._left_geofence()
            case IncidentKind.NOT_WORN:
                self._not_worn()
            case _ if kind in EQUIPMENT_FAULTS:
                self._equipment_fault(kind)

    # --- resident incidents --------------------------------------------------------------------

    def _collapse(self) -> None:
        if resident := self._resident(lambda r: r.lives_alone):
            day = self._day(after_first=True)
            minute = self.rng.uniform(9 * 60, 11 * 60) if self.rng.random() < 0.5 else self.rng.uniform(
                15 * 60, 17 * 60)
            self._add_for_resident(IncidentKind.COLLAPSE, resident, day.at(minute))

    def _illness(self) -> None:
        if resident := self._resident(lambda r: r.lives_alone):
            self._add_for_resident(IncidentKind.ILLNESS, resident, self._day(after_first=True).start_ms)

    def _sos(self) -> None:
        if resident := self._resident(lambda r: r.id in self.bands):
            self._add_for_resident(IncidentKind.SOS, resident,
                                   self._day().at(self.rng.uniform(8 * 60, 20 * 60)),
                                   device=self.bands[resident.id].id)

    def _fall(self) -> None:
        # Fall detection needs the native band; a Zigbee SOS pendant cannot tell.
        if resident := self._resident(lambda r: r.id in self.bands and self.bands[r.id].zigbee2mqtt is None):
            self._add_for_resident(IncidentKind.FALL, resident,
                                   self._day().at(self.rng.uniform(7.5 * 60, 20.5 * 60)),
                                   device=self.bands[resident.id].id)

    def _door_left_open(self) -> None:
        if resident := self._resident(lambda r: r.lives_alone and r.household in self.doors):
            left = self._day().at(self.rng.uniform(14 * 60, 15.5 * 60))
            back = left + int(self.rng.uniform(40, 100) * MINUTE_MS)
            closed = back + int(self.rng.uniform(40, 150) * MINUTE_MS)
            self._add_for_resident(IncidentKind.DOOR_LEFT_OPEN, resident, back, end_ms=closed,
                                   device=self.doors[resident.household].id, details={"left_ms": left})

    def _night_exit(self) -> None:
        if resident := self._resident(
                lambda r: r.lives_alone and r.wandering_risk and r.household in self.doors):
            left = self._day().at(self.rng.uniform(1 * 60, 4 * 60))
            back = left + int(self.rng.uniform(20, 90) * MINUTE_MS)
            self._add_for_resident(IncidentKind.NIGHT_EXIT, resident, left, end_ms=back,
                                   device=self.doors[resident.household].id)

    def _night_lingering(self) -> None:
        if resident := self._resident(lambda r: r.id in self.alone and r.household in self.peepholes):
            self._add_for_resident(IncidentKind.NIGHT_LINGERING, resident,
                                   self._day().at(self.rng.uniform(0.5 * 60, 4.5 * 60)),
                                   device=self.peepholes[resident.household].id,
                                   details={"lingering_s": int(self.rng.integers(90, 600))})

    def _heart_rate(self) -> None:
        # Heart rate is the native band's; a Zigbee pendant measures nothing.
        if resident := self._resident(lambda r: r.id in self.bands and self.bands[r.id].zigbee2mqtt is None):
            start = self._day().at(self.rng.uniform(9 * 60, 17 * 60))
            self._add_for_resident(IncidentKind.HEART_RATE, resident, start,
                                   end_ms=start + int(self.rng.uniform(25, 45) * MINUTE_MS),
                                   device=self.bands[resident.id].id,
                                   details={"heart_rate": int(self.rng.integers(145, 170))})

    def _left_geofence(self) -> None:
        # The fix is the native band's; a Zigbee pendant has no GPS.
        if resident := self._resident(lambda r: r.wandering_risk and r.id in self.bands
                                      and self.bands[r.id].zigbee2mqtt is None):
            start = self._day().at(self.rng.uniform(10 * 60, 16 * 60))
            self._add_for_resident(IncidentKind.LEFT_GEOFENCE, resident, start,
                                   end_ms=start + int(self.rng.uniform(40, 90) * MINUTE_MS),
                                   device=self.bands[resident.id].id,
                                   details={"north_m": round(float(self.rng.uniform(4000, 6000)), 1)})

    def _not_worn(self) -> None:
        # The hub learns the habit first (a week of days worn), and tells just after the day ends.
        days = self.calendar.days
        if len(days) < NOT_WORN_HABIT_DAYS + 3:
            return
        if resident := self._resident(lambda r: r.id in self.bands and self.bands[r.id].zigbee2mqtt is None):
            day = days[int(self.rng.integers(NOT_WORN_HABIT_DAYS + 1, len(days) - 1))]
            self._add_for_resident(IncidentKind.NOT_WORN, resident, day.start_ms, end_ms=day.end_ms,
                                   device=self.bands[resident.id].id)

    def _resident(self, eligible: Callable[[Resident], bool]) -> Resident | None:
        candidates = [r for r in self.registry.residents
                      if r.id not in self.used_residents and r.household not in self.used_households
                      and eligible(r)]
        resident = self._choose(candidates)
        if resident is not None:
            self.used_residents.add(resident.id)
            self.used_households.add(resident.household)
        return resident

    def _add_for_resident(self, kind: IncidentKind, resident: Resident, start_ms: int, *,
                          end_ms: int | None = None, device: str | None = None,
                          details: dict[str, int | float | str] | None = None) -> None:
        self._add(kind, start_ms, resident.id, end_ms=end_ms, resident=resident.id,
                  household=resident.household, device=device, details=details)

    # --- device and building incidents ---------------------------------------------------------

    def _falling_object(self) -> None:
        if camera := self._device(lambda d: "falling_object" in KINDS[d.kind].immediate_alerts):
            assert camera.building is not None
            floors = self.floors[camera.building]
            floor_min = int(self.rng.integers(2, max(3, floors)))
            floor_max = min(floors, floor_min + int(self.rng.integers(0, 3)))
            self._add(IncidentKind.FALLING_OBJECT, self._day().at(self.rng.uniform(8 * 60, 20 * 60)),
                      camera.building, device=camera.id, building=camera.building,
                      details={"floor_min": floor_min, "floor_max": max(floor_min, floor_max),
                               "confidence": round(float(self.rng.uniform(0.75, 0.98)), 2)})

    def _device_offline(self) -> None:
        # Anything but what the resident wears: a band's silence is the resident's, not a device fault.
        if device := self._device(lambda d: KINDS[d.kind].sees is not Sees.WEARER):
            duration = int(self.rng.uniform(3, 6) * HOUR_MS)
            start = self.calendar.start_ms + int(
                self.rng.uniform(0.1, 0.9) * max(0, self.calendar.end_ms - self.calendar.start_ms - duration))
            self._add(IncidentKind.DEVICE_OFFLINE, start, device.id, end_ms=start + duration,
                      device=device.id, household=device.household, building=device.building,
                      details={"kind": device.kind})

    def _battery_low(self) -> None:
        # The home's battery devices (cameras on a building are mains-powered).
        if device := self._device(lambda d: bool(d.household) and KINDS[d.kind].sees is not Sees.WEARER):
            span = self.calendar.end_ms - self.calendar.start_ms
            crosses = self.calendar.start_ms + int(self.rng.uniform(0.3, 0.7) * span)
            level = BATTERY_LOW_THRESHOLD + _RUNDOWN_PER_DAY * (crosses - self.calendar.start_ms) / DAY_MS
            battery = DrainingBattery(self.calendar.start_ms, level, _RUNDOWN_PER_DAY, replaced_below=None)
            self._add(IncidentKind.BATTERY_LOW, battery.crosses_ms(BATTERY_LOW_THRESHOLD), device.id,
                      device=device.id, household=device.household,
                      details={"kind": device.kind, "threshold": BATTERY_LOW_THRESHOLD,
                               "level_at_start": level, "drain_per_day": _RUNDOWN_PER_DAY})

    def _equipment_fault(self, kind: IncidentKind) -> None:
        """A fault the device reports itself, at any hour (faults keep none), for 20 minutes to 2 hours."""
        if device := self._device(lambda d: any(f.alert == kind.value for f in KINDS[d.kind].faults)):
            start = self._day().at(self.rng.uniform(0, 23 * 60))
            self._add(kind, start, device.id, end_ms=start + int(self.rng.uniform(20, 120) * MINUTE_MS),
                      device=device.id, household=device.household, building=device.building,
                      details={"kind": device.kind})

    def _device(self, eligible: Callable[[Device], bool]) -> Device | None:
        candidates = [d for d in self.registry.devices
                      if d.id not in self.used_devices and d.household not in self.used_households
                      and eligible(d)]
        device = self._choose(candidates)
        if device is not None:
            self.used_devices.add(device.id)
            if device.household is not None:
                self.used_households.add(device.household)
        return device

    # --- shared --------------------------------------------------------------------------------

    def _day(self, *, after_first: bool = False) -> LocalDay:
        """A random day; `after_first` leaves the first day as a baseline of normal life if there is one."""
        days = self.calendar.days
        first = 1 if after_first and len(days) > 1 else 0
        return days[int(self.rng.integers(first, len(days)))]

    def _choose(self, candidates: Sequence[T]) -> T | None:
        return candidates[int(self.rng.integers(len(candidates)))] if candidates else None

    def _add(self, kind: IncidentKind, start_ms: int, subject: str, **fields: object) -> None:
        alert_kind, severity = _ALERTS[kind]
        self.incidents.append(Incident.model_validate({
            "incident": kind, "start_ms": start_ms, "start": epoch_ms_to_iso(start_ms),
            **{name: value for name, value in fields.items() if value is not None},
            "expected_alert": ExpectedAlert(kind=alert_kind, severity=severity, subject=subject),
        }))
