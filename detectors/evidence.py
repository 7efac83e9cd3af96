"""What counts as a sign of life, as small integer codes the detector takes in arrays.

The codes keep the detector free of device details: the hub (or the backtest) maps each reading to one
code once, and the detector only ever sees arrays of codes. Which readings are activity, and what they
tell, is declared by each device kind (`DeviceKind.sees` and `.activity` in `devices/`); the rules here
are generic and know no kind by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

from devices import KINDS
from devices.kind import ActivityRule, AnyTrue, CountAbove, FieldEdge, Sees

ENTRANCE = "entrance"
STILL_LOCATION = "still"
"""The backtest's location for a worn device's row that is its report of no steps."""


class Evidence(IntEnum):
    INDOOR = 0  # someone moving inside the home: ends an outing
    DOOR = 1  # the front door opened or closed: the resident may have gone out
    WORN = 2  # a worn wristband counted steps: alive wherever they are; ends an outing too
    CORRIDOR = 3  # the smart peephole saw the corridor: neighbours pass several times a day, so it
    # proves nothing about the resident and is ignored rather than resetting the clock
    STILL = 4  # a worn wristband reported no steps since its last report: not a sign of life, but the
    # band's own evidence of stillness, which the detector weighs against the wearer's habit


_OF_SEES = {Sees.INDOOR: Evidence.INDOOR, Sees.FRONT_DOOR: Evidence.DOOR, Sees.CORRIDOR: Evidence.CORRIDOR,
            Sees.WEARER: Evidence.WORN}


def evidence_of(kind: str, location: str) -> Evidence:
    """The code of an activity row (the backtest's `kind` and `location` columns). A front-door kind is
    front-door evidence only where it is placed on the entrance (a contact on the fridge is someone at
    home); any kind the hub does not know (pressure mats, appliances, …) is someone at home."""
    sees = KINDS[kind].sees if kind in KINDS else None
    place = location.strip().lower()
    if sees is Sees.WEARER and place == STILL_LOCATION:
        return Evidence.STILL
    if sees is Sees.FRONT_DOOR and place != ENTRANCE:
        return Evidence.INDOOR
    return Evidence.INDOOR if sees is None else _OF_SEES[sees]


def _matches(rule: ActivityRule, fields: Mapping[str, object], previous: Mapping[str, object] | None) -> bool:
    if isinstance(rule, FieldEdge):
        value = fields.get(rule.field)
        if rule.to is None:
            return isinstance(value, bool) and (previous is None or previous.get(rule.field) != value)
        return value is rule.to and (previous is None or previous.get(rule.field) is not rule.to)
    if isinstance(rule, AnyTrue):
        return any(fields.get(name) is True for name in rule.fields)
    count = fields.get(rule.field)
    return fields.get(rule.worn) is not False and isinstance(count, int) and count > 0


def _activity(kind: str, fields: Mapping[str, object],
              previous: Mapping[str, object] | None) -> ActivityRule | None:
    """The first of the kind's activity rules the reading meets; None for a reading that is no activity
    and for kinds the hub does not know (cameras and anything unknown are not about one home)."""
    device_kind = KINDS.get(kind)
    if device_kind is None:
        return None
    return next((rule for rule in device_kind.activity if _matches(rule, fields, previous)), None)


def is_activity(kind: str, fields: Mapping[str, object], previous: Mapping[str, object] | None) -> bool:
    """Whether a decoded reading (the fields `devices/` decoders produce) is activity, given the same
    device's previous reading (or None)."""
    return _activity(kind, fields, previous) is not None


def is_stillness(kind: str, fields: Mapping[str, object]) -> bool:
    """A worn device's periodic report that counted nothing (see `Evidence.STILL`)."""
    device_kind = KINDS.get(kind)
    return device_kind is not None and any(
        isinstance(rule, CountAbove) and fields.get(rule.worn) is True and fields.get(rule.field) == 0
        and all(fields.get(name) is not True for name in rule.unless_true)
        for rule in device_kind.activity
    )


def live_evidence(kind: str, fields: Mapping[str, object]) -> Evidence:
    """The code of a live reading that `is_activity` accepted: what the rule it met sees, else what the
    kind sees. Live front-door kinds are on the entrance (the registry places them on the household)."""
    rule = _activity(kind, fields, None)
    sees = (rule.sees if rule is not None else None) or (KINDS[kind].sees if kind in KINDS else None)
    return Evidence.INDOOR if sees is None else _OF_SEES[sees]
