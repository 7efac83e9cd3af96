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

`--leads` measures the leads tried and not built (docs/detection-on-real-homes.md, "Leads tried"), each
against the room floor's grid, leave-one-home-out:

- a morning check: a silence begun in the evening or night (from `evening` to 04:00) is due at the
  latest wake-up seen so far (the end, before 18:00, of a silence of 3 h or more over 04:00; `wake_q`:
  that quantile of them, 1: the latest, 2: the second latest) plus `wake_margin_h`, if that is sooner
  than its floor;
- a survival floor: an exponential tail fitted to the silences of `tail_u` hours or more begun around
  that hour (their count and mean excess, the excess shrunk toward 2 h), due where fewer than
  `tail_alpha` such silences a day are expected to last longer (never under `tail_floor` × the room
  floor's longest);
- the room's floor over fewer hours around (`room_around`) than the hour's;
- hours around discounted by their distance: a silence begun k hours earlier counts `discount_earlier`
  × k hours shorter (as if it ended at the same time of day), one begun k hours later `discount_later`
  × k shorter;

and the two ends of what such a floor can do: learned as it goes with no margin and no extra time (the
fastest a floor learned from the resident's past can be, its false alarms every new record), and an
in-sample bound: the floor as the longest silence of the whole recording begun around that hour (after
the same room), no margin, no extra time, so no false alarm by construction.

`--context-leads` measures the third round (docs/detection-on-real-homes.md, "Leads tried (third round)"):
the room floor conditioned on a context of the event that begins the silence (`contexts`, each known when
that event happens), a floor per room class and value of the context, shrunk toward the room floor with
`w = n / (n + context_shrink)`; an event of no known context (a home with no bed mat) keeps the room
floor. Each feature's in-sample bound (hours around 3, by room and context) and its held-out figures
against the room floor's grid:

- bed occupied: a bed mat's last event was a press, not a release (homes B and C), as the recording
  gives it and as told by each device's events alternating start and end (parity; `check_parity`
  prints where that misreads);
- start or end: the event is an interval's start (opened, pressed, motion begun) or its end;
- recent activity: events, or distinct devices, in the 30 or 60 min up to the event, in three bins (or
  two: quiet or not);
- after a long silence: the last silence of 3 h (or 2 h) or more ended less than 2 h (or 1 h) ago.

    python -m tests.benchmarks.floor_proxy [--leads | --context-leads]
"""

from __future__ import annotations

import argparse
import itertools
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
NIGHT_HOUR = 4            # a silence over 04:00 local is a night; its end, the wake-up
MIN_NIGHT_H = 3.0
WAKE_BY_H = 18            # a silence over 04:00 that ends later is no night's sleep (a day out, a fault)
MIN_NIGHTS = 3            # wake-ups seen before a morning check applies
TAIL_PRIOR_H, TAIL_PRIOR_N = 2.0, 3.0

Params = dict[str, float | int | str | None]


def floors_h(home: rh.Home, *, margin: float = 1.25, extra_h: float = 1.5, around: int = 3,
             shrink: float | None = None, room_around: int | None = None, discount_earlier: float = 0.0,
             discount_later: float = 0.0, tail_alpha: float | None = None, tail_u: float = 1.0,
             tail_floor: float = 1.0, evening: int | None = None, wake_margin_h: float = 1.0,
             wake_q: float = 1.0, context: str | None = None, context_shrink: float = 3.0
             ) -> npt.NDArray[np.float64]:
    """Per event, the floor (hours) of a silence begun at it, learned from the silences ended by then."""
    t = home.t
    # The context of each event (`contexts`; -1: not known, the room floor alone), learned per room class.
    ctx = contexts(home)[context] if context is not None else np.full(len(t), -1, dtype=np.int64)
    by_ctx = np.zeros((len(ROOMS), CONTEXT_VALUES, 24))
    seen_ctx = np.zeros((len(ROOMS), CONTEXT_VALUES, 24))
    room = [room_of(f[2]) for f in home.fields]
    door = [f[2] == "entrance" for f in home.fields]
    hour = (t % rh.DAY_S) // HOUR_S
    offsets = np.arange(-around, around + 1)
    discount = discount_earlier * np.maximum(-offsets, 0) + discount_later * np.maximum(offsets, 0)
    room_offsets = offsets if room_around is None else np.arange(-room_around, room_around + 1)
    longest = np.zeros((2, 24))                 # at home, begun at the door
    by_room = np.zeros((len(ROOMS), 24))
    seen = np.zeros((len(ROOMS), 24))
    tail_n = np.zeros(24)                        # silences of tail_u or more, and their excess over it
    tail_excess = np.zeros(24)
    wakes: list[float] = []
    out = np.empty(len(t))
    for i in range(len(t)):
        if i and (gap := (t[i] - t[i - 1]) / HOUR_S) >= MIN_SILENCE_H:
            began, h = int(door[i - 1]), hour[i - 1]
            longest[began, h] = max(longest[began, h], gap)
            if not began:
                by_room[room[i - 1], h] = max(by_room[room[i - 1], h], gap)
                seen[room[i - 1], h] += 1
                if (c := ctx[i - 1]) >= 0:
                    by_ctx[room[i - 1], c, h] = max(by_ctx[room[i - 1], c, h], gap)
                    seen_ctx[room[i - 1], c, h] += 1
                if gap >= tail_u:
                    tail_n[h] += 1
                    tail_excess[h] += gap - tail_u
            day = t[i] - t[i] % rh.DAY_S
            if (gap >= MIN_NIGHT_H and t[i - 1] < day + NIGHT_HOUR * HOUR_S <= t[i]
                    and t[i] - day < WAKE_BY_H * HOUR_S):
                wakes.append((t[i] - day) / HOUR_S)
        if t[i] - t[0] < LEARNING_S:
            out[i] = PRIOR_H
            continue
        hours = (hour[i] + offsets) % 24
        at_home = np.maximum(longest[0, hours] - discount, 0).max()
        if shrink is not None and not door[i]:
            room_hours = (hour[i] + room_offsets) % 24
            n = seen[room[i], room_hours].sum()
            w = n / (n + shrink) if n + shrink > 0 else 0.0
            in_room = (np.maximum(by_room[room[i], hours] - discount, 0).max() if room_around is None
                       else by_room[room[i], room_hours].max())
            at_home = w * in_room + (1 - w) * at_home
            if (c := ctx[i]) >= 0:
                # Shrunk toward the room floor just computed, as that is toward the hour's.
                n = seen_ctx[room[i], c, room_hours].sum()
                w = n / (n + context_shrink)
                at_home = w * by_ctx[room[i], c, hours].max() + (1 - w) * at_home
        if tail_alpha is None:
            floor = margin * at_home + extra_h
        else:
            k = tail_n[hours].sum()
            mean_excess = (tail_excess[hours].sum() + TAIL_PRIOR_H * TAIL_PRIOR_N) / (k + TAIL_PRIOR_N)
            days = (t[i] - t[0]) / rh.DAY_S
            due = tail_u + mean_excess * np.log(max(k, 1.0) / (days * tail_alpha))
            floor = max(due, tail_floor * at_home) + extra_h
        if door[i] and (outing := longest[1, hours].max()) > 0:
            floor = max(floor, margin * outing + extra_h)
        floor = min(floor, CAP_H)
        local_h = (t[i] % rh.DAY_S) / HOUR_S
        if evening is not None and len(wakes) >= MIN_NIGHTS and (local_h >= evening or local_h < NIGHT_HOUR):
            wake = float(np.quantile(wakes, wake_q) if wake_q <= 1 else sorted(wakes)[-int(wake_q)])
            day = t[i] - t[i] % rh.DAY_S
            check = day + (wake + wake_margin_h) * HOUR_S
            floor = min(floor, ((check if check > t[i] else check + rh.DAY_S) - t[i]) / HOUR_S)
        out[i] = floor
    return out


# ----------------------------------------------------------------------------------------------------------
# Context features (`--context-leads`): each event's context, known when it happens (nothing from after it)
# ----------------------------------------------------------------------------------------------------------

I64 = npt.NDArray[np.int64]
CONTEXT_VALUES = 3              # values a context feature takes (0, 1, 2); -1: not known
INTERVAL_KINDS = ("door_sensor", "pressure_sensor", "motion_sensor")  # the reader emits their ends too
BED_MAT = ("pressure_sensor", "bedroom")
RECENT_EVENTS_CUTS = (5, 20)    # events in the window: fewer than 5 (quiet), 5-19, 20 or more (busy)
RECENT_DEVICES_CUTS = (2, 4)    # devices in the window: one, 2-3, 4 or more


def ends_by_parity(home: rh.Home) -> npt.NDArray[np.bool_]:
    """Whether each event is the end of an interval (a door closed, a mat released, motion ended), told as
    a hub would be told it by nothing but the order of events: a device of an interval kind alternates
    start and end, every other device only starts."""
    count: dict[str, int] = {}
    out = np.zeros(len(home.t), dtype=np.bool_)
    for i, (device, kind, _) in enumerate(home.fields):
        if kind in INTERVAL_KINDS:
            count[device] = count.get(device, 0) + 1
            out[i] = count[device] % 2 == 0
    return out


def check_parity(homes: dict[str, rh.Home]) -> None:
    """Print how often parity misreads start and end, and why (zero-length or overlapping intervals)."""
    for name, home in homes.items():
        letter = name[-1]
        assert home.ends is not None, "a home as read from its recording"
        wrong = ends_by_parity(home) != home.ends
        names = rh._names(rh.DATA_DIR / f"house{letter}.sensor_names")
        intervals: dict[int, list[tuple[int, int]]] = {}
        for start, duration, sid in rh._rows(rh.DATA_DIR / f"house{letter}.sensors"):
            intervals.setdefault(sid, []).append((start, duration))
        zero = overlap = 0
        for sid, rows in intervals.items():
            if sid not in names:
                continue
            rows.sort()
            zero += sum(d == 0 for _, d in rows)
            overlap += sum(b[0] < a[0] + a[1] for a, b in itertools.pairwise(rows))
        mats = [i for i, f in enumerate(home.fields) if f[1:] == BED_MAT]
        print(f"  {name}: parity misreads {int(wrong.sum())} of {len(wrong)} events "
              f"({int(wrong[mats].sum())} of {len(mats)} bed-mat events); raw intervals of length 0: {zero}, "
              f"overlapping the same sensor's previous one: {overlap}")


def _bed_occupied(home: rh.Home, ends: npt.NDArray[np.bool_]) -> I64:
    """1 while a bed mat is pressed (its last event a start), 0 when none is; -1 in a home with no bed mat."""
    mats = {f[0] for f in home.fields if f[1:] == BED_MAT}
    if not mats:
        return np.full(len(home.t), -1, dtype=np.int64)
    on = 0                          # intervals of the bed mats begun and not ended (overlaps counted)
    out = np.empty(len(home.t), dtype=np.int64)
    for i, (device, _, _) in enumerate(home.fields):
        if device in mats:
            on = max(on - 1, 0) if ends[i] else on + 1
        out[i] = int(on > 0)
    return out


def _recent(home: rh.Home, window_s: int, cuts: tuple[int, int], devices: bool) -> I64:
    """Events (or distinct devices) in the `window_s` up to each event, itself included, in three bins."""
    t = home.t
    first = np.searchsorted(t, t - window_s, side="right")
    if not devices:
        counts = np.arange(len(t)) - first + 1
    else:
        names = [f[0] for f in home.fields]
        inside: dict[str, int] = {}
        counts = np.empty(len(t), dtype=np.int64)
        lo = 0
        for i in range(len(t)):
            inside[names[i]] = inside.get(names[i], 0) + 1
            while lo < first[i]:
                if (left := inside[names[lo]] - 1) == 0:
                    del inside[names[lo]]
                else:
                    inside[names[lo]] = left
                lo += 1
            counts[i] = len(inside)
    return np.searchsorted(np.asarray(cuts), counts, side="right").astype(np.int64)


def _after_long_silence(home: rh.Home, long_s: int, within_s: int) -> I64:
    """1 if the last silence of `long_s` or more (an outing too) ended less than `within_s` ago: just up,
    or just back; 0 otherwise."""
    t = home.t
    ended = np.r_[False, np.diff(t) >= long_s]
    last = np.maximum.accumulate(np.where(ended, np.arange(len(t)), -1))
    return ((last >= 0) & (t - t[np.maximum(last, 0)] < within_s)).astype(np.int64)


_CONTEXTS: dict[tuple[str, int], dict[str, I64]] = {}


def contexts(home: rh.Home) -> dict[str, I64]:
    """Each context feature's value at each event (`--context-leads`), computed once per home."""
    key = (home.name, len(home.t))
    if key not in _CONTEXTS:
        # As recorded (what a contact or mat reports itself: open/closed, pressed/released), and as told
        # by parity alone (what a hub told only "activity" could infer).
        parity = ends_by_parity(home)
        ends = parity if home.ends is None else home.ends
        out = {"bed occupied": _bed_occupied(home, ends),
               "bed occupied (parity)": _bed_occupied(home, parity),
               "start or end": ends.astype(np.int64), "start or end (parity)": parity.astype(np.int64)}
        for minutes in (30, 60):
            out[f"events in {minutes} min"] = _recent(home, 60 * minutes, RECENT_EVENTS_CUTS, False)
            out[f"devices in {minutes} min"] = _recent(home, 60 * minutes, RECENT_DEVICES_CUTS, True)
            # Two bins: quiet (fewer than 5 events) or not.
            out[f"quiet {minutes} min"] = np.minimum(out[f"events in {minutes} min"], 1)
        for long_h, within_h in ((3, 2), (3, 1), (2, 2)):
            out[f"{long_h} h silence ended < {within_h} h"] = _after_long_silence(
                home, long_h * HOUR_S, within_h * HOUR_S)
        _CONTEXTS[key] = out
    return _CONTEXTS[key]


def home_score(home: rh.Home, data: rh.Dataset, params: Params) -> rh.HomeScore:
    floor_s = (floors_h(home, **params) * HOUR_S).astype(np.int64)  # type: ignore[arg-type]
    return _score(home, data, floor_s)


def _score(home: rh.Home, data: rh.Dataset, floor_s: npt.NDArray[np.int64]) -> rh.HomeScore:
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


_SCORED: dict[str, dict[str, rh.HomeScore]] = {}


def _scores(params: Params, homes: dict[str, rh.Home], data: rh.Dataset) -> dict[str, rh.HomeScore]:
    key = repr(sorted(params.items()))
    if key not in _SCORED:
        _SCORED[key] = {name: home_score(home, data, params) for name, home in homes.items()}
    return _SCORED[key]


def leave_one_home_out(title: str, grid: Sequence[Params], homes: dict[str, rh.Home], data: rh.Dataset
                       ) -> None:
    per_point = [_scores(p, homes, data) for p in grid]
    rows = rh.leave_one_home_out(per_point, 24)
    print(f"{title} ({len(grid)} parameter sets), held out:")
    for name, g, s in rows:
        print(f"  {name}: median {s.median_h:.1f} h, p95 {s.p95_h:.1f} h, FA {s.fa_per_month:.2f}/month"
              + (f"  chosen {grid[g]}" if g >= 0 else ""))
    delays = [24.0 if d is None else d for name, g, _ in rows[:-1] for d in per_point[g][name].delays_h]
    print(f"  mean delay over held-out homes {np.mean(delays):.2f} h")
    # On all four homes: the fastest set with no more false alarms than the room floor's defaults.
    if ROOM_DEFAULTS not in grid:
        return
    pooled = [rh.summarize(p.values(), 24) for p in per_point]
    budget = pooled[grid.index(ROOM_DEFAULTS)].fa_per_month
    best = min((g for g, s in enumerate(pooled) if s.fa_per_month <= budget + 1e-9),
               key=lambda g: pooled[g].median_h, default=None)
    if best is not None:
        s = pooled[best]
        per_home = ", ".join(f"{name[-1]} {rh.summarize([sc], 24).median_h:.1f} h/{sc.false_alarms}"
                             for name, sc in per_point[best].items())
        print(f"  all four homes, fastest at the defaults' false alarms: {grid[best]}: median "
              f"{s.median_h:.2f} h, p95 {s.p95_h:.1f} h, FA {s.fa_per_month:.2f}/month ({per_home})")


def in_sample_bound(homes: dict[str, rh.Home], data: rh.Dataset, context: str | None = None,
                    arounds: Sequence[int] = (0, 1, 3), by_rooms: Sequence[bool] = (False, True)) -> None:
    """The floor as the longest silence of the whole recording begun around that hour (after the same
    room, and in the same `context` if given; the front door apart), no margin: no false alarm by
    construction, the least such a floor gives."""
    for around in arounds:
        for by_room in by_rooms:
            medians, delays = {}, []
            for name, home in homes.items():
                t = home.t
                room = np.array([4 if f[2] == "entrance" else room_of(f[2]) if by_room else 0
                                 for f in home.fields])
                if context is not None:   # a cell per room and value of the context; the door's unchanged
                    room = np.where(room == 4, 4, room + (len(ROOMS) + 1) * (contexts(home)[context] + 1))
                hour = (t % rh.DAY_S) // HOUR_S
                gap = np.diff(t) / HOUR_S
                longest = np.zeros(((len(ROOMS) + 1) * (CONTEXT_VALUES + 1), 24))
                for g in np.nonzero(gap >= MIN_SILENCE_H)[0]:
                    longest[room[g], hour[g]] = max(longest[room[g], hour[g]], gap[g])
                mine = []
                for s in data.streams:
                    if s.home == name and s.t0 is not None:
                        i = s.n - 1
                        floor = max(longest[room[i], (hour[i] + np.arange(-around, around + 1)) % 24].max(),
                                    MIN_SILENCE_H)
                        mine.append(min(max((t[i] + floor * HOUR_S - s.t0) / HOUR_S, 0.0), 24.0))
                medians[name[-1]] = float(np.median(mine))
                delays += mine
            label = ('hour and room' if by_room else 'hour alone') + (f', {context}' if context else '')
            print(f"  hours around {around}, {label}: median "
                  f"{np.median(delays):.1f} h, p95 {np.percentile(delays, 95):.1f} h ("
                  + ", ".join(f"{k} {v:.1f}" for k, v in medians.items()) + ")")


def online_no_margin(homes: dict[str, rh.Home], data: rh.Dataset) -> None:
    """The other end of the trade-off: the floor learned as it goes with no margin and no extra time, so a
    silence warns the moment it outlasts the longest this resident has had in that context so far. No
    floor learned from the resident's own past is faster; its false alarms are how often a real life sets
    a new record in that context."""
    for around in (3, 1):
        for shrink in (None, 3.0):
            params: Params = {"margin": 1.0, "extra_h": 0.0, "around": around, "shrink": shrink}
            s = rh.summarize(_scores(params, homes, data).values(), 24)
            print(f"  hours around {around}, {'hour alone' if shrink is None else 'hour and room'}: median "
                  f"{s.median_h:.2f} h, p95 {s.p95_h:.1f} h, FA {s.fa_per_month:.1f}/month")


ROOM_DEFAULTS: Params = {"margin": 1.25, "extra_h": 1.5, "around": 3, "shrink": 3}


def context_leads() -> None:
    """Each context feature: its in-sample bound beside the room's, then held out against the room floor's
    grid (shrinkage 1 apart, as in `--leads`), the feature's own floor shrunk toward the room floor's."""
    homes = rh.read_homes()
    data = rh.build_streams(homes)
    print("parity against the recorded starts and ends:")
    check_parity(homes)
    print("in-sample bound (hours around 3, hour and room; no false alarm by construction):")
    in_sample_bound(homes, data, arounds=(3,), by_rooms=(True,))
    for context in contexts(next(iter(homes.values()))):
        in_sample_bound(homes, data, context, arounds=(3,), by_rooms=(True,))
    rooms: list[Params] = [{"margin": m, "extra_h": e, "around": 3, "shrink": k}
                           for m in (1.0, 1.25, 1.5) for e in (0.5, 1.0, 1.5) for k in (None, 3, 10)]
    leave_one_home_out("the room floor alone", rooms, homes, data)
    for context in contexts(next(iter(homes.values()))):
        lead: list[Params] = [{"margin": m, "extra_h": e, "around": 3, "shrink": 3, "context": context,
                               "context_shrink": k}
                              for m in (1.0, 1.25, 1.5) for e in (1.0, 1.5) for k in (3, 10)]
        leave_one_home_out(context, rooms + lead, homes, data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", action="store_true", help="also the leads tried and not built")
    parser.add_argument("--context-leads", action="store_true",
                        help="the third round: the room floor conditioned on context features")
    args = parser.parse_args(argv)
    leads = args.leads
    if args.context_leads:
        context_leads()
        return
    homes = rh.read_homes()
    data = rh.build_streams(homes)
    base: list[Params] = [{"margin": m, "extra_h": e, "around": a}
                          for m in (1.0, 1.25, 1.5) for e in (0.5, 1.0, 1.5) for a in (2, 3)]
    if not leads:
        leave_one_home_out("hour only (the benchmark's GRID)", base, homes, data)
    rooms: list[Params] = [{"margin": m, "extra_h": e, "around": 3, "shrink": k}
                           for m in (1.0, 1.25, 1.5) for e in (0.5, 1.0, 1.5) for k in (None, 1, 3, 10)]
    leave_one_home_out("hour and room of the last event", rooms, homes, data)
    if not leads:
        return
    rooms = [p for p in rooms if p["shrink"] != 1]
    morning: list[Params] = [ROOM_DEFAULTS | {"evening": ev, "wake_margin_h": m, "wake_q": q}
                             for ev in (18, 20, 22) for m in (0.5, 1.0, 2.0) for q in (1.0, 0.9, 2)]
    leave_one_home_out("a) morning check", rooms + morning, homes, data)
    tail: list[Params] = [{"around": 3, "shrink": 3, "extra_h": e, "tail_alpha": a, "tail_floor": f,
                           "tail_u": u}
                          for a in (0.05, 0.01, 0.005) for f in (0.0, 1.0) for e in (1.0, 1.5)
                          for u in (1.0, 2.0)]
    leave_one_home_out("b) survival floor (exponential tail)", rooms + tail, homes, data)
    narrow: list[Params] = [{"margin": 1.25, "extra_h": e, "around": 3, "shrink": k, "room_around": ra}
                            for e in (1.0, 1.5) for k in (3, 10) for ra in (1, 2)]
    leave_one_home_out("c) the room's floor over fewer hours around", rooms + narrow, homes, data)
    discounted: list[Params] = [{"margin": m, "extra_h": e, "around": 3, "shrink": 3, "discount_earlier": b,
                                 "discount_later": g}
                                for m in (1.25, 1.5) for e in (1.0, 1.5) for b in (0.0, 0.5, 1.0)
                                for g in (0.0, 0.5, 1.0) if b or g]
    leave_one_home_out("c) hours around discounted by distance", rooms + discounted, homes, data)
    print("online, no margin (a warning as soon as a silence outlasts the longest so far in its context):")
    online_no_margin(homes, data)
    print("in-sample bound (the whole recording's longest, no margin; no false alarm by construction):")
    in_sample_bound(homes, data)


if __name__ == "__main__":
    main()
