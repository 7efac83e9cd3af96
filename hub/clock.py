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

__all__ = ["CLOCK_TOPIC", "Clock", "FollowedClock", "SystemClock", "wait_until"]


class Clock(Protocol):
    def now_ms(self) -> int: ...


def wait_until(clock: Clock, at_ms: int, wake: threading.Event, at_most_s: float) -> None:
    """Return once `clock` reads `at_ms`, `wake` is set, or `at_most_s` seconds of wall time passed.

    Timers (the alerts' escalation) wait on this, never on wall time alone: under a simulation running
    600x, 5 wall seconds are 50 minutes of the hub's time, far past a 5-minute deadline."""
    if isinstance(clock, FollowedClock):
        clock.wait_until(at_ms, wake, at_most_s)
    else:  # a clock that moves with wall time
        wake.wait(min(at_most_s, max(0.0, (at_ms - clock.now_ms()) / 1000)))


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
        self._waiters: list[tuple[int, threading.Event]] = []

    @property
    def following(self) -> bool:
        """Whether a tick has arrived yet (before it, "now" is only the system clock's guess)."""
        return self._now_ms is not None

    def now_ms(self) -> int:
        now = self._now_ms
        return SystemClock().now_ms() if now is None else now

    def wait_until(self, at_ms: int, wake: threading.Event, at_most_s: float) -> None:
        """See the module's `wait_until`; woken by `advance_to` as soon as the clock reaches `at_ms`."""
        # Bounded by wall time too: before the first tick, and while the simulator is paused, the timer
        # still runs (the CLI's hand-overs are taken over by the alerts' tick).
        waiter = (at_ms, wake)
        with self._lock:
            if self.now_ms() >= at_ms:
                return
            self._waiters.append(waiter)
        try:
            wake.wait(at_most_s)
        finally:
            with self._lock:
                self._waiters.remove(waiter)

    def advance_to(self, now_ms: int) -> None:
        with self._lock:
            self._now_ms = now_ms if self._now_ms is None else max(self._now_ms, now_ms)
            for at_ms, wake in self._waiters:
                if at_ms <= self._now_ms:
                    wake.set()

    def advance_from_payload(self, payload: bytes) -> bool:
        """Take a clock-topic payload; False when it is not an epoch-ms integer."""
        try:
            self.advance_to(int(payload))
        except ValueError:
            return False
        return True
