"""Safety rules: the alerts that need no learning, raised from single readings and simple timers.

SOS and falls are critical at once, with no detector in the way. A falling object goes to the building's
property/security staff with the floor range, and the same event seen twice (redelivered, or by two
cameras) is one alert. A front door left open, the entrance door opened at night by a resident at risk
of wandering, a device silent past its check-in interval, and a low battery complete the set.

The signals devices send besides, each read from what its kind declares (`devices.kind.DeviceKind`):
equipment faults a device reports itself (a door sensor's tamper switch, a camera offline, its lens
blocked, its storage gone, its frame rate too low), someone lingering at night at the door of a
resident who lives alone, a heart rate outside the wearer's range for several reports in a row, a band
its wearer usually wears left off for a whole day, and a wearer at risk of wandering leaving their
geofence. A falling object the camera is not sure of is kept in the store but pages nobody.

Equipment alerts clear themselves when the cause ends (the device is heard again, its battery replaced,
the fault reported healthy): the rules hand out a `Clear` for each, and the hub resolves the open alert.
A device that was offline clears only once it has stayed back for `offline_clear_after_s`: one that keeps
dropping out continues its alert (counted) instead of opening a new one at every drop.
Welfare alerts never clear by themselves: someone has to look.

Pure logic: readings and "now" in, `Signal`s out; the hub turns signals into alerts. Every threshold has
a per-kind default and can be overridden per device or per resident.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from detectors.geo import outside_by_m
from detectors.severity import Severity
from devices import KINDS
from devices.kind import DeviceKind, Fault
from devices.registry import Geofence

Scalar = bool | int | float | str
EvidenceValue = Scalar | dict[str, float]  # a dict: a position, {"lat", "lon"}


@dataclass(frozen=True, slots=True)
class Signal:
    """Something an alert should be raised (or updated) for. `subject` is what the alert is about: a
    resident, a device, or a building (falling objects). `occurrence` names the real-world event (an SOS
    press, a fall, a falling object) so that seeing it again, redelivered, never counts twice."""

    kind: str
    severity: Severity
    subject: str
    device: str
    at_ms: int
    evidence: Mapping[str, EvidenceValue] = field(default_factory=dict)
    occurrence: str | None = None


@dataclass(frozen=True, slots=True)
class Clear:
    """The cause of an equipment alert ended: the unresolved alert of `kind` about `subject`, if there is
    one, is resolved by the hub. Handed out also when the rules do not know whether they raised it (the
    first healthy reading after a restart), so an alert raised before a restart still clears."""

    kind: str
    subject: str
    device: str
    at_ms: int
    evidence: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the rules need to know about a device, resolved from the registry by the caller."""

    id: str
    kind: str
    building: str
    household: str | None = None
    resident: str | None = None  # the wearer, for a wristband
    household_residents: tuple[str, ...] = ()
    wandering_risk: bool = False  # someone in the household is at risk of wandering off
    timezone: str = "Asia/Shanghai"
    checkin_interval_s: int | None = None  # per-device override of the kind's default
    door_open_limit_s: int | None = None  # per-device/resident override
    lives_alone: bool = False  # the household is one resident living alone (独居)
    heart_rate_min: int | None = None  # the wearer's range, overriding the rule's default
    heart_rate_max: int | None = None
    geofence: Geofence | None = None  # the wearer's, when they are at risk of wandering
    floor_lines: tuple[tuple[int, float], ...] = ()  # a camera's (floor, pixel row of its bottom line)


