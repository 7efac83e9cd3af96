"""`AlertService`: the alert loop's one entry point for the hub and the CLI.

Raising, acknowledging, assigning and resolving each run in one write transaction that also appends the
audit event and queues the notifications, so history and queue never disagree with the alert. Escalation
deadlines live in the alert rows: `tick(now_ms)` after a restart escalates whatever fell due meanwhile.

Escalation: a raised alert notifies its first tier and gets a deadline (`ack_deadline_<severity>_s`). At
the deadline, if nobody acknowledged, the next tier is notified too (`escalated`) and gets a full
deadline of its own, counted from when it was told — after a long outage tiers are told one tick apart,
not all at once with no time to answer. When no tier is left the history says so
(`escalation_exhausted`). Acknowledging stops escalation; a severity rise re-notifies the tiers told so
far and shortens the pending deadline to the new severity's.

Acknowledged is not done: acknowledging sets the alert's deadline to the resolution deadline of its
severity (`resolve_deadline_<severity>_s`); past it, the tier above the acknowledger's is told the alert is
`overdue`, once per deadline. A new incident folded into an unresolved alert (a new SOS press or fall, a
silence that began after activity resumed: `is_new_incident`) is told to everyone told so far
(`new_incident`), acknowledged or not; the same incident seen again adds to the count only. `assign`
tells the assignee through their own channels (`assigned`).

Threads: the service serialises its own calls (one connection, a lock), so the hub may call it from its
intake and timer threads; each sink's deliveries run in their own delivery thread (`start()`), or inline
in `tick()` when those threads are not started. CLI processes use their own `AlertService` on the same
file (WAL, busy timeout) with `hands_over=True`: they run no sinks and no live stream, so each change
they make is handed over (`alert_handovers`, in the same transaction) and the running hub's next tick
tells the caregivers already notified and announces it to its listeners — or the tick after a restart.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from detectors.severity import SEVERITIES
from hub import sensitivity
from hub.alerts.delivery import DeliveryThread, deliver_due
from hub.alerts.directory import UNREACHABLE, Tiers, caregiver, next_tier, recipient_tiers, timezone_of
from hub.alerts.model import (
    CLEARED,
    OUTCOMES,
    Alert,
    AlertDetail,
    AlertError,
    AlertRequest,
    AlertState,
    ClearRequest,
    severity_rank,
)
from hub.alerts.reports import REPORT_KINDS
from hub.alerts.settings import AlertSettings
from hub.alerts.sinks.dispatch import DISPATCH, DISPATCH_ANSWERS, DispatchSink
from hub.alerts.sinks.sink import Sink
from hub.alerts.store import AlertFilter, AlertStore
from hub.clock import Clock, wait_until
from hub.registry import Registry
from hub.store import WriterTurn

HUB_ACTOR = "hub"
DISPATCHER = "dispatcher"  # the history's actor and role of a dispatcher's answers
# Delivery reasons besides the lifecycle's own (raised, escalated, acknowledged, ...).
NEW_INCIDENT = "new_incident"
OVERDUE = "overdue"
ASSIGNED = "assigned"
REOPENED = "reopened"

# The detector's alerts, whose false alarms teach it (hub/sensitivity.py); a false SOS is a button, not a
# threshold.
LEARNING_KINDS = frozenset({"inactivity"})

# For kinds without an occurrence key, the evidence field that names the episode: an inactivity whose
# last activity is later than the alert's began after the resident was active again, so it is a new
# incident; the same silence re-raised every minute is not.
_EPISODE_KEYS = {"inactivity": "last_activity_ms", "not_back_home": "left_ms"}


def is_new_incident(alert: Alert, request: AlertRequest, occurrence: str | None) -> bool:
    """Whether `request`, folded into the unresolved `alert`, reports a new real-world incident (a new SOS
    press or fall, a silence that began after activity resumed) rather than the same one seen again.
    Redeliveries of a counted occurrence never get here (`raise_alert` drops them)."""
    if occurrence is not None:
        return True
    key = _EPISODE_KEYS.get(alert.kind)
    if key is None:
        return False
    before, now = alert.evidence.get(key), request.evidence.get(key)
    return isinstance(before, int) and isinstance(now, int) and now > before


def _acting_as(role: str | None) -> dict[str, str]:
    """The history's `role` of an action a person took: the role they acted in (the API token's role,
    `link` for an acknowledge link, `cli`, `dispatcher`); the hub's own actions carry none."""
    return {} if role is None or role == HUB_ACTOR else {"role": role}


