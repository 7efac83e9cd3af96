"""Alert lists for the API: the filters `hub alerts list` has and more (several states, a resident, a time
range), plus the caller's scope, in SQL on a read-only connection of its own, so a request never waits
on the alert service's lock that the hub's threads raise alerts under."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from hub.alerts.model import Alert
from hub.alerts.store import ALERT_COLUMNS, alert_from_row
from hub.api.scope import Scope


@dataclass(frozen=True, slots=True)
class AlertQuery:
    states: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    community: str | None = None
    building: str | None = None
    resident: str | None = None
    since_ms: int | None = None  # still seen at or after
    until_ms: int | None = None  # first seen at or before
    limit: int = 100


def find_alerts(store_path: Path, query: AlertQuery, scope: Scope) -> list[Alert]:
    """Newest first: the alerts matching `query` that `scope` may see."""
    where, args = scope.alert_sql()
    clauses = [where]
    for column, values in (("state", query.states), ("kind", query.kinds), ("severity", query.severities)):
        if values:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            args += values
    for column, value in (("community", query.community), ("building", query.building),
                          ("resident", query.resident)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    # An alert belongs to a time range when it was alive in it: seen since its start, begun by its end.
    if query.since_ms is not None:
        clauses.append("last_seen_ms >= ?")
        args.append(query.since_ms)
    if query.until_ms is not None:
        clauses.append("first_seen_ms <= ?")
        args.append(query.until_ms)
    db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA busy_timeout = 10000")
        rows = db.execute(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(clauses)}"
                          " ORDER BY id DESC LIMIT ?", (*args, query.limit))
        return [alert_from_row(row) for row in rows]
    finally:
        db.close()
