"""Fixed-bucket histograms observed where the work happens, read at scrape time by `hub.metrics`.

Intake's three (batch sizes, commit latency, ingestion lag) are fed once per committed batch, in whichever
process committed it: the main hub, or an intake process that reports them for the main hub to serve
(`hub.intake_processes`). The lag takes a whole batch's readings in one numpy call rather than one locked
Python call per message on the intake thread. Kept apart from the Prometheus collector, so that an intake
process records them without importing what serves them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from prometheus_client.metrics_core import HistogramMetricFamily, Metric

from hub.clock import Clock
from hub.store import Observation

# Bucket bounds. Batches hold 1..HUB_BATCH_MAX messages; commits take milliseconds on a disk and seconds on
# a struggling one; lag spans a live stream (sub-second) to a backlog drained after an outage (hours).
BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 500, 1000, 2000, 5000, 10000)
COMMIT_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
LAG_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


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
        """Bucket counts then the sum, as JSON-ready numbers: what an intake process reports."""
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
        return HistogramMetricFamily(name, documentation, buckets=cumulative(self.bounds, counts),
                                     sum_value=total)


def cumulative(bounds: Iterable[float], counts: Iterable[float]) -> list[tuple[str, float]]:
    """(le, cumulative count) pairs ending with +Inf, from per-bucket counts (one more than bounds)."""
    labels = [_le(bound) for bound in bounds] + ["+Inf"]
    return list(zip(labels, np.cumsum(list(counts)).tolist(), strict=True))


def _le(bound: float) -> str:
    return str(float(bound))


class IntakeHistograms:
    """Batch sizes, commit latency and ingestion lag of one process's intake, fed once per committed batch
    (on the intake thread). An intake process reports them (`report`) for the main hub to serve."""

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
        """The three families, with the histograms `reported` by intake processes added in."""
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
