"""Speed and size of the inactivity detector.

1. One live tick over 1,000,000 residents (`due`: which deadlines have passed), the scoring and deciding
   of the residents it returns, and the bytes of learned state per resident.
2. Backtest throughput in events/s on a generated log.

    python -m tests.benchmarks.detector [--residents 1000000] [--log-residents 2000] [--log-days 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from detectors import Evidence, InactivityDetector
from hub.backtest import HEADER, backtest

HOUR_MS = 3_600_000
START_MS = 1_772_380_800_000  # Monday 2026-03-02 00:00 in Shanghai


def tick(residents: int) -> None:
    rng = np.random.default_rng(1)
    detector = InactivityDetector().init(residents, 8 * 3600)
    # A day of activity for everyone, in hourly batches like the live hub's.
    for hour in range(7, 22):
        t = START_MS + hour * HOUR_MS + rng.integers(0, HOUR_MS, residents)
        detector.partial_fit(np.arange(residents), t, np.full(residents, Evidence.INDOOR))
    state = detector.get_state()
    per_resident = sum(a.nbytes for a in state.values()) / residents
    now = START_MS + 36 * HOUR_MS  # noon the next day: some are due
    timings = []
    for _ in range(20):
        began = time.perf_counter()
        due = np.flatnonzero(detector.due(now))
        timings.append(time.perf_counter() - began)
    began = time.perf_counter()
    detector.decide(detector.score(now, due), resident_idx=due)
    decide_ms = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    full = detector.decide(detector.score(now))
    full_ms = (time.perf_counter() - began) * 1000
    print(f"tick over {residents:,} residents: {np.median(timings) * 1000:.1f} ms median "
          f"(due: {len(due):,}; scoring and deciding them {decide_ms:.1f} ms; scoring everyone "
          f"{full_ms:.0f} ms, {int((full > 0).sum()):,} alerting); "
          f"state {per_resident:.0f} bytes per resident")


def throughput(residents: int, days: int) -> None:
    rng = np.random.default_rng(2)
    start = datetime(2026, 3, 2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.csv"
        events = 0
        with path.open("w", encoding="utf-8") as handle:
            handle.write(",".join(HEADER) + "\n")
            for day in range(days):
                # ~60 events per resident and day, awake hours, written in time order per day
                n = residents * 60
                seconds = np.sort(rng.integers(7 * 3600, 22 * 3600, n))
                who = rng.integers(0, residents, n)
                base = start + timedelta(days=day)
                handle.writelines(
                    f"{(base + timedelta(seconds=int(s))).isoformat()},r{w},d{w},motion_sensor,living\n"
                    for s, w in zip(seconds, who, strict=True))
                events += n
        began = time.perf_counter()
        report = backtest(path, Path(tmp) / "alerts.jsonl", progress=False)
        seconds_taken = time.perf_counter() - began
    print(f"backtest: {events:,} events, {residents:,} residents × {days} days in {seconds_taken:.1f} s = "
          f"{events / seconds_taken:,.0f} events/s ({sum(report.alerts.values())} alerts)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--log-residents", type=int, default=2_000)
    parser.add_argument("--log-days", type=int, default=30)
    args = parser.parse_args()
    tick(args.residents)
    throughput(args.log_residents, args.log_days)


if __name__ == "__main__":
    main()
