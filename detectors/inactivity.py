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

Learned silences. Real lives are far less regular than a rate profile admits: an evening on a couch with
no sensor, a nap, a morning out from a home with no front-door sensor, a night with nothing at all. A
Poisson rate learned from minutes of activity calls each of these an emergency (on recordings of real
people living alone it raised about three false alarms a day). So each resident also keeps the longest
silence at home that began in each local hour (`silence_longest_h_`), and no silence warns before it is
`silence_margin` times the longest one begun within `silence_hours_around` hours of the same time of
day, plus `silence_extra_s`: what this person has already done, at this time of day, without anything
being wrong, is not an emergency. A resident known for less than `silence_learning_days` waits
`silence_prior_s` (the population's answer: a night's sleep and more), and nothing waits past
`silence_max_s`, or `silence_door_only_max_s` for a resident of whom nothing but front-door passages
has ever been seen (no indoor sensor, no band): there a day at home without opening the door is a plain
life, not an emergency, so the longest wait is the whole day the door-only track promises. Silences
that begin at the front door are outings (below), learned apart in the same way; in a home without a
front-door sensor, outings are learned as what they look like, long daytime silences, which is how
such a home learns its resident goes out. The room a silence begins in says more: after the bedroom at
23:00 a long silence is sleep, after the kitchen at 21:00 it is not. So the longest silence is also
kept by room class of the reading that began it (`ROOMS`, `room_of`; 4 × 24 float16 and as many
counts) and the floor uses `w · longest after this room + (1 - w) · longest whatever the room`,
`w = n / (n + silence_room_shrink)`, n the silences begun after this room in those hours: a room seen
rarely borrows the hour's floor (None: the hour's alone; readings of no known room, such as a band's,
use the hour's). The score is held under the warning threshold until this floor passes (and
under critical until `critical_after_s` later), so score, deadline and decision agree; a worn band's
still run (below) is evidence of its own and may still warn sooner. Measured on real homes:
docs/detection-on-real-homes.md.

Outings. A front-door event with nothing indoor after it for `away_after_door_s` means the resident went
out: inactivity is not raised while they are away; if they are still away at `not_back_by_local_hour`
(or `max_away_s` after leaving, whichever comes first) a gentler `not_back_home` signal is due; once the
resident is known and has gone out around that hour before, it is due when the outing outlasts the
longest of those outings by the same margin as a silence at home.

Band stillness. A worn wristband reports every few minutes how many steps it counted. Its reports are a
second, faster channel: each report with no steps is `Evidence.STILL`, and the wearer's own history gives
the chance of a still report at that hour in each of three states: after a moving report (sitting or
lying down), early in a run of still reports (a rest that may end any minute) and in a long run (sleep).
The surprise of a run is the sum of its reports' -log chances, a Markov chain: stillness comes in runs,
and counting reports as independent would make every nap an emergency, while conditioning on the run's
age keeps a lie-in after a long night from looking like a collapse. Each hour's chances are shrunk
toward the wearer's chances over all hours, and those toward a population prior, so an hour seen rarely
borrows the wearer's own habit before anyone else's. Scaled by `warning_surprise / band_warning_surprise`
the run's surprise joins the silence's score (the larger counts): someone lying still wearing the band
is noticed within a few reports, while a band that is off leaves the sensors' slower clock.

Coverage. Silence from a home whose sensors are not reporting is no evidence about the resident:
`decide` drops those alarms and `coverage` raises them as a coverage problem instead.

Shape: scikit-learn / river style. The constructor stores parameters only; learned state lives in
trailing-underscore arrays with one row per resident; arrays in, arrays out; no I/O and no clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from detectors import week
from detectors.evidence import Evidence
from detectors.severity import NO_SEVERITY, Severity

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
    "band_n_": np.uint16,
    "band_still_n_": np.uint16,
    "band_last_ms_": np.int64,
    "band_run_start_ms_": np.int64,
    "band_run_n_": np.int16,
    "band_run_": np.float32,
    "day_": np.int32,
    "day_count_": np.float32,
    "day_baseline_": np.float32,
    "day_baseline_n_": np.int16,
    "decline_cusum_": np.float32,
    "decline_ms_": np.int64,
    "decline_ratio_": np.float32,
    "sensitivity_": np.float32,
    "silence_longest_h_": np.float32,
    "last_room_": np.int8,
    "silence_room_h_": np.float16,
    "silence_room_n_": np.uint8,
}
STATE_FORMAT = 1
"""Bumped when an array keeps its name and dtype but changes meaning (a new unit, a new bin layout): a
checkpoint of another format is not restored (see `InactivityDetector.fingerprint`)."""
ROOMS = ("bedroom", "bathroom", "kitchen", "other")
"""Room classes of the learned floor's context (see `room_of`); -1: not known."""
NO_ROOM = -1


def room_of(location: str) -> int:
    """The room class of a sensor's location, in English or Chinese words: bedroom (卧室), bathroom (a
    toilet too: 卫生间, 厕所, 浴室), kitchen (厨房) or other."""
    location = location.strip().lower()
    if "bed" in location or "卧" in location:
        return 0
    if any(word in location for word in ("bath", "toilet", "卫生间", "厕", "浴")) or location == "wc":
        return 1
    return 2 if "kitchen" in location or "厨" in location else 3
