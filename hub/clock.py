"""Where the hub gets "now" from.

Production uses the system clock. A simulation runs days in seconds: the simulator publishes the
simulated epoch milliseconds on `CLOCK_TOPIC` (retained, QoS 1, ASCII digits) at least once per simulated
minute, and a hub started with `HUB_CLOCK=mqtt` takes that as its time. Because the clock messages travel
on the same connection as the device messages, the hub's notion of "now" advances in step with them.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from devices.topics import CLOCK_TOPIC

__all__ = ["CLOCK_TOPIC", "Clock", "FollowedClock", "SystemClock"]


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FollowedClock:
    """A clock that moves only when told to (by clock-topic messages), never backwards.

    Until the first tick it reads the system clock, so a hub waiting for its simulator still works.
    """

    def __init__(self) -> None:
        self._now_ms: int | None = None
        self._lock = threading.Lock()

    @property
    def following(self) -> bool:
        """Whether a tick has arrived yet (before it, "now" is only the system clock's guess)."""
        return self._now_ms is not None

    def now_ms(self) -> int:
        now = self._now_ms
        return SystemClock().now_ms() if now is None else now

    def advance_to(self, now_ms: int) -> None:
        with self._lock:
            self._now_ms = now_ms if self._now_ms is None else max(self._now_ms, now_ms)

    def advance_from_payload(self, payload: bytes) -> bool:
        """Take a clock-topic payload; False when it is not an epoch-ms integer."""
        try:
            self.advance_to(int(payload))
        except ValueError:
            return False
        return True
