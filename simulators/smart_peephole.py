"""智能猫眼 simulator: the smart peephole on the front door (native only: it talks Wi-Fi, not Zigbee)."""

from __future__ import annotations

from datetime import UTC, datetime

from devices import smart_peephole
from simulators.device import SimulatedDevice
from simulators.message import MINUTE_MS, SECOND_MS, Fault

MEDIA_BASE = "https://media.example.com/peephole"


class SmartPeephole(SimulatedDevice):
    kind = smart_peephole.KIND
    report_interval_ms = 15 * MINUTE_MS
    battery_drain_per_day = 1.5  # rechargeable; residents top it up when it runs low

    def event(self, sim_ms: int, event: smart_peephole.PeepholeEventType, *, lingering_s: int | None = None,
              snapshot: bool = False, fault: Fault | None = None) -> None:
        ts = self.device_time(sim_ms)
        self.publish_reading(sim_ms, ts, smart_peephole.SmartPeepholeEvent(
            ts=ts, event=event, lingering_s=lingering_s, snapshot=self._snapshot(ts) if snapshot else None,
        ), fault)

    def report(self, sim_ms: int) -> None:
        ts = self.device_time(sim_ms)
        self.publish_reading(sim_ms, ts, smart_peephole.SmartPeepholeEvent(
            ts=ts, event="heartbeat", battery=self.battery(sim_ms)))

    def burst(self, sim_ms: int, count: int) -> None:
        """Motion after motion: children playing in the corridor, a flickering corridor light."""
        for _ in range(count):
            self.event(sim_ms, "motion", fault=Fault.BURST)
            sim_ms += int(self.rng.integers(500, 3_000))

    def _snapshot(self, ts: int) -> str:
        """A reference to the picture, never the picture: media stays out of MQTT."""
        stamp = datetime.fromtimestamp(ts / SECOND_MS, UTC).strftime("%Y%m%dT%H%M%S%f")[:-3]
        return f"{MEDIA_BASE}/{self.id}/{stamp}.jpg"


SIMULATOR = SmartPeephole  # the name `simulators.device.simulator_for` looks for
