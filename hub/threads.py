"""The hub's background threads share one shape: run until told to stop, sleep until woken or until
their poll interval passes. `BackgroundThread` is that shape, so stopping and waking mean the same
everywhere."""

from __future__ import annotations

import threading


class BackgroundThread(threading.Thread):
    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._stopping = threading.Event()
        self._wake = threading.Event()

    def wake(self) -> None:
        """There is new work: do it now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish what it is doing and wait for it."""
        self._stopping.set()
        self._wake.set()
        self.join(timeout)

    def _sleep(self, seconds: float) -> bool:
        """Wait until woken, stopped, or `seconds` pass; True when stopping."""
        self._wake.wait(seconds)
        self._wake.clear()
        return self._stopping.is_set()
