"""Hour-of-week arithmetic for per-resident rate profiles, vectorized over residents.

A resident's activity rate is piecewise constant over the 168 local hours of a week (Monday 00:00 first).
Its integral over any interval comes from a cumulative table of 169 entries per resident: the integral up
to local week-hour `x` (a float, hours since a Monday 00:00) is
`floor(x / 168) * total + cum[h] + frac * rate[h]`, with `h = floor(x) % 168`. That turns "expected events
between two times" into a couple of gathers, and its inverse ("when does the expected count reach S")
into a comparison against the table, with no loop over time.

Rates are learned in 48 bins: 24 local hours × {weekday, weekend}. A week of 168 separate bins would see
each bin once a week and need months before habit outweighs the prior; weekdays of elderly people who
no longer work look alike, while weekends differ (family visits, lie-ins), so 48 bins learn five times
faster on weekdays and still keep the weekend rhythm apart.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
HOURS_PER_WEEK = 168
N_BINS = 48
# 1970-01-01 was a Thursday: shifting by three days puts week-hour 0 on a Monday 00:00.
_MONDAY_SHIFT_MS = 3 * 24 * HOUR_MS

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

_WEEK_HOURS = np.arange(HOURS_PER_WEEK)
BIN_OF_WEEK_HOUR: npt.NDArray[np.intp] = (
    (_WEEK_HOURS // 24 >= 5).astype(np.intp) * 24 + _WEEK_HOURS % 24)
"""Rate bin (0..47) of each week-hour: weekday hours are bins 0..23, weekend hours 24..47."""

_ONE_HOT = np.eye(N_BINS)[BIN_OF_WEEK_HOUR]  # (168, 48)
HOURS_PER_BIN_PER_WEEK: F64 = _ONE_HOT.sum(axis=0)  # 5 for weekday bins, 2 for weekend bins
# Hours of each bin elapsed in a week before week-hour h (169 rows: row 168 is a whole week).
_BIN_HOURS_BEFORE: F64 = np.vstack([np.zeros((1, N_BINS)), np.cumsum(_ONE_HOT, axis=0)])


def week_hours(t_ms: I64, utc_offset_s: npt.NDArray[np.integer]) -> F64:
    """Local hours since the Monday 00:00 that starts the epoch's first local week."""
    local_ms = t_ms.astype(np.int64) + utc_offset_s.astype(np.int64) * 1000 + _MONDAY_SHIFT_MS
    # Split before converting to float so millisecond precision survives decades of epoch.
    whole, rest = np.divmod(local_ms, HOUR_MS)
    return whole.astype(np.float64) + rest / HOUR_MS


def to_epoch_ms(x_hours: F64, utc_offset_s: npt.NDArray[np.integer]) -> I64:
    """Inverse of `week_hours`, rounded up to the next millisecond (a deadline is never early)."""
    whole = np.floor(x_hours)
    rest_ms = np.ceil((x_hours - whole) * HOUR_MS - 1e-6)
    return (whole.astype(np.int64) * HOUR_MS + rest_ms.astype(np.int64)
            - utc_offset_s.astype(np.int64) * 1000 - _MONDAY_SHIFT_MS)


def bin_of(x_hours: F64) -> npt.NDArray[np.intp]:
    return BIN_OF_WEEK_HOUR[np.floor(x_hours).astype(np.int64) % HOURS_PER_WEEK]


def bin_hours_until(x_hours: F64) -> F64:
    """(k, 48): hours of each bin elapsed between week-hour 0 and `x_hours` (the learning exposure)."""
    weeks, within = np.divmod(x_hours, HOURS_PER_WEEK)
    h = np.floor(within).astype(np.intp)
    exposure = weeks[:, None] * HOURS_PER_BIN_PER_WEEK[None, :] + _BIN_HOURS_BEFORE[h]
    exposure[np.arange(len(h)), BIN_OF_WEEK_HOUR[h]] += within - h
    return exposure


def cumulative(bin_rates: F64) -> F32:
    """(k, 48) rates per bin → (k, 169) cumulative integral over the week-hours."""
    hourly = bin_rates[:, BIN_OF_WEEK_HOUR]
    cum = np.zeros((len(bin_rates), HOURS_PER_WEEK + 1), dtype=np.float32)
    np.cumsum(hourly, axis=1, out=cum[:, 1:])
    return cum


def integral_to(cum: F32, x_hours: F64) -> F64:
    """Integral of each row's rate from week-hour 0 to `x_hours` (row i of `cum` with x_hours[i])."""
    weeks, within = np.divmod(x_hours, HOURS_PER_WEEK)
    h = np.floor(within).astype(np.intp)
    rows = np.arange(len(h))
    start = cum[rows, h].astype(np.float64)
    rate = cum[rows, h + 1] - start
    return weeks * cum[:, HOURS_PER_WEEK] + start + (within - h) * rate


def integral(cum: F32, x0_hours: F64, x1_hours: F64) -> F64:
    """Expected events between two week-hours, per row. Both ends share the week offset, so the large
    multiple of the weekly total cancels exactly."""
    base = np.floor(x0_hours / HOURS_PER_WEEK) * HOURS_PER_WEEK
    return integral_to(cum, x1_hours - base) - integral_to(cum, x0_hours - base)


def reach(cum: F32, x0_hours: F64, amount: F64 | float) -> F64:
    """The week-hour at which the integral from `x0_hours` reaches `amount` (rates must be > 0)."""
    base = np.floor(x0_hours / HOURS_PER_WEEK) * HOURS_PER_WEEK
    total = cum[:, HOURS_PER_WEEK].astype(np.float64)
    target = integral_to(cum, x0_hours - base) + amount
    weeks = np.floor(target / total)
    remainder = target - weeks * total
    # The last table entry at or below the remainder is the hour in which the target falls.
    h = np.minimum((cum[:, 1:].astype(np.float64) <= remainder[:, None]).sum(axis=1), HOURS_PER_WEEK - 1)
    rows = np.arange(len(h))
    start = cum[rows, h].astype(np.float64)
    rate = cum[rows, h + 1] - start
    frac = np.clip((remainder - start) / rate, 0.0, 1.0)
    return np.asarray(base + weeks * HOURS_PER_WEEK + h + frac, dtype=np.float64)
