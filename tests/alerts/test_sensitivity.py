"""Caregivers' verdicts teach the inactivity detector: a false alarm moves that resident's sensitivity at
that time of day one bounded step toward fewer alerts, a missed incident reported by hand one step back;
each change is audited and an operator can revert it; the detector applies it for the band the clock is
in."""

from __future__ import annotations

import numpy as np
import pytest

from hub.alerts.service import AlertService
from hub.resident_activity import ResidentActivity
from hub.sensitivity import BANDS, CEILING, FLOOR, STEP, band_at, band_of
from tests.alerts.support import T0, community_registry, resident_request

HOUR_MS = 3_600_000
# T0 is 2026-11-23 10:13 in Shanghai: the morning band.
MORNING = BANDS.index("morning")


def _false_alarm(service: AlertService, kind: str = "inactivity", at_ms: int = T0) -> int:
    alert = service.raise_alert(resident_request(kind, raised_at_ms=at_ms,
                                                 evidence={"last_activity_ms": at_ms - 4 * HOUR_MS}))
    service.resolve(alert.id, "false_alarm", by="cg-li", note="she was napping")
    return alert.id


def test_bands_are_local_time_of_day() -> None:
    assert band_of(T0, "Asia/Shanghai") == MORNING == band_at(T0, 8 * 3600)
    assert band_of(T0, "UTC") == BANDS.index("night")  # 02:13 UTC


def test_a_false_alarm_moves_one_bounded_step_audited_and_reversible(service: AlertService) -> None:
    alert_id = _false_alarm(service)
    (change,) = service.sensitivity_changes("r-wang")
    assert (change.band, change.cause, change.actor, change.alert_id, change.at_ms) == \
        ("morning", "false_alarm", "cg-li", alert_id, T0)
    assert (change.old, change.new, change.note) == (1.0, STEP, "she was napping")
    (resolved,) = [e for e in service.get(alert_id).history if e.action == "resolved"]
    assert resolved.detail["sensitivity"] == {"change": change.id, "band": "morning", "old": 1.0, "new": STEP}

    # Not the SOS button's false alarm (a press is not a threshold), nor another resident's.
    _false_alarm(service, "sos")
    assert len(service.sensitivity_changes("r-wang")) == 1

    # Many false alarms: the floor holds.
    for k in range(1, 8):
        _false_alarm(service, at_ms=T0 + k * 60_000)
    assert service.sensitivity_changes("r-wang")[-1].new == FLOOR
    # At another time of day nothing changed.
    assert {c.band for c in service.sensitivity_changes("r-wang")} == {"morning"}

    # An operator takes the last change back: the value before it, audited as a change of its own.
    last = service.sensitivity_changes("r-wang")[-1]
    reverted = service.revert_sensitivity(last.id, by="duty", note="it was not a false alarm")
    assert (reverted.cause, reverted.reverts, reverted.old, reverted.new, reverted.actor) == \
        ("reverted", last.id, FLOOR, last.old, "duty")


def test_a_missed_incident_moves_it_back_and_the_ceiling_holds(service: AlertService) -> None:
    _false_alarm(service)
    # "We found her on the floor at 10:00, no alert came" (11:43 in Shanghai: also the morning band).
    missed = service.report_missed("r-wang", T0 + 90 * 60_000, by="cg-grid", note="on the floor")
    assert (missed.band, missed.cause, missed.incident_ms, missed.old, missed.new) == \
        ("morning", "missed", T0 + 90 * 60_000, STEP, 1.0)
    for _ in range(5):
        last = service.report_missed("r-wang", T0, by="cg-grid")
    assert last.new == CEILING
    with pytest.raises(Exception, match="no resident"):
        service.report_missed("r-nobody", T0, by="cg-grid")


def test_the_detector_applies_the_factor_of_the_band_the_clock_is_in() -> None:
    registry = community_registry()
    activity = ResidentActivity(registry)
    i = activity.index["r-wang"]
    offset = int(activity.detector.utc_offset_s_[i])
    morning = next(T0 + h * HOUR_MS for h in range(24) if band_at(T0 + h * HOUR_MS, offset) == MORNING)
    evening = next(T0 + h * HOUR_MS for h in range(24)
                   if band_at(T0 + h * HOUR_MS, offset) == BANDS.index("evening"))
    factors = [1.0] * len(BANDS)
    factors[MORNING] = 0.64
    activity.set_factors({"r-wang": factors})
    activity.tick(morning, set())
    assert np.isclose(activity.detector.sensitivity_[i], 0.64)
    activity.tick(evening, set())
    assert np.isclose(activity.detector.sensitivity_[i], 1.0)
    activity.set_factors({})  # every change reverted
    activity.tick(morning + 24 * HOUR_MS, set())
    assert np.isclose(activity.detector.sensitivity_[i], 1.0)
