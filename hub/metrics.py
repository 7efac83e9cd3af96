"""Prometheus metrics of one running hub, served at `/metrics` (names and labels: docs/operators/metrics.md).

Most figures are read at scrape time from what the hub keeps anyway: intake, export and evaluation
counters, the broker connection, and the alert tables (so the alert figures are right after a restart,
and a CLI acknowledging an alert shows at the next scrape). The four that must be observed where the
work happens — batch sizes, commit latency, ingestion lag and tick duration — are fixed-bucket histograms
owned here, fed once per committed batch or tick; the lag takes a whole batch's readings in one numpy call
rather than one locked Python call per message on the intake thread.

Each hub has its own `CollectorRegistry`, not prometheus_client's global one, so hubs run in one process
(tests) never collide. Every label takes its values from a bounded set — device kinds, dead-letter
reasons, alert kinds and severities, sink names, delivery states — never a device, resident or household.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import CollectorRegistry, ProcessCollector, make_asgi_app
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from detectors.severity import SEVERITIES
from devices import KINDS
from devices.kind import Reason
from hub.alerts.model import ALERT_KINDS
from hub.alerts.sinks import AppriseSink, MqttSink, WebhookSink
from hub.alerts.store import AlertStore
from hub.clock import Clock
from hub.store import Observation

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger(__name__)

UNKNOWN_KIND = "unknown"  # a message whose topic names no registered device (intake counts it as "?")
SINKS: tuple[str, ...] = (MqttSink.name, WebhookSink.name, AppriseSink.name)
DELIVERY_STATES = ("pending", "sent", "failed")

# Bucket bounds. Batches hold 1..HUB_BATCH_MAX messages; commits take milliseconds on a disk and seconds on
# a struggling one; lag spans a live stream (sub-second) to a backlog drained after an outage (hours);
# acknowledgement spans a caregiver at the phone (a minute) to a night nobody answered.
BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 500, 1000, 2000, 5000, 10000)
COMMIT_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
LAG_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
TICK_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
ACK_SECONDS_BUCKETS = (30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)


class BucketHistogram:
    """A histogram with fixed bounds, fed many values at once, read at scrape time from another thread."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self._counts = np.zeros(len(bounds) + 1, dtype=np.int64)  # the last slot: above every bound
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, values: np.ndarray[Any, np.dtype[np.float64]] | float) -> None:
        values = np.atleast_1d(np.asarray(values, dtype=np.float64))
        if values.size == 0:
            return
        # side="left": a value equal to a bound belongs to that bound's bucket (Prometheus' `le`).
        slots = np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=len(self._counts))
        with self._lock:
            self._counts += slots
            self._sum += float(values.sum())

    def report(self) -> list[float]:
        """Bucket counts then the sum, as JSON-ready numbers: what an intake worker reports."""
        with self._lock:
            return [*self._counts.tolist(), self._sum]

    def add(self, reported: Sequence[float]) -> None:
        """Add another histogram's `report`; one with other bounds (another version's) is left out."""
        if len(reported) != len(self._counts) + 1:
            return
        with self._lock:
            self._counts += np.asarray(reported[:-1], dtype=np.int64)
            self._sum += float(reported[-1])

    def family(self, name: str, documentation: str,
               reported: Iterable[Sequence[float]] = ()) -> HistogramMetricFamily:
        """The histogram, with `reported` ones (other processes', see `report`) added in."""
        merged = BucketHistogram(self.bounds.tolist())
        for histogram in [self.report(), *reported]:
            merged.add(histogram)
        *counts, total = merged.report()
        return HistogramMetricFamily(name, documentation, buckets=_cumulative(self.bounds, counts),
                                     sum_value=total)


def _cumulative(bounds: Iterable[float], counts: Iterable[float]) -> list[tuple[str, float]]:
    """(le, cumulative count) pairs ending with +Inf, from per-bucket counts (one more than bounds)."""
    labels = [_le(bound) for bound in bounds] + ["+Inf"]
    return list(zip(labels, np.cumsum(list(counts)).tolist(), strict=True))


def _le(bound: float) -> str:
    return str(float(bound))


