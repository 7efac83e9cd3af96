"""门磁 simulator: the entrance door's contact sensor, native or through Zigbee2MQTT."""

from __future__ import annotations

from pydantic import BaseModel

from devices import door_sensor
from devices.registry import Device
from simulators.device import DeviceContext, DevicePlan, SimulatedDevice
from simulators.message import HOUR_MS


class DoorSensor(SimulatedDevice):
    kind = door_sensor.KIND
    report_interval_ms = HOUR_MS
    battery_drain_per_day = 0.08  # a CR2032 lasts a couple of years

    def __init__(self, entry: Device, context: DeviceContext, plan: DevicePlan | None = None) -> None:
        super().__init__(entry, context, plan)
        self.is_open = False

    def set_open(self, sim_ms: int, *, is_open: bool) -> None:
        """A contact change; a real sensor reports changes only, so a repeated state sends nothing."""
        if is_open != self.is_open:
            self.is_open = is_open
            self._send(sim_ms, periodic=False)

    def report(self, sim_ms: int) -> None:
        self._send(sim_ms, periodic=True)

    def _send(self, sim_ms: int, *, periodic: bool) -> None:
        ts = self.device_time(sim_ms)
        battery = self.battery(sim_ms)
        tamper = self.fault("tamper", sim_ms)
        payload: BaseModel
        if self.uses_zigbee2mqtt:
            # Zigbee2MQTT publishes its whole cached state every time, battery included.
            payload = door_sensor.DoorSensorZigbee2mqtt(
                contact=not self.is_open, battery=battery, voltage=_voltage_mv(battery),
                linkquality=self.linkquality(), last_seen=ts, tamper=tamper)
        else:
            payload = door_sensor.DoorSensorEvent(
                ts=ts, contact="open" if self.is_open else "closed", battery=battery if periodic else None,
                tamper=tamper)
        self.publish_reading(sim_ms, ts, payload)


def _voltage_mv(battery: int | None) -> int | None:
    """A CR2032 reads about 3.0 V full and 2.5 V empty; Zigbee2MQTT reports both figures."""
    return None if battery is None else 2500 + 5 * battery


SIMULATOR = DoorSensor  # the name `simulators.device.simulator_for` looks for
