"""Retention: residents' data is kept as long as it serves them, then deleted (PIPL; docs/personal-data.md).

Each table ages by its own time: readings by the device's time, dead letters by arrival (their raw bytes
sooner than the row that says why they failed), resolved alerts by resolution (with their history,
hand-overs and deliveries), deliveries by their last attempt, the read audit by the read, grid workers'
visits by their due time (the phone's location on them sooner, by the visit). Unresolved alerts, pending
deliveries and open visits are never deleted: they are work still to do. The running hub applies the
limits in settings every `HUB_RETENTION_INTERVAL_S` (`RetentionThread`), in small transactions so intake
never waits long.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from hub.alerts.store import AlertStore
from hub.clock import Clock
from hub.settings import Settings
from hub.store import Store
from hub.threads import BackgroundThread

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    readings_days: int
    dead_letter_bytes_days: int
    dead_letters_days: int
    alerts_days: int
    deliveries_days: int
    read_audit_days: int
    visits_days: int = 365
    visit_locations_days: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(settings.retention_readings_days, settings.retention_dead_letter_bytes_days,
                   settings.retention_dead_letters_days, settings.retention_alerts_days,
                   settings.retention_deliveries_days, settings.retention_read_audit_days,
                   settings.retention_visits_days, settings.retention_visit_locations_days)


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """How many rows each limit removed (or, for dead-letter bytes, cleared)."""

    readings: int = 0
    dead_letter_bytes: int = 0
    dead_letters: int = 0
    alerts: int = 0
    deliveries: int = 0
    read_audit: int = 0
    visits: int = 0
    visit_locations: int = 0

    def total(self) -> int:
        return sum(asdict(self).values())


def apply_retention(store: Store, policy: RetentionPolicy, now_ms: int) -> RetentionReport:
    """Delete or clear everything older than its limit at `now_ms`; nothing else."""

    def before(days: int) -> int:
        return now_ms - days * DAY_MS

    if not store.has_table("alerts"):  # a store the alert loop never opened: no alert tables yet
        AlertStore(store.path).close()

    readings = store.drop_readings_before(before(policy.readings_days))
    dead_letters = store.purge(
        "SELECT id FROM dead_letters WHERE received_ms < ?", (before(policy.dead_letters_days),),
        ["DELETE FROM dead_letters WHERE id IN ({ids})"])
    dead_letter_bytes = store.purge(
        "SELECT id FROM dead_letters WHERE received_ms < ? AND length(payload) > 0",
        (before(policy.dead_letter_bytes_days),),
        # substr(…, 1, 0): the empty byte string in both SQLite and PostgreSQL, whose literals differ.
        ["UPDATE dead_letters SET payload = substr(payload, 1, 0) WHERE id IN ({ids})"])
    deliveries = store.purge(
        "SELECT id FROM alert_deliveries WHERE status != 'pending'"
        " AND coalesce(sent_ms, next_attempt_ms) < ?", (before(policy.deliveries_days),),
        ["DELETE FROM alert_deliveries WHERE id IN ({ids})"])
    alerts = store.purge(
        "SELECT id FROM alerts WHERE state = 'resolved' AND resolved_ms < ?", (before(policy.alerts_days),),
        ["DELETE FROM alert_deliveries WHERE alert_id IN ({ids})",
         "DELETE FROM alert_handovers WHERE alert_id IN ({ids})",
         "DELETE FROM alert_events WHERE alert_id IN ({ids})",
         "DELETE FROM alerts WHERE id IN ({ids})"], chunk=1000)
    read_audit = store.purge(
        "SELECT id FROM resident_reads WHERE at_ms < ?", (before(policy.read_audit_days),),
        ["DELETE FROM resident_reads WHERE id IN ({ids})"])
    # Open visits are work still to do; a visit's location goes long before the visit itself.
    visits = store.purge(
        "SELECT id FROM visits WHERE status IN ('done', 'cancelled') AND due_ms < ?",
        (before(policy.visits_days),), ["DELETE FROM visits WHERE id IN ({ids})"])
    visit_locations = store.purge(
        "SELECT id FROM visits WHERE lat IS NOT NULL AND done_ms < ?", (before(policy.visit_locations_days),),
        ["UPDATE visits SET lat = NULL, lon = NULL WHERE id IN ({ids})"])
    return RetentionReport(readings, dead_letter_bytes, dead_letters, alerts, deliveries, read_audit, visits,
                           visit_locations)


class RetentionThread(BackgroundThread):
    """Applies the retention limits at start and then every `interval_s`, by the hub's clock."""

    def __init__(self, store_factory: Callable[[], Store], policy: RetentionPolicy, clock: Clock,
                 interval_s: float) -> None:
        super().__init__("retention")
        self._store_factory = store_factory
        self._policy = policy
        self._clock = clock
        self._interval_s = interval_s
        self.runs = 0
        self.last: RetentionReport | None = None

    def run(self) -> None:
        store = self._store_factory()
        try:
            while not self._stopping.is_set():
                try:
                    self.last = apply_retention(store, self._policy, self._clock.now_ms())
                    self.runs += 1
                    if self.last.total():
                        log.info("retention removed %s", asdict(self.last))
                except Exception:  # a busy or full store: try again next time, never stop the hub
                    log.exception("retention failed; retrying in %.0f s", self._interval_s)
                if self._sleep(self._interval_s):
                    return
        finally:
            store.close()
