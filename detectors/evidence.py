"""What counts as a sign of life, as small integer codes the detector takes in arrays.

The codes keep the detector free of device details: the hub (or the backtest) maps each reading to one
code once, and the detector only ever sees arrays of codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

ENTRANCE = "entrance"
STILL_LOCATION = "still"
"""The backtest's location for a wristband row that is a worn band's report of no steps."""


class Evidence(IntEnum):
    INDOOR = 0  # someone moving inside the home: ends an outing
    DOOR = 1  # the front door opened or closed: the resident may have gone out
    WORN = 2  # a worn wristband counted steps: alive wherever they are; ends an outing too
    CORRIDOR = 3  # the smart peephole saw the corridor: neighbours pass several times a day, so it
    # proves nothing about the resident and is ignored rather than resetting the clock
    STILL = 4  # a worn wristband reported no steps since its last report: not a sign of life, but the
    # band's own evidence of stillness, which the detector weighs against the wearer's habit


def evidence_of(kind: str, location: str) -> Evidence:
    """The code of an activity row (the backtest's `kind` and `location` columns)."""
    if kind == "smart_peephole":
        return Evidence.CORRIDOR
    if kind == "door_sensor" and location.strip().lower() == ENTRANCE:
        return Evidence.DOOR
    if kind == "wristband":
        return Evidence.STILL if location.strip().lower() == STILL_LOCATION else Evidence.WORN
    return Evidence.INDOOR  # any other kind (pressure mats, appliances, …) is someone at home


def is_activity(kind: str, fields: Mapping[str, object], previous: Mapping[str, object] | None) -> bool:
    """Whether a decoded reading (the fields `devices/` decoders produce) is activity, given the same
    device's previous reading (or None).

    Door and motion sensors repeat their state in periodic reports; only a change is activity, and for a
    motion sensor only motion starting (occupancy turning false is its timeout running out).
    """
    if kind == "door_sensor":
        is_open = fields.get("open")
        return isinstance(is_open, bool) and (previous is None or previous.get("open") != is_open)
    if kind == "motion_sensor":
        return fields.get("occupancy") is True and (previous is None or previous.get("occupancy") is not True)
    if kind == "smart_peephole":
        return any(fields.get(event) is True for event in ("motion", "resident_returned", "resident_left"))
    if kind == "wristband":
        steps = fields.get("steps")
        worn = fields.get("worn") is not False
        return (worn and isinstance(steps, int) and steps > 0) or fields.get("sos") is True
    return False  # cameras and anything unknown in the live stream are not about one home


def is_stillness(kind: str, fields: Mapping[str, object]) -> bool:
    """A worn wristband's periodic report that counted no steps (see `Evidence.STILL`)."""
    return (kind == "wristband" and fields.get("worn") is True and fields.get("steps") == 0
            and fields.get("sos") is not True and fields.get("fall") is not True)


def live_evidence(kind: str, fields: Mapping[str, object]) -> Evidence:
    """The code of a live reading that `is_activity` accepted. The peephole's own word that the resident
    left or came back is front-door evidence; its plain motion is the corridor."""
    if kind == "smart_peephole" and (
        fields.get("resident_left") is True or fields.get("resident_returned") is True
    ):
        return Evidence.DOOR
    return evidence_of(kind, ENTRANCE if kind == "door_sensor" else "home")
