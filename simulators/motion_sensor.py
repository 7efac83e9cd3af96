"""人体感应 simulator: a PIR motion sensor in one room, native or through Zigbee2MQTT."""

from __future__ import annotations

from pydantic import BaseModel

from devices import motion_sensor
from devices.registry import Device
from simulators.device import DeviceContext, DevicePlan, SimulatedDevice
from simulators.message import HOUR_MS, Fault


class MotionSensor(SimulatedDevice):
    kind = motion_sensor.KIND
    report_interval_ms = HOUR_MS
    battery_drain_per_day = 0.15

    def __init__(self, entry: Device, context: DeviceContext, plan: DevicePlan | None = None) -> None:
        super().__init__(entry, context, plan)
        self.occupied = False
        # Only some Zigbee models carry a light sensor (e.g. Aqara's, not Sonoff's).
        self.measures_illuminance = self.uses_zigbee2mqtt and bool(self.rng.random() < 0.5)

    def set_occupied(self, sim_ms: int, *, occupied: bool) -> None:
        """A PIR reports a change only: motion seen, or its occupancy timeout ran out."""
        if occupied != self.occupied:
            self.occupied = occupied
            self._send(sim_ms, periodic=False)

    def report(self, sim_ms: int) -> None:
        self._send(sim_ms, periodic=True)

    def burst(self, sim_ms: int, count: int) -> None:
        """A chattering sensor (a pet, a curtain in a draught, a failing PIR): `count` rapid changes."""
        for _ in range(count):
            self.occupied = not self.occupied
            self._send(sim_ms, periodic=False, fault=Fault.BURST)
            sim_ms += int(self.rng.integers(300, 2_000))
        if self.occupied:
            self.occupied = False
            self._send(sim_ms, periodic=False, fault=Fault.BURST)

    def _send(self, sim_ms: int, *, periodic: bool, fault: Fault | None = None) -> None:
        ts = self.device_time(sim_ms)
        battery = self.battery(sim_ms)
        payload: BaseModel
        if self.uses_zigbee2mqtt:
            payload = motion_sensor.MotionSensorZigbee2mqtt(
                occupancy=self.occupied, battery=battery, linkquality=self.linkquality(),
                illuminance=self._illuminance(sim_ms) if self.measures_illuminance else None, last_seen=ts)
        else:
            payload = motion_sensor.MotionSensorEvent(
                ts=ts, occupancy=self.occupied, battery=battery if periodic else None)
        self.publish_reading(sim_ms, ts, payload, fault)

    def _illuminance(self, sim_ms: int) -> int:
        """Lux indoors: daylight through the window by day, a lamp or darkness at night."""
        hour = self.context.calendar.local_hour(sim_ms)
        if 7 <= hour < 17:
            return int(self.rng.integers(80, 400))
        if 6 <= hour < 7 or 17 <= hour < 19:
            return int(self.rng.integers(10, 80))
        return int(self.rng.integers(0, 6))


SIMULATOR = MotionSensor  # the name `simulators.device.simulator_for` looks for
