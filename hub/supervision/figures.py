"""The supervision figures, computed from rows already read: pure, no I/O.

A period is [from_ms, to_ms). What counts in it (docs/operators/supervision.md has the same, for readers):

- alerts, by kind: raised (first seen) in the period;
- time to acknowledge: each acknowledgement in the period, from the alert's first sighting;
- time to resolve: each resolution by a person in the period, from the alert's first sighting (the hub's
  own `cleared`, an equipment fault that ended, is nobody's work and is left out);
- overdue: alerts told `overdue` in the period (acknowledged, unresolved past their resolution deadline);
  escalated: alerts escalated to a next tier in the period (nobody acknowledged in time);
- false-alarm share: resolutions in the period with outcome `false_alarm`, over those resolutions;
- device coverage: the share of device-time in the period (up to now) during which the unit's devices
  in service were not under a `device_offline` or `camera_offline` alert;
- visits due in the period, done, and overdue (marked so by the patrol, or still scheduled past their due
  time); cancelled visits (a resident or plan gone) count for nothing.

An alert is placed by its household (or its resident's), else its building, else its community: alerts
about a building (falling objects, its cameras) are in no grid and count at the community and above.
Per worker: the people who acknowledged or resolved alerts of the unit, and the acknowledger of each
overdue alert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from pydantic import BaseModel, Field

from hub.alerts.model import Alert, AlertEvent
from hub.alerts.service import HUB_ACTOR
from hub.registry import Hierarchy, Level, Levels, Record, Registry

SupervisedLevel = Literal["city", "district", "subdistrict", "community", "grid"]
SUPERVISED_LEVELS: tuple[SupervisedLevel, ...] = get_args(SupervisedLevel)
"""The levels figures are given for, from the top; each one's units are split by the next."""

OFFLINE_KINDS = frozenset({"device_offline", "camera_offline"})
FIGURE_ACTIONS = ("acknowledged", "resolved", "overdue", "escalated")
"""The history entries the figures read."""
FALSE_ALARM = "false_alarm"


@dataclass(frozen=True, slots=True)
class Visit:
    """One patrol visit to a resident, as the visits table keeps it."""

    resident: str
    grid: str | None
    due_ms: int
    status: str  # scheduled, overdue, done (cancelled ones are not read)
    done_ms: int | None
    recorded_by: str | None


class Durations(BaseModel):
    """How long something took, over the times counted (seconds; null when none was counted)."""

    count: int
    median_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Durations:
        if not seconds:
            return cls(count=0, median_s=None, p90_s=None)
        # Linear interpolation between the closest ranks (numpy's default; a spreadsheet's PERCENTILE.INC).
        median, p90 = np.percentile(np.asarray(seconds, dtype=np.float64), [50, 90])
        return cls(count=len(seconds), median_s=round(float(median), 1), p90_s=round(float(p90), 1))


class Figures(BaseModel):
    alerts: int = Field(description="alerts raised in the period")
    alerts_by_kind: dict[str, int]
    acknowledgement: Durations = Field(description="first sighting to each acknowledgement in the period")
    resolution: Durations = Field(description="first sighting to each resolution by a person in the period")
    overdue: int = Field(description="alerts told overdue in the period (unresolved past their deadline)")
    escalated: int = Field(description="alerts escalated to a next tier in the period")
    resolved: int = Field(description="resolutions by a person in the period")
    false_alarms: int
    false_alarm_share: float | None = Field(description="false_alarms / resolved; null with none resolved")
    devices: int = Field(description="devices in service in the unit")
    device_coverage: float | None = Field(
        description="share of the devices' time in the period (up to now) not under an offline alert")
    visits_due: int
    visits_done: int
    visits_overdue: int = Field(description="due in the period and overdue, or still scheduled past due")


class UnitFigures(BaseModel):
    level: Level
    id: str
    name: str
    figures: Figures


class WorkerFigures(BaseModel):
    caregiver: str = Field(description="a caregiver's registry id, or the name an action was taken under")
    name: str
    grids: list[str] = Field(description="the grids in service it is a worker of")
    acknowledgement: Durations
    resolution: Durations
    overdue: int = Field(description="alerts it acknowledged that were told overdue in the period")
    false_alarms: int
    visits_done: int


