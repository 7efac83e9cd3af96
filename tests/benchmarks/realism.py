"""How much simulated residents look like real people living alone, in the statistics an inactivity
detector lives by.

A detector tuned on a simulator learns that simulator's silences. If simulated days are more regular
than real ones (every night a bathroom trip, no evening on a couch without a sensor, no outing without
a door event), a detector tuned on them raises false alarms on real homes. This module measures, on any
activity log (event times on the local wall clock, per resident, with each event's location):

- silences of 30 min or more, per band of the hour they began in: how many per resident-day, and their
  median, 90th percentile and longest length;
- nights (00:00-05:00): the share with no event at all, and events per night;
- time out: the share of time between two front-door events with nothing between them (homes whose
  front door fires), and for every home the share of the daytime spent inside silences of 3 h or more
  (which is all an inactivity detector sees of an outing from a home without a door sensor);
- events and active minutes (minutes with at least one event) per day, and their coefficient of
  variation across days;
- how often two days differ: over pairs of consecutive days, the mean share of the 24 hours in which
  "any event in this hour" differs.

`python -m tests.benchmarks.realism` prints them for the four real homes (tests/benchmarks/realhomes)
beside a simulated community without incidents, sensor-only and with the wristband, with a tolerance per
statistic and whether the sensor-only simulation meets it.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from detectors.evidence import ENTRANCE, STILL_LOCATION
from simulators.community import CommunityParameters
from simulators.incidents import IncidentKind
from simulators.scenario import IncidentCounts, Scenario
from simulators.simulation import Simulation
from tests.benchmarks.detector_quality import Row, activity_rows
from tests.benchmarks.real_homes import Home, read_homes

F64 = npt.NDArray[np.float64]

MINUTE_S = 60
HOUR_S = 3600
DAY_S = 24 * HOUR_S
SILENCE_S = 30 * MINUTE_S          # shorter gaps are ordinary life between two sensors
LONG_SILENCE_S = 3 * HOUR_S        # a silence this long in the daytime is an outing or a sensorless spell
NIGHT_END_S = 5 * HOUR_S           # a night is 00:00-05:00
DAYTIME = (7 * HOUR_S, 22 * HOUR_S)
DOOR_OUTING_S = 10 * MINUTE_S      # two front-door events this far apart with nothing between: out
MIN_ENTRANCE_EVENTS = 10           # fewer front-door events than this: the home has no working door sensor
BANDS = ((0, 6), (6, 12), (12, 18), (18, 24))
NO_INCIDENTS = {kind.value: 0 for kind in IncidentKind}


@dataclass(frozen=True)
class ActivityLog:
    """One resident's activity: event times in seconds on the local wall clock (written as if UTC),
    sorted, with each event's location; observed over the whole local days [first_day, end_day)."""

    resident: str
    t: F64
    location: npt.NDArray[np.str_]
    first_day: int   # seconds, a local midnight
    end_day: int     # seconds, a local midnight after first_day

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day) // DAY_S


def activity_log(resident: str, times: Iterable[float], locations: Iterable[str], *,
                 span: tuple[float, float] | None = None) -> ActivityLog:
    """A log of events that are activity (a worn band's still reports are not). Without `span` it is
    observed over the whole days between its first and its last event (a recording starts and ends mid-
    day: those two part-days would look quiet)."""
    t = np.asarray(list(times), dtype=np.float64)
    where = np.asarray(list(locations), dtype=np.str_)
    keep = where != STILL_LOCATION
    t, where = t[keep], where[keep]
    order = np.argsort(t, kind="stable")
    t, where = t[order], where[order]
    if span is None:
        if t.size == 0:
            raise ValueError(f"{resident}: no events and no span")
        first, end = math.ceil(t[0] / DAY_S) * DAY_S, math.floor(t[-1] / DAY_S) * DAY_S
    else:
        first, end = math.floor(span[0] / DAY_S) * DAY_S, math.ceil(span[1] / DAY_S) * DAY_S
    if end <= first:
        raise ValueError(f"{resident}: observed for less than one whole day")
    inside = (t >= first) & (t < end)
    return ActivityLog(resident, t[inside], where[inside], int(first), int(end))


