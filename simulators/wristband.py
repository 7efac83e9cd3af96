"""智能手环 simulator: the resident's wristband (native, cellular) or a Zigbee SOS pendant (Zigbee2MQTT).

The native band reports every 5 minutes what it measured: steps since the last report, pulse, whether
it is on the wrist, battery, and a GPS fix when outdoors. It needs charging every week or so, and is off
the wrist while it charges. The Zigbee pendant only knows its button and its battery.
"""

from __future__ import annotations

from devices import wristband
from devices.registry import Device
from simulators.device import DeviceContext, DevicePlan, SimulatedDevice
from simulators.message import HOUR_MS, MINUTE_MS
from simulators.residents import AWAKE_AT_HOME, Place, Wearer

_NATIVE_DRAIN_PER_HOUR = 5.0 / 24   # percent
_CHARGE_PER_HOUR = 40.0
_CHARGE_BELOW = 45.0                 # residents put it on the charger in the evening once it is this low


class Wristband(SimulatedDevice):
    kind = wristband.KIND
    report_interval_ms = 5 * MINUTE_MS  # the 5-minute upload of 4G elderly-care watches
    battery_drain_per_day = 0.05  # the Zigbee pendant's coin cell; the native band is modelled below

    def __init__(self, entry: Device, context: DeviceContext, plan: DevicePlan | None = None) -> None:
        super().__init__(entry, context, plan)
        if entry.resident is None or entry.resident not in context.wearers:
            raise ValueError(f"wristband {entry.id} has no wearer")
        self.wearer: Wearer = context.wearers[entry.resident]
        if self.uses_zigbee2mqtt:
            self.report_interval_ms = 40 * MINUTE_MS  # battery reports, within the kind's 1 h check-in
        self._last_report_ms = context.calendar.start_ms
        self._level = float(self.rng.uniform(50, 100))
        self._level_ms = context.calendar.start_ms
        self._charging_until_ms = 0

    def report(self, sim_ms: int) -> None:
        if self.uses_zigbee2mqtt:
            self._send_pendant(sim_ms, action=None)
            return
        battery = self._native_battery(sim_ms)
        charging = sim_ms < self._charging_until_ms
        worn = self.wearer.worn_at(sim_ms) and not charging
        steps = self.wearer.steps_between(self._last_report_ms, sim_ms) if not charging else 0
        self._last_report_ms = sim_ms
        place = self.wearer.place_at(sim_ms)
        ts = self.device_time(sim_ms)
        self.publish_reading(sim_ms, ts, wristband.WristbandEvent(
            ts=ts, steps=steps if worn else None,
            heart_rate=self._heart_rate(place, sim_ms) if worn else None, worn=worn, battery=battery,
            location=self._location(sim_ms) if worn and place == Place.OUT else None,
        ))

    def press_sos(self, sim_ms: int) -> None:
        if self.uses_zigbee2mqtt:
            # One press is two messages: the action, then Zigbee2MQTT clearing it. Both carry the same
            # `last_seen` (the device sent one frame), so the hub stores one reading per press.
            self._send_pendant(sim_ms, action="emergency")
            self._send_pendant(sim_ms, action="")
            return
        ts = self.device_time(sim_ms)
        place = self.wearer.place_at(sim_ms)
        self.publish_reading(sim_ms, ts, wristband.WristbandEvent(
            ts=ts, sos=True, worn=True, heart_rate=self._heart_rate(place) + 15,
            battery=self._native_battery(sim_ms),
            location=self._location(sim_ms) if place == Place.OUT else None,
        ))

    def report_vitals(self, sim_ms: int) -> None:
        """An extra measurement on the wrist (the band measures more often while the pulse is unusual)."""
        ts = self.device_time(sim_ms)
        self.publish_reading(sim_ms, ts, wristband.WristbandEvent(
            ts=ts, worn=True, heart_rate=self._heart_rate(self.wearer.place_at(sim_ms), sim_ms),
            battery=self._native_battery(sim_ms)))

    def report_position(self, sim_ms: int) -> None:
        """A report from wherever the wearer has wandered off to (the band reports a fix while outdoors)."""
        ts = self.device_time(sim_ms)
        self.publish_reading(sim_ms, ts, wristband.WristbandEvent(
            ts=ts, worn=True, heart_rate=self._heart_rate(Place.OUT, sim_ms),
            battery=self._native_battery(sim_ms), location=self._location(sim_ms)))

    def report_fall(self, sim_ms: int) -> None:
        """Fall detection is a native-band feature; a Zigbee pendant cannot tell."""
        if self.uses_zigbee2mqtt:
            raise ValueError(f"{self.id} is a Zigbee SOS pendant: it has no fall detection")
        ts = self.device_time(sim_ms)
        self.publish_reading(sim_ms, ts, wristband.WristbandEvent(
            ts=ts, fall=True, worn=True, heart_rate=self._heart_rate(Place.IMMOBILE) + 30,
            battery=self._native_battery(sim_ms),
        ))

    def _send_pendant(self, sim_ms: int, action: str | None) -> None:
        ts = self.device_time(sim_ms)
        self.publish_reading(sim_ms, ts, wristband.WristbandZigbee2mqtt(
            action=action, battery=self.battery(sim_ms), linkquality=self.linkquality(), last_seen=ts))

    def _native_battery(self, sim_ms: int) -> int:
        """The band's charge now. When low, its wearer charges it at home in the evening."""
        hours = max(0, sim_ms - self._level_ms) / HOUR_MS
        if sim_ms <= self._charging_until_ms:
            self._level = min(100.0, self._level + _CHARGE_PER_HOUR * hours)
        else:
            self._level = max(0.0, self._level - _NATIVE_DRAIN_PER_HOUR * hours)
        self._level_ms = max(self._level_ms, sim_ms)
        evening = 18 <= self.context.calendar.local_hour(sim_ms) < 22
        if (self._level < _CHARGE_BELOW and evening and sim_ms > self._charging_until_ms
                and self.wearer.place_at(sim_ms) in AWAKE_AT_HOME):
            self._charging_until_ms = sim_ms + int((100 - self._level) / _CHARGE_PER_HOUR * HOUR_MS)
        return int(self._level)

    def _heart_rate(self, place: Place, sim_ms: int | None = None) -> int:
        planned = None if sim_ms is None else self.vital("heart_rate", sim_ms)
        resting = self.wearer.resting_heart_rate
        if place == Place.ASLEEP:
            rate = resting - 6 + self.rng.normal(0, 3)
        elif place == Place.OUT:
            rate = resting + self.rng.normal(22, 8)
        elif place == Place.IMMOBILE:
            rate = resting + self.rng.normal(-4, 6)
        else:
            rate = resting + self.rng.normal(4, 4)
        return planned if planned is not None else int(min(180, max(40, rate)))

    def _location(self, sim_ms: int) -> wristband.Location:
        """A GPS fix somewhere within a kilometre or so of home, or where the wearer wandered off to."""
        home = self.context.home
        fix = wristband.Location(lat=round(home.lat + float(self.rng.normal(0, 0.004)), 6),
                                 lon=round(home.lon + float(self.rng.normal(0, 0.004)), 6),
                                 accuracy_m=round(float(self.rng.uniform(4, 30)), 1))
        away = self.position(sim_ms)
        if away is None:
            return fix
        return wristband.Location(lat=away.lat, lon=away.lon, accuracy_m=fix.accuracy_m)


SIMULATOR = Wristband  # the name `simulators.device.simulator_for` looks for
