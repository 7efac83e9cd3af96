"""The inactivity detector: each resident's activity as an inhomogeneous Poisson process.

Model. A resident's "active minutes" (minutes with at least one sign of life; counting minutes rather
than raw events keeps a chattering sensor from looking like a lively resident) arrive at a rate that
depends on the local hour of the week (24 hours × {weekday, weekend}, see `detectors.week`). Each bin's
rate has a Gamma prior from the population: `prior_events_per_hour` pseudo-events spread over
`prior_strength_days` days of pseudo-exposure, so a new resident is covered from the first day with a
conservative (low-rate, hence long) timeout, and their own rhythm takes over as days accumulate. The
posterior mean is `(prior_rate * S + counts) / (S + exposure)`.

Score. The surprise of the current silence is the expected number of active minutes since the last one,
the integral of the learned rate from then to now; the probability of that silence under habit is
`exp(-surprise)`. The same silence is a large surprise at 10:00 and a small one at 03:00.

Deciding is kept apart from scoring: `decide` maps surprises to severities (warning, critical). Because
the rate is clipped to `[warning / max_timeout, warning / min_timeout]`, a warning never comes sooner than
`min_timeout_s` nor later than `max_timeout_s` after the last activity, and the deadline at which the
surprise reaches each threshold is computed once, when activity arrives: a tick is a comparison.

Outings. A front-door event with nothing indoor after it for `away_after_door_s` means the resident went
out: inactivity is not raised while they are away; if they are still away at `not_back_by_local_hour`
(or `max_away_s` after leaving, whichever comes first) a gentler `not_back_home` signal is due.

Coverage. Silence from a home whose sensors are not reporting is no evidence about the resident:
`decide` drops those alarms and `coverage` raises them as a coverage problem instead.

Shape: scikit-learn / river style. The constructor stores parameters only; learned state lives in
trailing-underscore arrays with one row per resident; arrays in, arrays out; no I/O and no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from detectors import week
from detectors.evidence import Evidence

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Indices = npt.NDArray[np.intp]

NEVER = np.iinfo(np.int64).max
"""A deadline that is not pending."""
NO_TIME = np.iinfo(np.int64).min
"""No event of that sort seen yet."""


class Severity(IntEnum):
    NONE = 0
    WARNING = 1
    CRITICAL = 2


_STATE_DTYPES: dict[str, type[np.generic]] = {
    "utc_offset_s_": np.int32,
    "counts_": np.float32,
    "first_ms_": np.int64,
    "last_activity_ms_": np.int64,
    "last_indoor_ms_": np.int64,
    "last_door_ms_": np.int64,
    "out_": np.bool_,
    "cum_": np.float32,
    "deadline_ms_": np.int64,
    "critical_ms_": np.int64,
    "not_back_ms_": np.int64,
}


class InactivityDetector:
    """Per-resident inactivity scores and deadlines, vectorized over residents.

    Parameters (rates are active minutes per hour, times are seconds):
        prior_events_per_hour: the population prior rate, a scalar or 48 values (24 weekday hours then
            24 weekend hours); low on purpose, so a new resident gets a long, conservative timeout.
        prior_strength_days: how many days of the resident's own history weigh as much as the prior.
        warning_surprise, critical_surprise: expected active minutes missed before each severity.
        min_timeout_s, max_timeout_s: the earliest and latest warning after the last activity.
        away_after_door_s: silence after a front-door event that means the resident went out.
        not_back_by_local_hour: local hour by which someone who went out is expected back.
        max_away_s: longest outing before `not_back_home`, whatever the hour.

    Learned state (set by `init`/`set_state`, one row per resident; times are epoch ms):
    """

    utc_offset_s_: I32       # local time = UTC + offset, so rate bins are local hours
    counts_: F32             # (n, 48) active minutes seen per rate bin
    first_ms_: I64           # first activity: learning exposure runs from here
    last_activity_ms_: I64
    last_indoor_ms_: I64
    last_door_ms_: I64
    cum_: F32                # (n, 169) cumulative clipped rate over the local week, as of the last activity
    deadline_ms_: I64        # when the surprise reaches `warning_surprise` (NEVER while away)
    out_: npt.NDArray[np.bool_]  # on the far side of the front door (an odd number of passages)
    critical_ms_: I64        # when it reaches `critical_surprise`
    not_back_ms_: I64        # when an outing becomes `not_back_home` (NEVER unless away)

    def __init__(self, *, prior_events_per_hour: float | Sequence[float] = 0.8,
                 prior_strength_days: float = 3.0, warning_surprise: float = 10.0,
                 critical_surprise: float = 18.0, min_timeout_s: float = 1800.0,
                 max_timeout_s: float = 16 * 3600.0, away_after_door_s: float = 900.0,
                 not_back_by_local_hour: float = 23.0, max_away_s: float = 16 * 3600.0,
                 door_passage_s: float = 180.0) -> None:
        self.prior_events_per_hour = prior_events_per_hour
        self.prior_strength_days = prior_strength_days
        self.warning_surprise = warning_surprise
        self.critical_surprise = critical_surprise
        self.min_timeout_s = min_timeout_s
        self.max_timeout_s = max_timeout_s
        self.away_after_door_s = away_after_door_s
        self.not_back_by_local_hour = not_back_by_local_hour
        self.max_away_s = max_away_s
        self.door_passage_s = door_passage_s

    # --- setup and checkpoints ---------------------------------------------------------------

    def init(self, n_residents: int, utc_offset_s: npt.ArrayLike = 0) -> InactivityDetector:
        """Allocate state for `n_residents`, none of them seen yet. Returns self."""
        self._check_params()
        return self.set_state(self._blank_state(n_residents, utc_offset_s))

    def add_residents(self, utc_offset_s: npt.ArrayLike) -> Indices:
        """Append residents (one per offset) and return their indices."""
        offsets = np.atleast_1d(np.asarray(utc_offset_s, dtype=np.int32))
        fresh = self._blank_state(len(offsets), offsets)
        first = self.n_residents
        self.set_state({name: np.concatenate([getattr(self, name), fresh[name]]) for name in fresh})
        return np.arange(first, first + len(offsets))

    def _blank_state(self, n: int, utc_offset_s: npt.ArrayLike) -> dict[str, np.ndarray]:
        def filled(value: int) -> I64:
            return np.full(n, value, dtype=np.int64)

        return {
            "utc_offset_s_": np.broadcast_to(np.asarray(utc_offset_s, dtype=np.int32), (n,)).copy(),
            "counts_": np.zeros((n, week.N_BINS), dtype=np.float32),
            "first_ms_": filled(NEVER),  # NEVER rather than NO_TIME so that np.minimum.at sets it
            "last_activity_ms_": filled(NO_TIME),
            "last_indoor_ms_": filled(NO_TIME),
            "last_door_ms_": filled(NO_TIME),
            "out_": np.zeros(n, dtype=np.bool_),
            "cum_": week.cumulative(np.broadcast_to(self._prior_rates(), (n, week.N_BINS))),
            "deadline_ms_": filled(NEVER),
            "critical_ms_": filled(NEVER),
            "not_back_ms_": filled(NEVER),
        }

    @property
    def n_residents(self) -> int:
        return len(self.utc_offset_s_)

    def get_params(self) -> dict[str, float | Sequence[float]]:
        return {name: getattr(self, name) for name in (
            "prior_events_per_hour", "prior_strength_days", "warning_surprise", "critical_surprise",
            "min_timeout_s", "max_timeout_s", "away_after_door_s", "not_back_by_local_hour", "max_away_s",
            "door_passage_s")}

    def get_state(self) -> dict[str, np.ndarray]:
        """Every learned array by name (npz-friendly); with the parameters it restores the detector."""
        return {name: getattr(self, name).copy() for name in _STATE_DTYPES}

    def set_state(self, state: dict[str, np.ndarray]) -> InactivityDetector:
        self._check_params()
        missing = set(_STATE_DTYPES) - set(state)
        if missing:
            raise ValueError(f"detector state lacks {sorted(missing)}")
        n = len(state["utc_offset_s_"])
        for name, dtype in _STATE_DTYPES.items():
            value = np.asarray(state[name], dtype=dtype)
            if len(value) != n:
                raise ValueError(f"detector state {name} has {len(value)} rows, expected {n}")
            setattr(self, name, value.copy())
        return self

    # --- learning ----------------------------------------------------------------------------

    def partial_fit(self, resident_idx: npt.ArrayLike, t_ms: npt.ArrayLike,
                    evidence: npt.ArrayLike) -> InactivityDetector:
        """Learn from a batch of activity (any order) and move the deadlines of the residents it concerns.

        Events older than a resident's last activity still count toward their rhythm but cannot move
        their silence backwards.
        """
        idx = np.asarray(resident_idx, dtype=np.intp)
        t = np.asarray(t_ms, dtype=np.int64)
        code = np.asarray(evidence, dtype=np.int8)
        alive = code != Evidence.CORRIDOR
        idx, t, code = idx[alive], t[alive], code[alive]
        if idx.size == 0:
            return self
        # Active minutes: one count per (resident, minute), and none for the minute already counted.
        minute = t // week.MINUTE_MS
        previous_minute = np.where(self.last_activity_ms_[idx] == NO_TIME, NO_TIME,
                                   self.last_activity_ms_[idx] // week.MINUTE_MS)
        keys = np.unique(np.stack([idx, minute], axis=1)[minute != previous_minute], axis=0)
        rows, minutes = keys[:, 0], keys[:, 1]
        bins = week.bin_of(week.week_hours(minutes * week.MINUTE_MS, self.utc_offset_s_[rows]))
        np.add.at(self.counts_, (rows, bins), 1.0)

        np.minimum.at(self.first_ms_, idx, t)
        np.maximum.at(self.last_activity_ms_, idx, t)
        door = code == Evidence.DOOR
        self._pass_doors(idx, t, code)
        np.maximum.at(self.last_door_ms_, idx[door], t[door])
        np.maximum.at(self.last_indoor_ms_, idx[~door], t[~door])
        self._refresh(np.unique(idx))
        return self

    def _pass_doors(self, idx: Indices, t: I64, code: npt.NDArray[np.int8]) -> None:
        """Which side of the front door each resident is on. Door events within `door_passage_s` of each
        other (open, close, the peephole's word) are one passage; each passage flips the side, and
        movement indoors puts the resident back inside. So a resident who comes home and collapses right
        behind the door is inside (an inactivity alarm), not out (a gentle not-back-home hours later).
        Only residents with a door event in the batch are walked through, in time order: doors are rare."""
        concerned = np.isin(idx, np.unique(idx[code == Evidence.DOOR]))
        self.out_[idx[~concerned & (code == Evidence.INDOOR)]] = False
        if not concerned.any():
            return
        order = np.lexsort((t[concerned], idx[concerned]))
        gap_ms = int(self.door_passage_s * 1000)
        last_door = self.last_door_ms_  # read before partial_fit moves it
        seen_door: dict[int, int] = {}
        for i, when, what in zip(idx[concerned][order].tolist(), t[concerned][order].tolist(),
                                 code[concerned][order].tolist(), strict=True):
            if what == Evidence.DOOR:
                previous = seen_door.get(i, int(last_door[i]))
                if previous == NO_TIME or when - previous > gap_ms:
                    self.out_[i] = not self.out_[i]
                seen_door[i] = when
            elif what == Evidence.INDOOR:
                self.out_[i] = False

    def _prior_rates(self) -> F64:
        return np.broadcast_to(np.asarray(self.prior_events_per_hour, dtype=np.float64), (week.N_BINS,))

    def _refresh(self, who: Indices) -> None:
        """Recompute the rate table and deadlines of residents `who` as of their last activity."""
        offsets = self.utc_offset_s_[who]
        last = self.last_activity_ms_[who]
        x_last = week.week_hours(last, offsets)
        exposure = week.bin_hours_until(x_last) - week.bin_hours_until(
            week.week_hours(self.first_ms_[who], offsets))
        strength = self.prior_strength_days
        rates = (self._prior_rates() * strength + self.counts_[who]) / (strength + exposure)
        floor = self.warning_surprise * 3600.0 / self.max_timeout_s
        cap = self.warning_surprise * 3600.0 / self.min_timeout_s
        self.cum_[who] = week.cumulative(np.clip(rates, floor, cap))

        away = (self.last_door_ms_[who] > self.last_indoor_ms_[who]) & self.out_[who]
        # Aim a hair past each threshold so rounding never leaves the score just short at the deadline.
        nudge = 1 + 1e-6
        warn = week.to_epoch_ms(week.reach(self.cum_[who], x_last, self.warning_surprise * nudge), offsets)
        crit = week.to_epoch_ms(week.reach(self.cum_[who], x_last, self.critical_surprise * nudge), offsets)
        self.deadline_ms_[who] = np.where(away, NEVER, warn)
        self.critical_ms_[who] = np.where(away, NEVER, crit)
        self.not_back_ms_[who] = np.where(away, self._not_back_deadline(last, offsets), NEVER)

    def _not_back_deadline(self, door_ms: I64, offsets: I32) -> I64:
        """The first `not_back_by_local_hour` after the outing is established, capped by `max_away_s`."""
        gone_ms = door_ms + int(self.away_after_door_s * 1000)
        local = gone_ms + offsets.astype(np.int64) * 1000
        day_start = local - local % (24 * week.HOUR_MS)
        by = day_start + int(self.not_back_by_local_hour * week.HOUR_MS)
        by = np.where(by < local, by + 24 * week.HOUR_MS, by) - offsets.astype(np.int64) * 1000
        return np.asarray(np.minimum(by, door_ms + int(self.max_away_s * 1000)), dtype=np.int64)

    # --- scoring and deciding ----------------------------------------------------------------

    def score(self, now_ms: int | I64, resident_idx: npt.ArrayLike | None = None) -> F64:
        """Surprise of each resident's silence at `now_ms`: expected active minutes since the last one.
        Residents never seen score 0."""
        who = np.arange(self.n_residents) if resident_idx is None else np.asarray(resident_idx, np.intp)
        now = np.broadcast_to(np.asarray(now_ms, dtype=np.int64), who.shape)
        last = self.last_activity_ms_[who]
        seen = last != NO_TIME
        offsets = self.utc_offset_s_[who]
        start = week.week_hours(np.where(seen, last, now), offsets)
        end = week.week_hours(np.maximum(now, np.where(seen, last, now)), offsets)
        return week.integral(self.cum_[who], start, end)

    def away(self, resident_idx: npt.ArrayLike | None = None) -> Bools:
        """Last seen at the front door: out, or about to be judged out (inactivity is not theirs to raise:
        `min_timeout_s` is longer than `away_after_door_s`)."""
        who = slice(None) if resident_idx is None else np.asarray(resident_idx, np.intp)
        return np.asarray((self.last_door_ms_[who] > self.last_indoor_ms_[who]) & self.out_[who])

    def decide(self, scores: F64, coverage_ok: Bools | None = None,
               resident_idx: npt.ArrayLike | None = None) -> I8:
        """Inactivity severity per resident (`Severity` codes); none while away or while the home's
        sensors are not reporting (see `coverage`)."""
        severity = np.where(scores >= self.critical_surprise, Severity.CRITICAL,
                            np.where(scores >= self.warning_surprise, Severity.WARNING, Severity.NONE))
        quiet = self.away(resident_idx)
        if coverage_ok is not None:
            quiet = quiet | ~np.asarray(coverage_ok, dtype=bool)
        return np.where(quiet, Severity.NONE, severity).astype(np.int8)

    def coverage(self, scores: F64, coverage_ok: Bools, resident_idx: npt.ArrayLike | None = None) -> Bools:
        """Silences long enough to alarm in homes whose sensors are not reporting: a coverage problem."""
        return np.asarray((scores >= self.warning_surprise) & ~np.asarray(coverage_ok, dtype=bool)
                          & ~self.away(resident_idx))

    def not_back_home(self, now_ms: int, resident_idx: npt.ArrayLike | None = None) -> Bools:
        who = slice(None) if resident_idx is None else np.asarray(resident_idx, np.intp)
        return np.asarray(now_ms >= self.not_back_ms_[who])

    def due(self, now_ms: int) -> Bools:
        """The cheap tick: residents for whom a warning or not-back deadline has passed."""
        return np.asarray((now_ms >= self.deadline_ms_) | (now_ms >= self.not_back_ms_))

    def _check_params(self) -> None:
        if not 0 < self.warning_surprise < self.critical_surprise:
            raise ValueError("need 0 < warning_surprise < critical_surprise")
        if not 0 < self.min_timeout_s < self.max_timeout_s:
            raise ValueError("need 0 < min_timeout_s < max_timeout_s")
        if self.away_after_door_s >= self.min_timeout_s:
            raise ValueError("away_after_door_s must be shorter than min_timeout_s, or an outing would "
                             "raise inactivity before it is recognised")
        if np.any(self._prior_rates() <= 0) or self.prior_strength_days <= 0:
            raise ValueError("the prior rate and strength must be positive")
