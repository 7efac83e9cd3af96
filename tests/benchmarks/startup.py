"""Start-up time against stored history: from the evaluation's start to the detector armed.

A store holding a year of a community's observations and one holding a week, each started three ways:
with no checkpoint (every stored observation relearned), from a checkpoint taken 15 minutes of hub time
before a crash (the default `HUB_DETECTOR_CHECKPOINT_MINUTES`: those 15 minutes relearned), and after a
clean stop (nothing to relearn). The observations are written straight through the store's batch API
(`Store.commit`), not through MQTT: a year of a thousand residents is millions of readings.

    python -m tests.benchmarks.startup [--residents 1000] [--days 7 --days 365] [--sessions 10]

The generator is also what the checkpoint tests (tests/detectors/test_checkpoints.py) run on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub.alerts.model import AlertRequest
from hub.evaluation import CURSOR, Evaluator
from hub.registry import Registry
from hub.store import Batch, Observation, Store
from tests.registry_builder import RegistryBuilder

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
START_MS = 1_767_196_800_000  # Thursday 2026-01-01 00:00 in Shanghai
SHANGHAI_S = 8 * 3600
CHECKPOINT_MINUTES = 15


def community_registry(communities: Mapping[str, int]) -> Registry:
    """Each community's residents living alone, each home with a motion sensor and a front-door contact:
    resident `<community>-r<i>`, devices `<community>-m<i>` (in the bedroom, the kitchen or the living
    room: the rooms silences begin in are learned too) and `<community>-d<i>` (in the hall)."""
    builder = RegistryBuilder()
    for community, residents in communities.items():
        builder.community(community).compound(f"{community}-c").building(f"{community}-b").grid(
            f"{community}-g")
        for i in range(residents):
            home = f"{community}-h{i}"
            (builder.household(home).resident(f"{community}-r{i}", f"住户{i}")
             .device(f"{community}-m{i}", "motion_sensor", household=home,
                     room=("bedroom", "kitchen", "living room")[i % 3])
             .device(f"{community}-d{i}", "door_sensor", household=home, room="hall"))
    return builder.registry()


@dataclass(frozen=True)
class Quiet:
    """A resident giving no sign of life from `start_ms` to `end_ms` (a fall, a stay in hospital)."""

    resident: str
    start_ms: int
    end_ms: int


def observations(registry: Registry, start_ms: int, end_ms: int, *, sessions: int = 10, seed: int = 1,
                 heartbeat_h: int = 0, quiet: tuple[Quiet, ...] = ()) -> Iterator[list[Observation]]:
    """Day by day, in time order: each resident's motion sensor starting `sessions` times a day at random
    moments of the waking hours (07:00-22:00 local; occupancy back to false a minute later), one outing a
    day (the front door opened and closed, and again about two hours later), and with `heartbeat_h` every
    device reporting its unchanged state that often (so a quiet home's sensors are not offline)."""
    rng = np.random.default_rng(seed)
    residents = [r.id for r in registry.data.residents]
    in_home: dict[str, dict[str, str]] = {}
    for placed in registry.devices.values():
        in_home.setdefault(placed.household or "", {})[placed.kind] = placed.id
    homes = [in_home[r.household] for r in registry.data.residents]
    n = len(residents)
    # Device k < n is resident k's motion sensor, n + k their front door.
    names = [home["motion_sensor"] for home in homes] + [home["door_sensor"] for home in homes]
    kinds = ["motion_sensor", "door_sensor"]
    fields = [[{"occupancy": False}, {"occupancy": True}], [{"open": False}, {"open": True}]]
    whose = np.arange(n)
    first_day_ms = start_ms - (start_ms + SHANGHAI_S * 1000) % DAY_MS  # local midnight
    for day_ms in range(first_day_ms, end_ms, DAY_MS):
        wake = day_ms + 7 * HOUR_MS
        moved = wake + rng.integers(0, 15 * HOUR_MS, (n, sessions))
        leave = wake + rng.integers(2 * HOUR_MS, 10 * HOUR_MS, n)
        doors = np.stack([leave, leave + rng.integers(HOUR_MS, 3 * HOUR_MS, n)], axis=1)
        parts = [  # (time, device, value) of each resident's readings
            (moved, whose[:, None], True), (moved + 60_000, whose[:, None], False),
            (doors, n + whose[:, None], True), (doors + 20_000, n + whose[:, None], False)]
        t = np.concatenate([np.broadcast_to(a, a.shape).ravel() for a, _, _ in parts])
        device = np.concatenate([np.broadcast_to(d, a.shape).ravel() for a, d, _ in parts])
        value = np.concatenate([np.full(a.size, v) for a, _, v in parts])
        for q in quiet:
            k = residents.index(q.resident)
            keep = ~(((device == k) | (device == n + k)) & (t >= q.start_ms) & (t < q.end_ms))
            t, device, value = t[keep], device[keep], value[keep]
        if heartbeat_h:  # unchanged states: no sign of life, only a device alive
            hours = np.arange(day_ms, day_ms + DAY_MS, heartbeat_h * HOUR_MS)
            beats = hours[:, None] + 1000 + np.arange(2 * n)
            t = np.concatenate([t, beats.ravel()])
            device = np.concatenate([device, np.tile(np.arange(2 * n), len(beats))])
            value = np.concatenate([value, np.zeros(beats.size, dtype=bool)])
        order = np.lexsort((device, t))
        yield [Observation(names[d], kinds[d >= n], ts, fields[d >= n][v], ts + 200)
               for ts, d, v in zip(t[order].tolist(), device[order].tolist(), value[order].tolist(),
                                   strict=True) if start_ms <= ts < end_ms]


def fill(store: Store, days: Iterator[list[Observation]], batch: int = 20_000) -> int:
    """Commit the observations in batches as intake does (one transaction each). Returns the last id."""
    for rows in days:
        for k in range(0, len(rows), batch):
            store.commit(Batch(observations=rows[k:k + batch]))
    return store.last_observation_id()


class FixedClock:
    def __init__(self, now_ms: int) -> None:
        self.at_ms = now_ms

    def now_ms(self) -> int:
        return self.at_ms


def evaluator(path: Path, registry: Registry, now_ms: int, raised: Callable[[AlertRequest], object],
              checkpoint_minutes: int | None = CHECKPOINT_MINUTES) -> Evaluator:
    """An evaluation over the store at `path` whose hub time stands at `now_ms`, everything received
    before it committed."""
    return Evaluator(lambda: Store(path), lambda: registry, FixedClock(now_ms), raised,
                     settled_ms=lambda _: now_ms,
                     checkpoint_every_s=None if checkpoint_minutes is None else checkpoint_minutes * 60)


def time_to_armed(path: Path, registry: Registry, now_ms: int) -> tuple[float, int]:
    """Seconds from the evaluation's start to the detector armed, and the observations it relearned.
    Stopped cleanly afterwards, which checkpoints."""
    evaluation = evaluator(path, registry, now_ms, lambda request: None)
    began = time.perf_counter()
    evaluation.start()
    if not evaluation.armed.wait(3600):
        raise RuntimeError("the detector was not armed within an hour")
    seconds = time.perf_counter() - began
    evaluation.stop()
    evaluation.join()
    return seconds, evaluation.stats.relearned


def measure(directory: Path, residents: int, days: int, sessions: int) -> dict[str, float]:
    registry = community_registry({"sunshine": residents})
    path = directory / f"startup-{days}d.sqlite3"
    end_ms = START_MS + (days - 1) * DAY_MS + 18 * HOUR_MS  # stopped at 18:00 of the last day: all up
    crash_ms = end_ms - CHECKPOINT_MINUTES * 60_000
    figures: dict[str, float] = {}
    store = Store(path, synchronous="normal")
    began = time.perf_counter()
    # All but the last 15 minutes, evaluated by a hub that checkpointed then; then those minutes, evaluated
    # by it before it crashed (the evaluation cursor is saved every second, the checkpoint every 15 min).
    evaluated = fill(store, observations(registry, START_MS, crash_ms, sessions=sessions))
    store.set_export_cursor(CURSOR, evaluated)
    # Counted, not the last id: two readings of one device in the same millisecond are one row.
    figures["stored"] = store.count_observations()
    figures["generate_s"] = time.perf_counter() - began
    store.close()
    figures["full_s"], relearned = time_to_armed(path, registry, crash_ms)
    assert relearned == figures["stored"]
    store = Store(path)
    store.set_export_cursor(CURSOR, fill(store, observations(registry, crash_ms, end_ms, sessions=sessions)))
    figures["stored"] = store.count_observations()
    store.close()
    figures["crash_s"], figures["crash_relearned"] = time_to_armed(path, registry, end_ms)
    figures["clean_s"], figures["clean_relearned"] = time_to_armed(path, registry, end_ms)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--days", type=int, action="append", help="default: 7 and 365")
    parser.add_argument("--sessions", type=int, default=10, help="motion starts per resident and day")
    args = parser.parse_args(argv)
    print("python -m tests.benchmarks.startup " + " ".join(sys.argv[1:] if argv is None else argv))
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as directory:
        for days in args.days or [7, 365]:
            f = measure(Path(directory), args.residents, days, args.sessions)
            print(f"{days:>4} days of {args.residents:,} residents, {int(f['stored']):,} observations "
                  f"(written in {f['generate_s']:.1f} s): armed after {f['full_s']:.2f} s with no "
                  f"checkpoint (all relearned), {f['crash_s']:.2f} s from a checkpoint "
                  f"{CHECKPOINT_MINUTES} min before a crash ({int(f['crash_relearned']):,} relearned), "
                  f"{f['clean_s']:.2f} s after a clean stop ({int(f['clean_relearned']):,} relearned)",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
