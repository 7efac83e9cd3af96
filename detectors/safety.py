"""Safety rules: the alerts that need no learning, raised from single readings and simple timers.

SOS and falls are critical at once, with no detector in the way. A falling object goes to the building's
property/security staff with the floor range, and the same event seen twice (redelivered, or by two
cameras) is one alert. A front door left open, the entrance door opened at night by a resident at risk
of wandering, a device silent past its check-in interval, and a low battery complete the set.

Pure logic: readings and "now" in, `Signal`s out; the hub turns signals into alerts. Every threshold has
a per-kind default and can be overridden per device or per resident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from detectors.severity import Severity
from devices import KINDS

Scalar = bool | int | float | str


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
    evidence: dict[str, Scalar] = field(default_factory=dict)
    occurrence: str | None = None


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


@dataclass(frozen=True)
class SafetyThresholds:
    door_open_limit_s: int = 15 * 60
    night_start_hour: int = 22  # local time; night runs across midnight to night_end_hour
    night_end_hour: int = 6
    battery_low_percent: int = 20  # below this a battery is low (20 itself is still fine)
    falling_object_merge_s: int = 30  # two cameras seeing one object within this are one event
    checkin_interval_s: Mapping[str, int] = field(default_factory=dict)  # per kind; see devices.KINDS


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


class SafetyRules:
    def __init__(self, thresholds: SafetyThresholds) -> None:
        self.thresholds = thresholds
        self._doors: dict[str, _DoorState] = {}
        self._last_heard: dict[str, tuple[int, DeviceFacts]] = {}
        self._offline_reported: set[str] = set()
        self._low_battery_reported: set[str] = set()
        self._recent_objects: list[_FallingObject] = []

    # --- readings ------------------------------------------------------------------------------

    def observe(self, device: DeviceFacts, ts_ms: int, fields: Mapping[str, Scalar]) -> list[Signal]:
        """Signals raised by one stored reading, in the order the hub stored them."""
        self.heard_from(device, ts_ms)
        signals: list[Signal] = []
        wearer = device.resident or _first(device.household_residents) or device.id
        kind = KINDS.get(device.kind)
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

    def went_offline(self, device: DeviceFacts, at_ms: int) -> list[Signal]:
        """An explicit `offline` availability message (or last will): no need to wait for the check-in."""
        if device.id in self._offline_reported:
            return []
        self._offline_reported.add(device.id)
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
                self._offline_reported.add(device_id)
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
            self._low_battery_reported.discard(device.id)  # replaced: report the next run-down again
            return []
        if device.id in self._low_battery_reported:
            return []
        self._low_battery_reported.add(device.id)
        return [Signal("battery_low", Severity.INFO, device.id, device.id, ts_ms, {"battery": level})]

    def _falling_object(self, device: DeviceFacts, ts_ms: int, fields: Mapping[str, Scalar]) -> list[Signal]:
        event_id = str(fields.get("event_id", f"{device.id}@{ts_ms}"))
        floor_min, floor_max = _int(fields.get("floor_min")), _int(fields.get("floor_max"))
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


def _first(values: tuple[str, ...]) -> str | None:
    return values[0] if values else None


def _household_subject(device: DeviceFacts) -> str:
    """Door alerts are about the people who live behind the door (the first resident), else the door."""
    return _first(device.household_residents) or device.household or device.id


def _int(value: Scalar | None) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
