"""Availability messages: `online`/`offline`, plain (legacy Zigbee2MQTT, MQTT last wills) or JSON.

Zigbee2MQTT publishes `zigbee2mqtt/<name>/availability` as the plain string in its legacy mode and as
`{"state": "online"}` since 1.x's `availability` option; native devices use the same two forms on
`sc/<community>/<kind>/<device_id>/availability`, retained, also as their last will.
"""

from __future__ import annotations

from typing import Literal

from devices.kind import DecodeError, EpochMs, Payload, Reason, parse

_PLAIN = {b"online": True, b"offline": False}


class AvailabilityState(Payload):
    state: Literal["online", "offline"]
    ts: EpochMs | None = None


def decode_availability(raw: bytes) -> tuple[bool, int | None]:
    """Return (online, device time if the message carried one)."""
    plain = _PLAIN.get(raw.strip())
    if plain is not None:
        return plain, None
    if not raw.lstrip().startswith(b"{"):
        raise DecodeError(Reason.INVALID_PAYLOAD, 'availability must be online, offline or {"state": ...}')
    message = parse(AvailabilityState, raw)
    return message.state == "online", message.ts
