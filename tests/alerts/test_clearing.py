"""Equipment alerts clear themselves when their cause ends (resolved by the hub as `cleared`, everyone told
hears it); welfare alerts never do. And who hears of each new kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from devices import KINDS
from hub.alerts.directory import OPERATOR_KINDS, recipient_tiers
from hub.alerts.model import ALERT_KINDS, SELF_CLEARING_KINDS, AlertError, AlertRequest, ClearRequest
from hub.alerts.service import AlertService
from hub.clock import FollowedClock
from tests.alerts.support import MINUTE_MS, T0, alert_service, community_registry, resident_request


@pytest.fixture
def service(tmp_path: Path, clock: FollowedClock) -> Iterator[AlertService]:
    service = alert_service(tmp_path / "hub.sqlite3", clock)
    yield service
    service.close()


def camera_request(kind: str) -> AlertRequest:
    return AlertRequest(kind=kind, severity="warning", subject="hac-07", community="sunshine", building="b7",
                        device="hac-07", evidence={"lens_blocked": True}, raised_at_ms=T0)


def test_an_equipment_alert_is_cleared_by_the_hub_and_everyone_told_hears_it(
        service: AlertService, clock: FollowedClock) -> None:
    alert = service.raise_alert(camera_request("lens_blocked"))
    clock.advance_to(T0 + 5 * MINUTE_MS)
    cleared = service.clear(ClearRequest(kind="lens_blocked", subject="hac-07", device="hac-07",
                                         evidence={"lens_blocked": False}, cleared_at_ms=T0 + 4 * MINUTE_MS))
    assert cleared is not None
    assert (cleared.id, cleared.state, cleared.outcome, cleared.resolved_by, cleared.resolved_ms) == (
        alert.id, "resolved", "cleared", "hub", T0 + 5 * MINUTE_MS)
    assert cleared.deadline_ms is None, "no escalation of what is over"
    last = service.get(alert.id).history[-1]
    assert (last.action, last.actor, last.from_state, last.to_state) == ("cleared", "hub", "open", "resolved")
    assert last.detail == {"outcome": "cleared", "cause_ended_ms": T0 + 4 * MINUTE_MS,
                           "evidence": {"lens_blocked": False}}
    assert service.clear(ClearRequest(kind="lens_blocked", subject="hac-07", cleared_at_ms=T0)) is None
    again = service.raise_alert(camera_request("lens_blocked"))
    assert again.id != alert.id and again.state == "open", "blocked again: a new alert"


def test_a_healthy_reading_older_than_the_fault_clears_nothing(service: AlertService) -> None:
    """A late reading, overtaken on the way by the faulty one, says nothing of the fault now."""
    alert = service.raise_alert(camera_request("lens_blocked"))
    late = ClearRequest(kind="lens_blocked", subject="hac-07", device="hac-07",
                        evidence={"lens_blocked": False}, cleared_at_ms=T0 - MINUTE_MS)
    assert service.clear(late) is None
    assert service.get(alert.id).alert.state == "open"


def test_nothing_to_clear_changes_nothing(service: AlertService) -> None:
    assert service.clear(ClearRequest(kind="tamper", subject="door-1", cleared_at_ms=T0)) is None
    assert service.list() == []


def test_clearing_a_batch_clears_only_what_is_unresolved(service: AlertService) -> None:
    """After a start every device's first healthy reading asks to clear: one read says which to."""
    blocked = service.raise_alert(camera_request("lens_blocked"))
    service.raise_alert(camera_request("tamper"))
    healthy = [ClearRequest(kind=kind, subject=subject, cleared_at_ms=T0 + MINUTE_MS)
               for kind in ("lens_blocked", "battery_low") for subject in ("hac-07", "hac-08", "door-1")]
    cleared = service.clear_all(healthy)
    assert [(alert.id, alert.outcome) for alert in cleared] == [(blocked.id, "cleared")]
    assert [alert.kind for alert in service.list() if alert.state != "resolved"] == ["tamper"]
    assert service.clear_all([]) == []


@pytest.mark.parametrize("kind", ["sos", "fall", "inactivity", "heart_rate", "left_geofence",
                                  "door_lingering", "falling_object"])
def test_welfare_alerts_never_clear_by_themselves(kind: str) -> None:
    with pytest.raises(ValidationError, match="never clear by themselves"):
        ClearRequest(kind=kind, subject="r-wang", cleared_at_ms=T0)


def test_people_cannot_resolve_with_cleared(service: AlertService) -> None:
    alert = service.raise_alert(camera_request("tamper"))
    with pytest.raises(AlertError, match="unknown outcome"):
        service.resolve(alert.id, "cleared", by="值班员")


@pytest.mark.parametrize(("kind", "recipients"), [
    ("tamper", ["cg-duty"]), ("camera_offline", ["cg-duty"]), ("lens_blocked", ["cg-duty"]),
    ("storage_failed", ["cg-duty"]), ("low_frame_rate", ["cg-duty"]),
    ("door_lingering", ["cg-li"]), ("heart_rate", ["cg-li"]), ("not_worn", ["cg-li"]),
    ("left_geofence", ["cg-li"]),
])
def test_who_is_told_first(kind: str, recipients: list[str]) -> None:
    request = resident_request(kind)
    tiers = recipient_tiers(community_registry(), kind=kind, community="sunshine", household="h1402",
                            resident=request.resident)
    assert [c.id for c in tiers[min(tiers)]] == recipients


def test_every_alert_a_kind_declares_is_known_and_every_fault_clears_itself_for_the_duty_officer() -> None:
    declared = {fault.alert for kind in KINDS.values() for fault in kind.faults} | {
        event.alert for kind in KINDS.values() for event in kind.night_events} | {
        vital.alert for kind in KINDS.values() for vital in kind.vitals}
    assert declared <= set(ALERT_KINDS)
    faults = {fault.alert for kind in KINDS.values() for fault in kind.faults}
    assert faults <= SELF_CLEARING_KINDS & OPERATOR_KINDS
    assert set(ALERT_KINDS) >= SELF_CLEARING_KINDS