class IntakeHistograms:
    """Batch sizes, commit latency and ingestion lag of one process's intake, fed once per committed batch
    (on the intake thread). An intake worker reports them (`report`) for the main hub to serve."""

    def __init__(self, clock: Clock) -> None:
        self.batch_size = BucketHistogram(BATCH_SIZE_BUCKETS)
        self.commit_seconds = BucketHistogram(COMMIT_SECONDS_BUCKETS)
        self.lag_seconds = BucketHistogram(LAG_SECONDS_BUCKETS)
        self._clock = clock

    def batch_committed(self, size: int, commit_s: float, stored: list[Observation]) -> None:
        self.batch_size.observe(size)
        self.commit_seconds.observe(commit_s)
        if stored:
            # Hub time, so a simulation's lag is in simulated time; a device clock ahead of ours is no lag.
            now_ms = self._clock.now_ms()
            lag_ms = now_ms - np.fromiter((o.ts for o in stored), dtype=np.int64, count=len(stored))
            self.lag_seconds.observe(np.maximum(lag_ms, 0) / 1000.0)

    def report(self) -> dict[str, list[float]]:
        return {name: histogram.report() for name, _, _, histogram in self._named()}

    def add(self, reported: Mapping[str, Sequence[float]]) -> None:
        for name, _, _, histogram in self._named():
            if name in reported:
                histogram.add(reported[name])

    def families(self, reported: Sequence[Mapping[str, Sequence[float]]]) -> Iterator[Metric]:
        """The three families, with the histograms `reported` by intake workers added in."""
        for name, metric, documentation, histogram in self._named():
            yield histogram.family(metric, documentation,
                                   [report[name] for report in reported if name in report])

    def _named(self) -> list[tuple[str, str, str, BucketHistogram]]:
        """(report key, metric name, documentation, histogram)."""
        return [
            ("batch_size", "hub_intake_batch_size", "Messages per committed batch.", self.batch_size),
            ("commit_seconds", "hub_store_commit_seconds", "Time one batch's store transaction took.",
             self.commit_seconds),
            ("lag_seconds", "hub_ingestion_lag_seconds",
             "Device time (ts) to the commit of the reading, in hub time.", self.lag_seconds),
        ]


class HubMetrics:
    """The hub's metrics: its registry, and the histograms fed by intake and evaluation."""

    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry()
        self.intake = IntakeHistograms(hub.clock)
        self.tick_seconds = BucketHistogram(TICK_SECONDS_BUCKETS)
        self.residents_evaluated = 0
        self.residents = 0
        self._hub = hub
        self.registry.register(_HubCollector(hub, self))
        ProcessCollector(registry=self.registry)  # process_* : CPU, memory, open files of the hub

    def ticked(self, seconds: float, residents: int) -> None:
        """Evaluation ran its time-driven checks over `residents` (on the evaluation thread)."""
        self.tick_seconds.observe(seconds)
        self.residents_evaluated += residents
        self.residents = residents


