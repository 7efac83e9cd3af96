"""The base of every per-kind simulator: one simulated device that turns what happens into messages.

A subclass (one module per kind, like `devices/`) decides *what* its device says and builds the payload
by instantiating that kind's pydantic model from `devices/`, so a simulator can never publish a payload
the hub's decoder would refuse by accident. This base decides *how* it goes out: topic (native or
Zigbee2MQTT), timestamp format, the device's possibly wrong clock, its battery, offline periods, and
hands the message to a `MessageSink` (where faults are injected).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from devices.availability import AvailabilityState
from devices.kind import DeviceKind, epoch_ms_to_iso
from devices.registry import Device
from devices.topics import availability_topic, event_topic, zigbee2mqtt_topic
from simulators.calendar import Calendar
from simulators.message import DAY_MS, Fault, SimMessage, dead_letter_for_ts
from simulators.residents import Wearer
from simulators.seeding import random_stream

_METRES_PER_DEGREE = 111_195.0  # of latitude

# Keys that hold a time in some payload: `ts` (native), `last_seen` (Zigbee2MQTT), `t` (trajectory point).
_TIME_KEYS = frozenset({"ts", "last_seen", "t"})


class MessageSink(Protocol):
    def deliver(self, message: SimMessage, *, zigbee2mqtt: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class Coordinates:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Window:
    """[start_ms, end_ms) of simulated time."""

    start_ms: int
    end_ms: int

    def covers(self, sim_ms: int) -> bool:
        return self.start_ms <= sim_ms < self.end_ms


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """For `window`, the device's clock reads `offset_ms` off the true (simulated) time."""

    window: Window
    offset_ms: int


@dataclass(frozen=True, slots=True)
class DrainingBattery:
    """A battery that drains linearly from `level` at `start_ms`.

    With `replaced_below`, residents swap in a fresh battery once it drops below that level (so long
    scenarios do not slowly drain every device into low-battery alerts); without it, it runs down.
    """

    start_ms: int
    level: float
    drain_per_day: float
    replaced_below: float | None = 25.0

    def level_at(self, sim_ms: int) -> int:
        level = self.level - self.drain_per_day * (sim_ms - self.start_ms) / DAY_MS
        if self.replaced_below is not None and level < self.replaced_below:
            level = 100 - (self.replaced_below - level) % (100 - self.replaced_below)
        return int(min(100.0, max(0.0, level)))

    def crosses_ms(self, level: float) -> int:
        """When a battery that is never replaced drains to `level`."""
        return self.start_ms + round((self.level - level) / self.drain_per_day * DAY_MS)


@dataclass(frozen=True, slots=True)
class PlannedFault:
    """For `window`, the device reports the equipment fault its kind declares as alert `alert` (a door
    sensor's tamper switch, a camera's blocked lens), and healthy again after it."""

    alert: str
    window: Window


@dataclass(frozen=True, slots=True)
class PlannedVital:
    """For `window`, the device measures `value` of vital sign `field` on its wearer."""

    field: str
    window: Window
    value: int


@dataclass(frozen=True, slots=True)
class PlannedPosition:
    """For `window`, the wearer is `north_m` metres north of the community's location (wandered off)."""

    window: Window
    north_m: float


@dataclass(frozen=True)
class DevicePlan:
    """What the scenario has in store for one device: its battery (None: the kind's usual one), clock
    errors, offline periods, equipment faults it reports, vital signs it measures and where its wearer
    wandered off to."""

    battery: DrainingBattery | None = None
    clock_offsets: tuple[ClockOffset, ...] = ()
    offline: tuple[Window, ...] = ()
    faults: tuple[PlannedFault, ...] = ()
    vitals: tuple[PlannedVital, ...] = ()
    positions: tuple[PlannedPosition, ...] = ()


@dataclass(frozen=True)
class DeviceContext:
    """What every device of one simulation shares."""

    seed: int
    community: str
    calendar: Calendar
    sink: MessageSink
    home: Coordinates
    wearers: Mapping[str, Wearer] = field(default_factory=dict)
    zigbee2mqtt_base: str = "zigbee2mqtt"
    compounds: Mapping[str, str] = field(default_factory=dict)  # device id -> compound (Zigbee2MQTT topics)
    zigbee2mqtt_iso: bool = True  # Zigbee2MQTT's `advanced.last_seen`: ISO_8601 (True) or epoch
    native_iso_share: float = 0.3  # share of native devices whose firmware sends ISO 8601 `ts`


