"""What a device kind is: a payload model plus small pure decoders, registered in `devices.KINDS`.

A decoder turns the raw bytes of one MQTT message into a `Reading`: the device's own timestamp and a flat
dict of typed fields. Field names and types are fixed per kind because the same fields become InfluxDB
fields, and InfluxDB refuses a field that changes type. Decoders do no I/O and never look at a clock:
whatever they need (the time the hub received the message, for Zigbee2MQTT payloads without
`last_seen`) is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

Scalar = bool | int | float | str
Fields = dict[str, Scalar]

# Epoch milliseconds below this are almost certainly epoch *seconds* (1e11 ms is March 1973); above the
# upper bound (year 2100) the number is garbage. Both are clear errors rather than silently wrong times.
_MIN_EPOCH_MS = 100_000_000_000
_MAX_EPOCH_MS = 4_102_444_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MAX_FUTURE_SKEW_MS = 600_000
"""By default, how far a device's `ts` may run ahead of the receiving hub's clock before the reading is
refused (`Reason.TS_IN_FUTURE`); the hub's setting overrides it, the simulators predict refusals by it."""


class Reason(StrEnum):
    """Why a message became a dead letter. Decoders raise the first four; the hub adds the rest."""

    NOT_UTF8 = "not_utf8"
    INVALID_JSON = "invalid_json"
    INVALID_PAYLOAD = "invalid_payload"
    MISSING_TS = "missing_ts"
    TS_IN_FUTURE = "ts_in_future"
    TOO_OLD = "too_old"
    TOO_LARGE = "too_large"
    UNKNOWN_TOPIC = "unknown_topic"
    UNKNOWN_DEVICE = "unknown_device"
    TOPIC_MISMATCH = "topic_mismatch"
    DECODER_ERROR = "decoder_error"
    STORE_REFUSED = "store_refused"


class DecodeError(ValueError):
    """A payload a decoder refuses, with the dead-letter reason and a sentence for the operator."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def to_epoch_ms(value: object) -> int:
    """Accept ISO 8601 with an offset (`Z` included) or epoch milliseconds; refuse everything else."""
    if isinstance(value, bool):
        raise ValueError("ts must be ISO 8601 with an offset or epoch milliseconds, not a boolean")
    if isinstance(value, int | float):
        # NaN passes both range checks below (every comparison with it is false).
        if isinstance(value, float) and math.isnan(value):
            raise ValueError("ts is NaN, not epoch milliseconds")
        if value < _MIN_EPOCH_MS:
            raise ValueError(f"ts {value} is not epoch milliseconds (epoch seconds? multiply by 1000)")
        if value > _MAX_EPOCH_MS:
            raise ValueError(f"ts {value} is beyond the year 2100")
        return int(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"ts {value!r} is not ISO 8601") from None
        if moment.tzinfo is None:
            raise ValueError(f"ts {value!r} has no UTC offset; devices must send one (e.g. +08:00 or Z)")
        return to_epoch_ms((moment - _EPOCH) // timedelta(milliseconds=1))
    raise ValueError("ts must be ISO 8601 with an offset or epoch milliseconds")


def epoch_ms_to_iso(ms: int) -> str:
    """The inverse of `to_epoch_ms` for building payloads: UTC ISO 8601 with millisecond precision."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


EpochMs = Annotated[int, BeforeValidator(to_epoch_ms)]
Battery = Annotated[int, Field(ge=0, le=100)]  # percent, the same field in every kind


class Payload(BaseModel):
    """Base of every payload model. Unknown keys are ignored so newer firmware does not break intake.

    Non-finite numbers (`Infinity`, `NaN`, or `1e999`, which overflows to infinity) are refused: they are
    not JSON, so the store's JSON functions refuse the stored fields later, and no sensor measures them.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class Reading:
    """One decoded message: the device's own time (epoch ms) and its normalized fields."""

    ts: int
    fields: Fields


PayloadT = TypeVar("PayloadT", bound=BaseModel)


def parse(model: type[PayloadT], raw: bytes) -> PayloadT:
    """Validate raw JSON bytes against `model`, turning pydantic's errors into a dead-letter reason.

    pydantic-core parses the JSON itself (in Rust), which is several times faster than `json.loads`
    followed by validation; the cost is that we classify its errors here.
    """
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise _classify(exc, raw) from None


