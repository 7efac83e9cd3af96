"""The alert tables, in the hub's SQLite file: alerts, their audit history, and the delivery queue.

Same conventions as `hub.store`: WAL so the CLI reads and acts while the hub writes, a busy timeout so
two writers wait for each other instead of failing, one connection per thread, and write transactions
that take the write lock up front (BEGIN IMMEDIATE) so a read-then-write decision — is this alert still
open? — cannot be overtaken by another process. The schema is created idempotently on open.

With `url` the tables are in PostgreSQL (hub/migrations.py creates them there): the same statements
where the dialects agree, a few of each where they do not (JSON arrays); write transactions take an
advisory lock of their own instead of SQLite's write lock, and deliveries are claimed with
`FOR UPDATE SKIP LOCKED`, so workers on several nodes share one queue without sending one twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub import sensitivity
from hub.alerts.model import Alert, AlertEvent, AlertRequest, AlertState, Delivery
from hub.migrations import ALERT_TABLES_SQLITE, migrate_postgresql, migrate_sqlite
from hub.postgres import PgConnection
from hub.store import WriterTurn, open_sqlite_for_writing, placeholders

# The alert service's turn on PostgreSQL (its read-then-write decisions, as BEGIN IMMEDIATE on SQLite);
# apart from intake's, which alerts need not wait for. Any fixed number, the same in every hub.
_ALERTS_LOCK = 0x5C_A1E7


ALERT_COLUMNS = (
    "id, kind, severity, state, subject, community, building, household, resident, device, evidence, count,"
    " first_seen_ms, last_seen_ms, tier, deadline_ms, assigned_to, acknowledged_by, acknowledged_ms,"
    " resolved_by, resolved_ms, outcome, note, grid,"
    # Counted from the history rather than kept in a column: the history is what a reopening is.
    " (SELECT count(*) FROM alert_events e WHERE e.alert_id = alerts.id AND e.action = 'reopened')"
)
_UPDATABLE = {"severity", "state", "evidence", "count", "last_seen_ms", "tier", "deadline_ms", "assigned_to",
              "acknowledged_by", "acknowledged_ms", "resolved_by", "resolved_ms", "outcome", "note"}
_DELIVERY_COLUMNS = ("id, alert_id, event_id, reason, tier, sink, recipient, status, attempts,"
                     " next_attempt_ms, last_error, sent_ms")


def alert_from_row(row: tuple[Any, ...]) -> Alert:
    values = list(row)
    values[10] = json.loads(values[10])
    return Alert(*values)


_EVENT_COLUMNS = "id, alert_id, at_ms, actor, action, from_state, to_state, detail"


def _event_from_row(row: tuple[Any, ...]) -> AlertEvent:
    event_id, alert_id, at_ms, actor, action, from_state, to_state, detail = row
    return AlertEvent(event_id, alert_id, at_ms, actor, action, from_state, to_state, json.loads(detail))


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts to list; an empty tuple or None filters nothing."""

    states: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    community: str | None = None
    building: str | None = None
    resident: str | None = None
    # An alert belongs to a time range when it was alive in it: seen since its start, begun by its end.
    since_ms: int | None = None  # still seen at or after
    until_ms: int | None = None  # first seen at or before
    limit: int = 100
    # (column, ids): in one of them, for filters by a level (a district's communities, a grid...); empty
    # ids match nothing.
    among: tuple[tuple[str, tuple[str, ...]], ...] = ()


