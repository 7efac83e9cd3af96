"""智能手环 — wristband worn by an elderly resident: SOS, fall detection, steps, heart rate, location."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, model_validator

from devices.kind import (
    AnyTrue,
    Battery,
    CountAbove,
    CountedEvents,
    DeviceKind,
    EpochMs,
    Payload,
    Position,
    Reading,
    Sees,
    Vital,
    Zigbee2mqttPayload,
    parse,
    present,
)


class Location(Payload):
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    accuracy_m: Annotated[float, Field(ge=0)] | None = None


class WristbandEvent(Payload):
    """Native payload on `sc/<community>/wristband/<device_id>/event`; `steps` counts since the last one."""

    ts: EpochMs
    sos: bool | None = None
    fall: bool | None = None
    steps: Annotated[int, Field(ge=0)] | None = None
    heart_rate: Annotated[int, Field(ge=20, le=250)] | None = None
    worn: bool | None = None
    battery: Battery | None = None
    location: Location | None = None

    @model_validator(mode="after")
    def _carries_a_measurement(self) -> WristbandEvent:
        if all(
            value is None
            for value in (self.sos, self.fall, self.steps, self.heart_rate, self.worn, self.battery)
        ):
            raise ValueError("payload carries none of sos, fall, steps, heart_rate, worn, battery")
        return self


class WristbandZigbee2mqtt(Zigbee2mqttPayload):
    """What Zigbee2MQTT publishes for an SOS button or pendant.

    A press arrives as `"action": "emergency"` immediately followed by a reset `"action": ""` carrying the
    same `last_seen`: that pair is ONE press. Only the press carries `sos: true`; the reset (or any other
    action) carries no `sos` at all, because it reports no new state: stored at the same time, it merges
    into the press instead of overwriting it with `sos: false`.
    """

    action: str | None = None


def decode(raw: bytes) -> Reading:
    event = parse(WristbandEvent, raw)
    location = event.location
    return Reading(
        event.ts,
        present(
            sos=event.sos,
            fall=event.fall,
            steps=event.steps,
            heart_rate=event.heart_rate,
            worn=event.worn,
            battery=event.battery,
            lat=float(location.lat) if location else None,
            lon=float(location.lon) if location else None,
            accuracy_m=float(location.accuracy_m) if location and location.accuracy_m is not None else None,
        ),
    )


def decode_zigbee2mqtt(raw: bytes, received_ms: int) -> Reading:
    state = parse(WristbandZigbee2mqtt, raw)
    return Reading(
        state.ts_or(received_ms),
        present(sos=True if state.action == "emergency" else None, battery=state.battery,
                linkquality=state.linkquality),
    )


KIND = DeviceKind(
    name="wristband",
    title="智能手环 wristband",
    event_model=WristbandEvent,
    decode=decode,
    example={
        "ts": "2026-11-23T07:30:00.000+08:00",
        "steps": 412,
        "heart_rate": 78,
        "worn": True,
        "battery": 71,
        "location": {"lat": 31.2304, "lon": 121.4737, "accuracy_m": 12.5},
    },
    checkin_interval=timedelta(hours=1),
    zigbee2mqtt_model=WristbandZigbee2mqtt,
    decode_zigbee2mqtt=decode_zigbee2mqtt,
    urgent_marks=(b'"sos"', b'"fall"', b'"emergency"'),
    sees=Sees.WEARER,
    # An SOS press is someone alive too, worn or not.
    activity=(CountAbove("steps", worn="worn", unless_true=("sos", "fall")), AnyTrue(("sos",))),
    immediate_alerts=("sos", "fall"),
    dashboard_events=(CountedEvents((("SOS", "sos"),), when_true="sos"),
                      CountedEvents((("fall", "fall"),), when_true="fall")),
    vitals=(Vital("heart_rate", "heart_rate", worn="worn"),),
    worn_field="worn",
    position=Position("lat", "lon", accuracy="accuracy_m"),
)