def _classify(exc: ValidationError, raw: bytes) -> DecodeError:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return DecodeError(Reason.NOT_UTF8, f"payload is not UTF-8 (byte {bad.start})")
        return DecodeError(Reason.INVALID_JSON, f"payload is not JSON: {first['msg']}")
    if first["type"] == "model_type" and not first["loc"]:
        return DecodeError(Reason.INVALID_PAYLOAD, "payload must be a JSON object")
    for error in errors:
        loc = error["loc"]
        # ("ts",) on a plain model; a tagged union (a RootModel) puts the tag first: ("health", "ts").
        if error["type"] == "missing" and loc[-1:] in (("ts",), ("last_seen",)) and len(loc) <= 2:
            return DecodeError(Reason.MISSING_TS, "payload has no `ts` (ISO 8601 with offset or epoch ms)")
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in errors[:5])
    return DecodeError(Reason.INVALID_PAYLOAD, detail)


def present(**fields: Scalar | None) -> Fields:
    """Drop the optional fields a payload did not carry: absent is not the same as zero or false."""
    return {name: value for name, value in fields.items() if value is not None}


class Sees(StrEnum):
    """What a kind's activity readings tell about the resident of the home it is placed in."""

    INDOOR = "indoor"          # someone moving inside the home
    FRONT_DOOR = "front_door"  # the front door: the resident may have gone out or come back
    CORRIDOR = "corridor"      # the corridor outside: neighbours pass too, so it proves nothing
    WEARER = "wearer"          # worn by the resident: alive wherever they are


@dataclass(frozen=True, slots=True)
class FieldEdge:
    """Activity when boolean `field` changes (to `to` only, when given), against the device's previous
    reading: sensors that repeat their state in periodic reports are active only on a change."""

    field: str
    to: bool | None = None
    sees: Sees | None = None  # None: the kind's own `sees`


@dataclass(frozen=True, slots=True)
class AnyTrue:
    """Activity when any of `fields` is true in the reading (one-off events such as a doorbell)."""

    fields: tuple[str, ...]
    sees: Sees | None = None


@dataclass(frozen=True, slots=True)
class CountAbove:
    """Activity when counter `field` (counted since the device's previous report) is above zero, unless
    boolean `worn` says the device was not worn. A report counting zero while `worn` is true, with none
    of `unless_true` true, is the device's evidence of stillness rather than activity."""

    field: str
    worn: str
    unless_true: tuple[str, ...] = ()
    sees: Sees | None = None


ActivityRule = FieldEdge | AnyTrue | CountAbove


@dataclass(frozen=True, slots=True)
class CountedEvents:
    """Readings a community dashboard counts as this kind's events: column label -> counted field, only
    readings with boolean `when_true` true (None: every reading carrying the fields)."""

    columns: tuple[tuple[str, str], ...]
    when_true: str | None = None


FaultSeverity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Fault:
    """An equipment fault the device reports in a field of its own readings: raised as alert `alert` while
    boolean `field` equals `when`, or numeric `field` is below `below`, for `reports` readings in a row
    (one odd frame-rate sample is not a fault); cleared by the first reading whose `field` is healthy."""

    alert: str
    field: str
    when: bool | None = None
    below: float | None = None
    severity: FaultSeverity = "warning"
    reports: int = 1

    def faulty(self, value: object) -> bool | None:
        """Whether `value` of `field` is the fault; None when the reading does not say."""
        if self.when is not None:
            return None if not isinstance(value, bool) else value is self.when
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return self.below is not None and value < self.below


@dataclass(frozen=True, slots=True)
class NightEvent:
    """An event that is worth a warning to the household's caregivers only at night at the door of
    someone who lives alone (a stranger lingering at 2 a.m.); by day, or where others live, it is the
    corridor's ordinary life. `media` names the field holding the snapshot link, `details` fields the
    alert carries along."""

    field: str
    alert: str
    media: str | None = None
    details: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Vital:
    """A vital sign the device measures on its wearer, compared with the wearer's configured range; it
    counts only while boolean `worn` is not false (a band on the table measures nothing)."""

    field: str
    alert: str
    worn: str | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """Where the wearer is: latitude and longitude fields (degrees) and the fix's accuracy (metres)."""

    lat: str
    lon: str
    accuracy: str | None = None