@dataclass(frozen=True)
class SafetyThresholds:
    door_open_limit_s: int = 15 * 60
    night_start_hour: int = 22  # local time; night runs across midnight to night_end_hour
    night_end_hour: int = 6
    battery_low_percent: int = 20  # below this a battery is low (20 itself is still fine)
    falling_object_merge_s: int = 30  # two cameras seeing one object within this are one event
    checkin_interval_s: Mapping[str, int] = field(default_factory=dict)  # per kind; see devices.KINDS
    battery_replaced_margin: int = 10  # a battery this far above "low" was replaced: its alert clears
    falling_object_min_confidence: float = 0.5  # below this a detection is kept but pages nobody
    heart_rate_min: int = 40  # per minute; a resident's own range in the registry overrides both
    heart_rate_max: int = 130
    heart_rate_reports: int = 3  # reports in a row out of range: one is a band slipping on the wrist
    not_worn_days: int = 14  # the days of history that say whether a band is usually worn
    not_worn_min_days: int = 7  # fewer days of history: no habit known yet, no reminder
    not_worn_share: float = 0.7  # worn on at least this share of the days it reported: usually worn
    offline_clear_after_s: int = 600  # back this long before `device_offline` clears: flap damping


@dataclass
class _DoorState:
    opened_at_ms: int | None = None
    reported: bool = False
    last_ts_ms: int | None = None  # the newest reading applied


@dataclass
class _FallingObject:
    building: str
    at_ms: int
    floor_min: int
    floor_max: int
    event_ids: set[str]


@dataclass
class _Wear:
    """Which local days a band reported on, and whether it was worn on each."""

    device: DeviceFacts
    days: dict[date, bool] = field(default_factory=dict)
    checked: date | None = None  # the last whole day looked at


@dataclass
class _Vital:
    last_ts_ms: int = -1
    out_of_range: int = 0  # reports in a row
    since_ms: int = 0