def _report_of(request: AlertRequest) -> dict[str, Any]:
    """A report's own words, kept in the history event it raised or repeated (the alert's evidence holds
    only the newest report's)."""
    if request.kind not in REPORT_KINDS:
        return {}
    return {"report": {key: request.evidence.get(key) for key in ("category", "note", "reported_by")}}


log = logging.getLogger(__name__)


class AlertService:
    def __init__(self, store_path: Path, registry: Callable[[], Registry], clock: Clock,
                 settings: AlertSettings, sinks: Sequence[Sink] = (), *, hands_over: bool = False,
                 store_url: str | None = None) -> None:
        self._store_path = store_path
        self._store_url = store_url
        self._hands_over = hands_over
        self._registry = registry
        self._clock = clock
        self._settings = settings
        self._sinks = list(sinks)
        # The kinds a dispatcher is called for: those of the dispatch sink, when one is configured.
        self._dispatch_kinds = frozenset(kind for sink in self._sinks if isinstance(sink, DispatchSink)
                                         for kind in sink.kinds)
        self._store = AlertStore(store_path, url=store_url)
        # Raising is on the SOS path: wait for intake's commits in the writers' queue, not SQLite's polling.
        # PostgreSQL needs no queue of ours: its locks wake the next waiter themselves.
        self._writer_turn: WriterTurn | contextlib.nullcontext[None] = (
            WriterTurn(store_path) if store_url is None else contextlib.nullcontext())
        self._lock = threading.RLock()
        self._delivery_threads: list[DeliveryThread] = []
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_ticker = threading.Event()  # set by stop() and by the clock reaching the next tick
        self._listeners: list[Callable[[Alert], None]] = []

    def add_listener(self, listener: Callable[[Alert], None]) -> None:
        """Call `listener(alert)` after each committed change (raised, repeated, escalated, acknowledged,
        assigned, resolved), on the thread that made it: it must return at once (hand over, never block).
        Changes the CLI made are announced by the tick that takes them over."""
        self._listeners.append(listener)

    def _changed(self, alert: Alert) -> None:
        for listener in self._listeners:
            try:
                listener(alert)
            except Exception:  # a broken listener must not fail the action that was already committed
                log.exception("alert listener %r failed", listener)

    # --- running -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start one delivery thread per sink and a timer that ticks every `tick_interval_s`."""
        self._stopping.clear()
        self._delivery_threads = [
            DeliveryThread(sink, self._store_path, self._registry, self._clock, self._settings,
                           store_url=self._store_url)
            for sink in self._sinks]
        for thread in self._delivery_threads:
            thread.start()
        self._ticker = threading.Thread(target=self._tick_periodically, name="alerts-escalation", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake_ticker.set()
        if self._ticker is not None:
            self._ticker.join(10)
            self._ticker = None
        for thread in self._delivery_threads:
            thread.stop()
        self._delivery_threads = []

    def close(self) -> None:
        self.stop()
        with self._lock:
            self._store.close()
            if isinstance(self._writer_turn, WriterTurn):
                self._writer_turn.close()

    def _tick_periodically(self) -> None:
        # Every `tick_interval_s` of the hub's time, so a deadline is met within a tick of it whether the
        # clock is the system's or a simulation's; and at least that often in wall time.
        interval_ms = int(self._settings.tick_interval_s * 1000)
        while True:
            self._wake_ticker.clear()
            if self._stopping.is_set():  # after the clear: a stop() racing it still wakes the wait below
                return
            wait_until(self._clock, self._clock.now_ms() + interval_ms, self._wake_ticker,
                       self._settings.tick_interval_s)
            if self._stopping.is_set():
                return
            self.tick(self._clock.now_ms())

    # --- actions -------------------------------------------------------------------------------

    def raise_alert(self, request: AlertRequest, *, by: str = HUB_ACTOR, role: str = HUB_ACTOR) -> Alert:
        """Open an alert, or fold the request into the unresolved one for its (subject, kind). `by`, `role`:
        who raised it, when a person did (a report filed by hand, `hub.alerts.reports`)."""
        now = self._clock.now_ms()
        occurrence = request.occurrence()
        with self._lock, self._writer_turn, self._store.transaction():
            store = self._store
            if occurrence is not None:
                seen = store.with_occurrence(request.subject, request.kind, occurrence)
                if seen is not None:
                    return seen  # a redelivery of something already counted
            alert = store.unresolved(request.subject, request.kind)
            reaches_nobody = False
            if alert is None:
                tiers = self._tiers(request)
                reaches_nobody = not any(tiers.values())
                alert = self._open(request, occurrence, tiers, now, by=by, role=role)
            else:
                alert = self._repeat(alert, request, occurrence, now, by=by, role=role)
        self._wake_delivery_threads()
        self._changed(alert)
        if reaches_nobody:
            self._report_unreachable(alert)
        return alert

    def _report_unreachable(self, alert: Alert) -> None:
        """An alert nobody in the registry would be told of would otherwise run its deadlines out unseen
        and end in `escalation_exhausted`: the duty officer hears of it as an alert of its own."""
        log.warning("alert %d (%s about %s in %s) reaches nobody: the registry has no one to tell of it;"
                    " see `hub registry check`", alert.id, alert.kind, alert.subject, alert.community)
        if alert.kind == UNREACHABLE:
            return  # no duty officer either: the log and the broadcast sinks (MQTT, webhook) are all there is
        self.raise_alert(AlertRequest(
            kind=UNREACHABLE, severity=alert.severity, subject=alert.subject, community=alert.community,
            building=alert.building, household=alert.household, resident=alert.resident, device=alert.device,
            evidence={"alert_id": alert.id, "alert_kind": alert.kind}, raised_at_ms=alert.first_seen_ms))

    def acknowledge(self, alert_id: int, by: str, at_ms: int | None = None, *,
                    via: str | None = None, role: str | None = None) -> Alert:
        """Someone has taken the alert on: escalation stops. `via`: how, when not the API or the CLI
        (`link`: a notification's acknowledge link), kept in the history."""
        at = self._clock.now_ms() if at_ms is None else at_ms
        with self._lock, self._store.transaction():
            alert = self._unresolved(alert_id, "acknowledge")
            if alert.state == "acknowledged":
                raise AlertError(f"alert {alert_id} is already acknowledged by {alert.acknowledged_by}")
            # From now on the deadline is the resolution's: acknowledged is not done (`_overdue`).
            self._store.update_alert(alert_id, state="acknowledged", acknowledged_by=by, acknowledged_ms=at,
                                     deadline_ms=at + self._settings.resolve_deadline_ms(alert.severity))
            event = self._store.add_event(alert_id, at_ms=at, actor=by, action="acknowledged",
                                          from_state=alert.state, to_state="acknowledged",
                                          detail={**({} if via is None else {"via": via}),
                                                  **_acting_as(role)})
            self._tell_notified(alert, event_id=event, reason="acknowledged", now=at)
            alert = self._get(alert_id)
        self._wake_delivery_threads()
        self._changed(alert)
        return alert

    def assign(self, alert_id: int, to: str, by: str, *, role: str | None = None) -> Alert:
        """Record which caregiver is responsible (a registry caregiver id), and tell them through their
        own channels (`reason` `assigned`): being made responsible unawares is not being responsible."""
        if caregiver(self._registry(), to) is None:
            raise AlertError(f"cannot assign alert {alert_id} to {to!r}: no such caregiver in the registry")
        now = self._clock.now_ms()
        with self._lock, self._store.transaction():
            alert = self._unresolved(alert_id, "assign")
            self._store.update_alert(alert_id, assigned_to=to)
            event = self._store.add_event(alert_id, at_ms=now, actor=by, action="assigned",
                                          from_state=alert.state, to_state=alert.state,
                                          detail={"to": to, "previous": alert.assigned_to,
                                                  **_acting_as(role)})
            if self._hands_over:
                self._store.hand_over(event, alert_id, tell=ASSIGNED)
            else:
                self._tell_assignee(alert, to, event_id=event, now=now)
            alert = self._get(alert_id)
        self._wake_delivery_threads()
        self._changed(alert)
        return alert

    def resolve(self, alert_id: int, outcome: str, by: str, note: str = "", *,
                role: str | None = None) -> Alert:
        if outcome not in OUTCOMES:
            raise AlertError(f"cannot resolve alert {alert_id}: unknown outcome {outcome!r};"
                             f" one of {', '.join(OUTCOMES)}")
        now = self._clock.now_ms()
        with self._lock, self._store.transaction():
            alert = self._unresolved(alert_id, "resolve")
            self._store.update_alert(alert_id, state="resolved", resolved_by=by, resolved_ms=now,
                                     outcome=outcome, note=note, deadline_ms=None)
            detail: dict[str, Any] = {"outcome": outcome, "note": note, **_acting_as(role)}
            if outcome == "false_alarm" and alert.kind in LEARNING_KINDS and alert.resident is not None:
                taught = self._learn(alert.resident, alert.first_seen_ms, by=by, cause="false_alarm", at=now,
                                     alert_id=alert_id, note=note)
                detail["sensitivity"] = {"change": taught.id, "band": taught.band, "old": taught.old,
                                         "new": taught.new}
            event = self._store.add_event(alert_id, at_ms=now, actor=by, action="resolved",
                                          from_state=alert.state, to_state="resolved", detail=detail)
            self._tell_notified(alert, event_id=event, reason="resolved", now=now)
            alert = self._get(alert_id)
        self._wake_delivery_threads()
        self._changed(alert)
        return alert

    def reopen(self, alert_id: int, by: str, note: str, *, role: str | None = None) -> Alert:
        """A supervisor sends a resolved alert round the loop again: it is open, needs a new acknowledgement
        and resolution, and escalates from its first tier with fresh deadlines. Whoever acknowledged, was
        assigned or resolved it, and every tier told before, hear why (`reopened`): the note becomes the
        alert's note until its next resolution. The assignee stays responsible until someone assigns
        another."""
        if not note.strip():
            raise AlertError(f"cannot reopen alert {alert_id} without a note saying why")
        now = self._clock.now_ms()
        with self._lock, self._store.transaction():
            alert = self._get(alert_id)
            if alert.state != "resolved":
                raise AlertError(f"cannot reopen alert {alert_id}: it is {alert.state}, not resolved")
            newer = self._store.unresolved(alert.subject, alert.kind)
            if newer is not None:  # one unresolved alert per (subject, kind): act on that one instead
                raise AlertError(f"cannot reopen alert {alert_id}: alert {newer.id} about the same"
                                 f" {alert.kind} is unresolved; act on that one")
            tiers = self._tiers(alert)
            first = next_tier(tiers, 0) or 1
            self._store.update_alert(alert_id, state="open", acknowledged_by=None, acknowledged_ms=None,
                                     resolved_by=None, resolved_ms=None, outcome=None, note=note, tier=first,
                                     deadline_ms=now + self._settings.ack_deadline_ms(alert.severity))
            event = self._store.add_event(
                alert_id, at_ms=now, actor=by, action=REOPENED, from_state="resolved", to_state="open",
                detail={"note": note, **_acting_as(role),
                        "previous": {"tier": alert.tier, "acknowledged_by": alert.acknowledged_by,
                                     "assigned_to": alert.assigned_to, "resolved_by": alert.resolved_by,
                                     "outcome": alert.outcome}})
            if self._hands_over:
                self._store.hand_over(event, alert_id, tell=REOPENED)
            else:
                self._tell_reopened(alert_id, event, now)
            alert = self._get(alert_id)
        self._wake_delivery_threads()
        self._changed(alert)
        return alert

    def dispatch_answer(self, alert_id: int, status: str, note: str = "") -> Alert:
        """The dispatcher called for the alert answers (accepted, en route, arrived, declined): recorded in
        its history whatever its state, as an arrival after the alert was resolved is still worth
        knowing. The alert itself does not change: its caregivers read the answer in its history."""
        if status not in DISPATCH_ANSWERS:
            raise AlertError(f"unknown dispatch answer {status!r}; one of {', '.join(DISPATCH_ANSWERS)}")
        now = self._clock.now_ms()
        with self._lock, self._store.transaction():
            alert = self._get(alert_id)
            self._store.add_event(alert_id, at_ms=now, actor=DISPATCHER, action="dispatch_answer",
                                  from_state=alert.state, to_state=alert.state,
                                  detail={"status": status, "note": note, **_acting_as(DISPATCHER)})
        return alert

    def report_missed(self, resident: str, incident_ms: int, by: str, note: str = "") -> \
            sensitivity.SensitivityChange:
        """Someone found the resident in trouble and no alert came ("on the floor at 10:00"): her
        sensitivity at that time of day moves one step toward more alerts."""
        if not any(r.id == resident for r in self._registry().data.residents):
            raise AlertError(f"there is no resident {resident!r} in the registry")
        now = self._clock.now_ms()
        with self._lock, self._store.transaction():
            return self._learn(resident, incident_ms, by=by, cause="missed", at=now, note=note)

    def revert_sensitivity(self, change_id: int, by: str, note: str = "") -> sensitivity.SensitivityChange:
        """An operator takes a change back: its band returns to the value before it (audited, itself
        reversible)."""
        now = self._clock.now_ms()
        with self._lock, self._store.transaction():
            change = self._store.sensitivity_change(change_id)
            if change is None:
                raise AlertError(f"there is no sensitivity change {change_id}")
            return self._store.record_sensitivity(
                resident=change.resident, band=sensitivity.BANDS.index(change.band), at_ms=now, actor=by,
                cause="reverted", new=change.old, reverts=change_id, note=note)

    def sensitivity_changes(self, resident: str) -> list[sensitivity.SensitivityChange]:
        with self._lock:
            return self._store.sensitivity_changes(resident)

    def clear(self, request: ClearRequest) -> Alert | None:
        """The cause of an equipment alert ended: resolve its unresolved alert as `cleared` by the hub, and
        tell everyone already told. None when there is nothing to clear (the common case: a device heard
        again after a restart, a camera reporting healthy as usual)."""
        def clearable(alert: Alert | None) -> bool:
            # A healthy reading older than the latest faulty one (late, overtaken on the way) says nothing
            # of the fault now: only a reading at or after it ends it.
            return alert is not None and request.cleared_at_ms >= alert.last_seen_ms

        with self._lock:
            if not clearable(self._store.unresolved(request.subject, request.kind)):
                return None  # a read, without queueing behind intake for the write lock
        now = self._clock.now_ms()
        with self._lock, self._writer_turn, self._store.transaction():
            alert = self._store.unresolved(request.subject, request.kind)
            if alert is None or not clearable(alert):
                return None
            self._store.update_alert(alert.id, state="resolved", resolved_by=HUB_ACTOR, resolved_ms=now,
                                     outcome=CLEARED, deadline_ms=None)
            event = self._store.add_event(alert.id, at_ms=now, actor=HUB_ACTOR, action="cleared",
                                          from_state=alert.state, to_state="resolved",
                                          detail={"outcome": CLEARED, "cause_ended_ms": request.cleared_at_ms,
                                                  "evidence": request.evidence})
            self._tell_notified(alert, event_id=event, reason="cleared", now=now)
            alert = self._get(alert.id)
        self._wake_delivery_threads()
        self._changed(alert)
        return alert

    def clear_all(self, requests: list[ClearRequest]) -> list[Alert]:
        """`clear` each, after one read of which have an unresolved alert at all: after a start, every
        device's first healthy reading asks (its alert may have been raised before the restart), thousands
        of them in the first batches, and a read each is a round trip each on PostgreSQL. One failed clear
        does not stop the others."""
        with self._lock:
            unresolved = self._store.unresolved_keys()
        cleared = []
        for request in requests:
            if (request.subject, request.kind) not in unresolved:
                continue
            try:
                alert = self.clear(request)
            except Exception:
                log.exception("clearing %s for %s failed", request.kind, request.subject)
                continue
            if alert is not None:
                cleared.append(alert)
        return cleared

    def tick(self, now_ms: int) -> list[Alert]:
        """Take over the CLI's changes, escalate alerts whose deadline passed, then deliver: wake the
        delivery threads, or (not started) make one pass over every sink's due deliveries here. Returns the
        alerts escalated."""
        escalated: list[Alert] = []
        with self._lock:
            handed_over = self._take_handovers(now_ms)
            for overdue in self._store.overdue(now_ms):
                with self._store.transaction():
                    alert = self._store.alert(overdue.id)
                    # Re-read inside the write lock: a CLI may have acknowledged or resolved it a moment ago.
                    if alert is None or alert.state != overdue.state or alert.deadline_ms is None \
                            or alert.deadline_ms > now_ms:
                        continue
                    if alert.state == "acknowledged":
                        if self._overdue(alert, now_ms):
                            escalated.append(self._get(alert.id))
                    elif self._escalate(alert, now_ms):
                        escalated.append(self._get(alert.id))
            if self._delivery_threads:
                self._wake_delivery_threads()
            else:
                registry = self._registry()
                for sink in self._sinks:
                    deliver_due(self._store, sink, registry, self._settings, now_ms)
        for alert in [*handed_over, *escalated]:
            self._changed(alert)
        return escalated

    def _take_handovers(self, now_ms: int) -> list[Alert]:
        """The CLI's changes, oldest first: the caregivers already notified are told (as if the change had
        been made here), and each alert changed is returned once, as it is now, for the listeners."""
        changed: dict[int, Alert] = {}
        for event_id, alert_id, reason in self._store.handovers():
            with self._store.transaction():
                if not self._store.take_handover(event_id):
                    continue  # taken meanwhile
                alert = self._get(alert_id)
                if reason == ASSIGNED and alert.assigned_to is not None:
                    self._tell_assignee(alert, alert.assigned_to, event_id=event_id, now=now_ms)
                elif reason == REOPENED:
                    self._tell_reopened(alert_id, event_id, now_ms)
                elif reason is not None and reason != ASSIGNED:
                    self._tell_notified(alert, event_id=event_id, reason=reason, now=now_ms)
            changed[alert_id] = alert
        return list(changed.values())

    # --- reading -------------------------------------------------------------------------------

    def get(self, alert_id: int) -> AlertDetail:
        with self._lock:
            alert = self._get(alert_id)
            return AlertDetail(alert, self._store.history(alert_id), self._store.deliveries(alert_id))

    def list(self, *, state: AlertState | None = None, kind: str | None = None,
             min_severity: str | None = None, community: str | None = None, building: str | None = None,
             among: tuple[tuple[str, tuple[str, ...]], ...] = (), since_ms: int | None = None,
             limit: int = 100) -> list[Alert]:
        """Newest first. `min_severity` keeps that severity and higher; `among`, places at any level as
        `AlertFilter.among` takes them; `since_ms`: last seen since."""
        with self._lock:
            severities = () if min_severity is None else SEVERITIES[severity_rank(min_severity):]
            return self._store.alerts(AlertFilter(
                states=() if state is None else (state,), kinds=() if kind is None else (kind,),
                severities=severities, community=community, building=building, since_ms=since_ms,
                limit=limit, among=among))

    # --- inside a transaction ------------------------------------------------------------------

    def _get(self, alert_id: int) -> Alert:
        alert = self._store.alert(alert_id)
        if alert is None:
            raise AlertError(f"there is no alert {alert_id}")
        return alert

    def _unresolved(self, alert_id: int, action: str) -> Alert:
        alert = self._get(alert_id)
        if alert.state == "resolved":
            raise AlertError(f"cannot {action} alert {alert_id}: it was already resolved"
                             f" by {alert.resolved_by} ({alert.outcome})")
        return alert

    def _tiers(self, alert: Alert | AlertRequest) -> Tiers:
        return recipient_tiers(self._registry(), kind=alert.kind, community=alert.community,
                               household=alert.household, resident=alert.resident)

    def _open(self, request: AlertRequest, occurrence: str | None, tiers: Tiers, now: int, *, by: str,
              role: str) -> Alert:
        first = next_tier(tiers, 0) or 1
        deadline = now + self._settings.ack_deadline_ms(request.severity)
        grid = self._registry().hierarchy.grid_of(household=request.household, resident=request.resident)
        alert_id = self._store.insert_alert(request, occurrence, first, deadline, grid)
        event = self._store.add_event(alert_id, at_ms=now, actor=by, action="raised", from_state=None,
                                      to_state="open",
                                      detail={"severity": request.severity, "tier": first,
                                              "recipients": [c.id for c in tiers.get(first, [])],
                                              **_acting_as(role), **_report_of(request)})
        if self._hands_over:  # filed at the command line: the running hub tells the first tier
            self._store.hand_over(event, alert_id, tell="raised")
        else:
            self._queue(alert_id, event_id=event, reason="raised", tier=first, tiers=tiers, now=now)
        if request.kind in self._dispatch_kinds:
            # To the dispatcher through the same durable queue (retried, survives a restart); the sink
            # records what came of it in the history (`hub.alerts.delivery`).
            self._store.add_delivery(alert_id, event_id=event, reason=DISPATCH, tier=first, sink=DISPATCH,
                                     recipient=None, now_ms=now)
        return self._get(alert_id)

    def _repeat(self, alert: Alert, request: AlertRequest, occurrence: str | None, now: int, *, by: str,
                role: str) -> Alert:
        rises = severity_rank(request.severity) > severity_rank(alert.severity)
        new_incident = is_new_incident(alert, request, occurrence)
        changes: dict[str, Any] = {"count": alert.count + 1, "evidence": request.evidence,
                                   "last_seen_ms": max(alert.last_seen_ms, request.raised_at_ms)}
        if rises:
            changes["severity"] = request.severity
            if alert.deadline_ms is not None:
                deadline = (self._settings.resolve_deadline_ms if alert.state == "acknowledged"
                            else self._settings.ack_deadline_ms)
                changes["deadline_ms"] = min(alert.deadline_ms, now + deadline(request.severity))
        self._store.update_alert(alert.id, **changes)
        if occurrence is not None:
            self._store.add_occurrence(alert.id, occurrence)
        repeated = self._store.add_event(alert.id, at_ms=now, actor=by, action="repeated",
                                         from_state=alert.state, to_state=alert.state,
                                         detail={"count": alert.count + 1, "occurrence": occurrence,
                                                 "new_incident": new_incident, **_acting_as(role),
                                                 **_report_of(request)})
        if new_incident and not rises:
            # A new press, fall or silence is news even to whoever acknowledged the last one: everyone
            # told so far hears it (a severity rise below says it already).
            self._tell_notified(alert, event_id=repeated, reason=NEW_INCIDENT, now=now)
        if rises:
            event = self._store.add_event(alert.id, at_ms=now, actor=HUB_ACTOR, action="severity_raised",
                                          from_state=alert.state, to_state=alert.state,
                                          detail={"from": alert.severity, "to": request.severity})
            self._tell_notified(alert, event_id=event, reason="severity_raised", now=now)
        return self._get(alert.id)

    def _tell_notified(self, alert: Alert, *, event_id: int, reason: str, now: int) -> None:
        """Everyone already told of the alert (every tier up to its current one) hears of this too: a
        severity rising, someone taking it on (so the others need not go), its outcome. With no one in
        the registry to tell, the broadcast sinks still hear of it (as when raised)."""
        if self._hands_over:
            self._store.hand_over(event_id, alert.id, tell=reason)
            return
        tiers = self._tiers(alert)
        for tier in [t for t in tiers if t <= alert.tier] or [alert.tier]:
            self._queue(alert.id, event_id=event_id, reason=reason, tier=tier, tiers=tiers, now=now)

    def _tell_reopened(self, alert_id: int, event_id: int, now: int) -> None:
        """Everyone told before the alert was resolved, and whoever acknowledged, was assigned or resolved
        it, hear that it was reopened (one delivery each, in the alert's first tier)."""
        alert = self._get(alert_id)
        event = self._store.event(event_id)
        previous = event.detail.get("previous", {}) if event is not None else {}
        tiers = self._tiers(alert)
        told = [c for tier, people in tiers.items() if tier <= previous.get("tier", alert.tier)
                for c in people]
        for key in ("acknowledged_by", "assigned_to", "resolved_by"):
            person = caregiver(self._registry(), previous.get(key) or "")
            if person is not None:
                told.append(person)
        people = list({c.id: c for c in told}.values())
        self._queue(alert_id, event_id=event_id, reason=REOPENED, tier=alert.tier, tiers={alert.tier: people},
                    now=now)

    def _escalate(self, alert: Alert, now: int) -> bool:
        tiers = self._tiers(alert)
        tier = next_tier(tiers, alert.tier)
        if tier is None:
            self._store.update_alert(alert.id, deadline_ms=None)
            self._store.add_event(alert.id, at_ms=now, actor=HUB_ACTOR, action="escalation_exhausted",
                                  from_state=alert.state, to_state=alert.state, detail={"tier": alert.tier})
            return False
        self._store.update_alert(alert.id, tier=tier,
                                 deadline_ms=now + self._settings.ack_deadline_ms(alert.severity))
        event = self._store.add_event(alert.id, at_ms=now, actor=HUB_ACTOR, action="escalated",
                                      from_state=alert.state, to_state=alert.state,
                                      detail={"from_tier": alert.tier, "tier": tier,
                                              "recipients": [c.id for c in tiers[tier]]})
        self._queue(alert.id, event_id=event, reason="escalated", tier=tier, tiers=tiers, now=now)
        return True

    def _learn(self, resident: str, at_ms: int, *, by: str, cause: sensitivity.Learned, at: int,
               alert_id: int | None = None, note: str = "") -> sensitivity.SensitivityChange:
        """One bounded step of `resident`'s factor in the band of `at_ms` (their community's local time)."""
        band = sensitivity.band_of(at_ms, timezone_of(self._registry(), resident=resident))
        old = self._store.sensitivity_factor(resident, band)
        return self._store.record_sensitivity(
            resident=resident, band=band, at_ms=at, actor=by, cause=cause,
            new=sensitivity.stepped(old, cause), alert_id=alert_id,
            incident_ms=None if cause == "false_alarm" else at_ms, note=note)

    def _overdue(self, alert: Alert, now: int) -> bool:
        """An acknowledged alert is past its resolution deadline: the tier above the acknowledger's is told
        (`overdue`), once per deadline — the deadline is spent, not renewed, so nobody is nagged every tick.
        The acknowledger's tier is the lowest one they are in; someone not in the registry's tiers (a name
        typed at the command line) counts as the highest tier told so far. Above the top tier the top
        tier itself is told: someone must look."""
        tiers = self._tiers(alert)
        own = min((t for t, members in tiers.items() if any(c.id == alert.acknowledged_by for c in members)),
                  default=alert.tier)
        tier = next_tier(tiers, own) or max(tiers, default=alert.tier)
        self._store.update_alert(alert.id, deadline_ms=None)
        event = self._store.add_event(alert.id, at_ms=now, actor=HUB_ACTOR, action=OVERDUE,
                                      from_state=alert.state, to_state=alert.state,
                                      detail={"acknowledged_by": alert.acknowledged_by, "tier": tier,
                                              "deadline_ms": alert.deadline_ms,
                                              "recipients": [c.id for c in tiers.get(tier, [])]})
        self._queue(alert.id, event_id=event, reason=OVERDUE, tier=tier, tiers=tiers, now=now)
        return True

    def _tell_assignee(self, alert: Alert, to: str, *, event_id: int, now: int) -> None:
        assignee = caregiver(self._registry(), to)
        if assignee is None:
            return  # left the registry since: nobody to tell
        tiers = self._tiers(alert)
        tier = min((t for t, members in tiers.items() if assignee in members), default=alert.tier)
        self._queue(alert.id, event_id=event_id, reason=ASSIGNED, tier=tier, tiers={tier: [assignee]},
                    now=now)

    def _queue(self, alert_id: int, *, event_id: int, reason: str, tier: int, tiers: Tiers, now: int) -> None:
        recipients = tiers.get(tier, [])
        for sink in self._sinks:
            for addressee in sink.addressees(recipients):
                self._store.add_delivery(alert_id, event_id=event_id, reason=reason, tier=tier,
                                         sink=sink.name, recipient=addressee, now_ms=now)

    def _wake_delivery_threads(self) -> None:
        for thread in self._delivery_threads:
            thread.wake()
