"""Device kinds: registration, golden cases, examples, robustness on arbitrary input, field-type stability.

Golden cases live in `devices/testdata/<kind>/<case>.json`, one file per case:
`{"form": "native" | "zigbee2mqtt", "payload": <JSON> | "raw_text": str | "raw_base64": str,
"received_ms": int, "expect": {"ts": int, "fields": {...}} | "error": "<Reason value>"}`.
"""

from __future__ import annotations

import base64
import importlib
import json
import math
import pkgutil
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import devices
from devices import KINDS, SUPPORT_MODULES, DecodeError, DeviceKind, Reading, Reason
from devices.availability import decode_availability
from devices.kind import Payload, epoch_ms_to_iso, to_epoch_ms

TESTDATA = Path(devices.__file__).parent / "testdata"
FORMS = ("native", "zigbee2mqtt")
DECODER_REASONS = {Reason.NOT_UTF8, Reason.INVALID_JSON, Reason.INVALID_PAYLOAD, Reason.MISSING_TS}
CASE_KEYS = {"form", "payload", "raw_text", "raw_base64", "received_ms", "expect", "error"}

Decoder = Callable[[bytes, int], Reading]


# --------------------------------------------------------------------------- helpers


def case_paths() -> list[Path]:
    return sorted(TESTDATA.glob("*/*.json"))


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert set(case) <= CASE_KEYS, f"{path.name}: unknown keys {set(case) - CASE_KEYS}"
    assert case["form"] in FORMS
    assert isinstance(case["received_ms"], int)
    assert sum(key in case for key in ("payload", "raw_text", "raw_base64")) == 1, path.name
    assert ("expect" in case) != ("error" in case), path.name
    return case


def raw_bytes(case: dict[str, Any]) -> bytes:
    if "raw_text" in case:
        return str(case["raw_text"]).encode("utf-8")
    if "raw_base64" in case:
        return base64.b64decode(case["raw_base64"], validate=True)
    return json.dumps(case["payload"], ensure_ascii=False).encode("utf-8")


def decoder(kind: DeviceKind, form: str) -> Decoder:
    if form == "native":
        native = kind.decode
        return lambda raw, _received_ms: native(raw)
    z2m = kind.decode_zigbee2mqtt
    assert z2m is not None, f"{kind.name} has no Zigbee2MQTT form"
    return z2m


def typed(fields: dict[str, Any]) -> dict[str, tuple[type, Any]]:
    """Compare fields by type as well as value: `True == 1` and `1 == 1.0` in Python, not in InfluxDB."""
    return {name: (type(value), value) for name, value in fields.items()}


@cache
def golden_by_kind() -> dict[str, list[tuple[Path, dict[str, Any]]]]:
    grouped: dict[str, list[tuple[Path, dict[str, Any]]]] = defaultdict(list)
    for path in case_paths():
        grouped[path.parent.name].append((path, load_case(path)))
    return dict(grouped)


@cache
def golden_field_types(kind_name: str) -> dict[str, set[type]]:
    types: dict[str, set[type]] = defaultdict(set)
    for _path, case in golden_by_kind().get(kind_name, []):
        if "expect" in case:
            for name, value in case["expect"]["fields"].items():
                types[name].add(type(value))
    return types


def decoders() -> list[Any]:
    return [
        pytest.param(kind.name, form, id=f"{kind.name}-{form}")
        for kind in KINDS.values()
        for form in FORMS
        if form == "native" or kind.decode_zigbee2mqtt is not None
    ]


def assert_storable(reading: Reading) -> None:
    assert type(reading.ts) is int
    assert all(type(value) in (bool, int, float, str) for value in reading.fields.values()), reading
    # The InfluxDB-compatible store drops string fields: a point needs at least one non-string field.
    # (A reading may be empty: a Zigbee2MQTT action reset with nothing else adds no state; it still
    # marks the device as seen, and the export skips it.)
    assert not reading.fields or any(type(value) is not str for value in reading.fields.values()), reading


# --------------------------------------------------------------------------- registration