@dataclass(frozen=True, slots=True)
class History:
    """What a period's figures are computed from: the alerts alive in it (`AlertStore.alive_between`),
    its history entries of `FIGURE_ACTIONS`, the visits due in it, and now (where the period is not over)."""

    alerts: Sequence[Alert]
    events: Sequence[AlertEvent]
    visits: Sequence[Visit]
    from_ms: int
    to_ms: int
    now_ms: int


def alert_place(hierarchy: Hierarchy, community: str, building: str, household: str | None,
                resident: str | None) -> Levels:
    """Where an alert counts: its household's levels (or its resident's), else its building's, else its
    community's; an id the registry no longer has falls through to the next."""
    places: tuple[Callable[[], Levels], ...] = (
        lambda: hierarchy.household(household or ""), lambda: hierarchy.resident(resident or ""),
        lambda: hierarchy.at("building", building), lambda: hierarchy.at("community", community))
    for place in places:
        try:
            return place()
        except KeyError:
            continue
    return Levels(community=community)


def visit_place(hierarchy: Hierarchy, visit: Visit) -> Levels:
    """Where a visit counts: its grid's levels, or its resident's; none for ids the registry no longer has."""
    try:
        return hierarchy.at("grid", visit.grid) if visit.grid else hierarchy.resident(visit.resident)
    except KeyError:
        return Levels()


def visit_state(visit: Visit, now_ms: int) -> str:
    """done; overdue (marked so by the patrol, or still scheduled past its due time); or scheduled."""
    if visit.status == "done":
        return "done"
    late = visit.status == "overdue" or (visit.status == "scheduled" and visit.due_ms < now_ms)
    return "overdue" if late else "scheduled"


