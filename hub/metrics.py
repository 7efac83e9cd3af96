"""Prometheus metrics of one running hub, served at `/metrics` (names and labels: docs/operators/metrics.md).

Most figures are read at scrape time from what the hub keeps anyway: intake, export and evaluation
counters, the broker connection, and the alert tables (so the alert figures are right after a restart,
and a CLI acknowledging an alert shows at the next scrape). The four that must be observed where the
work happens — batch sizes, commit latency, ingestion lag and tick duration — are fixed-bucket histograms
(`hub.histograms`), fed once per committed batch or tick.

The collector reads intake through the `IntakeStatus` protocol and evaluation and export through their
counters, never the hub that wires them: what it shows is exactly what it is handed.

Each hub has its own `CollectorRegistry`, not prometheus_client's global one, so hubs run in one process
(tests) never collide. Every label takes its values from a bounded set — device kinds, dead-letter
reasons, alert kinds and severities, sink names, delivery states — never a device, resident or household
(and `hub_node_info`, one series naming this node).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

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
from hub.evaluation import EvaluationStats
from hub.export.influxdb import ExportStats
from hub.histograms import BucketHistogram, IntakeHistograms, cumulative
from hub.intake import IntakeStatus
from hub.store import StoreAt

log = logging.getLogger(__name__)

UNKNOWN_KIND = "unknown"  # a message whose topic names no registered device (intake counts it as "?")
SINKS: tuple[str, ...] = (MqttSink.name, WebhookSink.name, AppriseSink.name)
DELIVERY_STATES = ("pending", "sent", "failed")

# Bucket bounds of the evaluation's tick and of acknowledgement (intake's are in `hub.histograms`).
# Acknowledgement spans a caregiver at the phone (a minute) to a night nobody answered.
TICK_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
ACK_SECONDS_BUCKETS = (30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)


class HubMetrics:
    """The hub's metrics: its registry, and the histograms fed by intake and evaluation."""

    def __init__(self, clock: Clock, intake: IntakeStatus, evaluation: EvaluationStats,
                 export: ExportStats | None, store_at: StoreAt, *,
                 node: Mapping[str, str] | None = None) -> None:
        """`export`: None when no InfluxDB is configured (no export series at all, rather than zeros);
        `store_at`: the store whose alert tables the alert series count; `node`: the labels of
        `hub_node_info` (which of several hubs this is)."""
        self.registry = CollectorRegistry()
        if node:
            info = GaugeMetricFamily("hub_node_info", "This hub node: its id, MQTT client id and the "
                                     "communities it takes (empty: all); always 1.", labels=list(node))
            info.add_metric(list(node.values()), 1)
            self.registry.register(_Constant(info))
        self.intake = IntakeHistograms(clock)
        self.tick_seconds = BucketHistogram(TICK_SECONDS_BUCKETS)
        self.residents_evaluated = 0
        self.residents = 0
        self.registry.register(_HubCollector(self, intake, evaluation, export, store_at))
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
    def __init__(self, metrics: HubMetrics, intake: IntakeStatus, evaluation: EvaluationStats,
                 export: ExportStats | None, store_at: StoreAt) -> None:
        self._metrics = metrics
        self._intake_status = intake
        self._evaluation_stats = evaluation
        self._export_stats = export
        self._store_at = store_at

    def collect(self) -> Iterator[Metric]:
        yield from self._intake()
        yield from self._evaluation()
        yield from self._export()
        yield from self._alerts()

    def _intake(self) -> Iterator[Metric]:
        intake, metrics = self._intake_status, self._metrics
        stats = intake.stats()
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
                     float(intake.store_error() is None))
        yield _gauge("hub_intake_queue", "Messages received and waiting for intake.",
                     intake.queued_messages)
        yield _gauge("hub_broker_connected", "1 while connected and subscribed to the broker, else 0.",
                     float(intake.connected))
        yield from metrics.intake.families(intake.process_histograms())

    def _evaluation(self) -> Iterator[Metric]:
        stats, metrics = self._evaluation_stats, self._metrics
        yield _counter("hub_evaluation_observations", "Committed readings evaluated by rules and detector.",
                       None, stats.evaluated)
        yield _counter("hub_evaluation_signals", "Alert requests raised by rules and detector.", None,
                       stats.signals)
        yield _gauge("hub_evaluation_backlog", "Committed readings not evaluated yet.", stats.backlog)
        yield _gauge("hub_evaluation_communities", "Communities this node evaluates now (with PostgreSQL: "
                     "those it holds the lease of).", stats.communities)
        yield metrics.tick_seconds.family("hub_evaluation_tick_seconds",
                                          "Time one tick of time-driven checks (rules and detector) took.")
        yield _counter("hub_detector_residents_evaluated", "Residents the inactivity detector evaluated, "
                       "summed over ticks.", None, metrics.residents_evaluated)
        yield _gauge("hub_detector_residents", "Residents the inactivity detector follows.",
                     metrics.residents)

    def _export(self) -> Iterator[Metric]:
        stats = self._export_stats
        if stats is None:  # no InfluxDB configured: no export series at all, rather than zeros
            return
        yield _counter("hub_influx_exported_points", "Points InfluxDB accepted.", None, stats.exported)
        yield _counter("hub_influx_export_failures", "Writes to InfluxDB that failed and will be retried.",
                       None, stats.failures)
        yield _counter("hub_influx_rejected_points", "Points InfluxDB refused for good (HTTP 4xx); they "
                       "remain in the store.", None, stats.rejected)
        yield _gauge("hub_influx_export_backlog", "Committed readings not yet written to InfluxDB.",
                     stats.backlog)

    def _alerts(self) -> Iterator[Metric]:
        try:
            store = AlertStore(self._store_at.path, read_only=True, url=self._store_at.url)
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
            within, count, total_ms = acknowledged.get((severity,), ([0] * len(ACK_SECONDS_BUCKETS), 0, 0))
            per_bucket = np.diff([0, *within, count])
            histogram.add_metric([severity], cumulative(ACK_SECONDS_BUCKETS, per_bucket), total_ms / 1000)
        yield histogram
        yield from _deliveries(deliveries)


class _Constant(Collector):
    """A family that never changes, served as it is."""

    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> Iterator[Metric]:
        yield self._family


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
