"""人体感应 — PIR motion sensor in a resident's home: occupancy, battery, illuminance."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field

from devices.kind import (
    Battery,
    CountedEvents,
    DeviceKind,
    EpochMs,
    FieldEdge,
    Payload,
    Reading,
    Sees,
    Zigbee2mqttPayload,
    parse,
    present,
)


class MotionSensorEvent(Payload):
    """Native payload on `sc/<community>/motion_sensor/<device_id>/event`."""

    ts: EpochMs
    occupancy: bool
    battery: Battery | None = None


class MotionSensorZigbee2mqtt(Zigbee2mqttPayload):
    """What Zigbee2MQTT publishes for an occupancy sensor; `illuminance` only on models that measure it."""

    occupancy: bool
    illuminance: Annotated[int, Field(ge=0)] | None = None


def decode(raw: bytes) -> Reading:
    event = parse(MotionSensorEvent, raw)
    return Reading(event.ts, present(occupancy=event.occupancy, battery=event.battery))


def decode_zigbee2mqtt(raw: bytes, received_ms: int) -> Reading:
    state = parse(MotionSensorZigbee2mqtt, raw)
    return Reading(
        state.ts_or(received_ms),
        present(occupancy=state.occupancy, battery=state.battery, linkquality=state.linkquality,
                illuminance=state.illuminance),
    )


KIND = DeviceKind(
    name="motion_sensor",
    title="人体感应 PIR motion sensor",
    event_model=MotionSensorEvent,
    decode=decode,
    example={"ts": "2026-11-23T06:52:47.310+08:00", "occupancy": True, "battery": 93},
    checkin_interval=timedelta(hours=2),
    zigbee2mqtt_model=MotionSensorZigbee2mqtt,
    decode_zigbee2mqtt=decode_zigbee2mqtt,
    sees=Sees.INDOOR,
    # Only motion starting: occupancy turning false is the sensor's timeout running out.
    activity=(FieldEdge("occupancy", to=True),),
    dashboard_events=(CountedEvents((("motion", "occupancy"),), when_true="occupancy"),),
)