class Supervision:
    """One period's history placed on the registry's levels; figures for any unit of it."""

    def __init__(self, registry: Registry, history: History) -> None:
        self._registry = registry
        self._history = history
        self.hierarchy = hierarchy = registry.hierarchy
        self._alerts = {a.id: a for a in history.alerts}
        self._place = {a.id: alert_place(hierarchy, a.community, a.building, a.household, a.resident)
                       for a in history.alerts}
        self._devices = [(d.id, hierarchy.levels_of(d)) for d in registry.data.devices]
        self._visit_place = {id(v): visit_place(hierarchy, v) for v in history.visits}

    def _entries(self, level: Level, *, in_service: bool = True) -> Sequence[Record]:
        data = self._registry.data if in_service else self._registry.file
        entries: dict[str, Sequence[Record]] = {
            "city": data.cities, "district": data.districts, "subdistrict": data.subdistricts,
            "community": data.communities, "grid": data.grids}
        return entries[level]

    def name(self, level: Level, id: str) -> str:
        """The name people know it by (its id where it has none)."""
        return next((str(getattr(e, "name", "")) for e in self._entries(level, in_service=False)
                     if e.id == id), "") or id

    def units(self, level: Level, within: tuple[Level, str] | None = None) -> list[str]:
        """The ids in service at `level`, those under `within` (level, id) when given, sorted."""
        return sorted(e.id for e in self._entries(level)
                      if within is None or self.hierarchy.at(level, e.id).at(within[0]) == within[1])

    def unit(self, level: Level, id: str) -> UnitFigures:
        return UnitFigures(level=level, id=id, name=self.name(level, id),
                           figures=self.figures(lambda place: place.at(level) == id))

    def figures(self, inside: Callable[[Levels], bool]) -> Figures:
        history = self._history
        alerts = [a for a in history.alerts if inside(self._place[a.id])]
        raised = [a for a in alerts if history.from_ms <= a.first_seen_ms < history.to_ms]
        by_kind: dict[str, int] = defaultdict(int)
        for a in raised:
            by_kind[a.kind] += 1
        events = self._events(inside)
        acknowledgements, resolutions, overdue, escalated = _split(events)
        false_alarms = sum(1 for e in resolutions if e.detail.get("outcome") == FALSE_ALARM)
        devices = [d for d, place in self._devices if inside(place)]
        visits = [v for v in history.visits if inside(self._visit_place[id(v)])]
        return Figures(
            alerts=len(raised), alerts_by_kind=dict(sorted(by_kind.items())),
            acknowledgement=self._took(acknowledgements), resolution=self._took(resolutions),
            overdue=len({e.alert_id for e in overdue}), escalated=len({e.alert_id for e in escalated}),
            resolved=len(resolutions), false_alarms=false_alarms,
            false_alarm_share=round(false_alarms / len(resolutions), 4) if resolutions else None,
            devices=len(devices), device_coverage=self._coverage(set(devices), alerts),
            visits_due=len(visits), visits_done=sum(1 for v in visits if v.status == "done"),
            visits_overdue=sum(1 for v in visits if visit_state(v, history.now_ms) == "overdue"),
        )

    def workers(self, inside: Callable[[Levels], bool]) -> list[WorkerFigures]:
        """Everyone who acknowledged or resolved an alert of the unit in the period, or whose
        acknowledged alert went overdue, or who did a visit of it; by id."""
        events = self._events(inside)
        visits = [v for v in self._history.visits
                  if inside(self._visit_place[id(v)]) and v.status == "done" and v.recorded_by]
        by_worker: dict[str, list[AlertEvent]] = defaultdict(list)
        for e in events:
            worker = e.detail.get("acknowledged_by") if e.action == "overdue" else e.actor
            if e.action != "escalated" and worker and worker != HUB_ACTOR:
                by_worker[worker].append(e)
        done: dict[str, int] = defaultdict(int)
        for v in visits:
            done[v.recorded_by or ""] += 1
        caregivers = {c.id: c for c in self._registry.file.caregivers}
        rows = []
        for worker in sorted(set(by_worker) | set(done)):
            acknowledgements, resolutions, overdue, _ = _split(by_worker[worker])
            rows.append(WorkerFigures(
                caregiver=worker, name=caregivers[worker].name if worker in caregivers else worker,
                grids=self.hierarchy.grids_of_worker(worker),
                acknowledgement=self._took(acknowledgements), resolution=self._took(resolutions),
                overdue=len({e.alert_id for e in overdue}),
                false_alarms=sum(1 for e in resolutions if e.detail.get("outcome") == FALSE_ALARM),
                visits_done=done[worker]))
        return rows

    def _events(self, inside: Callable[[Levels], bool]) -> list[AlertEvent]:
        return [e for e in self._history.events
                if e.alert_id in self._alerts and inside(self._place[e.alert_id])]

    def _took(self, events: Iterable[AlertEvent]) -> Durations:
        return Durations.of([max(e.at_ms - self._alerts[e.alert_id].first_seen_ms, 0) / 1000 for e in events])

    def _coverage(self, devices: set[str], alerts: list[Alert]) -> float | None:
        start, end = self._history.from_ms, min(self._history.to_ms, self._history.now_ms)
        if not devices or end <= start:
            return None
        offline: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for a in alerts:
            if a.kind in OFFLINE_KINDS and a.device in devices:
                until = a.resolved_ms if a.resolved_ms is not None else end
                offline[a.device].append((max(a.first_seen_ms, start), min(until, end)))
        lost = sum(_covered_ms(spans) for spans in offline.values())
        return round(1 - lost / (len(devices) * (end - start)), 4)


def _split(events: Iterable[AlertEvent]) -> tuple[list[AlertEvent], ...]:
    """(acknowledgements, resolutions, overdue, escalations) among `events`."""
    by_action: dict[str, list[AlertEvent]] = defaultdict(list)
    for e in events:
        by_action[e.action].append(e)
    return tuple(by_action[action] for action in FIGURE_ACTIONS)


def _covered_ms(spans: list[tuple[int, int]]) -> int:
    """The time the union of [start, end) spans covers (a camera may be offline twice over)."""
    total, reached = 0, None
    for start, end in sorted(spans):
        begins = start if reached is None else max(start, reached)
        total += max(end - begins, 0)
        reached = end if reached is None else max(reached, end)
    return total