class MetricsApp:
    """The ASGI app serving a hub's registry (text or OpenMetrics format, gzip when asked for).

    An object rather than prometheus_client's plain function, so that a `Route("/metrics", ...)` serves it
    as an ASGI app at exactly `/metrics`; a mount would answer `/metrics` with a redirect."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._app = make_asgi_app(registry=registry)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)


def metrics_app(hub: Hub) -> MetricsApp:
    return MetricsApp(hub.metrics.registry)


def _counter(name: str, documentation: str, label: str | None, values: Mapping[str, float] | float,
             keys: Iterable[str] = ()) -> CounterMetricFamily:
    """A counter family; with a label, `keys` are always present (zero until counted), so rates and
    dashboards have a series from the first scrape."""
    if label is None:
        assert not isinstance(values, Mapping)
        return CounterMetricFamily(name, documentation, value=values)
    assert isinstance(values, Mapping)
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key in sorted(set(keys) | set(values)):
        family.add_metric([key], values.get(key, 0))
    return family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _by_kind(counts: Mapping[str, int]) -> dict[str, int]:
    values = dict(counts)  # one C-level copy: the intake thread may add a key meanwhile
    values[UNKNOWN_KIND] = values.pop("?", 0)
    return values


class _HubCollector(Collector):
    def __init__(self, hub: Hub, metrics: HubMetrics) -> None:
        self._hub = hub
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._intake()
        yield from self._evaluation()
        yield from self._export()
        yield from self._alerts()

    def _intake(self) -> Iterator[Metric]:
        hub, metrics = self._hub, self._metrics
        stats = hub.intake_stats()
        kinds = [*KINDS, UNKNOWN_KIND]
        yield _counter("hub_messages_received", "Messages taken from the broker and routed, per device kind "
                       "(unknown: the topic names no registered device).", "kind", _by_kind(stats.received),
                       kinds)
        yield _counter("hub_messages_committed", "Readings committed to the store, per device kind.", "kind",
                       _by_kind(stats.stored), KINDS)
        yield _counter("hub_messages_acked", "Messages acknowledged to the broker after their commit, per "
                       "device kind.", "kind", _by_kind(stats.acked), kinds)
        yield _counter("hub_messages_ignored", "Messages on topics the hub ignores (Zigbee2MQTT's bridge, "
                       "/set, /get), acknowledged and not stored.", None, stats.ignored)
        yield _counter("hub_dead_letters", "Messages kept as dead letters, per reason.", "reason",
                       dict(stats.dead_letters), [reason.value for reason in Reason])
        yield _counter("hub_intake_batches", "Batches committed.", None, stats.batches)
        yield _counter("hub_store_commit_failures", "Batch commits that failed and were retried.", None,
                       stats.commit_failures)
        yield _gauge("hub_store_writable", "1 while the last commit succeeded, 0 while commits fail.",
                     float(hub.status().store_healthy))
        yield _gauge("hub_intake_queue", "Messages received and waiting for intake.",
                     hub.intake.queue.qsize())
        yield _gauge("hub_broker_connected", "1 while connected and subscribed to the broker, else 0.",
                     float(hub.subscriber.connected))
        yield from metrics.intake.families(hub.workers.histograms() if hub.workers else [])

    def _evaluation(self) -> Iterator[Metric]:
        stats, metrics = self._hub.evaluation.stats, self._metrics
        yield _counter("hub_evaluation_observations", "Committed readings evaluated by rules and detector.",
                       None, stats.evaluated)
        yield _counter("hub_evaluation_signals", "Alert requests raised by rules and detector.", None,
                       stats.signals)
        yield _gauge("hub_evaluation_backlog", "Committed readings not evaluated yet.", stats.backlog)
        yield metrics.tick_seconds.family("hub_evaluation_tick_seconds",
                                          "Time one tick of time-driven checks (rules and detector) took.")
        yield _counter("hub_detector_residents_evaluated", "Residents the inactivity detector evaluated, "
                       "summed over ticks.", None, metrics.residents_evaluated)
        yield _gauge("hub_detector_residents", "Residents the inactivity detector follows.",
                     metrics.residents)

    def _export(self) -> Iterator[Metric]:
        exporter = self._hub.influx
        if exporter is None:  # no InfluxDB configured: no export series at all, rather than zeros
            return
        stats = exporter.stats
        yield _counter("hub_influx_exported_points", "Points InfluxDB accepted.", None, stats.exported)
        yield _counter("hub_influx_export_failures", "Writes to InfluxDB that failed and will be retried.",
                       None, stats.failures)
        yield _counter("hub_influx_rejected_points", "Points InfluxDB refused for good (HTTP 4xx); they "
                       "remain in the store.", None, stats.rejected)
        yield _gauge("hub_influx_export_backlog", "Committed readings not yet written to InfluxDB.",
                     stats.backlog)

    def _alerts(self) -> Iterator[Metric]:
        try:
            store = AlertStore(self._hub.settings.store_path, read_only=True)
        except sqlite3.Error:
            log.exception("cannot open the alert tables for metrics")
            return
        try:
            unresolved = store.unresolved_counts()
            escalations = store.escalation_counts()
            acknowledged = store.acknowledgement_buckets([int(s * 1000) for s in ACK_SECONDS_BUCKETS])
            deliveries = store.delivery_counts()
        except sqlite3.Error:  # the store busy past its timeout: skip the alert series this scrape
            log.exception("reading the alert tables for metrics failed")
            return
        finally:
            store.close()
        yield from _alert_states(unresolved)
        yield _counter("hub_alert_escalations", "Alerts escalated to a next tier of caregivers, per alert "
                       "kind.", "kind", escalations, ALERT_KINDS)
        histogram = HistogramMetricFamily("hub_alert_acknowledgement_seconds", "Time from an alert's "
                                          "first sighting to its acknowledgement, per severity.",
                                          labels=["severity"])
        for severity in SEVERITIES:
            within, count, total_ms = acknowledged.get(severity, ([0] * len(ACK_SECONDS_BUCKETS), 0, 0))
            per_bucket = np.diff([0, *within, count])
            histogram.add_metric([severity], _cumulative(ACK_SECONDS_BUCKETS, per_bucket), total_ms / 1000)
        yield histogram
        yield from _deliveries(deliveries)


def _alert_states(unresolved: list[tuple[str, str, str, str, str, int]]) -> Iterator[Metric]:
    counts: dict[tuple[str, str, str], int] = {}
    for _, _, kind, severity, state, n in unresolved:
        counts[kind, severity, state] = counts.get((kind, severity, state), 0) + n
    for state, documentation in (("open", "Alerts raised and not acknowledged yet"),
                                 ("acknowledged", "Alerts acknowledged and not resolved yet")):
        family = GaugeMetricFamily(f"hub_alerts_{state}", f"{documentation}, per kind and severity.",
                                   labels=["kind", "severity"])
        for kind in sorted(set(ALERT_KINDS) | {k for k, _, _ in counts}):
            for severity in SEVERITIES:
                family.add_metric([kind, severity], counts.get((kind, severity, state), 0))
        yield family


def _deliveries(rows: list[tuple[str, str, int, int]]) -> Iterator[Metric]:
    sinks = sorted(set(SINKS) | {sink for sink, _, _, _ in rows})
    by_status = {(sink, status): n for sink, status, n, _ in rows}
    failed_attempts: dict[str, int] = {}
    for sink, _, _, failed in rows:
        failed_attempts[sink] = failed_attempts.get(sink, 0) + failed
    queue = GaugeMetricFamily("hub_alert_deliveries", "Notifications per sink and delivery state (pending: "
                              "queued or retrying; failed: given up).", labels=["sink", "status"])
    for sink in sinks:
        for status in DELIVERY_STATES:
            queue.add_metric([sink, status], by_status.get((sink, status), 0))
    yield queue
    yield _counter("hub_alert_delivery_failures", "Failed delivery attempts per sink (each retry counts).",
                   "sink", failed_attempts, sinks)
