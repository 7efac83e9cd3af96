"""Faults: what goes wrong between devices and the hub, injected on purpose and recorded per message.

- duplicate deliveries: QoS 1 is at-least-once, so the same message may arrive twice;
- Zigbee2MQTT republishing a cached state unchanged (same `last_seen`), e.g. after a `/get` or restart;
- malformed payloads at a chosen rate, each with the dead-letter reason the hub must give it;
- device clocks off by up to ±5 minutes (still valid) or far ahead (refused as `ts_in_future`);
- bursts of rapid readings from chattering sensors (scheduled by the simulation, built by the kinds).

Malformed messages are extra, garbled copies of real ones, so they never take a reading away.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace

import numpy as np

from devices.kind import Reason
from devices.registry import Device
from simulators.calendar import Calendar
from simulators.device import ClockOffset, Window
from simulators.message import HOUR_MS, MINUTE_MS, SECOND_MS, Fault, SimMessage, dead_letter_for_ts
from simulators.scenario import FaultSettings

# Keys whose values are times: a "wrong type" fault leaves them alone so that the payload stays a
# reading with a wrong field rather than one with a broken timestamp.
_TIMESTAMP_FIELDS = frozenset({"ts", "last_seen"})
_LATIN1_E_ACUTE = b"\xe9"


class FaultInjector:
    """The devices' `MessageSink`: passes every message on, plus the faulty copies the settings call for."""

    def __init__(self, settings: FaultSettings, rng: np.random.Generator,
                 emit: Callable[[SimMessage], None]) -> None:
        self._settings = settings
        self._rng = rng
        self._emit = emit
        self._native_reasons = settings.malformed_reasons
        # Zigbee2MQTT's `last_seen` is optional (the hub stamps its receive time instead), so a
        # Zigbee2MQTT payload without it is valid, not a missing-ts dead letter.
        self._zigbee_reasons = tuple(r for r in settings.malformed_reasons if r != Reason.MISSING_TS)

    def deliver(self, message: SimMessage, *, zigbee2mqtt: bool) -> None:
        self._emit(message)
        settings, rng = self._settings, self._rng
        if settings.duplicate_rate and rng.random() < settings.duplicate_rate:
            self._emit(replace(message, fault=Fault.DUPLICATE))
        if message.reading_ts is None:
            return  # availability, or already a dead letter: nothing more to garble
        if zigbee2mqtt and settings.cached_state_rate and rng.random() < settings.cached_state_rate:
            later = message.sim_ms + int(rng.integers(MINUTE_MS, 20 * MINUTE_MS))
            self._emit(replace(message, sim_ms=later, fault=Fault.CACHED_STATE,
                               dead_letter=dead_letter_for_ts(message.reading_ts, later)))
        reasons = self._zigbee_reasons if zigbee2mqtt else self._native_reasons
        if settings.malformed_rate and reasons and rng.random() < settings.malformed_rate:
            reason = reasons[int(rng.integers(len(reasons)))]
            self._emit(replace(message, payload=corrupt(message.payload, reason, rng), fault=Fault.MALFORMED,
                               reading_ts=None, dead_letter=reason))


def corrupt(payload: bytes, reason: Reason, rng: np.random.Generator) -> bytes:
    """Garble a valid JSON object payload so that the hub refuses it for `reason`."""
    if reason == Reason.INVALID_JSON:
        # Cut short, as a dropped connection or an overflowing firmware buffer would; any proper
        # prefix of a JSON object is invalid. Cut on characters, so the rest stays valid UTF-8.
        text = payload.decode("utf-8")
        return text[:int(rng.integers(1, len(text)))].encode("utf-8")
    if reason == Reason.NOT_UTF8:
        # A firmware that encodes strings as Latin-1: é as the lone byte 0xE9.
        at = int(rng.integers(1, len(payload)))
        return payload[:at] + _LATIN1_E_ACUTE + payload[at:]
    body = json.loads(payload)
    if reason == Reason.MISSING_TS:
        del body["ts"]
    elif reason == Reason.INVALID_PAYLOAD:
        keys = sorted(key for key in body if key not in _TIMESTAMP_FIELDS)
        key = keys[int(rng.integers(len(keys)))]
        value = body[key]
        # A number, string, flag or object where a list is, or a list where a scalar is: no lax
        # coercion turns either back into the right type.
        body[key] = "n/a" if isinstance(value, list) else [value]
    else:
        raise ValueError(f"{reason} is not a payload fault")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def plan_clock_faults(settings: FaultSettings, devices: Iterable[Device], calendar: Calendar,
                      rng: np.random.Generator) -> dict[str, tuple[ClockOffset, ...]]:
    """Pick devices whose clocks go wrong for a while: slightly (valid readings), or far ahead (refused)."""
    span = calendar.end_ms - calendar.start_ms
    offsets: dict[str, tuple[ClockOffset, ...]] = {}

    def window(hours_min: float, hours_max: float) -> Window:
        duration = int(rng.uniform(hours_min, hours_max) * HOUR_MS)
        start = calendar.start_ms + int(rng.uniform(0, 1) * max(0, span - duration))
        return Window(start, start + duration)

    candidates = list(devices)
    for device in candidates:
        if rng.random() < settings.skewed_device_share:
            seconds = rng.uniform(min(30, settings.max_skew_s), settings.max_skew_s) * rng.choice([-1, 1])
            offsets[device.id] = (ClockOffset(window(2, 12), int(seconds * SECOND_MS)),)
    remaining = [d for d in candidates if d.id not in offsets]
    count = min(settings.future_clock_devices, len(remaining))
    for index in rng.choice(len(remaining), size=count, replace=False):
        offsets[remaining[int(index)].id] = (
            ClockOffset(window(1, 3), settings.future_clock_offset_s * SECOND_MS),)
    return offsets