NO_DAY = np.iinfo(np.int32).min
DAY_MS = 24 * week.HOUR_MS
_MOVING, _RESTING, _LONG_STILL = 0, 1, 2  # the band's states: what the previous report said


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
        band_prior_still, band_prior_stay: population chances of a still report after a moving one, and
            after a still one (resting or long still); band_prior_reports: how many reports weigh as much
            as the prior against the wearer's pooled chances, and as the pooled chances against one hour's.
        band_warning_surprise: the still run's surprise that counts as `warning_surprise`.
        band_gap_s: reports further apart than this do not continue a run (the band was off or away).
        band_long_run_s: a still run this old is long stillness (sleep) rather than a rest.
        band_min_still_reports: still reports in a row before the band alone may warn (one quiet report
            is a person sitting down).
        sensor_only_warning_surprise: `warning_surprise` for a daytime silence of a resident not wearing
            a band (critical scales with it).
        night_after_hours, night_quiet_hours, night_quiet_events: a silence whose rhythm expects fewer
            active minutes than this in the hours from `night_after_hours` to `night_after_hours +
            night_quiet_hours` after it began is going to bed (see `_silence_scale`).
        decline_reference, decline_threshold: activity decline (an illness coming on) is a one-sided
            CUSUM over whole local days of the day's active minutes as a share of a usual day: each day
            adds `decline_reference` minus that share (never below 0 in all), and crossing
            `decline_threshold` is a decline. With 0.85 and 0.6: three days at 65 % of usual, or two at
            55 %, or one day under a quarter; one quiet day and ordinary ups and downs are not.
        decline_learning_days, decline_smoothing, decline_min_daily: the usual day is a running, then
            exponential (weight `decline_smoothing`), average of normal days (days that leave the CUSUM
            at 0, so an illness does not teach the baseline); nothing is judged before
            `decline_learning_days` of it, or for a usual day under `decline_min_daily` active minutes.
        band_neighbour_hours: the band's chances at an hour pool the hours this far either side.
        band_min_reports: a still report adds no surprise where fewer reports than this were seen in the
            pooled hours (about three days of 5-minute reports): a new wearer's band says nothing until
            their habit is known, so a new resident asleep at 03:00 is never an emergency for the band.
        silence_max_s: the longest any silence waits before it warns (the learned floor's cap).
        silence_door_only_max_s: the same for a resident only ever seen at the front door (no indoor or
            worn evidence yet): a day in without a passage is ordinary there, so the cap is the day the
            door-only track promises to notice a collapse within, less a margin for the minute's tick
            and the delivery.

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
    band_n_: npt.NDArray[np.uint16]        # (n, 3, 48) band reports per state and rate bin
    band_still_n_: npt.NDArray[np.uint16]  # (n, 3, 48) of which still
    band_last_ms_: I64       # the last band report (NO_TIME: no band seen)
    band_run_start_ms_: I64  # first report of the current still run (NO_TIME: moving)
    band_run_n_: npt.NDArray[np.int16]     # still reports in the current run
    band_run_: F32           # surprise of the current run of still reports (0 when moving)
    day_: I32                # the local day (days since the epoch) being counted
    day_count_: F32          # active minutes counted in it so far
    day_baseline_: F32       # a usual day's active minutes (a slow average of normal days)
    day_baseline_n_: npt.NDArray[np.int16]  # days in that average
    decline_cusum_: F32      # evidence of days well below the usual, accumulated (a one-sided CUSUM)
    decline_ms_: I64         # end of the day on which the last decline was established (NEVER: none)
    decline_ratio_: F32      # that day's active minutes as a share of a usual day
    sensitivity_: F32        # per-resident scale of the score (1: as learned; see `set_sensitivity`)
    silence_longest_h_: F32  # (n, 2, 24) longest silence (hours) at home [0], out [1], by local hour begun
    last_room_: I8           # room class (`ROOMS`) of the last activity; NO_ROOM: not known
    silence_room_h_: npt.NDArray[np.float16]  # (n, 4, 24) longest silence at home begun in each room class
    silence_room_n_: npt.NDArray[np.uint8]    # (n, 4, 24) how many (at most 255)

    def __init__(self, *, prior_events_per_hour: float | Sequence[float] = 0.8,
                 prior_strength_days: float = 3.0, warning_surprise: float = 10.0,
                 critical_surprise: float = 18.0, min_timeout_s: float = 1800.0,
                 max_timeout_s: float = 16 * 3600.0, away_after_door_s: float = 900.0,
                 not_back_by_local_hour: float = 23.0, max_away_s: float = 16 * 3600.0,
                 door_passage_s: float = 180.0, band_prior_still: float = 0.3,
                 band_prior_stay: float = 0.5, band_prior_reports: float = 2.0,
                 band_warning_surprise: float = 5.0, band_gap_s: float = 1800.0,
                 band_long_run_s: float = 1800.0, band_min_still_reports: int = 2,
                 band_neighbour_hours: int = 1, band_min_reports: float = 100.0,
                 sensor_only_warning_surprise: float = 6.0, night_after_hours: float = 2.0,
                 night_quiet_hours: float = 3.0, night_quiet_events: float = 2.0,
                 decline_reference: float = 0.85, decline_threshold: float = 0.6,
                 decline_learning_days: int = 7, decline_smoothing: float = 0.1,
                 decline_min_daily: float = 20.0, silence_min_s: float = 1800.0,
                 silence_hours_around: int = 3, silence_margin: float = 1.25,
                 silence_extra_s: float = 5400.0, silence_room_shrink: float | None = 3.0,
                 silence_learning_days: float = 3.0,
                 silence_prior_s: float = 12 * 3600.0, silence_max_s: float = 20 * 3600.0,
                 silence_door_only_max_s: float = 23.5 * 3600.0, critical_after_s: float = 1800.0) -> None:
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
        self.band_prior_still = band_prior_still
        self.band_prior_stay = band_prior_stay
        self.band_prior_reports = band_prior_reports
        self.band_warning_surprise = band_warning_surprise
        self.band_gap_s = band_gap_s
        self.band_long_run_s = band_long_run_s
        self.band_min_still_reports = band_min_still_reports
        self.band_neighbour_hours = band_neighbour_hours
        self.band_min_reports = band_min_reports
        self.sensor_only_warning_surprise = sensor_only_warning_surprise
        self.night_after_hours = night_after_hours
        self.night_quiet_hours = night_quiet_hours
        self.night_quiet_events = night_quiet_events
        self.decline_reference = decline_reference
        self.decline_threshold = decline_threshold
        self.decline_learning_days = decline_learning_days
        self.decline_smoothing = decline_smoothing
        self.decline_min_daily = decline_min_daily
        self.silence_min_s = silence_min_s
        self.silence_hours_around = silence_hours_around
        self.silence_margin = silence_margin
        self.silence_extra_s = silence_extra_s
        self.silence_room_shrink = silence_room_shrink
        self.silence_learning_days = silence_learning_days
        self.silence_prior_s = silence_prior_s
        self.silence_max_s = silence_max_s
        self.silence_door_only_max_s = silence_door_only_max_s
        self.critical_after_s = critical_after_s

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
            "band_n_": np.zeros((n, 3, week.N_BINS), dtype=np.uint16),
            "band_still_n_": np.zeros((n, 3, week.N_BINS), dtype=np.uint16),
            "band_last_ms_": filled(NO_TIME),
            "band_run_start_ms_": filled(NO_TIME),
            "band_run_n_": np.zeros(n, dtype=np.int16),
            "band_run_": np.zeros(n, dtype=np.float32),
            "day_": np.full(n, NO_DAY, dtype=np.int32),
            "day_count_": np.zeros(n, dtype=np.float32),
            "day_baseline_": np.zeros(n, dtype=np.float32),
            "day_baseline_n_": np.zeros(n, dtype=np.int16),
            "decline_cusum_": np.zeros(n, dtype=np.float32),
            "decline_ms_": filled(NEVER),
            "decline_ratio_": np.ones(n, dtype=np.float32),
            "sensitivity_": np.ones(n, dtype=np.float32),
            "silence_longest_h_": np.zeros((n, 2, 24), dtype=np.float32),
            "last_room_": np.full(n, NO_ROOM, dtype=np.int8),
            "silence_room_h_": np.zeros((n, len(ROOMS), 24), dtype=np.float16),
            "silence_room_n_": np.zeros((n, len(ROOMS), 24), dtype=np.uint8),
        }

    @property
    def n_residents(self) -> int:
        return len(self.utc_offset_s_)

    def get_params(self) -> dict[str, float | Sequence[float]]:
        return {name: getattr(self, name) for name in (
            "prior_events_per_hour", "prior_strength_days", "warning_surprise", "critical_surprise",
            "min_timeout_s", "max_timeout_s", "away_after_door_s", "not_back_by_local_hour", "max_away_s",
            "door_passage_s", "band_prior_still", "band_prior_stay", "band_prior_reports",
            "band_warning_surprise", "band_gap_s", "band_long_run_s", "band_min_still_reports",
            "band_neighbour_hours", "band_min_reports", "sensor_only_warning_surprise",
            "night_after_hours", "night_quiet_hours", "night_quiet_events", "decline_reference",
            "decline_threshold", "decline_learning_days", "decline_smoothing", "decline_min_daily",
            "silence_min_s", "silence_hours_around", "silence_margin", "silence_extra_s",
            "silence_room_shrink", "silence_learning_days", "silence_prior_s", "silence_max_s",
            "silence_door_only_max_s", "critical_after_s")}

    def fingerprint(self) -> str:
        """What a saved state must have been learned with to be restored here: the parameters, the
        state's arrays (names, dtypes, row shapes) and `STATE_FORMAT`. Equal fingerprints, equal
        learning."""
        layout = {name: [array.dtype.str, list(array.shape[1:])]
                  for name, array in self._blank_state(0, 0).items()}
        params = {name: np.asarray(value).tolist() for name, value in self.get_params().items()}
        text = json.dumps({"format": STATE_FORMAT, "params": params, "layout": layout}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def get_state(self, resident_idx: npt.ArrayLike | None = None) -> dict[str, np.ndarray]:
        """Every learned array by name (npz-friendly), of every resident or of `resident_idx`'s rows;
        with the parameters it restores the detector."""
        rows = slice(None) if resident_idx is None else np.asarray(resident_idx, dtype=np.intp)
        return {name: getattr(self, name)[rows].copy() for name in _STATE_DTYPES}

    def set_state(self, state: dict[str, np.ndarray],
                  resident_idx: npt.ArrayLike | None = None) -> InactivityDetector:
        """Take a whole state (`get_state()`), or with `resident_idx` overwrite those residents' rows
        with the rows of `state`, in order. Checked whole before anything changes: a state that does not
        fit raises ValueError and leaves the detector as it was."""
        self._check_params()
        missing = set(_STATE_DTYPES) - set(state)
        if missing:
            raise ValueError(f"detector state lacks {sorted(missing)}")
        rows = None if resident_idx is None else np.asarray(resident_idx, dtype=np.intp)
        n = len(state["utc_offset_s_"]) if rows is None else len(rows)
        values = {}
        for name, dtype in _STATE_DTYPES.items():
            value = np.asarray(state[name], dtype=dtype)
            if len(value) != n:
                raise ValueError(f"detector state {name} has {len(value)} rows, expected {n}")
            if rows is not None and value.shape[1:] != getattr(self, name).shape[1:]:
                raise ValueError(f"detector state {name} has rows of shape {value.shape[1:]}")
            values[name] = value
        for name, value in values.items():
            if rows is None:
                setattr(self, name, value.copy())
            else:
                getattr(self, name)[rows] = value
        return self

    def set_sensitivity(self, resident_idx: npt.ArrayLike, sensitivity: npt.ArrayLike) -> InactivityDetector:
        """Scale residents' scores (an operator's setting per resident: 2 warns after about half the
        silence, 0.5 after about twice it) and move their deadlines with them."""
        who = np.atleast_1d(np.asarray(resident_idx, dtype=np.intp))
        values = np.broadcast_to(np.asarray(sensitivity, dtype=np.float32), who.shape)
        if np.any(values <= 0):
            raise ValueError("a sensitivity must be positive")
        changed = who[self.sensitivity_[who] != values]
        self.sensitivity_[who] = values
        seen = changed[self.last_activity_ms_[changed] != NO_TIME]
        self._refresh(seen)
        self._refresh_band(seen)
        return self

    # --- learning ----------------------------------------------------------------------------

    def partial_fit(self, resident_idx: npt.ArrayLike, t_ms: npt.ArrayLike,
                    evidence: npt.ArrayLike, room: npt.ArrayLike | None = None) -> InactivityDetector:
        """Learn from a batch of activity (any order) and move the deadlines of the residents it concerns.
        `room`: each reading's room class (`room_of`; NO_ROOM or None: not known).

        Events older than a resident's last activity still count toward their rhythm but cannot move
        their silence backwards.
        """
        idx = np.asarray(resident_idx, dtype=np.intp)
        t = np.asarray(t_ms, dtype=np.int64)
        code = np.asarray(evidence, dtype=np.int8)
        rooms = (np.full(idx.shape, NO_ROOM, np.int8) if room is None
                 else np.broadcast_to(np.asarray(room, dtype=np.int8), idx.shape))
        band = (code == Evidence.WORN) | (code == Evidence.STILL)
        wearers = np.unique(idx[band])
        if wearers.size:
            # The wearers' other signs of life go along: they end a still run where they fall in time.
            mine = np.isin(idx, wearers) & (code != Evidence.CORRIDOR)
            self._follow_band(idx[mine], t[mine], code[mine])
        alive = (code != Evidence.CORRIDOR) & (code != Evidence.STILL)
        idx, t, code, rooms = idx[alive], t[alive], code[alive], rooms[alive]
        if idx.size:
            self._learn_activity(idx, t, code, rooms)
        if wearers.size:
            # A band report can change whether a resident counts as wearing it (`_silence_scale`): the
            # silence's deadlines move with it, or a deadline could pass with the score short of it.
            seen = wearers[self.last_activity_ms_[wearers] != NO_TIME]
            self._refresh(seen)
            self._refresh_band(seen)
        return self

    def _learn_activity(self, idx: Indices, t: I64, code: npt.NDArray[np.int8], room: I8) -> None:
        # Active minutes: one count per (resident, minute), and none for the minute already counted. A
        # band's moving report is a sign of life but not a count: it comes on the band's schedule, not the
        # resident's, and would make the silence clock tick as fast as the band reports (the band's
        # stillness has its own channel). A minute's first sign of life decides, as if the readings came
        # one at a time: a minute begun by a band report is not counted, wherever batches are cut.
        minute = t // week.MINUTE_MS
        previous_minute = np.where(self.last_activity_ms_[idx] == NO_TIME, NO_TIME,
                                   self.last_activity_ms_[idx] // week.MINUTE_MS)
        order = _by_resident_then_time(idx, t, self.n_residents)
        idx_in_order, minute_in_order = idx[order], minute[order]
        opens = np.empty(idx.size, dtype=np.bool_)
        opens[order] = np.r_[True, (idx_in_order[1:] != idx_in_order[:-1])
                             | (minute_in_order[1:] != minute_in_order[:-1])]
        counted = opens & (minute != previous_minute) & (code != Evidence.WORN)
        # In `order`, the counted readings are distinct (resident, minute) pairs already sorted: no sort.
        counted_in_order = counted[order]
        rows, minutes = idx_in_order[counted_in_order], minute_in_order[counted_in_order]
        bins = week.bin_of(week.week_hours(minutes * week.MINUTE_MS, self.utc_offset_s_[rows]))
        np.add.at(self.counts_, (rows, bins), 1.0)

        away_before = self.away(idx)
        out_after = self._pass_doors(idx, t, code, order)
        self._learn_silences(idx, t, code, room, away_before=away_before, out_after=out_after, order=order)
        self._follow_rooms(idx, t, room, order=order)
        np.minimum.at(self.first_ms_, idx, t)
        np.maximum.at(self.last_activity_ms_, idx, t)
        door = code == Evidence.DOOR
        np.maximum.at(self.last_door_ms_, idx[door], t[door])
        np.maximum.at(self.last_indoor_ms_, idx[~door], t[~door])
        # A sign of life newer than the band's last report ends a still run (one in the same batch as band
        # reports was placed in time by `_follow_band`).
        moved = idx[t > self.band_last_ms_[idx]]
        self.band_run_[moved], self.band_run_n_[moved], self.band_run_start_ms_[moved] = 0.0, 0, NO_TIME
        self._refresh(_distinct_sorted(idx_in_order))
        self._count_days(rows, minutes)  # after the refresh: a day is judged against the rhythm as learned

    def _learn_silences(self, idx: Indices, t: I64, code: npt.NDArray[np.int8], room: I8, *,
                        away_before: Bools, out_after: Bools, order: Indices) -> None:
        """Remember the silences that this batch ends: each resident's gaps between consecutive signs of
        life (the first from their last known activity) of at least `silence_min_s`, by the local hour
        they began in. An outing is kept apart: a silence begun while the resident was out (`away_before`
        the batch, `out_after` each reading), or begun and ended at the front door (the door's count of
        passages is easily thrown by a bouncing reed or a step out and back). Readings older than the
        resident's last activity end no silence (it was already counted). `order`: the readings by
        resident, then time."""
        known_last = self.last_activity_ms_[idx]
        idx, t, code, known_last, room = idx[order], t[order], code[order], known_last[order], room[order]
        first = np.r_[True, idx[1:] != idx[:-1]]
        before = np.where(first, known_last, np.r_[NO_TIME, t[:-1]])
        # The room it began in: that of the reading before (the resident's latest before the batch for
        # the first), as `_follow_rooms` keeps it across batches.
        began_in = np.where(first, self.last_room_[idx], np.r_[NO_ROOM, room[:-1]])
        # Each reading's side of the door as `away` would tell it had the batch ended at the reading
        # before: the last door and indoor times so far, not only the reading before (a band report
        # after the door is no door). So a batch cut anywhere learns the same silences as one whole,
        # and a restart from a checkpoint equals a full replay.
        door = code == Evidence.DOOR
        door_ms = self._latest_so_far(t, door, first, self.last_door_ms_[idx])
        indoor_ms = self._latest_so_far(t, ~door, first, self.last_indoor_ms_[idx])
        door_before = np.where(first, self.last_door_ms_[idx], np.r_[NO_TIME, door_ms[:-1]])
        indoor_before = np.where(first, self.last_indoor_ms_[idx], np.r_[NO_TIME, indoor_ms[:-1]])
        began_at_door = door_before >= indoor_before
        out = (np.where(first, away_before[order],
                        (door_before > indoor_before) & np.r_[False, out_after[order][:-1]])
               | (began_at_door & door))
        gap_ms = t - before
        ended = ((before != NO_TIME) & (before >= known_last)
                 & (gap_ms >= int(self.silence_min_s * 1000)))
        if not ended.any():
            return
        who, began, hours = idx[ended], before[ended], gap_ms[ended] / week.HOUR_MS
        out, began_in = out[ended].astype(np.intp), began_in[ended].astype(np.intp)
        hour = np.floor(week.week_hours(began, self.utc_offset_s_[who]) % 24).astype(np.intp)
        np.maximum.at(self.silence_longest_h_, (who, out, hour), hours.astype(np.float32))
        # At home, after a known room: the same by room class, and how many (a count that stops at 255).
        mine = (out == 0) & (began_in >= 0)
        if mine.any():
            cell = (who[mine], began_in[mine], hour[mine])
            np.maximum.at(self.silence_room_h_, cell, hours[mine].astype(np.float16))
            rows, flat, inverse = _distinct_pairs(cell[0], cell[1] * 24 + cell[2])
            room_n = self.silence_room_n_.reshape(len(self.silence_room_n_), -1)
            added = np.bincount(inverse, minlength=len(rows))
            room_n[rows, flat] = np.minimum(room_n[rows, flat].astype(np.int64) + added, 255)

    @staticmethod
    def _latest_so_far(t: I64, mask: Bools, first: Bools, known: I64) -> I64:
        """Per reading (grouped by resident, in time order; `first` starts a group): the latest time of
        a `mask` reading up to and including it, or `known` (as of before the batch) if later."""
        position = np.arange(t.size)
        group = np.maximum.accumulate(np.where(first, position, 0))
        at = np.maximum.accumulate(np.where(mask, position, -1))
        return np.where(at >= group, np.maximum(t[np.maximum(at, 0)], known), known)

    def _follow_rooms(self, idx: Indices, t: I64, room: I8, *, order: Indices) -> None:
        """The room of each resident's latest reading, if newer than their last activity (a reading of an
        unknown room forgets it): the last in `order` (by resident, then time), so the first reading of
        the next batch begins its silence where `_learn_silences` would have had the batch gone on."""
        last = np.r_[idx[order][1:] != idx[order][:-1], True]
        who, when, where = idx[order][last], t[order][last], room[order][last]
        newer = when >= self.last_activity_ms_[who]
        self.last_room_[who[newer]] = where[newer]

    def _hours_around(self, who: Indices, at_ms: I64 | int) -> npt.NDArray[np.intp]:
        """Per resident, the local hours around that of `at_ms` whose silences a floor looks at."""
        at = np.asarray(at_ms, dtype=np.int64)
        hour = np.floor(week.week_hours(at, self.utc_offset_s_[who]) % 24).astype(np.intp)
        return (hour[:, None] + np.arange(-self.silence_hours_around, self.silence_hours_around + 1)) % 24

    def longest_silence_s(self, resident_idx: npt.ArrayLike, at_ms: I64 | int, out: bool = False) -> F64:
        """The longest silence (an outing if `out`) each resident has had begun around the local hour of
        `at_ms`, in seconds (0: none learned): their usual rhythm, as a notification states it."""
        who = np.asarray(resident_idx, dtype=np.intp)
        around = self._hours_around(who, at_ms)
        longest_h = self.silence_longest_h_[who[:, None], int(out), around].max(axis=1)
        return np.asarray(longest_h.astype(np.float64) * 3600.0, dtype=np.float64)

    def silence_floor_s(self, resident_idx: npt.ArrayLike, at_ms: I64, out: bool = False,
                        room: npt.ArrayLike | None = None) -> F64:
        """The learned floor of a silence begun at `at_ms` (an outing if `out`), in seconds, per resident
        (see the module doc): how long this resident's silences begun around that local hour have
        lasted, with margin. Until the resident has been known `silence_learning_days`, `silence_prior_s`
        at home; NaN out, as when no outing was ever begun around that hour (the fixed not-back rule
        applies)."""
        who = np.asarray(resident_idx, dtype=np.intp)
        around = self._hours_around(who, at_ms)
        longest_h = self.silence_longest_h_[who[:, None], int(out), around].max(axis=1).astype(np.float64)
        if room is not None and not out and self.silence_room_shrink is not None:
            longest_h = self._in_room_h(who, around, np.broadcast_to(np.asarray(room, np.intp), who.shape),
                                        longest_h)
        known = self._known_for_learning(who)
        learned = longest_h * 3600.0 * self.silence_margin + self.silence_extra_s
        floor = (np.where(known & (longest_h > 0), learned, np.nan) if out
                 else np.where(known, learned, self.silence_prior_s))
        return np.asarray(np.minimum(floor, self._max_s(who, longest_h)) / self.sensitivity_[who],
                          dtype=np.float64)

    def _max_s(self, who: Indices, longest_h: F64) -> F64:
        """Each resident's cap on the floor: `silence_door_only_max_s` where nothing but the front door has
        ever been seen of them (every other sign of life, a band's included, sets `last_indoor_ms_`) and
        they have already been silent longer than `silence_max_s` around that hour; else `silence_max_s`."""
        door_only = self.last_indoor_ms_[who] == NO_TIME
        lifted = door_only & (longest_h * 3600.0 >= self.silence_max_s)
        return np.where(lifted, self.silence_door_only_max_s, self.silence_max_s)

    def _in_room_h(self, who: Indices, around: npt.NDArray[np.intp], room: Indices, longest_h: F64) -> F64:
        """The longest silence begun after that room class around those hours, shrunk toward `longest_h`
        (the hour's, whatever the room): weighted n / (n + `silence_room_shrink`), n the silences seen
        there."""
        r = np.maximum(room, 0)
        in_room = self.silence_room_h_[who[:, None], r[:, None], around].max(axis=1).astype(np.float64)
        n = self.silence_room_n_[who[:, None], r[:, None], around].sum(axis=1, dtype=np.float64)
        shrink = float(self.silence_room_shrink or 0.0)
        w = np.where(room >= 0, n / np.maximum(n + shrink, 1e-12), 0.0)
        return np.asarray(w * in_room + (1 - w) * longest_h, dtype=np.float64)

    def shortest_floor_s(self) -> float:
        """No silence of anyone's warns sooner than this after its last sign of life (the learned floor's
        least value at the highest sensitivity); a worn band's still run aside."""
        least = min(self.silence_extra_s, self.silence_prior_s, self.silence_max_s,
                    self.silence_door_only_max_s)
        return least / float(self.sensitivity_.max(initial=1.0))

    def floor_bound_s(self, resident_idx: npt.ArrayLike, at_ms: I64,
                      room: npt.ArrayLike | None = None) -> F64:
        """A lower bound on the learned floor of a silence begun at `at_ms` by residents `resident_idx`,
        whatever they do until then: the learned floor as of now (the longest silences only grow), and
        for residents not yet known `silence_learning_days` the lesser of it and their prior (they may
        become known meanwhile). `room`: the room class (`room_of`; NO_ROOM: none) of the reading that
        begins each silence, when it is known; else whichever room it begins in. For a replay that feeds
        many minutes at once."""
        who = np.asarray(resident_idx, dtype=np.intp)
        around = self._hours_around(who, at_ms)
        longest_h = self.silence_longest_h_[who[:, None], 0, around].max(axis=1).astype(np.float64)
        if self.silence_room_shrink is not None:
            # After a room, the floor weighs the room's longest silences against the hour's (`_in_room_h`)
            # by as many as will have been seen there: never below the lesser of the two, and both only
            # grow. After no known room it is the hour's; the room not given, the least over rooms.
            by_room = self.silence_room_h_[who[:, None], :, around].max(axis=1).astype(np.float64)
            if room is None:
                least_h = by_room.min(axis=1)
            else:
                r = np.broadcast_to(np.asarray(room, dtype=np.intp), who.shape)
                least_h = np.where(r >= 0, by_room[np.arange(who.size), np.maximum(r, 0)], longest_h)
            longest_h = np.minimum(least_h, longest_h)
        learned = longest_h * 3600.0 * self.silence_margin + self.silence_extra_s
        floor = np.where(self._known_for_learning(who), learned, np.minimum(learned, self.silence_prior_s))
        # Under the lower cap: a resident seen only at the door so far may be seen indoors next.
        cap = min(self.silence_max_s, self.silence_door_only_max_s)
        return np.asarray(np.minimum(floor, cap) / self.sensitivity_[who], dtype=np.float64)

    def _known_for_learning(self, who: Indices) -> Bools:
        """Residents whose own silences have been followed `silence_learning_days`."""
        last = self.last_activity_ms_[who]
        return np.asarray((last != NO_TIME)
                          & (last - self.first_ms_[who] >= self.silence_learning_days * DAY_MS))

    def _count_days(self, rows: Indices, minutes: I64) -> None:
        """Active minutes per resident and local day; when a day is over (a later day's first minute
        arrives), judge it against the resident's habit. Minutes of a day already judged are not
        counted again: the judgement stands."""
        offsets = self.utc_offset_s_[rows].astype(np.int64) * 1000
        day = (minutes * week.MINUTE_MS + offsets) // DAY_MS
        keep = day >= self.day_[rows]
        rows, day = rows[keep], day[keep]
        if rows.size == 0:
            return
        who = _distinct_sorted(rows)
        counting = who[self.day_[who] != NO_DAY]
        # Each resident's day being counted goes before their minutes (none is of an earlier day): with
        # `rows` by resident then minute, as `_learn_activity` gives them, the pairs come sorted.
        at = np.searchsorted(rows, counting) if _in_order(rows) else np.zeros(counting.size, np.intp)
        all_rows = np.insert(rows, at, counting)
        all_days = np.insert(day, at, self.day_[counting].astype(np.int64))
        weights = np.insert(np.ones(rows.size, np.float32), at, self.day_count_[counting])
        pair_rows, pair_days, inverse = _distinct_pairs(all_rows, all_days)
        pairs = np.stack([pair_rows, pair_days], axis=1)
        totals = np.bincount(inverse.ravel(), weights=weights).astype(np.float64)
        # Pairs are sorted by (resident, day): each resident's last pair is the day now being counted,
        # the ones before it are days that have ended, judged in order (a batch read back from the
        # store after a restart can hold many days).
        last = np.r_[pairs[1:, 0] != pairs[:-1, 0], True]
        first = np.r_[True, pairs[1:, 0] != pairs[:-1, 0]]
        rank = np.arange(len(pairs)) - np.maximum.accumulate(np.where(first, np.arange(len(pairs)), 0))
        for k in range(int(rank[~last].max(initial=-1)) + 1):
            ended = np.flatnonzero(~last & (rank == k))
            self._judge_days(pairs[ended, 0], pairs[ended, 1].astype(np.int64), totals[ended])
        self.day_[pairs[last, 0]] = pairs[last, 1]
        self.day_count_[pairs[last, 0]] = totals[last]

    def _judge_days(self, who: Indices, day: I64, active: F64) -> None:
        base = self.day_baseline_[who].astype(np.float64)
        seen = self.day_baseline_n_[who].astype(np.int64)
        ready = (seen >= self.decline_learning_days) & (base >= self.decline_min_daily)
        share = active / np.maximum(base, 1.0)
        before = self.decline_cusum_[who].astype(np.float64)
        cusum = np.where(ready, np.maximum(0.0, before + self.decline_reference - share), 0.0)
        crossed = ready & (cusum >= self.decline_threshold) & (before < self.decline_threshold)
        end_ms = (day + 1) * DAY_MS - self.utc_offset_s_[who].astype(np.int64) * 1000
        self.decline_ms_[who[crossed]] = end_ms[crossed]
        self.decline_ratio_[who[crossed]] = share[crossed]
        self.decline_cusum_[who] = cusum
        normal = cusum == 0.0
        weight = np.maximum(self.decline_smoothing, 1.0 / (seen + 1))
        self.day_baseline_[who] = np.where(normal, base + weight * (active - base), base)
        self.day_baseline_n_[who] = np.where(normal, np.minimum(seen + 1, np.iinfo(np.int16).max), seen)

    def _follow_band(self, idx: Indices, t: I64, code: npt.NDArray[np.int8]) -> None:
        """Learn the band's chances and carry each wearer's run of still reports forward, through the
        wearers' readings in time order: band reports (`WORN`, `STILL`) and any other sign of life, which
        ends a run like a moving report but teaches the band nothing. A reading older than the wearer's
        last band report is ignored, since a run cannot be rewritten backwards."""
        order = np.lexsort((t, idx))
        idx, t, code = idx[order], t[order], code[order]
        fresh = t > self.band_last_ms_[idx]
        idx, t, code = idx[fresh], t[fresh], code[fresh]
        if idx.size == 0:
            return
        still = code == Evidence.STILL
        first = np.r_[True, idx[1:] != idx[:-1]]
        previous_t = np.where(first, self.band_last_ms_[idx], np.r_[NO_TIME, t[:-1]])
        previous_still = np.where(first, self.band_run_start_ms_[idx] != NO_TIME, np.r_[False, still[:-1]])
        continues = (previous_still & (previous_t != NO_TIME)
                     & (t - previous_t <= int(self.band_gap_s * 1000)) & still)
        carried = first & continues
        # A segment starts at each wearer's first reading (carrying their run on) and at each reading that
        # does not continue a run; a moving one is a run of its own, of 0.
        starts = first | ~continues
        start_at = np.maximum.accumulate(np.where(starts, np.arange(idx.size), 0))
        run_start = np.where(carried[start_at], self.band_run_start_ms_[idx], t[start_at])
        run_n = np.arange(idx.size) - start_at + np.where(carried[start_at], self.band_run_n_[idx], 0) + 1
        age_ms = np.where(continues, previous_t - run_start, 0)
        state = np.where(~continues, _MOVING,
                         np.where(age_ms < int(self.band_long_run_s * 1000), _RESTING, _LONG_STILL))
        bins = week.bin_of(week.week_hours(t, self.utc_offset_s_[idx]))

        # Each report is judged on the counts of the reports before it, this batch's included, as if
        # it came alone: where a stream is cut into batches changes nothing learned.
        report = still | (code == Evidence.WORN)
        before_n = _EarlierCounts(report, idx, state, bins)
        before_still = _EarlierCounts(still, idx, state, bins)
        chance = self._band_chance(idx, state, bins, before_n, before_still)
        # Alive before: known to the detector, or a sign of life earlier in this batch.
        group_at = np.maximum.accumulate(np.where(first, np.arange(idx.size), 0))
        alive_at = np.maximum.accumulate(np.where(~still, np.arange(idx.size), -1))
        seen = (self.last_activity_ms_[idx] != NO_TIME) | (alive_at >= group_at)
        surprise = np.where(still & seen & self._band_known(idx, bins, before_n), -np.log(chance), 0.0)
        surprise[carried] += self.band_run_[idx[carried]]
        total = np.cumsum(surprise)
        run = total - total[start_at] + surprise[start_at]

        np.add.at(self.band_n_, (idx[report], state[report], bins[report]), 1)
        np.add.at(self.band_still_n_, (idx[still], state[still], bins[still]), 1)
        np.maximum.at(self.band_last_ms_, idx[report], t[report])
        last = np.r_[idx[1:] != idx[:-1], True]
        wearer, ended_still = idx[last], still[last]
        self.band_run_start_ms_[wearer] = np.where(ended_still, run_start[last], NO_TIME)
        self.band_run_n_[wearer] = np.where(ended_still, np.minimum(run_n[last], np.iinfo(np.int16).max), 0)
        self.band_run_[wearer] = np.where(ended_still, run[last], 0.0)

    def _band_chance(self, idx: Indices, state: npt.NDArray[np.intp], bins: npt.NDArray[np.intp],
                     before_n: _EarlierCounts, before_still: _EarlierCounts) -> F64:
        """Chance of a still report for each (wearer, state, hour bin): the counts of the hours around it
        (a nap taken at 12:40 one day and 13:20 the next is one habit), shrunk toward the wearer's counts
        over all hours in that state, shrunk toward the population prior. `before_*`: the batch's own
        reports before each reading."""
        k = self.band_prior_reports
        prior = np.where(state == _MOVING, self.band_prior_still, self.band_prior_stay)
        pooled_n = self.band_n_[idx, state].sum(axis=1, dtype=np.float64) + before_n.pooled()
        pooled_still = self.band_still_n_[idx, state].sum(axis=1, dtype=np.float64) + before_still.pooled()
        pooled = (prior * k + pooled_still) / (k + pooled_n)
        around = _around(bins, self.band_neighbour_hours)
        n = (self.band_n_[idx[:, None], state[:, None], around].sum(axis=1, dtype=np.float64)
             + before_n.around(around))
        still = (self.band_still_n_[idx[:, None], state[:, None], around].sum(axis=1, dtype=np.float64)
                 + before_still.around(around))
        return np.asarray((pooled * k + still) / (k + n), dtype=np.float64)

    def _band_known(self, idx: Indices, bins: npt.NDArray[np.intp], before_n: _EarlierCounts) -> Bools:
        """Wearers whose band has reported enough around these hours to judge a still report."""
        around = _around(bins, self.band_neighbour_hours)
        seen = (self.band_n_[idx[:, None], :, around].sum(axis=(1, 2), dtype=np.float64)
                + before_n.around(around, any_state=True))
        return np.asarray(seen >= self.band_min_reports)

    def _refresh_band(self, who: Indices) -> None:
        """Bring forward the deadlines of wearers whose still run is already surprising enough."""
        band = self._band_score(who)
        at = self.band_last_ms_[who]
        away = self.away(who)
        self.deadline_ms_[who] = np.where((band >= self.warning_surprise) & ~away,
                                          np.minimum(self.deadline_ms_[who], at), self.deadline_ms_[who])
        self.critical_ms_[who] = np.where((band >= self.critical_surprise) & ~away,
                                          np.minimum(self.critical_ms_[who], at), self.critical_ms_[who])

    def _pass_doors(self, idx: Indices, t: I64, code: npt.NDArray[np.int8], order: Indices) -> Bools:
        """Which side of the front door each resident is on. Door events within `door_passage_s` of each
        other (open, close, the peephole's word) are one passage; each passage flips the side, and
        movement indoors puts the resident back inside. So a resident who comes home and collapses right
        behind the door is inside (an inactivity alarm), not out (a gentle not-back-home hours later).
        Only residents with a door event in the batch are walked through, in time order: doors are rare.
        Returns whether each reading left its resident out. `order`: the readings by resident, then
        time."""
        # Without a door event, a resident is out until their first indoor reading of the batch.
        indoor = (code[order] == Evidence.INDOOR).astype(np.int64)
        first = np.r_[True, idx[order][1:] != idx[order][:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(idx.size), 0))
        seen_indoor = np.cumsum(indoor) - np.r_[0, np.cumsum(indoor)][start]
        out_after = np.empty(idx.size, dtype=np.bool_)
        out_after[order] = self.away(idx[order]) & (seen_indoor == 0)
        concerned = np.isin(idx, np.unique(idx[code == Evidence.DOOR]))
        self.out_[idx[~concerned & (code == Evidence.INDOOR)]] = False
        if not concerned.any():
            return out_after
        where = np.flatnonzero(concerned)
        order = np.lexsort((t[concerned], idx[concerned]))
        gap_ms = int(self.door_passage_s * 1000)
        last_door = self.last_door_ms_  # read before partial_fit moves it
        seen_door: dict[int, int] = {}
        walk = zip(where[order].tolist(), idx[concerned][order].tolist(), t[concerned][order].tolist(),
                   code[concerned][order].tolist(), strict=True)
        for k, i, when, what in walk:
            if what == Evidence.DOOR:
                previous = seen_door.get(i, int(last_door[i]))
                if previous == NO_TIME or when - previous > gap_ms:
                    self.out_[i] = not self.out_[i]
                seen_door[i] = when
            elif what == Evidence.INDOOR:
                self.out_[i] = False
            out_after[k] = self.out_[i]
        return out_after

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
        # The silence reaches each threshold (on the common scale, see `_silence_scale`) a hair past it,
        # so that rounding never leaves the score just short at the deadline.
        nudge = (1 + 1e-6) / self._silence_scale(who)
        warn = week.to_epoch_ms(week.reach(self.cum_[who], x_last, self.warning_surprise * nudge), offsets)
        crit = week.to_epoch_ms(week.reach(self.cum_[who], x_last, self.critical_surprise * nudge), offsets)
        learned_s = self.silence_floor_s(who, last, room=self.last_room_[who])
        # A silence begun at the front door with the resident counted inside may be an outing all the
        # same (see `_learn_silences`): it waits for the longer of the two floors.
        at_door = (self.last_door_ms_[who] >= self.last_indoor_ms_[who]) & ~away
        outing_s = self.silence_floor_s(who, last, out=True)
        learned_s = np.where(at_door, np.fmax(learned_s, outing_s), learned_s)
        learned = last + np.ceil(learned_s * 1000).astype(np.int64)
        # Critical comes at most `critical_after_s` after the warning (so that one silence does not page
        # the family twice hours apart), and exactly that long after when the learned floor decides.
        after = int(self.critical_after_s * 1000)
        crit = np.where(learned > warn, learned + after, np.minimum(crit, warn + after))
        warn = np.maximum(warn, learned)
        self.deadline_ms_[who] = np.where(away, NEVER, warn)
        self.critical_ms_[who] = np.where(away, NEVER, crit)
        self.not_back_ms_[who] = np.where(away, self._not_back_deadline(last, offsets, outing_s), NEVER)

    def _not_back_deadline(self, door_ms: I64, offsets: I32, learned_s: F64) -> I64:
        """Once the resident's own outings around that hour are known, when this one outlasts them (see
        `silence_floor_s`); before that, the first `not_back_by_local_hour` after the outing is
        established, capped by `max_away_s`."""
        gone_ms = door_ms + int(self.away_after_door_s * 1000)
        local = gone_ms + offsets.astype(np.int64) * 1000
        day_start = local - local % (24 * week.HOUR_MS)
        by = day_start + int(self.not_back_by_local_hour * week.HOUR_MS)
        by = np.where(by < local, by + 24 * week.HOUR_MS, by) - offsets.astype(np.int64) * 1000
        by = np.minimum(by, door_ms + int(self.max_away_s * 1000))
        learned = door_ms + np.ceil(np.nan_to_num(learned_s) * 1000).astype(np.int64)
        return np.asarray(np.where(np.isnan(learned_s), by, learned), dtype=np.int64)

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
        silence = week.integral(self.cum_[who], start, end) * self._silence_scale(who)
        # The deadlines decide (they carry the learned floor): the score is held under each threshold
        # before its deadline and lifted to it after.
        below = 1 - 1e-6
        warn, crit = self.deadline_ms_[who], self.critical_ms_[who]
        silence = np.where(now < warn, np.minimum(silence, self.warning_surprise * below),
                           np.where(now < crit, np.clip(silence, self.warning_surprise,
                                                        self.critical_surprise * below),
                                    np.maximum(silence, self.critical_surprise)))
        return np.asarray(np.maximum(silence, self._band_score(who)), dtype=np.float64)

    def _silence_scale(self, who: Indices) -> F64:
        """Daytime silences of residents not wearing a band (none reported within `band_gap_s` of their
        last activity) are judged by the sensors alone, at `sensor_only_warning_surprise`, once their own
        history outweighs the prior twice over (before that the prior's conservative timeout stands):
        their silence is scaled onto the common scale. The sensors alone raise fewer false alarms than
        sensors and band together, and the spare is spent on noticing sooner. Not at bedtime: a silence
        after which the resident's own rhythm expects fewer than `night_quiet_events` active minutes in
        the `night_quiet_hours` starting `night_after_hours` later is going to bed (the evening's last
        stirrings come first), and its end is a wake-up, whose lateness (a lie-in) is no emergency; it
        keeps the common threshold."""
        last = self.last_activity_ms_[who]
        wearing = (self.band_last_ms_[who] != NO_TIME) & (
            last - self.band_last_ms_[who] <= int(self.band_gap_s * 1000))
        known_ms = 2 * self.prior_strength_days * 24 * week.HOUR_MS
        known = (last != NO_TIME) & (last - self.first_ms_[who] >= known_ms)
        x_last = week.week_hours(np.where(known, last, 0), self.utc_offset_s_[who])
        soon = x_last + self.night_after_hours
        ahead = week.integral(self.cum_[who], soon, soon + self.night_quiet_hours)
        daytime = ahead >= self.night_quiet_events
        sensors_only = np.where(known & ~wearing & daytime,
                                self.warning_surprise / self.sensor_only_warning_surprise, 1.0)
        return np.asarray(sensors_only * self.sensitivity_[who], dtype=np.float64)

    def _band_score(self, who: Indices) -> F64:
        """The still run's surprise on the silence's scale; nothing before `band_min_still_reports`."""
        scale = self.warning_surprise / self.band_warning_surprise * self.sensitivity_[who]
        long_enough = self.band_run_n_[who] >= self.band_min_still_reports
        return np.where(long_enough, self.band_run_[who].astype(np.float64) * scale, 0.0)

    def away(self, resident_idx: npt.ArrayLike | None = None) -> Bools:
        """Last seen at the front door: out, or about to be judged out (inactivity is not theirs to raise:
        `min_timeout_s` is longer than `away_after_door_s`)."""
        who = slice(None) if resident_idx is None else np.asarray(resident_idx, np.intp)
        return np.asarray((self.last_door_ms_[who] > self.last_indoor_ms_[who]) & self.out_[who])

    def decide(self, scores: F64, coverage_ok: Bools | None = None,
               resident_idx: npt.ArrayLike | None = None) -> I8:
        """Inactivity severity per resident (`Severity.rank`s, `NO_SEVERITY` for none); none while away or
        while the home's sensors are not reporting (see `coverage`)."""
        severity = np.where(scores >= self.critical_surprise, Severity.CRITICAL.rank,
                            np.where(scores >= self.warning_surprise, Severity.WARNING.rank, NO_SEVERITY))
        quiet = self.away(resident_idx)
        if coverage_ok is not None:
            quiet = quiet | ~np.asarray(coverage_ok, dtype=bool)
        return np.where(quiet, NO_SEVERITY, severity).astype(np.int8)

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
        if not (0 < self.band_prior_still < 1 and 0 < self.band_prior_stay < 1 and self.band_prior_reports > 0
                and self.band_warning_surprise > 0 and self.band_gap_s > 0 and self.band_long_run_s > 0
                and self.band_min_still_reports >= 1 and 0 <= self.band_neighbour_hours < 12
                and self.sensor_only_warning_surprise > 0):
            raise ValueError("band priors must be chances in (0, 1); band strength, threshold, gap, long "
                             "run, minimum still reports and the sensor-only threshold must be positive; "
                             "neighbour hours in 0..11")
        if not (self.silence_min_s > 0 and 0 <= self.silence_hours_around < 12 and self.silence_margin > 0
                and self.silence_extra_s >= 0 and (self.silence_room_shrink or 0.0) >= 0
                and self.silence_learning_days >= 0
                and 0 < self.silence_prior_s <= min(self.silence_max_s, self.silence_door_only_max_s)
                and self.critical_after_s >= 0):
            raise ValueError("silence floor: minimum silence, margin and prior must be positive, hours "
                             "around in 0..11, the prior no longer than the maximum, extra and critical "
                             "delay >= 0")
        if np.any(self._prior_rates() <= 0) or self.prior_strength_days <= 0:
            raise ValueError("the prior rate and strength must be positive")


def _distinct_pairs(a: npt.NDArray[np.integer], b: npt.NDArray[np.integer]) -> tuple[I64, I64, Indices]:
    """The distinct (a, b) pairs sorted by a then b, and each input pair's index among them. One int64 key
    per pair and a sort: `np.unique(..., axis=0)` sorts rows as structured values, many times slower on
    the large batches of a restart or a backtest."""
    if a.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.intp)
    low = int(b.min())
    span = int(b.max()) - low + 1
    key = a.astype(np.int64) * span + (b.astype(np.int64) - low)
    if _in_order(key):  # often so (see `_count_days`): the sort would change nothing
        new = np.r_[True, key[1:] != key[:-1]]
        distinct = key[new]
        inverse = np.cumsum(new) - 1
        return distinct // span, distinct % span + low, inverse.astype(np.intp, copy=False)
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    distinct = ordered[new]
    inverse = np.empty(key.size, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return distinct // span, distinct % span + low, inverse


def _in_order(values: npt.NDArray[np.integer]) -> bool:
    return bool(np.all(values[1:] >= values[:-1]))


def _distinct_sorted(values: Indices) -> Indices:
    """`np.unique(values)`, without its sort when they are in order already (they mostly are here)."""
    if not _in_order(values):
        return np.unique(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values.copy()


def _by_resident_then_time(idx: Indices, t: I64, n_residents: int) -> Indices:
    """`np.lexsort((t, idx))`: the readings by resident, then time, ties in the order given. A batch
    already in time order (a replay's, mostly the live hub's) needs only a stable sort by resident,
    a radix sort on 16-bit keys when there are few enough residents; the lexsort's two passes over the
    large batches of a replay were much of its time."""
    if not _in_order(t):
        return np.lexsort((t, idx))
    if idx.size and n_residents <= 1 << 16 and int(idx.min()) >= 0:
        return np.argsort(idx.astype(np.uint16), kind="stable")
    return np.argsort(idx, kind="stable")


class _EarlierCounts:
    """For each reading of a batch (grouped by wearer, in time order), how many of the batch's `counted`
    readings of the same wearer came before it: in its band state over all hours (`pooled`), or in some
    hours (`around`), in its state or any. One sort per question, then binary searches over
    (key, position): no loop over readings."""

    def __init__(self, counted: Bools, idx: Indices, state: npt.NDArray[np.intp],
                 bins: npt.NDArray[np.intp]) -> None:
        self._span = idx.size + 1
        self._position = np.arange(idx.size, dtype=np.int64)
        self._idx, self._state = idx.astype(np.int64), state.astype(np.int64)
        at = self._position[counted]
        who, what, hour = self._idx[counted], self._state[counted], bins[counted].astype(np.int64)
        self._by_state = np.sort((who * 3 + what) * self._span + at)
        self._by_bin = np.sort(((who * 3 + what) * week.N_BINS + hour) * self._span + at)
        self._by_bin_any_state = np.sort((who * week.N_BINS + hour) * self._span + at)

    def _before(self, ordered: I64, keys: I64) -> I64:
        base = keys * self._span
        position = self._position if keys.ndim == 1 else self._position[:, None]
        return np.asarray(np.searchsorted(ordered, base + position) - np.searchsorted(ordered, base),
                          dtype=np.int64)

    def pooled(self) -> F64:
        return self._before(self._by_state, self._idx * 3 + self._state).astype(np.float64)

    def around(self, around: npt.NDArray[np.intp], any_state: bool = False) -> F64:
        hours = around.astype(np.int64)
        if any_state:
            keys = self._idx[:, None] * week.N_BINS + hours
            return np.asarray(self._before(self._by_bin_any_state, keys).sum(axis=1), dtype=np.float64)
        keys = (self._idx[:, None] * 3 + self._state[:, None]) * week.N_BINS + hours
        return np.asarray(self._before(self._by_bin, keys).sum(axis=1), dtype=np.float64)


def _around(bins: npt.NDArray[np.intp], hours: int) -> npt.NDArray[np.intp]:
    """(k, 2·hours+1): each rate bin with the bins of the hours either side, within the same half
    (weekday or weekend) and wrapping around midnight."""
    offsets = np.arange(-hours, hours + 1)
    half, hour = np.divmod(bins, 24)
    return np.asarray(half[:, None] * 24 + (hour[:, None] + offsets[None, :]) % 24, dtype=np.intp)