def encode(model: BaseModel, *, iso: bool) -> bytes:
    """Serialize a payload model as the device would send it.

    The models hold times as epoch ms; a device that sends ISO 8601 gets them rewritten, which the hub's
    `EpochMs` type turns back into the same milliseconds.
    """
    if not iso:
        return model.model_dump_json(exclude_none=True).encode()
    body = _times_to_iso(model.model_dump(mode="json", exclude_none=True))
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _times_to_iso(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: epoch_ms_to_iso(item) if key in _TIME_KEYS and isinstance(item, int) else _times_to_iso(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_times_to_iso(item) for item in value]
    return value


class SimulatedDevice:
    """One device. Subclasses set `kind`, `report_interval_ms` and implement `report`.

    `report_interval_ms` is how often the device checks in on its own (battery, heartbeat, health),
    shorter than its kind's `checkin_interval` so that a healthy device never looks offline.
    `battery_drain_per_day` is None for mains-powered kinds, whose payloads carry no battery.
    """

    kind: ClassVar[DeviceKind]
    report_interval_ms: int  # per instance: one kind may have models that check in at different rates
    battery_drain_per_day: ClassVar[float | None] = 0.1

    def __init__(self, entry: Device, context: DeviceContext, plan: DevicePlan | None = None) -> None:
        plan = plan or DevicePlan()
        self.id = entry.id
        self.entry = entry
        self.context = context
        self.rng = random_stream(context.seed, "device", entry.id)
        self.zigbee2mqtt_name = entry.zigbee2mqtt
        if self.zigbee2mqtt_name is not None:
            compound = context.compounds[entry.id]  # each compound's gateway has its own base topic
            self._event_topic = zigbee2mqtt_topic(context.zigbee2mqtt_base, compound, self.zigbee2mqtt_name)
            self._availability_topic = zigbee2mqtt_topic(
                context.zigbee2mqtt_base, compound, self.zigbee2mqtt_name, "availability")
            self.iso_timestamps = context.zigbee2mqtt_iso
        else:
            self._event_topic = event_topic(context.community, entry.kind, entry.id)
            self._availability_topic = availability_topic(context.community, entry.kind, entry.id)
            self.iso_timestamps = bool(self.rng.random() < context.native_iso_share)
        self._battery = plan.battery or self._usual_battery(context.calendar.start_ms)
        self._clock_offsets = plan.clock_offsets
        self._offline = plan.offline
        self._faults = plan.faults
        self._vitals = plan.vitals
        self._positions = plan.positions

    @property
    def uses_zigbee2mqtt(self) -> bool:
        return self.zigbee2mqtt_name is not None

    def report(self, sim_ms: int) -> None:
        """The device's periodic check-in."""
        raise NotImplementedError

    # --- what subclasses build payloads from --------------------------------------------------

    def device_time(self, sim_ms: int) -> int:
        """The device's own clock at true time `sim_ms`: what goes into `ts` / `last_seen`."""
        for offset in self._clock_offsets:
            if offset.window.covers(sim_ms):
                return sim_ms + offset.offset_ms
        return sim_ms

    def fault(self, alert: str, sim_ms: int) -> bool | None:
        """Whether the device reports the fault `alert` at `sim_ms`; None when none is planned (a device
        whose payloads leave the optional field out, as they did before)."""
        planned = [f.window for f in self._faults if f.alert == alert]
        return any(window.covers(sim_ms) for window in planned) if planned else None

    def position(self, sim_ms: int) -> Coordinates | None:
        """Where the scenario has taken the wearer at `sim_ms`, if anywhere."""
        north = next((p.north_m for p in self._positions if p.window.covers(sim_ms)), None)
        home = self.context.home
        if north is None:
            return None
        return Coordinates(round(home.lat + north / _METRES_PER_DEGREE, 6), home.lon)

    def vital(self, field: str, sim_ms: int) -> int | None:
        """The planned value of vital sign `field` at `sim_ms`, if any."""
        return next((v.value for v in self._vitals if v.field == field and v.window.covers(sim_ms)), None)

    def battery(self, sim_ms: int) -> int | None:
        return None if self._battery is None else self._battery.level_at(sim_ms)

    def linkquality(self) -> int:
        """Zigbee link quality (LQI): varies from message to message even for a device that stays put."""
        return int(self.rng.integers(40, 220))

    def publish_reading(self, sim_ms: int, ts: int, model: BaseModel, fault: Fault | None = None) -> None:
        """Send one reading, unless the device is offline at `sim_ms`.

        `ts` must be the time the payload carries (from `device_time`): it is the hub's storage key.
        """
        if any(window.covers(sim_ms) for window in self._offline):
            return
        dead_letter = dead_letter_for_ts(ts, sim_ms)
        if fault is None and ts != sim_ms:
            fault = Fault.FUTURE_CLOCK if dead_letter else Fault.CLOCK_SKEW
        self.context.sink.deliver(
            SimMessage(sim_ms, self._event_topic, encode(model, iso=self.iso_timestamps), 1, False,
                       self.kind.name, self.id, fault, None if dead_letter else ts, dead_letter),
            zigbee2mqtt=self.uses_zigbee2mqtt,
        )

    def publish_availability(self, sim_ms: int, online: bool) -> None:
        """Retained, as the broker would publish a last will or Zigbee2MQTT its availability state.

        Native devices stamp their time in it; Zigbee2MQTT sends only `{"state": ...}`.
        """
        state = AvailabilityState(state="online" if online else "offline",
                                  ts=None if self.uses_zigbee2mqtt else self.device_time(sim_ms))
        self.context.sink.deliver(
            SimMessage(sim_ms, self._availability_topic, encode(state, iso=self.iso_timestamps), 1, True,
                       self.kind.name, self.id),
            zigbee2mqtt=self.uses_zigbee2mqtt,
        )

    def _usual_battery(self, start_ms: int) -> DrainingBattery | None:
        if self.battery_drain_per_day is None:
            return None
        return DrainingBattery(start_ms, float(self.rng.uniform(55, 100)),
                       self.battery_drain_per_day * float(self.rng.uniform(0.5, 1.5)))


def simulator_for(kind: str) -> type[SimulatedDevice]:
    """The simulator of a device kind: `SIMULATOR` in `simulators/<kind>.py`. Found by name rather than
    listed, so `devices.KINDS` stays the one table of kinds; `tests/simulators/test_simulators.py` checks that
    every kind has exactly one."""
    simulator: type[SimulatedDevice] = importlib.import_module(f"simulators.{kind}").SIMULATOR
    return simulator