def test_every_kind_module_is_registered() -> None:
    found = []
    for module_info in pkgutil.iter_modules(devices.__path__):
        if module_info.ispkg or module_info.name in SUPPORT_MODULES:
            continue
        where = f"devices.{module_info.name}"
        kind = getattr(importlib.import_module(where), "KIND", None)
        assert isinstance(kind, DeviceKind), f"{where} has no KIND (or belongs in SUPPORT_MODULES)"
        assert kind.name == module_info.name, f"{where}: KIND.name is {kind.name!r}"
        assert KINDS.get(kind.name) is kind, f"{where}.KIND is not registered in devices.KINDS"
        found.append(kind.name)
    assert sorted(found) == sorted(KINDS)


def test_every_kind_has_golden_cases() -> None:
    folders = {path.name for path in TESTDATA.iterdir() if path.is_dir()}
    assert folders == set(KINDS), "devices/testdata/ folders must match devices.KINDS"
    grouped = golden_by_kind()
    for name, kind in KINDS.items():
        cases = grouped.get(name, [])
        valid = [case for _path, case in cases if "expect" in case]
        assert len(valid) >= 4, f"{name}: fewer than 4 valid golden cases"
        assert len(cases) - len(valid) >= 5, f"{name}: fewer than 5 malformed golden cases"
        z2m = [case for _path, case in cases if case["form"] == "zigbee2mqtt"]
        if kind.decode_zigbee2mqtt is None:
            assert not z2m, f"{name} has no Zigbee2MQTT form but has Zigbee2MQTT golden cases"
        else:
            assert kind.zigbee2mqtt_model is not None
            assert any("expect" in case for case in z2m), f"{name}: no valid Zigbee2MQTT golden case"


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
def test_kind_metadata(kind: DeviceKind) -> None:
    assert kind.title
    assert timedelta(0) < kind.checkin_interval <= timedelta(days=1)
    assert (kind.zigbee2mqtt_model is None) == (kind.decode_zigbee2mqtt is None)


# --------------------------------------------------------------------------- golden cases


@pytest.mark.parametrize(
    "path", case_paths(), ids=[f"{path.parent.name}/{path.stem}" for path in case_paths()]
)
def test_golden(path: Path) -> None:
    case = load_case(path)
    decode = decoder(KINDS[path.parent.name], case["form"])
    raw = raw_bytes(case)
    if "error" in case:
        expected = Reason(case["error"])
        assert expected in DECODER_REASONS
        with pytest.raises(DecodeError) as info:
            decode(raw, case["received_ms"])
        assert info.value.reason == expected, info.value.detail
        assert info.value.detail
    else:
        reading = decode(raw, case["received_ms"])
        assert reading.ts == case["expect"]["ts"]
        assert typed(reading.fields) == typed(case["expect"]["fields"])
        assert_storable(reading)


# Fields whose True alerts at once (detectors/safety.py): intake must see them coming in the raw bytes.
URGENT_FIELDS = ("sos", "fall", "falling_object")


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
def test_urgent_marks_find_every_reading_that_alerts_at_once(kind: DeviceKind) -> None:
    example = (json.dumps(kind.example).encode(), kind.decode(json.dumps(kind.example).encode()).fields)
    cases = [example] + [(raw_bytes(case), case["expect"]["fields"])
                         for _path, case in golden_by_kind()[kind.name] if "expect" in case]
    urgent = ordinary = 0
    for raw, fields in cases:
        marked = any(mark in raw for mark in kind.urgent_marks)
        if any(fields.get(name) is True for name in URGENT_FIELDS):
            urgent += 1
            assert marked, f"{raw!r} alerts at once but matches none of {kind.urgent_marks}"
        elif not marked:
            ordinary += 1
    assert ordinary > 0, "ordinary readings must not all look urgent: every batch would be cut short"
    assert (urgent > 0) == bool(kind.urgent_marks), "marks only on kinds with readings that need them"


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
def test_example_decodes(kind: DeviceKind) -> None:
    assert str(kind.example["ts"]).endswith("+08:00"), "examples carry local time with its offset"
    reading = kind.decode(json.dumps(kind.example, ensure_ascii=False).encode("utf-8"))
    assert reading.ts == to_epoch_ms(kind.example["ts"])
    assert_storable(reading)
    known = golden_field_types(kind.name)
    for name, value in reading.fields.items():
        assert known.get(name) == {type(value)}, f"{kind.name}.{name}: not in the golden cases with this type"


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_field_types_are_stable(kind_name: str) -> None:
    for name, types in golden_field_types(kind_name).items():
        assert len(types) == 1, f"{kind_name}.{name} has several types: {types}"


