"""Caregivers' verdicts teach the inactivity detector: a false alarm moves that resident's sensitivity at
that time of day one bounded step toward fewer alerts, a missed incident reported by hand one step back;
each change is audited and an operator can revert it; the detector applies it for the band the clock is
in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hub.alerts.service import AlertService
from hub.clock import SystemClock
from hub.resident_activity import ResidentActivity
from hub.residents_cli import app as residents_cli
from hub.sensitivity import BANDS, CEILING, FLOOR, STEP, band_at, band_of
from tests.alerts.support import T0, alert_service, community_registry, resident_request

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


def test_the_command_line_reports_a_missed_incident_lists_the_changes_and_reverts_one(tmp_path: Path) -> None:
    store_path, registry_path = tmp_path / "hub.sqlite3", tmp_path / "registry.yaml"
    community_registry().dump(registry_path)
    service = alert_service(store_path, SystemClock())
    false_alarm = _false_alarm(service)
    service.close()
    env = {"HUB_STORE_PATH": str(store_path), "HUB_REGISTRY_PATH": str(registry_path), "COLUMNS": "200"}

    def run(*args: str) -> str:
        result = CliRunner().invoke(residents_cli, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    # A local time without an offset is the community's (Asia/Shanghai): 10:00 is the morning band.
    reported = run("missed", "r-wang", "--at", "2026-11-23 10:00", "--by", "张网格员", "--note", "在地上")
    assert f"r-wang morning {STEP:.2f} → 1.00 (missed by 张网格员" in reported
    listed = run("sensitivity", "r-wang")
    assert "morning 1.00" in listed and "afternoon 1.00" in listed
    assert f"alert {false_alarm}" in listed and "2026-11-23 10:00:00 UTC+8" in listed and "在地上" in listed

    service = alert_service(store_path, SystemClock())
    _, missed = service.sensitivity_changes("r-wang")
    service.close()
    assert (missed.cause, missed.actor, missed.incident_ms) == ("missed", "张网格员", 1_795_399_200_000)
    assert f"1.00 → {STEP:.2f} (reverted by duty" in run("revert", "r-wang", str(missed.id), "--by", "duty")
    assert f"morning {STEP:.2f}" in run("sensitivity", "r-wang"), "back to the value before it"

    refused = CliRunner().invoke(residents_cli, ["revert", "r-wang", "999", "--by", "duty"], env=env)
    assert refused.exit_code == 1 and "no sensitivity change 999" in refused.output
    refused = CliRunner().invoke(residents_cli, ["missed", "r-nobody", "--at", "2026-11-23 10:00"], env=env)
    assert refused.exit_code == 1 and "no resident" in refused.output