class SafetyRules:
    def __init__(self, thresholds: SafetyThresholds) -> None:
        self.thresholds = thresholds
        self._doors: dict[str, _DoorState] = {}
        self._last_heard: dict[str, tuple[int, DeviceFacts]] = {}
        self._offline_reported: set[str] = set()
        # Devices back after `device_offline` was raised (or may have been, before a restart): when they
        # came back, what said so, until the alert clears or they drop out again.
        self._back_since: dict[str, tuple[int, DeviceFacts, dict[str, Scalar]]] = {}
        self._low_battery_reported: set[str] = set()
        self._recent_objects: list[_FallingObject] = []
        # (subject, equipment alert) -> raised (True), known healthy (False); absent: not known (a restart)
        self._equipment: dict[tuple[str, str], bool] = {}
        self._fault_runs: dict[tuple[str, str], int] = {}  # (device, fault alert) -> faulty reports in a row
        self._clears: list[Clear] = []
        self._vitals: dict[tuple[str, str], _Vital] = {}
        self._outside: dict[str, bool] = {}  # wearer's device -> its last fix was outside the geofence
        self._wear: dict[str, _Wear] = {}

    def take_clears(self) -> list[Clear]:
        """The equipment alerts whose cause ended since the last call."""
        clears, self._clears = self._clears, []
        return clears

    # --- readings ------------------------------------------------------------------------------

    def observe(self, device: DeviceFacts, ts_ms: int, fields: Mapping[str, Scalar]) -> list[Signal]:
        """Signals raised by one stored reading, in the order the hub stored them."""
        self.heard_from(device, ts_ms)
        self._back(device, ts_ms, {"heard_ms": ts_ms})
        signals: list[Signal] = []
        wearer = device.resident or _first(device.household_residents) or device.id
        kind = KINDS.get(device.kind)
        if kind is not None:
            signals += self._faults(kind, device, ts_ms, fields)
            signals += self._night_events(kind, device, ts_ms, fields)
            signals += self._vitals_of(kind, device, wearer, ts_ms, fields)
            signals += self._geofence(kind, device, wearer, ts_ms, fields)
            self.learn(device, ts_ms, fields)
            if kind.worn_field is not None and fields.get(kind.worn_field) is True:
                self._healthy(wearer, "not_worn", device, ts_ms, {"worn_ms": ts_ms})
        raised = {alert for alert in kind.immediate_alerts if fields.get(alert) is True} if kind else set()
        if "sos" in raised:
            # One alert per press: the press's own time identifies it, so a redelivery or Zigbee2MQTT's
            # reset (same last_seen, no `sos`) adds nothing.
            signals.append(
                Signal("sos", Severity.CRITICAL, wearer, device.id, ts_ms, {"press_ts": ts_ms}, str(ts_ms))
            )
        if "fall" in raised:
            signals.append(
                Signal("fall", Severity.CRITICAL, wearer, device.id, ts_ms, {"fall_ts": ts_ms}, str(ts_ms))
            )
        if "falling_object" in raised:
            signals += self._falling_object(device, ts_ms, fields)
        door_field = kind.door_open_field if kind else None
        if door_field is not None and isinstance(fields.get(door_field), bool):
            signals += self._door(device, ts_ms, bool(fields[door_field]))
        battery = fields.get("battery")
        if isinstance(battery, int) and not isinstance(battery, bool):
            signals += self._battery(device, ts_ms, battery)
        return signals

    def heard_from(self, device: DeviceFacts, at_ms: int) -> None:
        """Any message from the device (valid or not) proves it is alive."""
        previous = self._last_heard.get(device.id)
        if previous is None or at_ms >= previous[0]:
            self._last_heard[device.id] = (at_ms, device)
            self._offline_reported.discard(device.id)

    def learn(self, device: DeviceFacts, ts_ms: int, fields: Mapping[str, Scalar]) -> None:
        """What a reading says about its wearer's habit of wearing the band, and nothing else: also fed
        the stored history on a restart, so the habit is known again at once."""
        kind = KINDS.get(device.kind)
        if kind is None or kind.worn_field is None or not isinstance(fields.get(kind.worn_field), bool):
            return  # a pendant that never says whether it is worn has no habit to learn
        wear = self._wear.setdefault(device.id, _Wear(device))
        wear.device = device
        day = _local_date(ts_ms, device.timezone)
        wear.days[day] = wear.days.get(day, False) or fields[kind.worn_field] is True

    def habits(self, device_ids: Iterable[str]) -> dict[str, dict[str, bool]]:
        """The habits `learn` has learned of these devices, JSON-friendly: per band, whether it was worn
        on each local day it reported (ISO dates). A checkpoint keeps them, so a start that relearns only
        the readings after it knows them all the same."""
        return {d: {day.isoformat(): worn for day, worn in sorted(self._wear[d].days.items())}
                for d in device_ids if d in self._wear}

    @staticmethod
    def read_habits(habits: object) -> dict[str, dict[date, bool]]:
        """`habits()` as JSON gave them back; ValueError when they are not."""
        if not isinstance(habits, Mapping):
            raise ValueError("not habits: not by device")
        read: dict[str, dict[date, bool]] = {}
        for device_id, days in habits.items():
            try:
                if not isinstance(days, Mapping) or not all(isinstance(w, bool) for w in days.values()):
                    raise ValueError("not days worn")
                read[str(device_id)] = {date.fromisoformat(str(day)): worn for day, worn in days.items()}
            except ValueError as exc:
                raise ValueError(f"not habits: {device_id}'s days ({exc})") from exc
        return read

    def restore_habits(self, facts: Mapping[str, DeviceFacts],
                       habits: Mapping[str, Mapping[date, bool]]) -> None:
        """Take back the habits (`read_habits`) of the devices still placed (`facts`)."""
        for device_id, days in habits.items():
            if device_id not in facts:
                continue
            wear = self._wear.setdefault(device_id, _Wear(facts[device_id]))
            for day, worn in days.items():
                wear.days[day] = wear.days.get(day, False) or worn

    def came_online(self, device: DeviceFacts, at_ms: int) -> None:
        """An explicit `online` availability message: the device is back, as when it reports again."""
        self.heard_from(device, at_ms)
        self._back(device, at_ms, {"availability": "online"})

    def went_offline(self, device: DeviceFacts, at_ms: int) -> list[Signal]:
        """An explicit `offline` availability message (or last will): no need to wait for the check-in."""
        self._back_since.pop(device.id, None)
        if device.id in self._offline_reported:
            return []
        self._offline_reported.add(device.id)
        self._equipment[(device.id, "device_offline")] = True
        return [
            Signal(
                "device_offline", Severity.WARNING, device.id, device.id, at_ms,
                {"reason": "availability offline"},
            )
        ]

    def offline_devices(self) -> set[str]:
        """Devices currently reported offline (silent past their check-in, or said so)."""
        return set(self._offline_reported)

    # --- time ----------------------------------------------------------------------------------

    def tick(self, now_ms: int) -> list[Signal]:
        """Signals that are due because time passed: doors left open, devices silent too long."""
        signals: list[Signal] = []
        for device_id in self._doors:
            signals += self._door_overdue(self._last_heard[device_id][1], now_ms)
        for device_id, (heard_ms, facts) in self._last_heard.items():
            interval_s = facts.checkin_interval_s or self.thresholds.checkin_interval_s.get(facts.kind)
            if interval_s is None or device_id in self._offline_reported:
                continue
            if now_ms - heard_ms > interval_s * 1000:
                self._back_since.pop(device_id, None)
                self._offline_reported.add(device_id)
                self._equipment[(device_id, "device_offline")] = True
                signals.append(
                    Signal(
                        "device_offline",
                        Severity.WARNING,
                        device_id,
                        device_id,
                        now_ms,
                        {"last_heard_ms": heard_ms, "checkin_interval_s": interval_s},
                    )
                )
        for device_id, (since_ms, facts, evidence) in list(self._back_since.items()):
            if now_ms - since_ms >= self.thresholds.offline_clear_after_s * 1000:
                del self._back_since[device_id]
                self._healthy(device_id, "device_offline", facts, since_ms, evidence)
        yesterdays: dict[str, date] = {}  # per time zone: one conversion per tick, not one per band
        for wear in self._wear.values():
            zone = wear.device.timezone
            if zone not in yesterdays:
                yesterdays[zone] = _local_date(now_ms, zone) - timedelta(days=1)
            signals += self._not_worn(wear, yesterdays[zone], now_ms)
        return signals

    # --- the rules -----------------------------------------------------------------------------

    def _door(self, device: DeviceFacts, ts_ms: int, is_open: bool) -> list[Signal]:
        door = self._doors.setdefault(device.id, _DoorState())
        if door.last_ts_ms is not None and ts_ms <= door.last_ts_ms:
            # A redelivery (the store hands a merged duplicate over again) or a reading overtaken by a
            # newer one: replaying an old "open" after the "close" would leave the door open forever.
            return []
        door.last_ts_ms = ts_ms
        if not is_open:
            # Closed after the limit with no tick in between (the hub was catching up on a backlog): the
            # door did stand open too long, so report it late rather than never.
            late = self._door_overdue(device, ts_ms, closed=True)
            door.opened_at_ms, door.reported = None, False
            return late
        if door.opened_at_ms is not None:
            return []  # a repeated "open" (a cached Zigbee2MQTT state) is not a new opening
        door.opened_at_ms = ts_ms
        if device.wandering_risk and self._is_night(ts_ms, device.timezone):
            return [
                Signal(
                    "night_exit",
                    Severity.CRITICAL,
                    _household_subject(device),
                    device.id,
                    ts_ms,
                    {"opened_at_ms": ts_ms},
                )
            ]
        return []

    def _door_overdue(self, device: DeviceFacts, now_ms: int, *, closed: bool = False) -> list[Signal]:
        door = self._doors[device.id]
        limit_s = device.door_open_limit_s or self.thresholds.door_open_limit_s
        if door.opened_at_ms is None or door.reported or now_ms - door.opened_at_ms < limit_s * 1000:
            return []
        door.reported = True
        evidence: dict[str, Scalar] = {"opened_at_ms": door.opened_at_ms, "limit_s": limit_s}
        if closed:
            evidence["closed_at_ms"] = now_ms
        at_ms = door.opened_at_ms + limit_s * 1000 if closed else now_ms
        return [Signal("door_left_open", Severity.WARNING, _household_subject(device), device.id, at_ms,
                       evidence)]

    def _battery(self, device: DeviceFacts, ts_ms: int, level: int) -> list[Signal]:
        if level >= self.thresholds.battery_low_percent:
            self._low_battery_reported.discard(device.id)  # report the next run-down again
            # Cleared only well above the threshold: a battery hovering at it (cold nights, a radio burst)
            # would otherwise clear and raise again every day. This far up, it was replaced.
            if level >= self.thresholds.battery_low_percent + self.thresholds.battery_replaced_margin:
                self._healthy(device.id, "battery_low", device, ts_ms, {"battery": level})
            return []
        if device.id in self._low_battery_reported:
            return []
        self._low_battery_reported.add(device.id)
        self._equipment[(device.id, "battery_low")] = True
        return [Signal("battery_low", Severity.INFO, device.id, device.id, ts_ms, {"battery": level})]

    def _back(self, device: DeviceFacts, at_ms: int, evidence: dict[str, Scalar]) -> None:
        """The device is heard from again: its `device_offline`, if raised (or maybe raised before a
        restart), clears once it has stayed back for `offline_clear_after_s` (at a tick). Until then a
        new drop continues the same alert."""
        if device.id in self._back_since or not self._equipment.get((device.id, "device_offline"), True):
            return
        if self.thresholds.offline_clear_after_s <= 0:
            self._healthy(device.id, "device_offline", device, at_ms, evidence)
        else:
            self._back_since[device.id] = (at_ms, device, evidence)

    def _healthy(self, subject: str, alert: str, device: DeviceFacts, at_ms: int,
                 evidence: dict[str, Scalar]) -> None:
        """The cause of `alert` about `subject` has ended: clear it if raised, or if it may have been
        raised before the hub restarted; once known healthy, nothing more to say."""
        if self._equipment.get((subject, alert), True):
            self._equipment[(subject, alert)] = False
            self._clears.append(Clear(alert, subject, device.id, at_ms, evidence))

    def _faults(self, kind: DeviceKind, device: DeviceFacts, ts_ms: int,
                fields: Mapping[str, Scalar]) -> list[Signal]:
        signals: list[Signal] = []
        for fault in kind.faults:
            value = fields.get(fault.field)
            faulty = fault.faulty(value)
            if faulty is None:
                continue  # this reading does not say (a door event without the tamper switch's state)
            assert value is not None
            key = (device.id, fault.alert)
            if not faulty:
                self._fault_runs.pop(key, None)
                self._healthy(device.id, fault.alert, device, ts_ms, {fault.field: value})
                continue
            run = self._fault_runs[key] = self._fault_runs.get(key, 0) + 1
            if run == fault.reports and not self._equipment.get(key, False):
                self._equipment[key] = True
                signals.append(Signal(fault.alert, Severity(fault.severity), device.id, device.id, ts_ms,
                                      _fault_evidence(fault, value, run)))
        return signals

    def _night_events(self, kind: DeviceKind, device: DeviceFacts, ts_ms: int,
                      fields: Mapping[str, Scalar]) -> list[Signal]:
        # By day, or where someone else lives too, someone at the door is the corridor's ordinary life.
        if not device.lives_alone or not self._is_night(ts_ms, device.timezone):
            return []
        signals: list[Signal] = []
        for event in kind.night_events:
            if fields.get(event.field) is not True:
                continue
            evidence: dict[str, Scalar] = {"event_ts": ts_ms}
            for name in (*event.details, *((event.media,) if event.media else ())):
                value = fields.get(name)
                if value is not None:
                    evidence[name] = value
            signals.append(Signal(event.alert, Severity.WARNING, _household_subject(device), device.id, ts_ms,
                                  evidence, f"{device.id}@{ts_ms}"))
        return signals

    def _vitals_of(self, kind: DeviceKind, device: DeviceFacts, wearer: str, ts_ms: int,
                   fields: Mapping[str, Scalar]) -> list[Signal]:
        signals: list[Signal] = []
        low = device.heart_rate_min or self.thresholds.heart_rate_min
        high = device.heart_rate_max or self.thresholds.heart_rate_max
        for vital in kind.vitals:
            value = fields.get(vital.field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if vital.worn is not None and fields.get(vital.worn) is False:
                continue
            state = self._vitals.setdefault((device.id, vital.field), _Vital())
            if ts_ms <= state.last_ts_ms:
                continue  # a redelivery or an overtaken reading must not count as one more report
            state.last_ts_ms = ts_ms
            if low <= value <= high:
                state.out_of_range = 0
                continue
            state.out_of_range += 1
            if state.out_of_range == 1:
                state.since_ms = ts_ms
            if state.out_of_range == self.thresholds.heart_rate_reports:
                signals.append(Signal(vital.alert, Severity.WARNING, wearer, device.id, ts_ms, {
                    vital.field: value, "min": low, "max": high, "reports": state.out_of_range,
                    "since_ms": state.since_ms}))
        return signals

    def _geofence(self, kind: DeviceKind, device: DeviceFacts, wearer: str, ts_ms: int,
                  fields: Mapping[str, Scalar]) -> list[Signal]:
        position = kind.position
        if position is None or device.geofence is None:
            return []
        lat, lon = fields.get(position.lat), fields.get(position.lon)
        if not isinstance(lat, float) or not isinstance(lon, float):
            return []
        accuracy = fields.get(position.accuracy) if position.accuracy else None
        margin = _float(accuracy) or 0.0
        outside_m = outside_by_m(device.geofence, lat, lon)
        # Only a fix outside even at the far edge of its accuracy is certainly outside: a critical alert
        # at 3 a.m. for a blurred fix beside the fence would teach everyone to ignore it.
        was_outside = self._outside.get(device.id, False)
        if outside_m - margin <= 0:
            if outside_m <= 0:
                self._outside[device.id] = False  # back inside: the next time out is a new alert
            return []
        self._outside[device.id] = True
        if was_outside:
            return []  # one alert per time out, with where they were when it left
        evidence: dict[str, EvidenceValue] = {"location": {"lat": lat, "lon": lon},
                                              "outside_m": round(outside_m, 1)}
        if accuracy is not None:
            evidence["accuracy_m"] = margin
        return [Signal("left_geofence", Severity.CRITICAL, wearer, device.id, ts_ms, evidence)]

    def _not_worn(self, wear: _Wear, yesterday: date, now_ms: int) -> list[Signal]:
        """Once a local day has ended: a band that reported all day, worn at no time, by a wearer who
        wears it on most days, earns a reminder (a wearer who never wears it is not reminded daily)."""
        device = wear.device
        if wear.checked is not None and wear.checked >= yesterday:
            return []
        wear.checked = yesterday
        oldest = yesterday - timedelta(days=self.thresholds.not_worn_days)
        for day in [d for d in wear.days if d < oldest]:
            del wear.days[day]
        if wear.days.get(yesterday) is not False:
            return []  # worn, or silent all day (the offline check's business, not the wearer's)
        before = [worn for day, worn in wear.days.items() if day < yesterday]
        if len(before) < self.thresholds.not_worn_min_days \
                or sum(before) < self.thresholds.not_worn_share * len(before):
            return []
        wearer = device.resident or _first(device.household_residents) or device.id
        self._equipment[(wearer, "not_worn")] = True
        return [Signal("not_worn", Severity.INFO, wearer, device.id, now_ms,
                       {"day": yesterday.isoformat(), "worn_days": sum(before), "of_days": len(before)},
                       f"{device.id}@{yesterday.isoformat()}")]

    def _falling_object(self, device: DeviceFacts, ts_ms: int, fields: Mapping[str, Scalar]) -> list[Signal]:
        confidence = fields.get("confidence")
        if isinstance(confidence, int | float) and confidence < self.thresholds.falling_object_min_confidence:
            return []  # a shadow or a bird as often as not: stored with the clip, paging nobody
        event_id = str(fields.get("event_id", f"{device.id}@{ts_ms}"))
        floor_min, floor_max = _int(fields.get("floor_min")), _int(fields.get("floor_max"))
        kind = KINDS.get(device.kind)
        row = fields.get(kind.first_row_field) if kind and kind.first_row_field else None
        from_trajectory = bool(device.floor_lines) and isinstance(row, float)
        if from_trajectory:
            assert isinstance(row, float)
            floor_min, floor_max = floors_from_row(device.floor_lines, row)
        merge_ms = self.thresholds.falling_object_merge_s * 1000
        self._recent_objects = [o for o in self._recent_objects if abs(ts_ms - o.at_ms) <= 10 * merge_ms]
        for seen in self._recent_objects:
            same_event = event_id in seen.event_ids
            same_object = (
                seen.building == device.building
                and abs(ts_ms - seen.at_ms) <= merge_ms
                and floor_min <= seen.floor_max
                and seen.floor_min <= floor_max
            )
            if same_event or same_object:
                seen.event_ids.add(event_id)
                return []
        self._recent_objects.append(_FallingObject(device.building, ts_ms, floor_min, floor_max, {event_id}))
        evidence: dict[str, Scalar] = {
            "event_id": event_id,
            "building": device.building,
            "camera": device.id,
            "floor_min": floor_min,
            "floor_max": floor_max,
            "floor_source": "trajectory" if from_trajectory else "camera",
        }
        for key in ("confidence", "clip"):
            value = fields.get(key)
            if value is not None:
                evidence[key] = value
        return [Signal("falling_object", Severity.CRITICAL, device.building, device.id, ts_ms, evidence,
                       event_id)]

    def _is_night(self, ts_ms: int, timezone: str) -> bool:
        hour = datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(timezone)).hour
        start, end = self.thresholds.night_start_hour, self.thresholds.night_end_hour
        return hour >= start or hour < end if start > end else start <= hour < end


