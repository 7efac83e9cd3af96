"""A quick offline stand-in for the inactivity detector's learned floor, to try floors before building them.

It follows each real home's events in order and keeps, as the detector does, the longest silence
(`silence_min_s` or more) begun in each local hour, at home and, apart, begun at the front door; the
floor of a silence is `margin` × the longest begun within `around` hours + `extra_h`, 12 h before the
resident is known 3 days, never past 20 h. The delay of an incident is when the floor of the silence
begun at its last event passes (a miss past 24 h), a false alarm is a silence of the untouched
recording that outlasts its floor after the warm-up. No Poisson rate, no batching, no re-raise rule:
on the hour-only floor it reproduces `make bench-real`'s per-home medians and false alarms (detection
is higher, as a re-raise counts as a detection here).

The variant tried, since built into the detector (`silence_room_shrink`): the floor conditioned on the
room of the event that begins the silence as well as the hour (docs/detection-on-real-homes.md). Each
room class keeps its own longest silence per hour and how many silences it saw; the floor uses `w·L_room
+ (1 − w)·L_hour` with `w = n / (n + shrink)`, n the room's silences within the hours around (shrinkage
toward the hour-only floor; `shrink` None: hour only). Both are chosen leave-one-home-out as the
benchmark does.

    python -m tests.benchmarks.floor_proxy
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from detectors.inactivity import ROOMS, room_of
from tests.benchmarks import real_homes as rh

HOUR_S = 3600
MIN_SILENCE_H = 0.5
LEARNING_S = 3 * rh.DAY_S
PRIOR_H = 12.0
CAP_H = 20.0

Params = dict[str, float | int | None]


def floors_h(home: rh.Home, *, margin: float = 1.25, extra_h: float = 1.5, around: int = 3,
             shrink: float | None = None) -> npt.NDArray[np.float64]:
    """Per event, the floor (hours) of a silence begun at it, learned from the silences ended by then."""
    t = home.t
    room = [room_of(f[2]) for f in home.fields]
    door = [f[2] == "entrance" for f in home.fields]
    hour = (t % rh.DAY_S) // HOUR_S
    longest = np.zeros((2, 24))                 # at home, begun at the door
    by_room = np.zeros((len(ROOMS), 24))
    seen = np.zeros((len(ROOMS), 24))
    out = np.empty(len(t))
    for i in range(len(t)):
        if i and (gap := (t[i] - t[i - 1]) / HOUR_S) >= MIN_SILENCE_H:
            began, h = int(door[i - 1]), hour[i - 1]
            longest[began, h] = max(longest[began, h], gap)
            if not began:
                by_room[room[i - 1], h] = max(by_room[room[i - 1], h], gap)
                seen[room[i - 1], h] += 1
        if t[i] - t[0] < LEARNING_S:
            out[i] = PRIOR_H
            continue
        hours = (hour[i] + np.arange(-around, around + 1)) % 24
        at_home = longest[0, hours].max()
        if shrink is not None and not door[i]:
            n = seen[room[i], hours].sum()
            w = n / (n + shrink) if n + shrink > 0 else 0.0
            at_home = w * by_room[room[i], hours].max() + (1 - w) * at_home
        floor = margin * at_home + extra_h
        if door[i] and (outing := longest[1, hours].max()) > 0:
            floor = max(floor, margin * outing + extra_h)
        out[i] = min(floor, CAP_H)
    return out



def home_score(home: rh.Home, data: rh.Dataset, params: Params) -> rh.HomeScore:
    floor_s = (floors_h(home, **params) * HOUR_S).astype(np.int64)  # type: ignore[arg-type]
    t = home.t
    due = t + floor_s
    warm = int(t[0]) + rh.WARMUP_S
    false_alarms = int(np.sum((due[:-1] < t[1:]) & (due[:-1] >= warm)))
    delays: list[float | None] = []
    for s in data.streams:
        if s.home == home.name and s.t0 is not None:
            delay = (int(due[s.n - 1]) - s.t0) / HOUR_S
            delays.append(max(delay, 0.0) if delay <= data.window_s / HOUR_S else None)
    return rh.HomeScore(delays, false_alarms, (int(t[-1]) - warm) / rh.DAY_S)


def leave_one_home_out(title: str, grid: Sequence[Params], homes: dict[str, rh.Home], data: rh.Dataset
                       ) -> None:
    per_point = [{name: home_score(home, data, p) for name, home in homes.items()} for p in grid]
    rows = rh.leave_one_home_out(per_point, 24)
    print(f"{title} ({len(grid)} parameter sets), held out:")
    for name, g, s in rows:
        print(f"  {name}: median {s.median_h:.1f} h, p95 {s.p95_h:.1f} h, FA {s.fa_per_month:.2f}/month"
              + (f"  chosen {grid[g]}" if g >= 0 else ""))
    delays = [24.0 if d is None else d for name, g, _ in rows[:-1] for d in per_point[g][name].delays_h]
    print(f"  mean delay over held-out homes {np.mean(delays):.2f} h")


def main() -> None:
    homes = rh.read_homes()
    data = rh.build_streams(homes)
    base: list[Params] = [{"margin": m, "extra_h": e, "around": a}
                         for m in (1.0, 1.25, 1.5) for e in (0.5, 1.0, 1.5) for a in (2, 3)]
    leave_one_home_out("hour only (the benchmark's GRID)", base, homes, data)
    rooms: list[Params] = [{"margin": m, "extra_h": e, "around": 3, "shrink": k}
                           for m in (1.0, 1.25, 1.5) for e in (0.5, 1.0, 1.5) for k in (None, 1, 3, 10)]
    leave_one_home_out("hour and room of the last event", rooms, homes, data)


if __name__ == "__main__":
    main()