@dataclass(frozen=True)
class DeviceKind:
    """One device kind: its name (used in topics, storage and InfluxDB), models and decoders.

    `example` is a valid native payload, shown in docs/integrators/topics-and-payloads.md and checked by
    the golden tests.
    `checkin_interval` is how long the kind may stay silent before it counts as offline.
    `urgent_marks` are byte strings found in the raw payload of every reading that alerts at once (an SOS
    press, a fall, a falling object), in either form: intake commits the batch holding such a message
    without waiting for it to fill. A mark may match more (a cheap check on undecoded bytes): that costs
    only a smaller batch; a reading that alerts at once and matches no mark would wait for its batch.

    What the kind means to the detectors, rules, hub and dashboards is declared here too, so a kind is one
    module: `sees` (what its activity tells about the resident; None for kinds about a building, which
    are no evidence about a home), `activity` (which readings are activity, tried in order: the first
    that matches decides the evidence), `door_open_field` (the boolean field of a front-door contact
    that the door-left-open and night-exit rules follow), `immediate_alerts` (the alerts its readings
    raise at once, each when the boolean field of the same name is true: the safety rules raise them
    from this kind only, and the evaluation marks them late when their reading was) and
    `dashboard_events` (what the community dashboard counts).

    The signals the safety rules read besides: `faults` (equipment faults the device reports itself, each
    an equipment alert that clears when the field is healthy again), `night_events` (see `NightEvent`),
    `vitals` (see `Vital`), `worn_field` (the boolean field saying the device is worn: a device its wearer
    usually wears and left off for a whole day earns a reminder), `position` (where a wearer is, for
    geofences) and `first_row_field` (the pixel row where a falling object was first seen, turned into a
    floor with the camera's floor lines from the registry).
    """

    name: str
    title: str
    event_model: type[BaseModel]  # a Payload, or a RootModel over a tagged union of Payloads
    decode: Callable[[bytes], Reading]
    example: dict[str, Any]
    checkin_interval: timedelta
    zigbee2mqtt_model: type[Payload] | None = None
    decode_zigbee2mqtt: Callable[[bytes, int], Reading] | None = None
    urgent_marks: tuple[bytes, ...] = ()
    sees: Sees | None = None
    activity: tuple[ActivityRule, ...] = ()
    door_open_field: str | None = None
    immediate_alerts: tuple[str, ...] = ()
    dashboard_events: tuple[CountedEvents, ...] = ()
    faults: tuple[Fault, ...] = ()
    night_events: tuple[NightEvent, ...] = ()
    vitals: tuple[Vital, ...] = ()
    worn_field: str | None = None
    position: Position | None = None
    first_row_field: str | None = None

    @property
    def places(self) -> frozenset[Sees]:
        """Everything its readings can tell about the resident: the kind's own `sees` and its rules'."""
        return frozenset(place for place in (self.sees, *(rule.sees for rule in self.activity)) if place)

    @property
    def home_sensor(self) -> bool:
        """Whether it is a sensor of the home itself (inside, or on its front door): the home's coverage
        (is anything there still reporting?) counts these, not what is worn or watches the corridor."""
        return self.sees in (Sees.INDOOR, Sees.FRONT_DOOR)


class Zigbee2mqttPayload(Payload):
    """Keys Zigbee2MQTT adds to every battery device's state message.

    `last_seen` appears only when Zigbee2MQTT's `advanced.last_seen` option is set (ISO_8601,
    ISO_8601_local or epoch); it is the device's time. Without it the hub's receive time stands in,
    which loses exactly-once storage across a hub crash for that message (see
    docs/integrators/topics-and-payloads.md).
    """

    battery: Battery | None = None
    voltage: int | None = None
    linkquality: int | None = None
    last_seen: EpochMs | None = None

    def ts_or(self, received_ms: int) -> int:
        return self.last_seen if self.last_seen is not None else received_ms
