"""高空抛物摄像机 simulator: a camera watching a building's facade (native only, mains powered)."""

from __future__ import annotations

from datetime import UTC, datetime

from devices import high_altitude_camera as camera
from devices.registry import Device
from simulators.device import DeviceContext, DevicePlan, SimulatedDevice
from simulators.message import MINUTE_MS, SECOND_MS

MEDIA_BASE = "https://media.example.com/hac"
_FRAME_MS = 100  # the tracker samples the falling object every 100 ms


class HighAltitudeCamera(SimulatedDevice):
    kind = camera.KIND
    report_interval_ms = 5 * MINUTE_MS
    battery_drain_per_day = None

    def __init__(self, entry: Device, context: DeviceContext, plan: DevicePlan | None = None) -> None:
        super().__init__(entry, context, plan)
        if entry.building is None:
            raise ValueError(f"camera {entry.id} is not placed on a building")
        self.building = entry.building
        self._nominal_fps = float(self.rng.choice([15.0, 20.0, 25.0]))
        self._events = 0

    def report(self, sim_ms: int) -> None:
        ts = self.device_time(sim_ms)
        fps = round(self._nominal_fps - abs(float(self.rng.normal(0, 0.3))), 1)
        if self.fault("low_frame_rate", sim_ms):
            fps = round(fps / 4, 1)  # an overloaded encoder
        self.publish_reading(sim_ms, ts, camera.HighAltitudeCameraEvent(camera.CameraHealth(
            type="health", ts=ts, camera_id=self.id, online=not self.fault("camera_offline", sim_ms),
            fps=fps, lens_blocked=bool(self.fault("lens_blocked", sim_ms)),
            storage_ok=not self.fault("storage_failed", sim_ms))))

    def falling_object(self, sim_ms: int, *, floor_min: int, floor_max: int, confidence: float) -> None:
        """A detection: the object's track down the facade (pixels), ending at `sim_ms`."""
        ts = self.device_time(sim_ms)
        self._events += 1
        stamp = datetime.fromtimestamp(ts / SECOND_MS, UTC).strftime("%Y%m%d-%H%M%S")
        event_id = f"{self.id}-{stamp}-{self._events:04d}"
        points = int(self.rng.integers(6, 16))
        x = float(self.rng.uniform(100, 1800))
        drift = float(self.rng.normal(0, 8))
        trajectory = []
        for i in range(points):
            seconds = i * _FRAME_MS / SECOND_MS
            trajectory.append(camera.TrajectoryPoint(
                t=ts - (points - 1 - i) * _FRAME_MS,
                x=round(x + drift * i, 1),
                y=round(40 + 0.5 * 9.81 * seconds**2 * 120, 1),  # free fall, ~120 px per metre
            ))
        self.publish_reading(sim_ms, ts, camera.HighAltitudeCameraEvent(camera.FallingObject(
            type="falling_object", ts=ts, event_id=event_id, camera_id=self.id, building=self.building,
            floor_min=floor_min, floor_max=floor_max, trajectory=trajectory, confidence=confidence,
            clip=f"{MEDIA_BASE}/{self.id}/{event_id}.mp4",
        )))


SIMULATOR = HighAltitudeCamera  # the name `simulators.device.simulator_for` looks for
