"""Speed and size of the inactivity detector.

1. One live tick over 1,000,000 residents (`due`: which deadlines have passed), the scoring and deciding
   of the residents it returns, and the bytes of learned state per resident.
2. Backtest throughput in events/s (reading the CSV and replaying it, end to end) on two generated logs:
   residents active at random seconds of the day, one event every quarter of an hour or so; and a log
   shaped like the real-home recordings (a few hundred residents, bursts of readings within a minute,
   `YYYY-MM-DD HH:MM:SS` timestamps, CRLF line ends).

    python -m tests.benchmarks.detector [--residents 1000000] [--log-residents 2000] [--log-days 30]
                                        [--homes-residents 164] [--homes-days 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
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


def random_rows(residents: int, days: int) -> Iterator[str]:
    """~60 events per resident and day at random seconds of the awake hours, in time order."""
    rng = np.random.default_rng(2)
    start = datetime(2026, 3, 2)
    for day in range(days):
        n = residents * 60
        seconds = np.sort(rng.integers(7 * 3600, 22 * 3600, n))
        who = rng.integers(0, residents, n)
        base = start + timedelta(days=day)
        for s, w in zip(seconds, who, strict=True):
            yield f"{(base + timedelta(seconds=int(s))).isoformat()},r{w},d{w},motion_sensor,living\n"


def home_rows(residents: int, days: int, homes: int = 4) -> Iterator[str]:
    """Like the real-home recordings and their incident copies: a few homes, each busy in ~120 minutes of
    the day with ~8 readings in each (pressure mats and motion sensors chatter) and a front-door passage
    now and then, each recorded once and copied to `residents / homes` residents who each miss six hours
    of one day (an incident); in time order."""
    rng = np.random.default_rng(3)
    start = datetime(2003, 3, 27)
    kinds = ["pressure_sensor,bed", "motion_sensor,kitchen", "door_sensor,kitchen", "appliance,kitchen",
             "door_sensor,entrance"]
    day_s = 24 * 3600
    columns: list[list[np.ndarray]] = [[], [], []]
    for home in range(homes):
        minute = rng.integers(6 * 60, 23 * 60, (days, 120)) + np.arange(days)[:, None] * 24 * 60
        seconds = np.sort(np.repeat(minute.ravel(), 8) * 60 + rng.integers(0, 60, minute.size * 8))
        kind = np.where(rng.random(seconds.size) < 0.002, 4, rng.integers(0, 4, seconds.size))
        for copy in range(home, residents, homes):
            gone = rng.integers(0, days) * day_s + rng.integers(8 * 3600, 16 * 3600)
            keep = (seconds < gone) | (seconds >= gone + 6 * 3600)
            columns[0].append(seconds[keep])
            columns[1].append(np.full(int(keep.sum()), copy))
            columns[2].append(kind[keep])
    seconds, who, kind = (np.concatenate(column) for column in columns)
    order = np.argsort(seconds, kind="stable")
    for s, w, k in zip(seconds[order].tolist(), who[order].tolist(), kind[order].tolist(), strict=True):
        yield f"{(start + timedelta(seconds=s)).isoformat(sep=' ')},home{w},d{w % homes}-{k},{kinds[k]}\r\n"


def throughput(name: str, rows: Iterator[str], timezone: str, newline: str = "\n") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(",".join(HEADER) + newline)
            handle.writelines(rows)
        began = time.perf_counter()
        report = backtest(path, Path(tmp) / "alerts.jsonl", progress=False, timezone=timezone)
        seconds_taken = time.perf_counter() - began
    print(f"backtest, {name}: {report.events:,} events of {report.residents:,} residents in "
          f"{seconds_taken:.1f} s = {report.events / seconds_taken:,.0f} events/s "
          f"({sum(report.alerts.values())} alerts)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--log-residents", type=int, default=2_000)
    parser.add_argument("--log-days", type=int, default=30)
    parser.add_argument("--homes-residents", type=int, default=164)
    parser.add_argument("--homes-days", type=int, default=16)
    args = parser.parse_args()
    print("$ python -m tests.benchmarks.detector " + " ".join(sys.argv[1:]))
    tick(args.residents)
    throughput(f"generated log ({args.log_days} days)", random_rows(args.log_residents, args.log_days),
               "Asia/Shanghai")
    throughput(f"real-home-sized log ({args.homes_days} days)",
               home_rows(args.homes_residents, args.homes_days), "UTC", newline="\r\n")


if __name__ == "__main__":
    main()
