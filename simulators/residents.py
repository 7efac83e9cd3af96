"""The resident day model: where each resident is, minute by minute, and whether the wristband is on.

A day is painted onto a per-minute array of `Place`s in layers: sleep, morning bathroom, meals, a nap,
bathroom visits, spells sitting still (television, reading, dozing in a chair), outings, a wakeful spell
some nights, night-time bathroom trips; then whatever the scenario's incidents impose (an outing at a
pinned time, staying home for a fall or an SOS press, a collapse). Each resident gets a
`ResidentProfile` of habits (when they wake, how often they go out, whether they forget the wristband),
so neighbours' days differ, and weekends differ from weekdays.

Real lives are irregular, and an inactivity detector tuned on regular ones raises false alarms on them
(tests/benchmarks/realism.py measures how far the two differ). So no two days of a resident are alike:
wake and bed times wander, some days are spent at home and some mostly out, a day is livelier or
quieter as a whole, evenings in front of the television leave a motion sensor nothing to see for hours,
and some nights bring bathroom trips or a sleepless spell while others pass without a sound. Now and
then a resident spends a night away (at a child's, in hospital) and comes home the next afternoon.

The household turns these arrays into device events (doors, peephole, motion sensors); the wristband
reads them through the `Wearer` protocol when it reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal, Protocol

import numpy as np

from simulators.calendar import LocalDay
from simulators.message import DAY_MS, MINUTE_MS

Room = Literal["living", "bedroom", "bathroom"]
ROOMS: tuple[Room, ...] = ("living", "bedroom", "bathroom")  # the order motion sensors are fitted in


class Place(IntEnum):
    ASLEEP = 0
    BEDROOM = 1
    BATHROOM = 2
    KITCHEN = 3
    LIVING = 4
    OUT = 5
    IMMOBILE = 6  # on the floor after a fall or a collapse: at home, not moving
    SEATED = 7    # awake in the living room but sitting still (television, reading): a PIR sees nothing


AWAKE_AT_HOME = frozenset({Place.BEDROOM, Place.BATHROOM, Place.KITCHEN, Place.LIVING, Place.SEATED})

# Which motion sensor sees a place: an open-plan kitchen is in the living room's field of view.
ROOM_OF: Mapping[Place, Room] = {
    Place.ASLEEP: "bedroom", Place.BEDROOM: "bedroom", Place.BATHROOM: "bathroom",
    Place.KITCHEN: "living", Place.LIVING: "living", Place.SEATED: "living",
}

# Mean steps per minute in each place (outdoors comes from the profile).
_STEPS_PER_MINUTE = {
    Place.ASLEEP: 0.0, Place.BEDROOM: 2.0, Place.BATHROOM: 6.0, Place.KITCHEN: 8.0, Place.LIVING: 5.0,
    Place.IMMOBILE: 0.0, Place.SEATED: 0.3,
}
ILL_ACTIVITY = 0.35  # how much an ill resident still moves, relative to a healthy day
# Nights away, per resident-day on average (each resident's own chance is drawn between 0 and twice
# this). Of the four real homes (77 resident-days), house B's resident was away overnight twice in 27 days
# (out 33 h from 05:45, and 19 h from 19:20, back in the afternoon); the others never: 2 / 77 = 2.6 %.
NIGHT_AWAY_CHANCE = 0.025


@dataclass(frozen=True, slots=True)
class ResidentProfile:
    """One resident's habits; minutes are minutes after local midnight."""

    wake_minute: float
    weekend_lie_in: float
    bed_minute: float
    market_chance: float     # morning trip to the wet market
    walk_chance: float       # afternoon walk
    evening_chance: float    # square dancing / evening stroll
    visit_chance: float      # a weekend day out with family
    liveliness: float        # scales how much they move about indoors
    steps_per_minute_out: float
    forgets_band_chance: float
    band_at_night: bool
    night_bathroom_trips: float
    resting_heart_rate: int
    routine_spread: float    # day-to-day standard deviation of wake and bed times, minutes
    home_day_chance: float   # a day spent indoors
    away_day_chance: float   # a day mostly out: family, the senior centre, a hospital visit, a trip
    television_chance: float  # an evening sitting in front of the television
    sitting_spells: float    # spells sitting still in the daytime, per day
    sleepless_chance: float  # a night with a spell up and about
    turns_per_hour: float    # turning over in bed: some sleep still, some restlessly
    night_away_chance: float  # leaving on a day for a night away, back the next afternoon