def test_battery_is_an_int_everywhere() -> None:
    for kind_name in KINDS:
        assert golden_field_types(kind_name).get("battery") in (None, {int}), kind_name


NON_FINITE = ("Infinity", "-Infinity", "NaN", "1e999")  # 1e999 is valid JSON that overflows to infinity


def _numeric_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numeric_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:2]):
            yield from _numeric_paths(item, (*path, index))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path


def _with_token(payload: dict[str, Any], path: tuple[str | int, ...], token: str) -> bytes:
    copy = json.loads(json.dumps(payload))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = "@@number@@"  # a placeholder for the literal text: json.dumps never writes 1e999
    return json.dumps(copy, ensure_ascii=False).replace('"@@number@@"', token).encode("utf-8")


@pytest.mark.parametrize(("kind_name", "form"), decoders())
def test_non_finite_numbers_never_reach_a_reading(kind_name: str, form: str) -> None:
    """Every number of every valid golden payload, replaced by Infinity, -Infinity, NaN or 1e999: the
    payload is refused as `invalid_payload` naming the field, or (a key the model ignores) decodes with
    finite numbers only. The store's JSON functions refuse non-finite numbers (issue 12)."""
    decode = decoder(KINDS[kind_name], form)
    tried = refused = 0
    for payload in _golden_payloads(kind_name, form):
        for path in _numeric_paths(payload):
            for token in NON_FINITE:
                raw = _with_token(payload, path, token)
                assert token.encode() in raw
                tried += 1
                error: DecodeError | None
                try:
                    reading = decode(raw, 1763856000000)
                except DecodeError as exc:
                    error = exc
                else:
                    error = None
                if error is not None:
                    assert error.reason == Reason.INVALID_PAYLOAD, (raw, error)
                    assert str(path[-1]) in error.detail or path == ("ts",), (raw, error.detail)
                    refused += 1
                    continue
                numbers = [v for v in reading.fields.values() if isinstance(v, float)]
                assert all(math.isfinite(v) for v in numbers), (raw, reading)
    assert tried > 0 and refused > 0


def test_every_payload_model_refuses_non_finite_numbers() -> None:
    """A model that overrides `model_config` must keep `allow_inf_nan=False` (its fields are stored)."""
    pending: list[type[Payload]] = [Payload]
    checked = 0
    while pending:
        model = pending.pop()
        assert model.model_config.get("allow_inf_nan") is False, model.__name__
        checked += 1
        pending.extend(model.__subclasses__())
    assert checked > len(KINDS)


# --------------------------------------------------------------------------- arbitrary input

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=16,
)


def _golden_payloads(kind_name: str, form: str) -> list[dict[str, Any]]:
    return [
        case["payload"]
        for _path, case in golden_by_kind().get(kind_name, [])
        if case["form"] == form and "expect" in case and isinstance(case["payload"], dict)
    ]


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value[:3]:
            yield from _leaves(item)
    else:
        yield value


@st.composite
def mutated_payloads(draw: st.DrawFn, kind_name: str, form: str) -> bytes:
    """A valid golden payload with a few keys replaced, dropped or added: reaches the validators."""
    payloads = _golden_payloads(kind_name, form)
    payload = dict(draw(st.sampled_from(payloads)))
    keys = sorted({key for known in payloads for key in known})
    leaves = [leaf for known in payloads for leaf in _leaves(known)]
    values = json_values | st.sampled_from(leaves)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(keys) | st.text(max_size=8))
        if draw(st.booleans()):
            payload[key] = draw(values)
        else:
            payload.pop(key, None)
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def decode_or_error(decode: Decoder, raw: bytes) -> Reading | DecodeError:
    try:
        return decode(raw, 1763856000000)
    except DecodeError as error:
        return error


