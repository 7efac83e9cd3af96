"""Where supervision's figures come from: the alert tables, and the patrol visits table through the
small `VisitSource` protocol, so the figures do not depend on how visits are scheduled and recorded."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Protocol

from hub.alerts.store import AlertStore
from hub.postgres import PgConnection
from hub.store import StoreAt
from hub.supervision.figures import FIGURE_ACTIONS, History, Visit


class VisitSource(Protocol):
    def visits(self, from_ms: int, to_ms: int) -> list[Visit]:
        """The visits due in [from_ms, to_ms)."""
        ...


class StoredVisits:
    """The patrol's `visits` table (hub/visits/): each visit's resident, grid, due time, status, when done
    and by whom; cancelled visits are left out."""

    def __init__(self, store_at: StoreAt) -> None:
        self._store_at = store_at

    def visits(self, from_ms: int, to_ms: int) -> list[Visit]:
        query = ("SELECT resident, grid, due_ms, status, done_ms, recorded_by FROM visits"
                 " WHERE due_ms >= ? AND due_ms < ? AND status <> 'cancelled' ORDER BY due_ms")
        if self._store_at.url is not None:
            with closing(PgConnection(self._store_at.url, read_only=True)) as pg:
                return [Visit(*row) for row in pg.execute(query, (from_ms, to_ms))]
        with closing(sqlite3.connect(f"file:{self._store_at.path}?mode=ro", uri=True)) as db:
            return [Visit(*row) for row in db.execute(query, (from_ms, to_ms))]


def read_history(store_at: StoreAt, visits: VisitSource, from_ms: int, to_ms: int, now_ms: int) -> History:
    """What the figures of [from_ms, to_ms) are computed from, read now."""
    with closing(AlertStore(store_at.path, read_only=True, url=store_at.url)) as store:
        alerts = store.alive_between(from_ms, to_ms)
        events = store.events_between(from_ms, to_ms, FIGURE_ACTIONS)
    return History(alerts, events, visits.visits(from_ms, to_ms), from_ms, to_ms, now_ms)
