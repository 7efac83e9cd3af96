"""A resident's current detector view, read from the running evaluation without stopping it.

The evaluation thread owns the detector and updates its per-resident arrays in place (and replaces them
when residents are added). This copies one resident's row: each array reference is taken once, then the
row's values are read from it, a handful of scalar reads and one small slice, so the evaluation is never
locked out, and a view never mixes two arrays of different sizes. The copy is taken again if the
evaluation changed the detector meanwhile (`ResidentActivity.read_consistent`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors import NEVER, NO_TIME, week
from devices import KINDS
from hub.registry import Registry
from hub.resident_activity import ResidentActivity


@dataclass(frozen=True, slots=True)
class DetectorView:
    evaluated: bool = False
    last_activity_ms: int | None = None
    expected_next_ms: int | None = None
    alert_deadline_ms: int | None = None
    critical_deadline_ms: int | None = None
    not_back_deadline_ms: int | None = None
    away: bool = False


def _time(value: np.int64) -> int | None:
    return None if value in (NO_TIME, NEVER) else int(value)


def detector_view(activity: ResidentActivity, resident: str) -> DetectorView:
    return activity.read_consistent(lambda: _row(activity, resident))


def _row(activity: ResidentActivity, resident: str) -> DetectorView:
    detector = activity.detector
    i = activity.index.get(resident)
    last_activity, deadline, critical, not_back = (
        detector.last_activity_ms_, detector.deadline_ms_, detector.critical_ms_, detector.not_back_ms_)
    last_door, last_indoor, out = detector.last_door_ms_, detector.last_indoor_ms_, detector.out_
    cum, offsets = detector.cum_, detector.utc_offset_s_
    if i is None or i >= min(len(a) for a in (last_activity, deadline, critical, not_back, last_door,
                                               last_indoor, out, cum, offsets)):
        return DetectorView()  # a resident added since the evaluation started: not followed yet
    last = last_activity[i]
    away = bool(out[i] and last_door[i] > last_indoor[i])  # as InactivityDetector.away decides
    expected = None
    if last != NO_TIME and not away:
        # The moment the learned rhythm expects one more active minute after the last one.
        row, offset = cum[i:i + 1].copy(), offsets[i:i + 1].copy()
        reached = week.reach(row, week.week_hours(np.array([last]), offset), 1.0)
        expected = int(week.to_epoch_ms(reached, offset)[0])
    return DetectorView(True, _time(last), expected, _time(deadline[i]), _time(critical[i]),
                        _time(not_back[i]), away)


def coverage_ok(registry: Registry, household: str, offline: set[str]) -> bool:
    """Whether any of the home's sensors still reports; a home without sensors has only the band, and
    the band's own silence is no coverage problem (the evaluation decides the same way)."""
    sensors = [d.id for d in registry.devices.values()  # as the evaluation's coverage check counts them
               if d.household == household and KINDS[d.kind].home_sensor]
    return not sensors or any(device not in offline for device in sensors)
