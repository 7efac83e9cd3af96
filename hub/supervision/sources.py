"""Where supervision's figures come from: the alert tables, and the patrol visits table through the
small `VisitSource` protocol, so the figures do not depend on how visits are scheduled and recorded."""

from __future__ import annotations

from contextlib import closing
from typing import Protocol

from hub.alerts.store import AlertStore
from hub.store import Store, StoreAt, VisitFilter
from hub.supervision.figures import FIGURE_ACTIONS, History, Visit


class VisitSource(Protocol):
    def visits(self, from_ms: int, to_ms: int) -> list[Visit]:
        """The visits due in [from_ms, to_ms)."""
        ...


class StoredVisits:
    """The patrol's visits (hub/visits/), read through the store's own query; cancelled ones left out."""

    def __init__(self, store_at: StoreAt) -> None:
        self._store_at = store_at

    def visits(self, from_ms: int, to_ms: int) -> list[Visit]:
        where = VisitFilter(statuses=("scheduled", "overdue", "done"), due_after_ms=from_ms,
                            due_before_ms=to_ms - 1, limit=10_000_000)
        with closing(Store(self._store_at.path, read_only=True, url=self._store_at.url)) as store:
            return [Visit(v.resident, v.grid, v.due_ms, v.status, v.done_ms, v.recorded_by)
                    for v in store.visits(where)]


def read_history(store_at: StoreAt, visits: VisitSource, from_ms: int, to_ms: int, now_ms: int) -> History:
    """What the figures of [from_ms, to_ms) are computed from, read now."""
    with closing(AlertStore(store_at.path, read_only=True, url=store_at.url)) as store:
        alerts = store.alive_between(from_ms, to_ms)
        events = store.events_between(from_ms, to_ms, FIGURE_ACTIONS)
    return History(alerts, events, visits.visits(from_ms, to_ms), from_ms, to_ms, now_ms)