class AlertStore:
    """One connection to the alert tables; open one per thread."""

    def __init__(self, path: Path, *, read_only: bool = False, url: str | None = None,
                 queue_writes: bool = False) -> None:
        """`queue_writes`: this connection's writes on SQLite wait for their turn in the store's writers'
        queue (`WriterTurn`), for a thread that is not in one already (the delivery threads)."""
        self.path = path
        self._db: sqlite3.Connection | PgConnection
        self._pg: PgConnection | None = None
        self._turn: WriterTurn | None = None
        if url is not None:
            self._db = self._pg = PgConnection(url, read_only=read_only)
            if not read_only:
                migrate_postgresql(self._pg)
            return
        if read_only:
            # For readers beside a running hub (metrics, snapshots): no schema, no journal change, no writes.
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 10000")
            return
        # check_same_thread=False: the owner serialises use itself (the service holds a lock).
        self._db = open_sqlite_for_writing(path)
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(ALERT_TABLES_SQLITE)
        migrate_sqlite(self._db)  # the later steps' tables (sensitivity changes) on a store opened here first
        if queue_writes:
            # A delivery's claim is on the SOS path and intake commits most of the time under load: SQLite's
            # busy handler would sleep-poll (1, 2, 5 … ms) for a gap between intake's commits.
            self._turn = WriterTurn(path)

    def close(self) -> None:
        self._db.close()
        if self._turn is not None:
            self._turn.close()

    @contextmanager
    def _my_turn(self) -> Iterator[None]:
        """A write outside `transaction()` (one statement, its own transaction) in the writers' queue."""
        if self._turn is None or (isinstance(self._db, sqlite3.Connection) and self._db.in_transaction):
            yield
            return
        with self._turn:
            yield

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._pg is not None:
            with self._pg.transaction(lock=_ALERTS_LOCK):
                yield
            return
        with self._my_turn():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- alerts --------------------------------------------------------------------------------

    def alert(self, alert_id: int) -> Alert | None:
        row = self._db.execute(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return None if row is None else alert_from_row(row)

    def unresolved(self, subject: str, kind: str) -> Alert | None:
        row = self._db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE subject = ? AND kind = ? AND state != 'resolved'",
            (subject, kind)).fetchone()
        return None if row is None else alert_from_row(row)

    def unresolved_keys(self) -> set[tuple[str, str]]:
        """(subject, kind) of every alert not yet resolved (few: the index of the one unresolved alert per
        subject and kind has them)."""
        rows = self._db.execute("SELECT subject, kind FROM alerts WHERE state != 'resolved'")
        return {(subject, kind) for subject, kind in rows}

    def with_occurrence(self, subject: str, kind: str, occurrence: str) -> Alert | None:
        """The alert (resolved or not) that already counted this occurrence, if any."""
        counted = ("EXISTS (SELECT 1 FROM json_each(alerts.occurrences) WHERE value = ?)" if self._pg is None
                   else "occurrences @> jsonb_build_array(?::text)")
        row = self._db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE subject = ? AND kind = ? AND {counted}"
            " ORDER BY id DESC",
            (subject, kind, occurrence)).fetchone()
        return None if row is None else alert_from_row(row)

    def insert_alert(self, request: AlertRequest, occurrence: str | None, tier: int,
                     deadline_ms: int | None, grid: str | None = None) -> int:
        cursor = self._db.execute(
            "INSERT INTO alerts (kind, severity, state, subject, community, building, household, resident,"
            " device, evidence, occurrences, count, first_seen_ms, last_seen_ms, tier, deadline_ms, grid)"
            " VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) RETURNING id",
            (request.kind, request.severity, request.subject, request.community, request.building,
             request.household, request.resident, request.device, _json(request.evidence),
             _json([] if occurrence is None else [occurrence]), request.raised_at_ms, request.raised_at_ms,
             tier, deadline_ms, grid))
        return int(cursor.fetchone()[0])

    def update_alert(self, alert_id: int, **columns: Any) -> None:
        unknown = set(columns) - _UPDATABLE
        assert not unknown, f"not updatable: {unknown}"
        values = [_json(v) if name == "evidence" else v for name, v in columns.items()]
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self._db.execute(f"UPDATE alerts SET {assignments} WHERE id = ?", (*values, alert_id))

    def add_occurrence(self, alert_id: int, occurrence: str) -> None:
        appended = ("json_insert(occurrences, '$[#]', ?)" if self._pg is None
                    else "occurrences || jsonb_build_array(?::text)")
        self._db.execute(f"UPDATE alerts SET occurrences = {appended} WHERE id = ?", (occurrence, alert_id))

    def alerts(self, where: AlertFilter, scope: tuple[str, list[object]] = ("TRUE", [])) -> list[Alert]:
        """Newest first; `scope` is an SQL condition with its arguments (what an API caller may see)."""
        condition, scope_args = scope
        clauses = [condition]
        args = list(scope_args)
        among = (("state", where.states), ("kind", where.kinds), ("severity", where.severities))
        for column, values in among:
            if values:
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
                args += values
        for column, value in (("community", where.community), ("building", where.building),
                              ("resident", where.resident)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        for column, values in where.among:
            clauses.append(f"{column} IN ({placeholders(len(values))})")
            args += values
        if where.since_ms is not None:
            clauses.append("last_seen_ms >= ?")
            args.append(where.since_ms)
        if where.until_ms is not None:
            clauses.append("first_seen_ms <= ?")
            args.append(where.until_ms)
        rows = self._db.execute(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(clauses)}"
                                " ORDER BY id DESC LIMIT ?", (*args, where.limit))
        return [alert_from_row(row) for row in rows]

    def alive_between(self, from_ms: int, to_ms: int) -> list[Alert]:
        """The alerts unresolved at some time in [from_ms, to_ms): raised before its end, not resolved
        before its start (every alert an event of the period can be about; supervision's figures)."""
        rows = self._db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE first_seen_ms < ?"
            " AND (resolved_ms IS NULL OR resolved_ms >= ?) ORDER BY id", (to_ms, from_ms))
        return [alert_from_row(row) for row in rows]

    def events_between(self, from_ms: int, to_ms: int, actions: tuple[str, ...]) -> list[AlertEvent]:
        """The history entries of these actions in [from_ms, to_ms), oldest first."""
        rows = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM alert_events"
            f" WHERE at_ms >= ? AND at_ms < ? AND action IN ({', '.join('?' * len(actions))}) ORDER BY id",
            (from_ms, to_ms, *actions))
        return [_event_from_row(row) for row in rows]

    def overdue(self, now_ms: int) -> list[Alert]:
        """Unresolved alerts whose deadline has passed: an open alert's tier's acknowledgement deadline, an
        acknowledged alert's resolution deadline."""
        rows = self._db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE deadline_ms <= ? AND state IN ('open', 'acknowledged')"
            " ORDER BY deadline_ms", (now_ms,))
        return [alert_from_row(row) for row in rows]

    # --- sensitivity learned from verdicts (hub/sensitivity.py) --------------------------------

    def sensitivity_factor(self, resident: str, band: int) -> float:
        return sensitivity.factor(self._db, resident, band)

    def record_sensitivity(self, **change: Any) -> sensitivity.SensitivityChange:
        return sensitivity.record(self._db, **change)

    def sensitivity_changes(self, resident: str) -> list[sensitivity.SensitivityChange]:
        return sensitivity.changes(self._db, resident)

    def sensitivity_change(self, change_id: int) -> sensitivity.SensitivityChange | None:
        return sensitivity.change(self._db, change_id)

    # --- history -------------------------------------------------------------------------------

    def add_event(self, alert_id: int, *, at_ms: int, actor: str, action: str, from_state: AlertState | None,
                  to_state: AlertState, detail: dict[str, Any] | None = None) -> int:
        cursor = self._db.execute(
            "INSERT INTO alert_events (alert_id, at_ms, actor, action, from_state, to_state, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (alert_id, at_ms, actor, action, from_state, to_state, _json(detail or {})))
        return int(cursor.fetchone()[0])

    def hand_over(self, event_id: int, alert_id: int, tell: str | None) -> None:
        self._db.execute("INSERT INTO alert_handovers (event_id, alert_id, tell) VALUES (?, ?, ?)",
                         (event_id, alert_id, tell))

    def handovers(self) -> list[tuple[int, int, str | None]]:
        """(event, alert, reason to tell or None), oldest first."""
        return list(self._db.execute(
            "SELECT event_id, alert_id, tell FROM alert_handovers ORDER BY event_id"))

    def take_handover(self, event_id: int) -> bool:
        """Remove the hand-over; False if it was already gone."""
        return self._db.execute("DELETE FROM alert_handovers WHERE event_id = ?", (event_id,)).rowcount == 1

    def event(self, event_id: int) -> AlertEvent | None:
        rows = self._events("id = ?", event_id)
        return rows[0] if rows else None

    def history(self, alert_id: int) -> list[AlertEvent]:
        return self._events("alert_id = ?", alert_id)

    def _events(self, condition: str, value: int) -> list[AlertEvent]:
        rows = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM alert_events"
            f" WHERE {condition} ORDER BY id", (value,))
        return [_event_from_row(row) for row in rows]

    # --- deliveries ----------------------------------------------------------------------------

    def add_delivery(self, alert_id: int, *, event_id: int, reason: str, tier: int, sink: str,
                     recipient: str | None, now_ms: int) -> None:
        self._db.execute(
            "INSERT INTO alert_deliveries (alert_id, event_id, reason, tier, sink, recipient, status,"
            " next_attempt_ms) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
            (alert_id, event_id, reason, tier, sink, recipient, now_ms))

    def deliveries(self, alert_id: int) -> list[Delivery]:
        rows = self._db.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM alert_deliveries WHERE alert_id = ? ORDER BY id", (alert_id,))
        return [Delivery(*row) for row in rows]

    def claim_due_deliveries(self, sink: str, now_ms: int, limit: int, lease_ms: int) -> list[Delivery]:
        """Take up to `limit` deliveries of `sink` due at `now_ms` for this worker to send: their next
        attempt moves to `now_ms + lease_ms`, so no other worker (on this node or another sharing the
        store) takes them meanwhile, and a worker that dies while sending leaves them to be taken again
        when the lease is over. On PostgreSQL rows another worker is claiming are skipped, not waited for
        (SKIP LOCKED); SQLite has one writer at a time. Oldest due first."""
        skip_locked = "" if self._pg is None else " FOR UPDATE SKIP LOCKED"
        claim = (f"UPDATE alert_deliveries SET next_attempt_ms = ? WHERE id IN ("
                 "SELECT id FROM alert_deliveries"
                 " WHERE sink = ? AND status = 'pending' AND next_attempt_ms <= ?"
                 f" ORDER BY next_attempt_ms, id LIMIT ?{skip_locked}) RETURNING {_DELIVERY_COLUMNS}")
        if self._pg is not None:  # row locks, not the alert service's turn: claimers never queue
            with self._pg.transaction(lock=None):
                rows = self._pg.execute(claim, (now_ms + lease_ms, sink, now_ms, limit)).fetchall()
        else:
            with self.transaction():
                rows = self._db.execute(claim, (now_ms + lease_ms, sink, now_ms, limit)).fetchall()
        return sorted((Delivery(*row) for row in rows), key=lambda delivery: delivery.id)

    def delivery_sent(self, delivery_id: int, now_ms: int) -> None:
        with self._my_turn():
            self._db.execute(
                "UPDATE alert_deliveries SET status = 'sent', attempts = attempts + 1, sent_ms = ?,"
                " last_error = NULL WHERE id = ?", (now_ms, delivery_id))

    def delivery_failed(self, delivery_id: int, error: str, next_attempt_ms: int | None) -> None:
        """Record a failed attempt; `next_attempt_ms` None gives the delivery up."""
        with self._my_turn():
            self._db.execute(
                "UPDATE alert_deliveries SET attempts = attempts + 1, last_error = ?,"
                " status = CASE WHEN ? IS NULL THEN 'failed' ELSE 'pending' END,"
                " next_attempt_ms = coalesce(?, next_attempt_ms) WHERE id = ?",
                (error, next_attempt_ms, next_attempt_ms, delivery_id))

    # --- figures (metrics, dashboards) ---------------------------------------------------------

    def unresolved_counts(self) -> list[tuple[str, str, str, str, str, int]]:
        """(community, building, kind, severity, state, count) of the alerts not yet resolved."""
        rows = self._db.execute(
            "SELECT community, building, kind, severity, state, count(*) FROM alerts"
            " WHERE state != 'resolved' GROUP BY community, building, kind, severity, state")
        return [(c, b, k, s, state, n) for c, b, k, s, state, n in rows]

    def escalation_counts(self) -> dict[str, int]:
        """How often each kind of alert was escalated to a next tier, over the store's whole history."""
        rows = self._db.execute(
            "SELECT a.kind, count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id"
            " WHERE e.action = 'escalated' GROUP BY a.kind")
        return {kind: n for kind, n in rows}

    def acknowledgement_buckets(self, bounds_ms: list[int], by: tuple[str, ...] = ("severity",)) -> \
            dict[tuple[Any, ...], tuple[list[int], int, int]]:
        """Per value of the `by` columns: how many acknowledged alerts took at most each bound (first seen
        → acknowledged), their count and the total time in ms. Counted in SQL: the table only grows."""
        took = f"{'max' if self._pg is None else 'greatest'}(acknowledged_ms - first_seen_ms, 0)"
        # CAST: PostgreSQL sums bigints as numeric (Decimal in Python), SQLite as integers.
        buckets = ", ".join(f"CAST(sum(CASE WHEN {took} <= ? THEN 1 ELSE 0 END) AS BIGINT)"
                            for _ in bounds_ms)
        columns = ", ".join(by)
        rows = self._db.execute(
            f"SELECT {columns}, {buckets}, count(*), CAST(sum({took}) AS BIGINT) FROM alerts"
            f" WHERE acknowledged_ms IS NOT NULL GROUP BY {columns}", bounds_ms)
        return {tuple(row[:len(by)]): (list(row[len(by):-2]), row[-2], row[-1]) for row in rows}

    def placed_counts(self) -> list[tuple[str, str, str | None, str | None, str, str | None, int, int]]:
        """(community, building, household, resident, state, outcome, alerts, of them unresolved and told
        overdue) over the store's whole history: where alerts are, for supervision's metrics."""
        rows = self._db.execute(
            "SELECT community, building, household, resident, state, outcome, count(*),"
            " CAST(sum(CASE WHEN state != 'resolved' AND EXISTS (SELECT 1 FROM alert_events e"
            "  WHERE e.alert_id = alerts.id AND e.action = 'overdue') THEN 1 ELSE 0 END) AS BIGINT)"
            " FROM alerts GROUP BY community, building, household, resident, state, outcome")
        return [(c, b, h, r, state, outcome, n, overdue) for c, b, h, r, state, outcome, n, overdue in rows]

    def devices_alerted(self, kinds: tuple[str, ...]) -> set[str]:
        """The devices with an unresolved alert of one of these kinds."""
        rows = self._db.execute(
            f"SELECT DISTINCT device FROM alerts WHERE state != 'resolved' AND device IS NOT NULL"
            f" AND kind IN ({', '.join('?' * len(kinds))})", kinds)
        return {device for (device,) in rows}

    def delivery_counts(self) -> list[tuple[str, str, int, int]]:
        """(sink, status, deliveries, failed attempts) over the delivery queue's whole history."""
        rows = self._db.execute(
            "SELECT sink, status, count(*),"
            " CAST(sum(attempts - CASE WHEN status = 'sent' THEN 1 ELSE 0 END) AS BIGINT)"
            " FROM alert_deliveries"
            " GROUP BY sink, status")
        return [(sink, status, n, failed) for sink, status, n, failed in rows]
