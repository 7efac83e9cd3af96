"""The delivery queue: `alert_deliveries` rows, worked through per sink.

Each sink has its own delivery thread and its own connection, so a sink that hangs until its timeout (a
dead webhook) delays only its own deliveries, never the MQTT or e-mail ones. A pass makes one attempt
per due delivery; a failed one is due again after a doubling back-off, and is given up (recorded in the
alert's history) after `delivery_max_attempts` or when the sink says retrying cannot help. Because the
queue is in the store, deliveries pending at a restart are sent after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from hub.alerts.directory import caregiver, labels, recipient_tiers
from hub.alerts.model import Alert, Delivery
from hub.alerts.notification import Notification
from hub.alerts.settings import AlertSettings
from hub.alerts.sinks.dispatch import DISPATCH
from hub.alerts.sinks.sink import DeliveryError, Sink
from hub.alerts.store import AlertStore
from hub.clock import Clock
from hub.registry import Registry
from hub.threads import BackgroundThread

log = logging.getLogger(__name__)

PASS_LIMIT = 200  # deliveries per pass, so a large backlog does not hold one transaction-free loop forever
# Deliveries are claimed a few at a time for a lease (hub/alerts/store.py): long enough to send them all
# at the slowest sink's timeouts, after which a worker that died while sending leaves them to another.
CLAIM = 20
LEASE_MS = 5 * 60_000


def notification_for(delivery: Delivery, alert: Alert, registry: Registry) -> Notification:
    tiers = recipient_tiers(registry, kind=alert.kind, community=alert.community, household=alert.household,
                            resident=alert.resident)
    names = labels(registry, kind=alert.kind, community=alert.community, building=alert.building,
                   household=alert.household, resident=alert.resident)
    addressee = None if delivery.recipient is None else caregiver(registry, delivery.recipient)
    return Notification(alert=alert, event_id=delivery.event_id, reason=delivery.reason, tier=delivery.tier,
                        recipients=tuple(tiers.get(delivery.tier, [])), recipient=addressee,
                        resident_name=names.resident_name, unit=names.unit, timezone=names.timezone,
                        labels=names)


def deliver_due(store: AlertStore, sink: Sink, registry: Registry, settings: AlertSettings,
                now_ms: int) -> int:
    """One attempt at each delivery of `sink` due at `now_ms`; returns how many were attempted."""
    attempted = 0
    while attempted < PASS_LIMIT:
        claimed = store.claim_due_deliveries(sink.name, now_ms, min(CLAIM, PASS_LIMIT - attempted), LEASE_MS)
        for delivery in claimed:
            _attempt(store, sink, registry, settings, delivery, now_ms=now_ms)
        attempted += len(claimed)
        if len(claimed) < CLAIM:
            break
    return attempted


def _attempt(store: AlertStore, sink: Sink, registry: Registry, settings: AlertSettings, delivery: Delivery,
             *, now_ms: int) -> None:
    alert = store.alert(delivery.alert_id)
    assert alert is not None  # deliveries reference their alert
    notification = notification_for(delivery, alert, registry)
    try:
        if delivery.recipient is not None and notification.recipient is None:
            raise DeliveryError(f"caregiver {delivery.recipient!r} is no longer in the registry",
                                retryable=False)
        sink.send(notification)
    except DeliveryError as exc:
        _failed(store, settings, delivery, alert, error=str(exc), retryable=exc.retryable, now_ms=now_ms)
    except Exception as exc:  # a sink's bug must not stop the queue: retry it like an outage
        log.exception("alert sink %s crashed on delivery %d", sink.name, delivery.id)
        _failed(store, settings, delivery, alert, error=f"{type(exc).__name__}: {exc}", retryable=True,
                now_ms=now_ms)
    else:
        if delivery.sink != DISPATCH:
            store.delivery_sent(delivery.id, now_ms)
            return
        with store.transaction():  # the hand-off to a dispatcher is part of the alert's story
            store.delivery_sent(delivery.id, now_ms)
            store.add_event(alert.id, at_ms=now_ms, actor="hub", action="dispatched", from_state=alert.state,
                            to_state=alert.state, detail={"attempts": delivery.attempts + 1})


def _failed(store: AlertStore, settings: AlertSettings, delivery: Delivery, alert: Alert, *, error: str,
            retryable: bool, now_ms: int) -> None:
    attempts = delivery.attempts + 1
    if retryable and attempts < settings.delivery_max_attempts:
        log.warning("alert %d: %s delivery %d failed (attempt %d), retrying: %s", alert.id, delivery.sink,
                    delivery.id, attempts, error)
        store.delivery_failed(delivery.id, error, now_ms + settings.backoff_ms(attempts))
        return
    log.error("alert %d: %s delivery %d given up after %d attempt(s): %s", alert.id, delivery.sink,
              delivery.id, attempts, error)
    with store.transaction():
        store.delivery_failed(delivery.id, error, None)
        store.add_event(alert.id, at_ms=now_ms, actor="hub", action="delivery_failed",
                        from_state=alert.state, to_state=alert.state,
                        detail={"sink": delivery.sink, "recipient": delivery.recipient, "tier": delivery.tier,
                                "attempts": attempts, "error": error})


class DeliveryThread(BackgroundThread):
    """Works one sink's deliveries: whenever woken (something was queued), and every `poll_s` for the
    retries coming due."""

    def __init__(self, sink: Sink, store_path: Path, registry: Callable[[], Registry], clock: Clock,
                 settings: AlertSettings, *, poll_s: float = 0.5, store_url: str | None = None) -> None:
        super().__init__(f"alerts-{sink.name}")
        self.sink = sink
        self._store_path = store_path
        self._store_url = store_url
        self._registry = registry
        self._clock = clock
        self._settings = settings
        self._poll_s = poll_s

    def run(self) -> None:
        store = AlertStore(self._store_path, url=self._store_url, queue_writes=True)
        try:
            while not self._stopping.is_set():
                try:
                    deliver_due(store, self.sink, self._registry(), self._settings, self._clock.now_ms())
                except Exception:  # the store busy beyond its timeout, say: keep the thread alive
                    log.exception("alert delivery pass for %s failed", self.sink.name)
                self._sleep(self._poll_s)
        finally:
            self.sink.close()
            store.close()
