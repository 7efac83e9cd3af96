"""The patrol's moving parts: each pass keeps one open visit per resident with a plan (scheduling the
next, following plan and grid changes, cancelling those no longer planned) and raises `visit_overdue`
for a visit past its due time; recording a visit closes it and schedules the next.

A pass is idempotent and safe to run on several hub nodes at once: the store keeps one open visit per
resident whatever the callers do, and the overdue alert names the visit as its occurrence, so a second
request for it is a redelivery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from detectors.severity import Severity
from hub.alerts.directory import VISIT_OVERDUE
from hub.alerts.model import OCCURRENCE_KEY, Alert, AlertRequest
from hub.clock import Clock, FollowedClock, wait_until
from hub.registry import Registry, Resident
from hub.store import OPEN_VISIT, Store, Visit, VisitFilter
from hub.threads import BackgroundThread
from hub.visits.plans import due_ms, visit_every_days

log = logging.getLogger(__name__)

NOT_SEEN_FOLLOW_UP_DAYS = 1.0
"""A visit that did not see the resident confirmed nothing: the next one is due within a day."""


@dataclass(frozen=True, slots=True)
class PatrolReport:
    scheduled: int = 0
    changed: int = 0
    cancelled: int = 0
    overdue: int = 0


def _planned(registry: Registry) -> dict[str, tuple[Resident, float]]:
    """Residents in service with a visit plan → (resident, days between visits)."""
    communities = {c.id: c for c in registry.data.communities}
    planned = {}
    for r in registry.data.residents:
        community = communities[registry.hierarchy.resident(r.id).community or ""]
        every = visit_every_days(r, community)
        if every is not None:
            planned[r.id] = (r, every)
    return planned


def next_visit(registry: Registry, resident: Resident, every_days: float, from_ms: int) -> Visit:
    """The open visit to `resident` due `every_days` after `from_ms`, placed where the resident lives now and
    assigned to the grid's first worker (id 0: the store gives it one)."""
    levels = registry.hierarchy.resident(resident.id)
    grid = levels.grid or ""
    workers = registry.hierarchy.grid_workers(grid)
    return Visit(0, resident.id, levels.community or "", resident.household, grid, from_ms,
                 due_ms(from_ms, every_days), workers[0].id if workers else None, "scheduled", None)


def patrol(store: Store, registry: Registry, now_ms: int,
           raise_alert: Callable[[AlertRequest], Alert]) -> PatrolReport:
    """One pass (see the module docstring)."""
    planned = _planned(registry)
    open_visits = {v.resident: v for v in store.visits(VisitFilter(statuses=OPEN_VISIT, limit=1_000_000))}
    last_done = store.last_visits_done()
    scheduled = changed = cancelled = overdue = 0
    for visit in open_visits.values():
        if visit.resident not in planned:  # out of service, or no longer planned for
            store.update_visit(visit.id, status="cancelled")
            cancelled += 1
    for resident_id, (resident, every) in planned.items():
        current = open_visits.get(resident_id)
        if current is None:
            store.schedule_visit(next_visit(registry, resident, every, last_done.get(resident_id, now_ms)))
            scheduled += 1
            continue
        # The plan, the household or the grid's workers changed: the open visit follows.
        plan = next_visit(registry, resident, every, current.from_ms)
        if current.status == "scheduled" and replace(plan, id=current.id) != current:
            store.update_visit(current.id, due_ms=plan.due_ms, household=plan.household, grid=plan.grid,
                               assigned_to=plan.assigned_to)
            changed += 1
    for visit in store.visits(VisitFilter(statuses=("scheduled",), due_before_ms=now_ms - 1,
                                          limit=1_000_000)):
        if visit.resident in planned:
            alert = raise_alert(overdue_request(registry, visit, now_ms))
            store.update_visit(visit.id, status="overdue", alert_id=alert.id)
            overdue += 1
    return PatrolReport(scheduled, changed, cancelled, overdue)


def overdue_request(registry: Registry, visit: Visit, now_ms: int) -> AlertRequest:
    """The alert for an overdue visit: the grid's workers first, then the community's supervisors."""
    return AlertRequest(
        kind=VISIT_OVERDUE, severity=Severity.WARNING, subject=visit.resident, community=visit.community,
        building=registry.hierarchy.resident(visit.resident).building or "", household=visit.household,
        resident=visit.resident, raised_at_ms=now_ms,
        evidence={OCCURRENCE_KEY: f"visit-{visit.id}", "visit": visit.id, "due_ms": visit.due_ms,
                  "grid": visit.grid, "assigned_to": visit.assigned_to})


def record(store: Store, registry: Registry, done: Visit) -> Visit | None:
    """Record the open visit `done.id` as `done` (its record fields filled in) and schedule the next one
    from it; the visit as recorded, or None when it was recorded or cancelled meanwhile."""
    planned = _planned(registry).get(done.resident)
    then = None
    if planned is not None and done.done_ms is not None:
        resident, every = planned
        if not done.resident_seen:
            every = min(every, NOT_SEEN_FOLLOW_UP_DAYS)
        then = next_visit(registry, resident, every, done.done_ms)
    if not store.record_visit(done, then):
        return None
    return store.visit(done.id)


class PatrolThread(BackgroundThread):
    """Runs a patrol pass at start and then every `interval_s` of the hub's time."""

    def __init__(self, store_factory: Callable[[], Store], registry: Callable[[], Registry], clock: Clock,
                 raise_alert: Callable[[AlertRequest], Alert], interval_s: float) -> None:
        super().__init__("patrol")
        self._store_factory = store_factory
        self._registry = registry
        self._clock = clock
        self._raise_alert = raise_alert
        self._interval_ms = int(interval_s * 1000)
        self.last: PatrolReport | None = None

    def run(self) -> None:
        store = self._store_factory()
        try:
            while not self._stopping.is_set():
                # A simulation's clock that has not ticked yet is no time at all: visits would be planned
                # from the wall clock's day, not the simulated one.
                following = not isinstance(self._clock, FollowedClock) or self._clock.following
                try:
                    if following:
                        self.last = patrol(store, self._registry(), self._clock.now_ms(),
                                           self._raise_alert)
                except Exception:  # a busy store, an alert that failed: try again next pass, never stop
                    log.exception("patrol pass failed; retrying in %d s", self._interval_ms // 1000)
                # The hub's time, so a simulation's days pass in its seconds; at most an interval of wall
                # time, or a second while waiting for a simulation's first tick.
                wait_until(self._clock, self._clock.now_ms() + self._interval_ms, self._wake,
                           self._interval_ms / 1000 if following else 1.0)
                self._wake.clear()
        finally:
            store.close()