def floors_from_row(lines: tuple[tuple[int, float], ...], row: float) -> tuple[int, int]:
    """The floors an object first seen at pixel `row` probably fell from, given the camera's floor lines
    ((floor, row of the line at the bottom of that floor), rows growing downwards): the floor it was
    seen in front of, and the one above, since the camera catches it a few frames after it left."""
    ordered = sorted(lines)
    top_floor = ordered[-1][0]
    floor = ordered[0][0]
    for (low, low_row), (high, high_row) in itertools.pairwise(ordered):
        if row <= low_row:
            # Between two lines the floors are evenly spaced (two lines are enough for a plain facade).
            between = row > high_row
            floor = low + int((low_row - row) / (low_row - high_row) * (high - low)) if between else high
    floor = min(floor, top_floor)
    return floor, min(floor + 1, top_floor)


def _local_date(ms: int, timezone: str) -> date:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(timezone)).date()


def _fault_evidence(fault: Fault, value: Scalar, run: int) -> dict[str, Scalar]:
    evidence: dict[str, Scalar] = {fault.field: value}
    if fault.below is not None:
        evidence["below"] = fault.below
    if run > 1:
        evidence["reports"] = run
    return evidence


def _first(values: tuple[str, ...]) -> str | None:
    return values[0] if values else None


def _household_subject(device: DeviceFacts) -> str:
    """Door alerts are about the people who live behind the door (the first resident), else the door."""
    return _first(device.household_residents) or device.household or device.id


def _float(value: Scalar | None) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Scalar | None) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
