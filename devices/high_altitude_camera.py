"""高空抛物摄像机 — camera watching a building's facade for objects thrown or falling from height.

Two messages share the event topic, told apart by `type`: a `falling_object` detection (which floors it
probably came from, the trajectory, a reference to the clip) and the camera's periodic `health` report.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, RootModel, model_validator

from devices.kind import CountedEvents, DeviceKind, EpochMs, Fault, Payload, Reading, parse, present
from devices.smart_peephole import MediaRef

CameraId = Annotated[str, Field(min_length=1, max_length=128)]


class TrajectoryPoint(Payload):
    """Where the object was in the frame (pixels) at time `t`."""

    t: EpochMs
    x: float
    y: float


class FallingObject(Payload):
    type: Literal["falling_object"]
    ts: EpochMs
    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    camera_id: CameraId
    building: Annotated[str, Field(min_length=1, max_length=128)]
    floor_min: Annotated[int, Field(ge=1)]
    floor_max: Annotated[int, Field(ge=1)]
    trajectory: Annotated[list[TrajectoryPoint], Field(max_length=500)]
    confidence: Annotated[float, Field(ge=0, le=1)]
    clip: MediaRef | None = None

    @model_validator(mode="after")
    def _floors_in_order(self) -> FallingObject:
        if self.floor_max < self.floor_min:
            raise ValueError(f"floor_max {self.floor_max} is below floor_min {self.floor_min}")
        return self


class CameraHealth(Payload):
    type: Literal["health"]
    ts: EpochMs
    camera_id: CameraId
    online: bool
    fps: Annotated[float, Field(ge=0)] | None = None
    lens_blocked: bool | None = None
    storage_ok: bool | None = None


CameraMessage = Annotated[FallingObject | CameraHealth, Field(discriminator="type")]


class HighAltitudeCameraEvent(RootModel[CameraMessage]):
    """Native payload on `sc/<community>/high_altitude_camera/<device_id>/event`, either message type."""

    model_config = ConfigDict(frozen=True)


def decode(raw: bytes) -> Reading:
    event = parse(HighAltitudeCameraEvent, raw).root
    if isinstance(event, FallingObject):
        return Reading(
            event.ts,
            present(
                falling_object=True,
                event_id=event.event_id,
                camera_id=event.camera_id,
                building=event.building,
                floor_min=event.floor_min,
                floor_max=event.floor_max,
                confidence=float(event.confidence),
                trajectory_points=len(event.trajectory),
                # Where the object was first seen (pixel rows grow downwards): the hub turns it into a
                # floor with the camera's floor lines from the registry.
                first_row=float(min(event.trajectory, key=lambda p: p.t).y) if event.trajectory else None,
                clip=event.clip,
            ),
        )
    return Reading(
        event.ts,
        present(
            health=True,
            camera_id=event.camera_id,
            online=event.online,
            fps=float(event.fps) if event.fps is not None else None,
            lens_blocked=event.lens_blocked,
            storage_ok=event.storage_ok,
        ),
    )


KIND = DeviceKind(
    name="high_altitude_camera",
    title="高空抛物摄像机 high-altitude throwing camera",
    event_model=HighAltitudeCameraEvent,
    decode=decode,
    example={
        "ts": "2026-11-23T14:03:27.880+08:00",
        "type": "falling_object",
        "event_id": "hac-07-20261123-140327-0012",
        "camera_id": "hac-07",
        "building": "7",
        "floor_min": 12,
        "floor_max": 14,
        "trajectory": [
            {"t": "2026-11-23T14:03:27.480+08:00", "x": 412.0, "y": 88.5},
            {"t": "2026-11-23T14:03:27.680+08:00", "x": 415.5, "y": 301.0},
            {"t": "2026-11-23T14:03:27.880+08:00", "x": 419.0, "y": 702.5},
        ],
        "confidence": 0.91,
        "clip": "https://media.example.com/hac/hac-07/20261123-140327-0012.mp4",
    },
    checkin_interval=timedelta(minutes=10),
    urgent_marks=(b'"falling_object"',),
    immediate_alerts=("falling_object",),
    dashboard_events=(CountedEvents((("falling object", "falling_object"),), when_true="falling_object"),),
    # Watching every facade around the clock is the camera's whole purpose: each of these leaves a facade
    # unwatched. Below 10 frames/s a falling object crosses a floor between two frames; one slow sample
    # (a busy encoder) is not a fault, two in a row are.
    faults=(
        Fault("camera_offline", "online", when=False),
        Fault("lens_blocked", "lens_blocked", when=True),
        Fault("storage_failed", "storage_ok", when=False),
        Fault("low_frame_rate", "fps", below=10.0, reports=2),
    ),
    first_row_field="first_row",
)
