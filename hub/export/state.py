"""The hub's conclusions as InfluxDB points, for dashboards that read InfluxDB alone (InfluxQL, any version).

The readings say what devices reported; a community dashboard also needs what the hub made of them:
residents silent for longer than their own rhythm explains, devices offline or running low, alerts not
dealt with yet. Once per minute of hub time the InfluxDB exporter asks for a snapshot and writes it
with the readings, sharing their retries and back-off. Every place and alert kind is written each time,
zeros included, so a panel's `last()` never keeps showing a count that has since gone back to zero.

Measurements (time: the hub time of the snapshot; integer fields):
- `hub_state`, tags `community`, `building`: `residents_inactive_longer_than_usual` (past the warning
  deadline the detector learned for them, not out of home), `devices_offline` (silent past their
  check-in, or said so), `devices_low_battery` (a `battery_low` alert not resolved yet).
- `hub_alerts`, tags `community`, `kind`, `severity`: `open` (not acknowledged yet), `acknowledged` (not
  resolved yet).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from influxdb_client import Point, WritePrecision

from detectors import NO_TIME
from detectors.severity import SEVERITIES
from hub.alerts.model import ALERT_KINDS
from hub.alerts.store import AlertStore
from hub.clock import Clock
from hub.evaluation import Evaluator
from hub.registry import Registry
from hub.resident_activity import ResidentActivity
from hub.store import StoreAt

log = logging.getLogger(__name__)

STATE_MEASUREMENT = "hub_state"
ALERTS_MEASUREMENT = "hub_alerts"
STATE_FIELDS = ("residents_inactive_longer_than_usual", "devices_offline", "devices_low_battery")
SNAPSHOT_EVERY_MS = 60_000

Place = tuple[str, str]  # (community, building)


@dataclass
class Snapshot:
    at_ms: int
    # per place: field of STATE_FIELDS -> count
    places: dict[Place, dict[str, int]] = field(default_factory=dict)
    # per (community, kind, severity): (open, acknowledged)
    alerts: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)


def take_snapshot(registry: Registry, at_ms: int, *, inactive_residents: Iterable[str],
                  offline_devices: Iterable[str],
                  unresolved_alerts: Iterable[tuple[str, str, str, str, str, int]]) -> Snapshot:
    """Count per place and alert kind; `unresolved_alerts` as `AlertStore.unresolved_counts` gives them."""
    place_of_device = {d.id: (d.community, d.building) for d in registry.devices.values()}
    place_of_household = {d.household: (d.community, d.building) for d in registry.devices.values()
                          if d.household is not None}
    household_of = {r.id: r.household for r in registry.data.residents}
    snapshot = Snapshot(at_ms, {place: dict.fromkeys(STATE_FIELDS, 0) for place in place_of_device.values()})

    def count(place: Place | None, name: str, n: int = 1) -> None:
        if place is not None:  # a place no longer in the registry: nothing to show it under
            snapshot.places.setdefault(place, dict.fromkeys(STATE_FIELDS, 0))[name] += n

    for resident in inactive_residents:
        count(place_of_household.get(household_of.get(resident, "")), "residents_inactive_longer_than_usual")
    for device in offline_devices:
        count(place_of_device.get(device), "devices_offline")
    communities = {community for community, _ in snapshot.places}
    alerts: dict[tuple[str, str, str], list[int]] = {
        (community, kind, severity): [0, 0]
        for community in communities for kind in ALERT_KINDS for severity in SEVERITIES
    }
    for community, building, kind, severity, state, n in unresolved_alerts:
        alerts.setdefault((community, kind, severity), [0, 0])[0 if state == "open" else 1] += n
        if kind == "battery_low":  # one unresolved alert per device and kind: the device's count
            count((community, building), "devices_low_battery", n)
    snapshot.alerts = {key: (opened, acknowledged) for key, (opened, acknowledged) in alerts.items()}
    return snapshot


def snapshot_lines(snapshot: Snapshot) -> list[str]:
    """The snapshot as line protocol, in the precision the exporter writes (ms)."""
    lines = []
    for (community, building), counts in sorted(snapshot.places.items()):
        point = Point(STATE_MEASUREMENT).tag("community", community).tag("building", building)
        for name in STATE_FIELDS:
            point.field(name, counts[name])
        lines.append(point.time(snapshot.at_ms, WritePrecision.MS).to_line_protocol())
    for (community, kind, severity), (opened, acknowledged) in sorted(snapshot.alerts.items()):
        point = (Point(ALERTS_MEASUREMENT).tag("community", community).tag("kind", kind)
                 .tag("severity", severity).field("open", opened).field("acknowledged", acknowledged))
        lines.append(point.time(snapshot.at_ms, WritePrecision.MS).to_line_protocol())
    return lines


def inactive_longer_than_usual(activity: ResidentActivity, now_ms: int) -> list[str]:
    """Residents past the warning deadline the detector learned for their silence. A resident who went
    out has no deadline (the detector keeps it at NEVER while away), so only silences at home count."""
    detector = activity.detector
    # Read once each: the evaluation thread may grow the arrays (new residents) while we look.
    deadline, last = detector.deadline_ms_, detector.last_activity_ms_
    n = min(len(activity.residents), len(deadline), len(last))
    late = np.flatnonzero((deadline[:n] <= now_ms) & (last[:n] != NO_TIME))
    return [activity.residents[i] for i in late]


class StateSnapshots:
    """The exporter's `state` callable: a snapshot's lines once per `every_ms` of hub time, else []."""

    def __init__(self, clock: Clock, registry: Callable[[], Registry], evaluation: Evaluator,
                 alerts_at: StoreAt, every_ms: int = SNAPSHOT_EVERY_MS) -> None:
        self._clock = clock
        self._registry = registry
        self._evaluation = evaluation
        self._alerts_at = alerts_at
        self._every_ms = every_ms
        self._last_ms: int | None = None

    def __call__(self) -> list[str]:
        now = self._clock.now_ms()
        last = self._last_ms
        # A clock behind the last snapshot is a simulation's clock taking over from the system's.
        if last is not None and last <= now < last + self._every_ms:
            return []
        self._last_ms = now
        try:
            return snapshot_lines(self.take(now))
        except Exception:  # never stop the export of readings over a snapshot: the next one may work
            log.exception("taking the hub's state snapshot failed")
            return []

    def take(self, now_ms: int) -> Snapshot:
        evaluation = self._evaluation
        store = AlertStore(self._alerts_at.path, read_only=True, url=self._alerts_at.url)
        try:
            unresolved = store.unresolved_counts()
        finally:
            store.close()
        return take_snapshot(self._registry(), now_ms,
                             inactive_residents=inactive_longer_than_usual(evaluation.activity, now_ms),
                             offline_devices=evaluation.rules.offline_devices(), unresolved_alerts=unresolved)
