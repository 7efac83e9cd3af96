"""门磁 — door contact sensor on a resident's front door: open/closed, battery, tamper."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from devices.kind import (
    Battery,
    CountedEvents,
    DeviceKind,
    EpochMs,
    Fault,
    FieldEdge,
    Payload,
    Reading,
    Sees,
    Zigbee2mqttPayload,
    parse,
    present,
)


class DoorSensorEvent(Payload):
    """Native payload on `sc/<community>/door_sensor/<device_id>/event`."""

    ts: EpochMs
    contact: Literal["open", "closed"]
    battery: Battery | None = None
    tamper: bool | None = None


class DoorSensorZigbee2mqtt(Zigbee2mqttPayload):
    """What Zigbee2MQTT publishes for a contact sensor. Note `contact: true` means the door is CLOSED."""

    contact: bool
    tamper: bool | None = None


def decode(raw: bytes) -> Reading:
    event = parse(DoorSensorEvent, raw)
    return Reading(
        event.ts, present(open=event.contact == "open", battery=event.battery, tamper=event.tamper)
    )


def decode_zigbee2mqtt(raw: bytes, received_ms: int) -> Reading:
    state = parse(DoorSensorZigbee2mqtt, raw)
    return Reading(
        state.ts_or(received_ms),
        present(open=not state.contact, battery=state.battery, tamper=state.tamper,
                linkquality=state.linkquality),
    )


KIND = DeviceKind(
    name="door_sensor",
    title="门磁 door contact sensor",
    event_model=DoorSensorEvent,
    decode=decode,
    example={"ts": "2026-11-23T08:15:02.120+08:00", "contact": "open", "battery": 87},
    checkin_interval=timedelta(hours=2),
    zigbee2mqtt_model=DoorSensorZigbee2mqtt,
    decode_zigbee2mqtt=decode_zigbee2mqtt,
    # Front-door evidence where it is placed on the entrance (see detectors.evidence).
    sees=Sees.FRONT_DOOR,
    activity=(FieldEdge("open"),),
    door_open_field="open",
    dashboard_events=(CountedEvents((("door opened", "open"),), when_true="open"),),
    # The case opened or the sensor pulled off its frame: it may no longer see the door.
    faults=(Fault("tamper", "tamper", when=True),),
)