def draw_profile(rng: np.random.Generator) -> ResidentProfile:
    return ResidentProfile(
        wake_minute=float(np.clip(rng.normal(6.5 * 60, 35), 4.5 * 60, 9 * 60)),
        weekend_lie_in=float(rng.uniform(0, 50)),
        bed_minute=float(np.clip(rng.normal(21.5 * 60, 40), 19.5 * 60, 23.5 * 60)),
        market_chance=float(rng.uniform(0.3, 0.9)),
        walk_chance=float(rng.uniform(0.2, 0.7)),
        evening_chance=float(rng.uniform(0.0, 0.4)),
        visit_chance=float(rng.uniform(0.0, 0.5)),
        liveliness=float(rng.uniform(0.6, 1.4)),
        steps_per_minute_out=float(rng.uniform(45, 90)),
        forgets_band_chance=float(rng.uniform(0.02, 0.2)),
        band_at_night=bool(rng.random() < 0.7),
        night_bathroom_trips=float(rng.uniform(0.3, 1.5)),
        resting_heart_rate=int(rng.integers(60, 80)),
        routine_spread=float(rng.uniform(20, 60)),
        home_day_chance=float(rng.uniform(0.1, 0.35)),
        away_day_chance=float(rng.uniform(0.2, 0.55)),
        television_chance=float(rng.uniform(0.5, 0.9)),
        sitting_spells=float(rng.uniform(1.0, 3.0)),
        sleepless_chance=float(rng.uniform(0.0, 0.15)),
        turns_per_hour=float(rng.uniform(0.1, 1.5)),
        night_away_chance=float(rng.uniform(0.0, 2 * NIGHT_AWAY_CHANCE)),
    )


@dataclass(frozen=True, slots=True)
class Outing:
    """An outing at times the scenario fixes (a night exit, the return that leaves the door open)."""

    leave_ms: int
    return_ms: int
    last_of_day: bool = False  # no other outing after it that day


@dataclass(frozen=True)
class ResidentConditions:
    """What the scenario's incidents impose on one resident (epoch ms)."""

    collapse_ms: int | None = None
    ill_from_ms: int | None = None
    outings: tuple[Outing, ...] = ()
    at_home_awake: tuple[int, ...] = ()   # moments they must be at home, awake, wearing the band
    falls: tuple[int, ...] = ()
    door_closes: Mapping[int, int] = field(default_factory=dict)  # return ms → when the door gets shut
    band_off_days: tuple[int, ...] = ()  # local midnights of days they leave the band off all day

    def ill_on(self, day: LocalDay) -> bool:
        """Illness starts at a local midnight and lasts for the rest of the scenario."""
        return self.ill_from_ms is not None and self.ill_from_ms <= day.start_ms

    def moments(self) -> list[int]:
        """When each thing the scenario imposes begins: a collapse, illness, a pinned outing, a moment at
        home, a fall. A night away or a blind sensor must keep clear of them, so that the incidents'
        ground truth holds as planned."""
        return [*(m for m in (self.collapse_ms, self.ill_from_ms) if m is not None),
                *(o.leave_ms for o in self.outings), *self.at_home_awake, *self.falls]

    def eventful_before(self, end_ms: int) -> bool:
        return any(moment < end_ms for moment in self.moments())


