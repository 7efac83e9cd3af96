"""What every sink is: it is called from its own delivery thread (see `hub.alerts.delivery`), once
per attempt, and raises `DeliveryError` when the attempt failed, saying whether trying again can help."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hub.alerts.notification import Notification
from hub.registry import Caregiver


class DeliveryError(Exception):
    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.retryable = retryable


class Sink(Protocol):
    name: str

    def addressees(self, recipients: Sequence[Caregiver]) -> list[str | None]:
        """Whom to make one delivery each for: caregiver ids, or None for one delivery to no one in
        particular (a broker, a webhook, the global URLs)."""
        ...

    def send(self, notification: Notification) -> None: ...

    def close(self) -> None: ...
