"""Supervision's Prometheus series, per grid (docs/operators/metrics.md): read from the alert tables and
the visits at scrape time, placed on the registry's levels, like the other alert figures of `/metrics`.

Every series is labelled `subdistrict`, `community`, `grid`, and there is one per grid in service and one
per community for what is in no grid (`grid` empty: alerts about a building, its cameras), zeros
included, so a dashboard's variables list every grid and a sum over a quiet grid is 0, not nothing. A
district has hundreds of grids at most; alert kinds are not multiplied in (the API and the report give
alerts by kind per grid).
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from typing import Any

import numpy as np
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from hub.alerts.model import CLEARED, OUTCOMES
from hub.alerts.store import AlertStore
from hub.clock import Clock
from hub.histograms import cumulative
from hub.metrics import ACK_SECONDS_BUCKETS
from hub.registry import Levels, Registry
from hub.store import StoreAt
from hub.supervision.figures import OFFLINE_KINDS, alert_place, visit_place, visit_state
from hub.supervision.sources import VisitSource

log = logging.getLogger(__name__)

Unit = tuple[str, str, str]  # (subdistrict, community, grid); "" where there is none
LABELS = ["subdistrict", "community", "grid"]
VISITS_BEFORE_MS = 30 * 86_400_000  # the visits gauge: those due in the 30 days before now...
VISITS_AFTER_MS = 86_400_000  # ... and in the day after it
_PLACE_COLUMNS = ("community", "building", "household", "resident")


def unit_of(levels: Levels) -> Unit:
    return levels.subdistrict or "", levels.community or "", levels.grid or ""


class SupervisionCollector(Collector):
    def __init__(self, registry: Callable[[], Registry], store_at: StoreAt, clock: Clock,
                 visits: VisitSource) -> None:
        self._registry = registry
        self._store_at = store_at
        self._clock = clock
        self._visits = visits

    def collect(self) -> Iterator[Metric]:
        registry = self._registry()
        now = self._clock.now_ms()
        try:
            with closing(AlertStore(self._store_at.path, read_only=True, url=self._store_at.url)) as store:
                placed = store.placed_counts()
                acknowledged = store.acknowledgement_buckets([int(s * 1000) for s in ACK_SECONDS_BUCKETS],
                                                             by=_PLACE_COLUMNS)
                offline = store.devices_alerted(tuple(OFFLINE_KINDS))
            visits = self._visits.visits(now - VISITS_BEFORE_MS, now + VISITS_AFTER_MS)
        except sqlite3.Error:  # the store busy past its timeout: skip these series this scrape
            log.exception("reading the alert tables for supervision's metrics failed")
            return
        hierarchy = registry.hierarchy
        units: set[Unit] = {unit_of(hierarchy.levels_of(entry))
                            for entry in (*registry.data.grids, *registry.data.communities)}

        def unit(community: str, building: str, household: str | None, resident: str | None) -> Unit:
            found = unit_of(alert_place(hierarchy, community, building, household, resident))
            units.add(found)  # a community gone from the registry still shows its alerts
            return found

        raised: dict[Unit, float] = defaultdict(int)
        overdue: dict[Unit, float] = defaultdict(int)
        unresolved: dict[tuple[Unit, str], float] = defaultdict(int)
        resolved: dict[tuple[Unit, str], float] = defaultdict(int)
        for community, building, household, resident, state, outcome, n, told_overdue in placed:
            at = unit(community, building, household, resident)
            raised[at] += n
            overdue[at] += told_overdue
            if state == "resolved":
                resolved[at, outcome or ""] += n
            else:
                unresolved[at, state] += n
        # Per unit, summed over its homes: acknowledgements per bucket (the last one past the top bound),
        # then their total time in ms.
        took: dict[Unit, np.ndarray] = defaultdict(lambda: np.zeros(len(ACK_SECONDS_BUCKETS) + 2, np.int64))
        for (community, building, household, resident), (within, count, total_ms) in acknowledged.items():
            took[unit(community, building, household, resident)] += [*np.diff([0, *within, count]), total_ms]
        devices: dict[tuple[Unit, str], float] = defaultdict(int)
        for d in registry.data.devices:
            devices[unit_of(hierarchy.levels_of(d)), "offline" if d.id in offline else "reporting"] += 1
        visited: dict[tuple[Unit, str], float] = defaultdict(int)
        for v in visits:
            visited[unit_of(visit_place(hierarchy, v)), visit_state(v, now)] += 1

        ordered = sorted(units)
        yield _per_unit(CounterMetricFamily, "hub_supervision_alerts",
                        "Alerts raised, per grid (grid empty: in no grid, about a building).", ordered,
                        raised)
        yield _per_unit(GaugeMetricFamily, "hub_supervision_alerts_unresolved",
                        "Alerts not resolved, per grid and state.", ordered, unresolved,
                        by=("state", ("open", "acknowledged")))
        yield _per_unit(GaugeMetricFamily, "hub_supervision_alerts_overdue",
                        "Alerts unresolved and told overdue (past their resolution deadline), per grid.",
                        ordered, overdue)
        yield _per_unit(CounterMetricFamily, "hub_supervision_alerts_resolved",
                        "Alerts resolved, per grid and outcome (cleared: by the hub).", ordered, resolved,
                        by=("outcome", (*OUTCOMES, CLEARED)))
        histogram = HistogramMetricFamily("hub_supervision_acknowledgement_seconds", "Time from an alert's "
                                          "first sighting to its acknowledgement, per grid.", labels=LABELS)
        for at in ordered:
            *per_bucket, total_ms = took[at].tolist()
            histogram.add_metric(list(at), cumulative(ACK_SECONDS_BUCKETS, per_bucket), total_ms / 1000)
        yield histogram
        yield _per_unit(GaugeMetricFamily, "hub_supervision_devices",
                        "Devices in service, per grid: reporting, or under an unresolved offline alert.",
                        ordered, devices, by=("state", ("reporting", "offline")))
        yield _per_unit(GaugeMetricFamily, "hub_supervision_visits",
                        "Visits due in the 30 days before now and the day after, per grid: done, overdue "
                        "(missed or past due), scheduled.", ordered, visited,
                        by=("status", ("done", "overdue", "scheduled")))


def _per_unit(family: type[CounterMetricFamily | GaugeMetricFamily], name: str, documentation: str,
              units: list[Unit], values: Mapping[Any, float], *,
              by: tuple[str, tuple[str, ...]] | None = None) -> Metric:
    """A family with a series per unit (and per value of the `by` label, when given), zeros included."""
    if by is None:
        metric = family(name, documentation, labels=LABELS)
        for at in units:
            metric.add_metric(list(at), values.get(at, 0))
        return metric
    label, label_values = by
    metric = family(name, documentation, labels=[*LABELS, label])
    for at in units:
        for value in label_values:
            metric.add_metric([*at, value], values.get((at, value), 0))
    return metric