@dataclass(frozen=True)
class ResidentDay:
    """One resident's day, per minute. `pinned_ms` gives the exact time of a transition the scenario
    fixes (minute index → epoch ms); other transitions happen at a random second of their minute."""

    day: LocalDay
    places: np.ndarray           # Place per minute (uint8)
    worn: np.ndarray             # wristband on, per minute (bool)
    cumulative_steps: np.ndarray  # steps counted by the band before each minute; one longer than places
    pinned_ms: Mapping[int, int]
    liveliness: float = 1.0      # how much they move about indoors today, relative to their habit

    def minute_of(self, sim_ms: int) -> int:
        return min((sim_ms - self.day.start_ms) // MINUTE_MS, len(self.places) - 1)


def plan_day(profile: ResidentProfile, conditions: ResidentConditions, day: LocalDay,
             rng: np.random.Generator, *, away_overnight: bool = False) -> ResidentDay:
    """`away_overnight`: the resident spent the night away (the previous day ended out of the home) and
    comes back in the course of this one."""
    n = day.minutes
    ill = conditions.ill_on(day)
    places = np.full(n, Place.LIVING, dtype=np.uint8)

    def paint(start: float, minutes: float, place: Place) -> None:
        first = int(np.clip(start, 0, n))
        places[first:int(np.clip(start + minutes, first, n))] = place

    spread = profile.routine_spread
    wake = profile.wake_minute + (profile.weekend_lie_in if day.is_weekend else 0) + rng.normal(0, spread)
    bed = profile.bed_minute + rng.normal(0, spread)
    if rng.random() < 0.1:  # a late night: a programme, a long call with family
        bed += rng.uniform(60, 150)
    if ill:
        wake, bed = wake + rng.normal(80, 20), bed - 30
    wake, bed = float(np.clip(wake, 4 * 60, 11 * 60)), float(np.clip(bed, 19 * 60, 23.9 * 60))
    paint(0, wake, Place.ASLEEP)
    paint(bed, n, Place.ASLEEP)
    paint(wake, rng.uniform(5, 15), Place.BATHROOM)
    paint(wake + rng.uniform(15, 40), rng.uniform(15, 30), Place.KITCHEN)       # breakfast
    lunch = rng.normal(11.75 * 60, 30)
    paint(lunch, rng.uniform(25, 45), Place.KITCHEN)
    if rng.random() < (0.9 if ill else 0.6):                                    # after-lunch nap
        # In bed, or dozing in the armchair, where a motion sensor sees no more than of a sleeper.
        place = Place.ASLEEP if ill or rng.random() < 0.5 else Place.SEATED
        paint(lunch + rng.uniform(40, 90), rng.uniform(90, 180) if ill else rng.uniform(30, 150), place)
    dinner = rng.normal(17.75 * 60, 30)
    dinner_minutes = rng.uniform(30, 50)
    paint(dinner, dinner_minutes, Place.KITCHEN)
    # Some days are livelier than others as a whole (a mean of one over days): with the outings and the
    # days at home, this is what makes one day's count of sensor events unlike the next one's. A quiet
    # day has fewer trips to the bathroom and more time sitting still.
    liveliness = 1.0 if ill else float(rng.lognormal(-1.0**2 / 2, 1.0))
    minute = wake + rng.uniform(60, 150)
    while minute < bed - 30:                                                    # bathroom during the day
        paint(minute, rng.uniform(3, 10), Place.BATHROOM)
        minute += rng.gamma(2.0, (120 if ill else 150 / min(2.0, liveliness) ** 0.5) / 2)
    # Sitting still for hours: after dinner in front of the television, and now and then in the day
    # (reading, a phone call, dozing). Painted over the bathroom visits: a viewer gets up less often.
    if rng.random() < profile.television_chance:
        start = dinner + dinner_minutes + rng.uniform(0, 40)
        paint(start, min(rng.uniform(120, 270), bed - start - rng.uniform(0, 20)), Place.SEATED)
    for _ in range(rng.poisson(min(5.0, profile.sitting_spells / liveliness))):
        # Ill, they spend these hours lying down instead.
        paint(rng.uniform(wake + 60, max(wake + 61, bed - 90)), rng.uniform(60, 210),
              Place.ASLEEP if ill else Place.SEATED)
    if ill:  # back to bed for hours, morning and afternoon: an ill day is quieter than any healthy one
        paint(wake + rng.uniform(90, 150), rng.uniform(90, 150), Place.ASLEEP)
        paint(rng.uniform(15 * 60, 16 * 60), rng.uniform(90, 150), Place.ASLEEP)
    else:
        _paint_outings(profile, day, wake=wake, bed=bed, rng=rng, paint=paint)
        # Off for a night away (to a child's, a hospital stay, a trip), leaving in the evening, as house
        # B's resident did; never on a day before anything the scenario has planned for the next two days.
        if (not away_overnight and rng.random() < profile.night_away_chance
                and not conditions.eventful_before(day.end_ms + 2 * DAY_MS)):
            leaves = rng.uniform(18.5 * 60, 21 * 60)
            paint(leaves - rng.uniform(30, 90), n, Place.LIVING)  # home first, to pack a bag
            paint(leaves, n, Place.OUT)
    if rng.random() < profile.sleepless_chance * (2 if ill else 1):
        # Up in the small hours: a cup of tea, the radio, pacing; then back to bed.
        paint(rng.uniform(60, max(61, wake - 60)), rng.uniform(20, 90), Place.LIVING)
    asleep = np.flatnonzero(places == Place.ASLEEP)
    trips = rng.poisson(profile.night_bathroom_trips * (1.5 if ill else 1.0))
    if asleep.size:
        for trip in rng.choice(asleep, size=trips):
            paint(trip, rng.uniform(3, 8), Place.BATHROOM)
    if away_overnight:  # back home from the night away, late in the morning or in the afternoon
        back = rng.uniform(9 * 60, 17 * 60)
        paint(0, back, Place.OUT)
        paint(back, rng.uniform(5, 15), Place.LIVING)
    pinned: dict[int, int] = {}
    for outing in conditions.outings:
        _paint_pinned_outing(outing, day, places, pinned)
    forced_worn: list[tuple[int, int]] = []
    for moment in (*conditions.at_home_awake, *conditions.falls):
        if day.start_ms <= moment < day.end_ms:
            m = (moment - day.start_ms) // MINUTE_MS
            window = places[max(0, m - 30):m + 30]
            window[(window == Place.OUT) | (window == Place.ASLEEP)] = Place.LIVING
            forced_worn.append((max(0, m - 30), m + 30))
            if moment in conditions.falls:
                paint(m, rng.uniform(5, 20), Place.IMMOBILE)  # on the floor until they manage to get up

    worn = np.ones(n, dtype=bool)
    if not profile.band_at_night:
        worn[:int(wake)] = False
        worn[int(bed):] = False
    if rng.random() < profile.forgets_band_chance:
        # Put on late (or not at all that day): no steps and no heart rate until then.
        remembered = n if rng.random() < 0.2 else int(wake + rng.uniform(60, 600))
        worn[int(wake):remembered] = False
    for first, last in forced_worn:
        worn[first:last] = True
    if day.start_ms in conditions.band_off_days:
        worn[:] = False

    collapse = conditions.collapse_ms
    if collapse is not None and collapse < day.end_ms:
        m = max(0, (collapse - day.start_ms) // MINUTE_MS)
        places[m:] = Place.IMMOBILE
        # Whoever collapses in the daytime is almost always wearing the band: it keeps reporting a
        # pulse and no steps, which is exactly the pattern the hub has to notice.
        worn[m:] = True

    rates = np.array([_STEPS_PER_MINUTE.get(place, profile.steps_per_minute_out) for place in Place])
    steps = rng.poisson(rates[places] * (ILL_ACTIVITY if ill else 1.0)) * worn
    cumulative = np.concatenate(([0], np.cumsum(steps)))
    return ResidentDay(day, places, worn, cumulative, pinned, liveliness)


def _paint_outings(profile: ResidentProfile, day: LocalDay, *, wake: float, bed: float,
                   rng: np.random.Generator, paint: _Painter) -> None:
    earliest, latest = wake + 15, bed - 15

    def outing(chance: float, start: float, minutes: float) -> None:
        if rng.random() < chance:
            start = max(start, earliest)
            minutes = min(minutes, latest - start)
            paint(start, minutes, Place.OUT)
            # Home again: coat off, the shopping put away, a glass of water, before sitting down.
            paint(start + minutes, rng.uniform(3, 10), Place.LIVING)

    kind_of_day = rng.random()
    if kind_of_day < profile.home_day_chance:      # a day indoors: at most a short trip downstairs
        outing(0.3, rng.uniform(9 * 60, 17 * 60), rng.uniform(10, 40))
        return
    if kind_of_day < profile.home_day_chance + profile.away_day_chance:
        # Most of the day out (family, the senior centre, a clinic, a trip), leaving at any hour.
        # Up to 12 h: of the 71 labelled outings of real houses B and C, 14 lasted 9-16 h.
        outing(1.0, rng.uniform(wake + 30, 13 * 60), rng.uniform(270, 720))
    outing(profile.market_chance, wake + rng.uniform(45, 150), rng.uniform(40, 150))
    outing(profile.walk_chance, rng.uniform(14 * 60, 17 * 60), rng.uniform(30, 120))
    outing(profile.evening_chance, rng.normal(19 * 60, 20), rng.uniform(50, 120))
    if day.is_weekend:
        outing(profile.visit_chance, rng.uniform(9.5 * 60, 11 * 60), rng.uniform(240, 420))


class _Painter(Protocol):
    def __call__(self, start: float, minutes: float, place: Place) -> None: ...


def _paint_pinned_outing(outing: Outing, day: LocalDay, places: np.ndarray, pinned: dict[int, int]) -> None:
    if outing.return_ms <= day.start_ms or outing.leave_ms >= day.end_ms:
        return
    leave = (outing.leave_ms - day.start_ms) // MINUTE_MS
    back = (outing.return_ms - day.start_ms) // MINUTE_MS
    # Up and about for a few minutes either side: through the living room to the door and back.
    places[max(0, leave - 3):leave] = Place.LIVING
    places[back:back + 5] = Place.LIVING
    if outing.last_of_day:
        later = places[back:]
        later[later == Place.OUT] = Place.LIVING
    places[max(0, leave):back] = Place.OUT
    pinned[leave] = outing.leave_ms
    pinned[back] = outing.return_ms


class Wearer(Protocol):
    """What a wristband can tell about the person wearing it."""

    @property
    def resting_heart_rate(self) -> int: ...

    def place_at(self, sim_ms: int) -> Place: ...

    def worn_at(self, sim_ms: int) -> bool: ...

    def steps_between(self, from_ms: int, to_ms: int) -> int: ...


class ResidentTimeline:
    """A resident's recent days, as the `Wearer` their wristband reads.

    Only the last few days are kept: a band reports every few minutes, so it never asks further back.
    """

    _KEEP_DAYS = 3

    def __init__(self, profile: ResidentProfile) -> None:
        self.profile = profile
        self._days: list[ResidentDay] = []
        self._steps_before: list[int] = []  # steps counted before each kept day began

    @property
    def resting_heart_rate(self) -> int:
        return self.profile.resting_heart_rate

    @property
    def last_place(self) -> Place | None:
        return Place(self._days[-1].places[-1]) if self._days else None

    def add(self, day: ResidentDay) -> None:
        before = self._steps_before[-1] + int(self._days[-1].cumulative_steps[-1]) if self._days else 0
        self._days.append(day)
        self._steps_before.append(before)
        del self._days[:-self._KEEP_DAYS], self._steps_before[:-self._KEEP_DAYS]

    def place_at(self, sim_ms: int) -> Place:
        day = self._day_at(sim_ms)
        return Place.LIVING if day is None else Place(day.places[day.minute_of(sim_ms)])

    def worn_at(self, sim_ms: int) -> bool:
        day = self._day_at(sim_ms)
        return day is not None and bool(day.worn[day.minute_of(sim_ms)])

    def steps_between(self, from_ms: int, to_ms: int) -> int:
        return max(0, self._steps_until(to_ms) - self._steps_until(from_ms))

    def _steps_until(self, sim_ms: int) -> int:
        for day, before in zip(reversed(self._days), reversed(self._steps_before), strict=True):
            if sim_ms >= day.day.start_ms:
                minute = min((sim_ms - day.day.start_ms) // MINUTE_MS, len(day.places))
                return before + int(day.cumulative_steps[minute])
        return self._steps_before[0] if self._steps_before else 0

    def _day_at(self, sim_ms: int) -> ResidentDay | None:
        for day in reversed(self._days):
            if sim_ms >= day.day.start_ms:
                return day
        return None
