"""智能猫眼 — smart peephole on a resident's front door: motion, doorbell, lingering, comings and goings."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from devices.kind import (
    AnyTrue,
    Battery,
    CountedEvents,
    DeviceKind,
    EpochMs,
    NightEvent,
    Payload,
    Reading,
    Sees,
    parse,
    present,
)

PeepholeEventType = Literal[
    "motion", "doorbell", "lingering", "resident_left", "resident_returned", "heartbeat"
]


def _not_inline_media(value: str) -> str:
    if value.lstrip().lower().startswith("data:"):
        raise ValueError("must be a URL or an id, not inline media (data: URI)")
    return value


# A snapshot or clip is a reference (URL or id) to media stored elsewhere, never the media itself: images
# do not belong in MQTT messages or in InfluxDB fields.
MediaRef = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(_not_inline_media)]


class SmartPeepholeEvent(Payload):
    """Native payload on `sc/<community>/smart_peephole/<device_id>/event`."""

    ts: EpochMs
    event: PeepholeEventType
    lingering_s: Annotated[int, Field(ge=0)] | None = None
    snapshot: MediaRef | None = None
    battery: Battery | None = None


def decode(raw: bytes) -> Reading:
    event = parse(SmartPeepholeEvent, raw)
    return Reading(
        event.ts,
        {event.event: True}
        | present(lingering_s=event.lingering_s, snapshot=event.snapshot, battery=event.battery),
    )


KIND = DeviceKind(
    name="smart_peephole",
    title="智能猫眼 smart peephole",
    event_model=SmartPeepholeEvent,
    decode=decode,
    example={
        "ts": "2026-11-23T21:40:11.500+08:00",
        "event": "lingering",
        "lingering_s": 95,
        "snapshot": "https://media.example.com/peephole/3-2-1402/20261123T214011.jpg",
        "battery": 64,
    },
    checkin_interval=timedelta(minutes=30),
    # Its plain motion is the corridor; its own word that the resident left or came back is the door.
    sees=Sees.CORRIDOR,
    activity=(AnyTrue(("resident_returned", "resident_left"), sees=Sees.FRONT_DOOR), AnyTrue(("motion",))),
    dashboard_events=(CountedEvents((("doorbell", "doorbell"), ("lingering", "lingering"),
                                     ("resident left", "resident_left"),
                                     ("resident returned", "resident_returned"))),),
    night_events=(NightEvent("lingering", "door_lingering", media="snapshot", details=("lingering_s",)),),
)
