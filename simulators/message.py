"""What the simulators produce: `SimMessage`s in simulated-time order, interleaved with clock ticks.

A simulation runs days in seconds, so the hub cannot use its own clock: it follows the simulated epoch
milliseconds published on `CLOCK_TOPIC`. A tick goes out at the start of every simulated minute, before
any message of that minute and on the same connection, so when a message reaches the hub its clock reads
the start of that message's minute. That is what `hub_clock_at` computes, and what decides whether a
reading whose device clock runs ahead becomes a `ts_in_future` dead letter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from devices.kind import MAX_FUTURE_SKEW_MS, Reason
from devices.topics import CLOCK_TOPIC

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

CLOCK_KIND = "clock"
"""`SimMessage.kind` of a clock tick, which belongs to no device kind."""


class Fault(StrEnum):
    """Why a message is not a plain, first delivery of a reading."""

    DUPLICATE = "duplicate"            # a QoS 1 redelivery: the same message again
    CACHED_STATE = "cached_state"      # Zigbee2MQTT republishing its cached state unchanged
    MALFORMED = "malformed"            # a broken payload; `dead_letter` says why the hub refuses it
    CLOCK_SKEW = "clock_skew"          # device clock off by up to ±5 minutes: still a valid reading
    FUTURE_CLOCK = "future_clock"      # device clock far ahead: the hub refuses it as ts_in_future
    BURST = "burst"                    # one of a rapid burst from a chattering sensor


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One message to publish at simulated time `sim_ms`.

    `reading_ts` is the device time of the reading the hub stores for it (its observations key is
    (device_id, reading_ts)); None when it stores none: clock ticks, availability, dead letters.
    `dead_letter` is the reason the hub must give when it refuses the message.
    """

    sim_ms: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: str
    device_id: str | None
    fault: str | None = None
    reading_ts: int | None = None
    dead_letter: Reason | None = None


def hub_clock_at(sim_ms: int) -> int:
    """The hub's clock when a message of simulated time `sim_ms` arrives: its minute's tick."""
    return sim_ms - sim_ms % MINUTE_MS


def dead_letter_for_ts(reading_ts: int, sim_ms: int) -> Reason | None:
    """TS_IN_FUTURE when the hub will find `reading_ts` too far ahead of its clock, else None."""
    return Reason.TS_IN_FUTURE if reading_ts > hub_clock_at(sim_ms) + MAX_FUTURE_SKEW_MS else None


def clock_tick(sim_ms: int) -> SimMessage:
    """Retained so that a hub connecting mid-run learns the time at once; QoS 1 so it keeps its place
    in the ordered stream of QoS 1 device messages."""
    return SimMessage(sim_ms, CLOCK_TOPIC, str(sim_ms).encode("ascii"), 1, True, CLOCK_KIND, None)


class ClockTicker:
    """Emits a tick at every minute boundary from `start_ms` on, each before the messages it precedes."""

    def __init__(self, start_ms: int) -> None:
        self._next_ms = hub_clock_at(start_ms)

    def through(self, sim_ms: int) -> Iterator[SimMessage]:
        """Every tick due at or before `sim_ms` not yet emitted."""
        while self._next_ms <= sim_ms:
            yield clock_tick(self._next_ms)
            self._next_ms += MINUTE_MS