def logs_from_rows(rows: Iterable[Row], *, span: tuple[float, float] | None = None,
                   residents: Iterable[str] | None = None) -> dict[str, ActivityLog]:
    """Activity logs from backtest rows (`timestamp,resident,device,kind,location`, local time)."""
    wanted = None if residents is None else set(residents)
    times: dict[str, list[float]] = {}
    places: dict[str, list[str]] = {}
    for stamp, resident, _device, _kind, location in rows:
        if wanted is not None and resident not in wanted:
            continue
        times.setdefault(resident, []).append(
            datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp())
        places.setdefault(resident, []).append(location)
    return {r: activity_log(r, times[r], places[r], span=span) for r in sorted(times)}


def log_of_home(home: Home) -> ActivityLog:
    return activity_log(home.name, home.t.astype(np.float64), (f[2] for f in home.fields))


# ----------------------------------------------------------------------------------------------------------
# The statistics. Each returns per-resident parts that pool by summing (counts, lengths) or averaging
# (per-day figures), so a table can show each home and all of them together.
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Silence:
    start: float
    seconds: float


def silences(log: ActivityLog, minimum_s: float = SILENCE_S) -> list[Silence]:
    """Gaps between consecutive events of at least `minimum_s`, including the stretch from the start
    of the observed days to the first event and from the last event to their end (a resident out all
    day or in bed all night is silent there too)."""
    edges = np.concatenate(([log.first_day], log.t, [log.end_day]))
    gaps = np.diff(edges)
    long = np.flatnonzero(gaps >= minimum_s)
    return [Silence(float(edges[i]), float(gaps[i])) for i in long]


def band_of(seconds: float) -> int:
    hour = (seconds % DAY_S) // HOUR_S
    return next(i for i, (lo, hi) in enumerate(BANDS) if lo <= hour < hi)


@dataclass(frozen=True)
class Realism:
    """The statistics of one resident, or of several pooled."""

    days: int
    silence_counts: tuple[int, ...]            # per band
    silence_minutes: tuple[F64, ...]           # per band: the lengths, minutes
    nights_without_event: int
    events_per_night: F64                      # per night
    night_hours_active: F64                    # per night: hours of the five with any event
    door_out_s: float | None                   # None: no working front-door sensor
    door_observed_s: float
    daytime_long_silence_s: float
    events_per_day: F64
    active_minutes_per_day: F64
    hour_changes: F64                          # per pair of consecutive days: share of hours differing
    cv_events: tuple[float, ...]               # per resident: CV of events per day
    cv_active: tuple[float, ...]

    # --- figures -------------------------------------------------------------------------------

    def silences_per_day(self, band: int) -> float:
        return self.silence_counts[band] / self.days

    def silence_percentile(self, band: int, q: float) -> float:
        lengths = self.silence_minutes[band]
        return float(np.percentile(lengths, q)) if lengths.size else math.nan

    def silence_longest(self, band: int) -> float:
        lengths = self.silence_minutes[band]
        return float(lengths.max()) if lengths.size else math.nan

    @property
    def quiet_night_share(self) -> float:
        return self.nights_without_event / self.days

    @property
    def median_events_per_night(self) -> float:
        return float(np.median(self.events_per_night))

    @property
    def mean_night_hours_active(self) -> float:
        return float(np.mean(self.night_hours_active))

    @property
    def door_out_share(self) -> float:
        return math.nan if self.door_out_s is None else self.door_out_s / self.door_observed_s

    @property
    def daytime_long_silence_share(self) -> float:
        return self.daytime_long_silence_s / (self.days * (DAYTIME[1] - DAYTIME[0]))

    @property
    def median_events_per_day(self) -> float:
        return float(np.median(self.events_per_day))

    @property
    def median_active_minutes_per_day(self) -> float:
        return float(np.median(self.active_minutes_per_day))

    @property
    def cv_events_per_day(self) -> float:
        return float(np.mean(self.cv_events))

    @property
    def cv_active_minutes(self) -> float:
        return float(np.mean(self.cv_active))

    @property
    def day_to_day_difference(self) -> float:
        return float(np.mean(self.hour_changes)) if self.hour_changes.size else math.nan