def check_arbitrary(kind_name: str, form: str, raw: bytes) -> None:
    """Decoders either return a storable reading with the kind's field types, or raise DecodeError."""
    reading = decode_or_error(decoder(KINDS[kind_name], form), raw)
    if isinstance(reading, DecodeError):
        assert reading.reason in DECODER_REASONS
        return
    assert_storable(reading)
    known = golden_field_types(kind_name)
    for name, value in reading.fields.items():
        assert known.get(name) == {type(value)}, f"{kind_name}.{name}={value!r}: type not in golden cases"


ROBUSTNESS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("kind_name", "form"), decoders())
@ROBUSTNESS
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes(kind_name: str, form: str, raw: bytes) -> None:
    check_arbitrary(kind_name, form, raw)


@pytest.mark.parametrize(("kind_name", "form"), decoders())
@ROBUSTNESS
@given(value=json_values | st.floats())
def test_arbitrary_json(kind_name: str, form: str, value: Any) -> None:
    check_arbitrary(kind_name, form, json.dumps(value).encode("utf-8"))


@pytest.mark.parametrize(("kind_name", "form"), decoders())
@ROBUSTNESS
@given(data=st.data())
def test_mutated_golden_payloads(kind_name: str, form: str, data: st.DataObject) -> None:
    check_arbitrary(kind_name, form, data.draw(mutated_payloads(kind_name, form)))


# --------------------------------------------------------------------------- availability


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"online", (True, None)),
        (b"offline", (False, None)),
        (b" online\n", (True, None)),
        (b'{"state": "online"}', (True, None)),
        (b'{"state": "offline"}', (False, None)),
        (b'{"state": "offline", "ts": "2025-11-23T07:59:58.120+08:00"}', (False, 1763855998120)),
        (b'{"state": "online", "ts": 1763855998120, "reason": "boot"}', (True, 1763855998120)),
    ],
)
def test_availability(raw: bytes, expected: tuple[bool, int | None]) -> None:
    assert decode_availability(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"ONLINE", Reason.INVALID_PAYLOAD),
        (b"maybe", Reason.INVALID_PAYLOAD),
        (b"", Reason.INVALID_PAYLOAD),
        (b"\xff\xfe", Reason.INVALID_PAYLOAD),
        (b'["online"]', Reason.INVALID_PAYLOAD),
        (b'{"state": "sleeping"}', Reason.INVALID_PAYLOAD),
        (b'{"state": true}', Reason.INVALID_PAYLOAD),
        (b'{"status": "online"}', Reason.INVALID_PAYLOAD),
        (b'{"state": "online", "ts": "2025-11-23T07:59:58"}', Reason.INVALID_PAYLOAD),
        (b'{"state": "online"', Reason.INVALID_JSON),
        (b'{"state": "\xff"}', Reason.NOT_UTF8),
    ],
)
def test_availability_garbage(raw: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as info:
        decode_availability(raw)
    assert info.value.reason == reason


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-11-23T00:00:00Z", 1763856000000),
        ("2025-11-23T08:00:00+08:00", 1763856000000),
        ("2025-11-23T07:59:58.120+08:00", 1763855998120),
        ("2025-11-22T19:00:00-05:00", 1763856000000),
        ("2025-11-23T00:00:00.999999Z", 1763856000999),
        (1763856000000, 1763856000000),
        (1763856000000.7, 1763856000000),
    ],
)
def test_to_epoch_ms(value: object, expected: int) -> None:
    assert to_epoch_ms(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "2025-11-23T08:00:00",  # naive: no offset
        "2025-11-23",  # a date is naive too
        1763856000,  # epoch seconds
        1763856000.5,
        99_999_999_999,  # just below the epoch-ms floor
        4_102_444_800_001,  # beyond 2100
        "2101-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
        True,
        False,
        None,
        "",
        "yesterday",
        [1763856000000],
        float("nan"),
        float("inf"),
        10**400,  # too large for a float: a clear error, not an OverflowError
    ],
)
def test_to_epoch_ms_rejects(value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies; the type is the contract
        to_epoch_ms(value)


def test_epoch_ms_to_iso_round_trips() -> None:
    assert epoch_ms_to_iso(1763855998120) == "2025-11-22T23:59:58.120Z"
    assert to_epoch_ms(epoch_ms_to_iso(1763855998120)) == 1763855998120