def realism(log: ActivityLog, *, min_entrance_events: int = MIN_ENTRANCE_EVENTS) -> Realism:
    days = log.days
    starts = log.first_day + DAY_S * np.arange(days)
    found = silences(log)
    counts = [0] * len(BANDS)
    lengths: list[list[float]] = [[] for _ in BANDS]
    for silence in found:
        band = band_of(silence.start)
        counts[band] += 1
        lengths[band].append(silence.seconds / MINUTE_S)

    night_events = (np.searchsorted(log.t, starts + NIGHT_END_S) - np.searchsorted(log.t, starts)).astype(
        np.float64)

    entrance = np.char.lower(log.location) == ENTRANCE
    door_out: float | None = None
    if int(entrance.sum()) >= min_entrance_events:
        gaps = np.diff(log.t)
        bounded = entrance[:-1] & entrance[1:] & (gaps >= DOOR_OUTING_S)
        door_out = float(gaps[bounded].sum())

    daytime_long = 0.0
    for silence in found:
        if silence.seconds < LONG_SILENCE_S:
            continue
        begin, end = silence.start, silence.start + silence.seconds
        for day in starts[(starts + DAY_S > begin) & (starts < end)]:
            lo, hi = max(begin, day + DAYTIME[0]), min(end, day + DAYTIME[1])
            daytime_long += max(0.0, hi - lo)

    day_of_event = ((log.t - log.first_day) // DAY_S).astype(np.int64)
    events = np.bincount(day_of_event, minlength=days).astype(np.float64)
    minute_of_event = np.unique(((log.t - log.first_day) // MINUTE_S).astype(np.int64))
    active = np.bincount(minute_of_event // (24 * 60), minlength=days).astype(np.float64)
    hour_of_event = np.unique(((log.t - log.first_day) // HOUR_S).astype(np.int64))
    any_event = np.zeros(days * 24, dtype=bool)
    any_event[hour_of_event] = True
    hours = any_event.reshape(days, 24)
    night_hours = hours[:, :NIGHT_END_S // HOUR_S].sum(axis=1).astype(np.float64)
    changes = (hours[1:] != hours[:-1]).mean(axis=1).astype(np.float64)

    return Realism(
        days=days, silence_counts=tuple(counts),
        silence_minutes=tuple(np.asarray(x, dtype=np.float64) for x in lengths),
        nights_without_event=int((night_events == 0).sum()), events_per_night=night_events,
        night_hours_active=night_hours,
        door_out_s=door_out, door_observed_s=float(days * DAY_S),
        daytime_long_silence_s=daytime_long, events_per_day=events, active_minutes_per_day=active,
        hour_changes=changes, cv_events=(_cv(events),), cv_active=(_cv(active),),
    )


def _cv(values: F64) -> float:
    mean = float(values.mean())
    return float(values.std()) / mean if mean > 0 else math.nan


def pooled(parts: Sequence[Realism]) -> Realism:
    """Several residents as one population: counts and lengths summed, per-day figures concatenated,
    coefficients of variation kept per resident (pooling days of different homes would measure how the
    homes differ, not how days do). Door time out only over residents whose front door fires."""
    with_door = [p for p in parts if p.door_out_s is not None]
    return Realism(
        days=sum(p.days for p in parts),
        silence_counts=tuple(sum(p.silence_counts[b] for p in parts) for b in range(len(BANDS))),
        silence_minutes=tuple(np.concatenate([p.silence_minutes[b] for p in parts])
                              for b in range(len(BANDS))),
        nights_without_event=sum(p.nights_without_event for p in parts),
        events_per_night=np.concatenate([p.events_per_night for p in parts]),
        night_hours_active=np.concatenate([p.night_hours_active for p in parts]),
        door_out_s=sum(p.door_out_s or 0.0 for p in with_door) if with_door else None,
        door_observed_s=sum(p.door_observed_s for p in with_door) if with_door else 0.0,
        daytime_long_silence_s=sum(p.daytime_long_silence_s for p in parts),
        events_per_day=np.concatenate([p.events_per_day for p in parts]),
        active_minutes_per_day=np.concatenate([p.active_minutes_per_day for p in parts]),
        hour_changes=np.concatenate([p.hour_changes for p in parts]),
        cv_events=tuple(c for p in parts for c in p.cv_events),
        cv_active=tuple(c for p in parts for c in p.cv_active),
    )


# ----------------------------------------------------------------------------------------------------------
# Tolerances: how close the simulation must come to the real homes
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tolerance:
    """`ratio`: within ×/÷ bound of the real homes pooled; `difference`: within ± bound of it; `range`:
    between the lowest real home ÷ bound and the highest × bound; `shown`: not a test."""

    rule: Literal["ratio", "difference", "range", "shown"]
    bound: float = 0.0

    def accepts(self, simulated: float, pooled_real: float, homes: Sequence[float]) -> bool:
        if math.isnan(simulated) or math.isnan(pooled_real):
            return False
        match self.rule:
            case "ratio":
                if pooled_real <= 0 or simulated <= 0:
                    return pooled_real == simulated
                return max(simulated / pooled_real, pooled_real / simulated) <= self.bound
            case "difference":
                return abs(simulated - pooled_real) <= self.bound
            case "range":
                known = [h for h in homes if not math.isnan(h)]
                return min(known) / self.bound <= simulated <= max(known) * self.bound
            case _:
                return True

    @property
    def text(self) -> str:
        return {"ratio": f"×/÷ {self.bound:g}", "difference": f"± {self.bound:g}",
                "range": f"homes ×/÷ {self.bound:g}", "shown": "(shown)"}[self.rule]


RATIO = Tolerance("ratio", 1.5)
SHARE = Tolerance("difference", 0.1)
EXTREME = Tolerance("range", 1.5)
SHOWN = Tolerance("shown")


@dataclass(frozen=True)
class Statistic:
    name: str
    value: Callable[[Realism], float]
    tolerance: Tolerance
    digits: int = 2


def _band_label(band: int) -> str:
    lo, hi = BANDS[band]
    return f"{lo:02d}-{hi:02d}"


def _silence_statistics() -> list[Statistic]:
    out: list[Statistic] = []
    for b in range(len(BANDS)):
        per_day: Callable[[Realism], float] = partial(Realism.silences_per_day, band=b)
        median: Callable[[Realism], float] = partial(Realism.silence_percentile, band=b, q=50)
        p90: Callable[[Realism], float] = partial(Realism.silence_percentile, band=b, q=90)
        longest: Callable[[Realism], float] = partial(Realism.silence_longest, band=b)
        out += [
            Statistic(f"silences ≥30 min begun {_band_label(b)}, per day", per_day, RATIO),
            Statistic("  their median, min", median, RATIO, 0),
            Statistic("  their 90th percentile, min", p90, RATIO, 0),
            Statistic("  the longest, min", longest, EXTREME, 0),
        ]
    return out


# Why these tolerances. The four real homes differ from each other by more than ×1.5 in most figures
# (other sensors, other people), so their pooled value is a population figure, and a simulated
# population matching it within ×/÷ 1.5 (shares: ± 0.1) is as close as four homes let us ask. The longest
# silence is one extreme per home (house B's is a 50-hour gap), so the simulated one need only lie within
# the real homes' range, widened ×/÷ 1.5. How many events a day or a night brings depends on the sensors
# (house C's bed mat fires a thousand times a night, house D has 75 switches, a simulated flat 1-3 motion
# sensors and a door) more than on the resident: shown, not tested; which hours of a night see an event
# is tested instead.
STATISTICS: list[Statistic] = [
    *_silence_statistics(),
    Statistic("nights 00-05 without any event, share", lambda r: r.quiet_night_share, SHARE),
    Statistic("hours of a night 00-05 with an event, mean", lambda r: r.mean_night_hours_active, RATIO),
    Statistic("events per night 00-05, median", lambda r: r.median_events_per_night, SHOWN, 1),
    Statistic("time out between front-door events, share", lambda r: r.door_out_share, SHARE),
    Statistic("daytime 07-22 in silences ≥3 h, share", lambda r: r.daytime_long_silence_share, SHARE),
    Statistic("events per day, median", lambda r: r.median_events_per_day, SHOWN, 0),
    Statistic("active minutes per day, median", lambda r: r.median_active_minutes_per_day, SHOWN, 0),
    Statistic("events per day, CV across days", lambda r: r.cv_events_per_day, RATIO),
    Statistic("active minutes per day, CV across days", lambda r: r.cv_active_minutes, RATIO),
    Statistic("hours with/without activity differing, day to day", lambda r: r.day_to_day_difference,
              RATIO),
]


@dataclass(frozen=True)
class Verdict:
    statistic: Statistic
    real: float
    homes: tuple[float, ...]
    simulated: float

    @property
    def tested(self) -> bool:
        return self.statistic.tolerance.rule != "shown"

    @property
    def passed(self) -> bool:
        return self.statistic.tolerance.accepts(self.simulated, self.real, self.homes)


def compare(homes: Sequence[Realism], simulated: Realism) -> list[Verdict]:
    """Each statistic of `simulated` against the real `homes` (pooled, and each for the range rule)."""
    real = pooled(homes)
    return [Verdict(s, s.value(real), tuple(s.value(h) for h in homes), s.value(simulated))
            for s in STATISTICS]


def table(columns: Mapping[str, Realism], homes: Sequence[Realism], simulated: Realism) -> str:
    """Each column's statistics, then the tolerance and whether `simulated` meets it."""
    header = ["statistic", *columns, "tolerance", "sim vs real"]
    rows = [header]
    for verdict in compare(homes, simulated):
        s = verdict.statistic
        outcome = ("PASS" if verdict.passed else "FAIL") if verdict.tested else ""
        rows.append([s.name, *(_number(s.value(c), s.digits) for c in columns.values()),
                     s.tolerance.text, outcome])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                       enumerate(zip(row, widths, strict=True))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _number(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------------------------------------
# The populations: the four real homes, and a simulated community
# ----------------------------------------------------------------------------------------------------------

def real_homes() -> dict[str, Realism]:
    return {name: realism(log_of_home(home)) for name, home in read_homes().items()}


# The real homes' kit: contacts and motion sensors. A simulated flat also has a smart peephole, whose plain
# motion is mostly neighbours in the corridor, not the resident: the comparison leaves it out, and shows
# the log the detector benchmark replays (every sensor but the wristband) beside it.
KIT_KINDS = frozenset({"door_sensor", "motion_sensor"})


@dataclass(frozen=True)
class SimulatedPopulation:
    kit: Realism          # door contact and motion sensors: what the real homes have
    sensor_only: Realism  # every household sensor, peephole included
    with_band: Realism    # and the wristband
    residents: int
    days: int


def simulated_population(households: int = 30, days: int = 21, seed: int = 11) -> SimulatedPopulation:
    """A community without incidents, its log built as `detector_quality` builds it; residents living
    alone only, like the real homes (a couple's household sensors see two people)."""
    start = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday
    scenario = Scenario(seed=seed, days=days, start=start,
                        community=CommunityParameters(households=households),
                        incidents=IncidentCounts(**NO_INCIDENTS))
    simulation = Simulation(scenario)
    alone = [r.id for r in simulation.registry.residents if r.lives_alone]
    rows = list(activity_rows(simulation))
    zone = ZoneInfo(scenario.community.timezone)
    span = (_local_seconds(simulation.start_ms, zone), _local_seconds(simulation.end_ms - 1, zone))

    def population(kept: Iterable[Row]) -> Realism:
        logs = logs_from_rows(kept, span=span, residents=alone)
        return pooled([realism(log) for log in logs.values()])

    return SimulatedPopulation(kit=population(r for r in rows if r[3] in KIT_KINDS),
                               sensor_only=population(r for r in rows if r[3] != "wristband"),
                               with_band=population(rows), residents=len(alone), days=days)


def _local_seconds(epoch_ms: int, zone: ZoneInfo) -> float:
    return datetime.fromtimestamp(epoch_ms / 1000, zone).replace(tzinfo=UTC).timestamp()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=30)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    homes = real_homes()
    real = pooled(list(homes.values()))
    began = time.perf_counter()
    simulated = simulated_population(args.households, args.days, args.seed)
    print(f"real: {len(homes)} homes, {real.days} whole days; simulated: {simulated.residents} residents "
          f"living alone × {simulated.days} days ({time.perf_counter() - began:.0f} s). Tested: the "
          "simulated door + motion sensors (the real homes' kit) against the real homes.")
    columns = {**homes, "real pooled": real, "sim door+PIR": simulated.kit,
               "sim sensor-only": simulated.sensor_only, "sim with band": simulated.with_band}
    print(table(columns, list(homes.values()), simulated.kit))
    verdicts = compare(list(homes.values()), simulated.kit)
    failed = [v for v in verdicts if v.tested and not v.passed]
    tested = sum(v.tested for v in verdicts)
    print(f"simulation within tolerance on {tested - len(failed)}/{tested} statistics"
          + ("; outside: " + "; ".join(_describe(v) for v in failed) if failed else ""))


def _describe(verdict: Verdict) -> str:
    index = STATISTICS.index(verdict.statistic)
    name = verdict.statistic.name
    if name.startswith("  "):  # a silence figure: name its band
        band = next(s.name for s in reversed(STATISTICS[:index]) if not s.name.startswith("  "))
        name = f"{band.split(',')[0]}: {name.strip()}"
    return name


if __name__ == "__main__":
    main()
