"""The alert lifecycle, its audit history, merging of repeats, and escalation over caregiver tiers."""

from __future__ import annotations

import logging
import time
from contextlib import closing
from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.alerts.directory import recipient_tiers
from hub.alerts.model import Alert, AlertError, AlertRequest
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.alerts.sinks import AppriseSink, WebhookSink
from hub.clock import FollowedClock
from tests.alerts.support import (
    MINUTE_MS,
    T0,
    alert_service,
    community_registry,
    falling_object_request,
    resident_request,
)
from tests.registry_builder import RegistryBuilder


def actions(service: AlertService, alert_id: int) -> list[str]:
    return [e.action for e in service.get(alert_id).history]


def test_lifecycle_is_recorded_in_the_history(service: AlertService, clock: FollowedClock) -> None:
    alert = service.raise_alert(resident_request(evidence={"inactive_s": 14_400}))
    assert (alert.state, alert.tier, alert.count) == ("open", 1, 1)
    assert alert.deadline_ms == T0 + 30 * MINUTE_MS  # warning

    clock.advance_to(T0 + MINUTE_MS)
    acknowledged = service.acknowledge(alert.id, by="李女士")
    assert (acknowledged.state, acknowledged.acknowledged_by, acknowledged.acknowledged_ms) == \
        ("acknowledged", "李女士", T0 + MINUTE_MS)
    assert acknowledged.deadline_ms == T0 + MINUTE_MS + 24 * 3600 * 1000  # warning: resolve within a day
    assigned = service.assign(alert.id, to="cg-grid", by="李女士")
    assert assigned.assigned_to == "cg-grid"
    clock.advance_to(T0 + 20 * MINUTE_MS)
    resolved = service.resolve(alert.id, "visited", by="张网格员", note="在家，睡着了")
    assert (resolved.state, resolved.outcome, resolved.note, resolved.resolved_ms) == \
        ("resolved", "visited", "在家，睡着了", T0 + 20 * MINUTE_MS)

    history = service.get(alert.id).history
    assert [(e.actor, e.action, e.from_state, e.to_state) for e in history] == [
        ("hub", "raised", None, "open"),
        ("李女士", "acknowledged", "open", "acknowledged"),
        ("李女士", "assigned", "acknowledged", "acknowledged"),
        ("张网格员", "resolved", "acknowledged", "resolved"),
    ]
    assert history[0].detail["recipients"] == ["cg-li"]
    assert history[2].detail == {"to": "cg-grid", "previous": None}
    assert history[3].detail == {"outcome": "visited", "note": "在家，睡着了"}
    assert history[3].at_ms == T0 + 20 * MINUTE_MS


def test_invalid_transitions_say_why(service: AlertService) -> None:
    alert = service.raise_alert(resident_request())
    service.acknowledge(alert.id, by="李女士")
    with pytest.raises(AlertError, match="already acknowledged by 李女士"):
        service.acknowledge(alert.id, by="张网格员")
    with pytest.raises(AlertError, match="unknown outcome 'fine'"):
        service.resolve(alert.id, "fine", by="李女士")
    with pytest.raises(AlertError, match="no such caregiver"):
        service.assign(alert.id, to="cg-nobody", by="李女士")
    service.resolve(alert.id, "resident_ok", by="李女士")
    with pytest.raises(AlertError, match=r"already resolved by 李女士 \(resident_ok\)"):
        service.resolve(alert.id, "visited", by="张网格员")
    with pytest.raises(AlertError, match=r"cannot acknowledge .* already resolved"):
        service.acknowledge(alert.id, by="张网格员")
    with pytest.raises(AlertError, match=r"cannot assign .* already resolved"):
        service.assign(alert.id, to="cg-grid", by="张网格员")
    with pytest.raises(AlertError, match="there is no alert 999"):
        service.get(999)
    # Refused actions leave no trace.
    assert actions(service, alert.id) == ["raised", "acknowledged", "resolved"]


def test_unknown_kind_and_severity_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown alert kind 'fire'"):
        resident_request(kind="fire")
    with pytest.raises(ValidationError):
        resident_request(severity="urgent")


def test_repeats_fold_into_the_one_unresolved_alert(service: AlertService) -> None:
    first = service.raise_alert(resident_request(evidence={"inactive_s": 100}))
    again = service.raise_alert(resident_request(raised_at_ms=T0 + MINUTE_MS, evidence={"inactive_s": 160}))
    assert again.id == first.id
    assert (again.count, again.first_seen_ms, again.last_seen_ms) == (2, T0, T0 + MINUTE_MS)
    assert again.evidence == {"inactive_s": 160}
    # An older request arriving late does not move last_seen back.
    late = service.raise_alert(resident_request(raised_at_ms=T0 - MINUTE_MS))
    assert (late.count, late.last_seen_ms) == (3, T0 + MINUTE_MS)

    other_kind = service.raise_alert(resident_request(kind="not_back_home"))
    assert other_kind.id != first.id
    # Acknowledged is still unresolved: repeats keep folding in.
    service.acknowledge(first.id, by="李女士")
    assert service.raise_alert(resident_request()).id == first.id
    service.resolve(first.id, "resident_ok", by="李女士")
    reopened = service.raise_alert(resident_request(raised_at_ms=T0 + 60 * MINUTE_MS))
    assert reopened.id not in (first.id, other_kind.id)
    assert (reopened.state, reopened.count) == ("open", 1)


def test_severity_rises_but_never_falls(service: AlertService, clock: FollowedClock) -> None:
    alert = service.raise_alert(resident_request(severity="warning"))
    assert alert.deadline_ms == T0 + 30 * MINUTE_MS
    clock.advance_to(T0 + MINUTE_MS)
    raised = service.raise_alert(resident_request(severity="critical"))
    assert raised.severity == "critical"
    assert raised.deadline_ms == T0 + MINUTE_MS + 5 * MINUTE_MS  # the critical deadline, sooner
    lowered = service.raise_alert(resident_request(severity="info"))
    assert (lowered.severity, lowered.count) == ("critical", 3)
    history = service.get(alert.id).history
    assert [e.action for e in history] == ["raised", "repeated", "severity_raised", "repeated"]
    assert history[2].detail == {"from": "warning", "to": "critical"}


def test_sos_counts_presses_once_each(service: AlertService) -> None:
    press_1 = resident_request("sos", "critical", raised_at_ms=T0, evidence={"occurrence": T0})
    alert = service.raise_alert(press_1)
    # The same press redelivered (at-least-once intake) is not a second press.
    assert service.raise_alert(press_1).count == 1
    press_2 = resident_request("sos", "critical", raised_at_ms=T0 + 30_000,
                               evidence={"occurrence": T0 + 30_000})
    assert service.raise_alert(press_2).id == alert.id
    assert service.get(alert.id).alert.count == 2
    service.resolve(alert.id, "resident_ok", by="李女士")
    # A late redelivery of an already counted press neither reopens nor opens anything.
    assert service.raise_alert(press_2).id == alert.id
    assert service.list(kind="sos") == [service.get(alert.id).alert]
    # Without an explicit occurrence the reading's time identifies the press.
    press_3 = resident_request("sos", "critical", raised_at_ms=T0 + 90_000)
    new = service.raise_alert(press_3)
    assert new.id != alert.id
    assert service.raise_alert(press_3).count == 1
    assert actions(service, alert.id) == ["raised", "repeated", "resolved"]


def test_falling_objects_merge_per_building_and_go_to_security(service: AlertService) -> None:
    first = service.raise_alert(falling_object_request("hac-07-0012"))
    assert service.raise_alert(falling_object_request("hac-07-0012")).count == 1
    second = service.raise_alert(falling_object_request("hac-07-0013", raised_at_ms=T0 + 5_000))
    assert (second.id, second.count) == (first.id, 2)
    raised = service.get(first.id).history[0]
    assert raised.detail["recipients"] == ["cg-guard"]


def test_list_filters(service: AlertService, clock: FollowedClock) -> None:
    inactivity = service.raise_alert(resident_request("inactivity", "warning"))
    sos = service.raise_alert(resident_request("sos", "critical", raised_at_ms=T0 + MINUTE_MS))
    falling = service.raise_alert(falling_object_request("e1", raised_at_ms=T0 + 2 * MINUTE_MS))
    service.acknowledge(sos.id, by="李女士")

    def ids(alerts: list[Alert]) -> list[int]:
        return [a.id for a in alerts]

    assert ids(service.list()) == [falling.id, sos.id, inactivity.id]
    assert ids(service.list(state="acknowledged")) == [sos.id]
    assert ids(service.list(kind="inactivity")) == [inactivity.id]
    assert ids(service.list(min_severity="critical")) == [falling.id, sos.id]
    assert ids(service.list(min_severity="info")) == [falling.id, sos.id, inactivity.id]
    assert ids(service.list(since_ms=T0 + MINUTE_MS)) == [falling.id, sos.id]
    assert ids(service.list(community="elsewhere")) == []
    assert ids(service.list(building="b7", limit=1)) == [falling.id]


def test_escalation_goes_tier_by_tier_until_acknowledged(service: AlertService, clock: FollowedClock) -> None:
    alert = service.raise_alert(resident_request("fall", "critical"))
    clock.advance_to(T0 + 4 * MINUTE_MS)
    assert service.tick(clock.now_ms()) == []
    clock.advance_to(T0 + 5 * MINUTE_MS)
    [escalated] = service.tick(clock.now_ms())
    assert (escalated.id, escalated.tier, escalated.deadline_ms) == (alert.id, 2, T0 + 10 * MINUTE_MS)
    assert service.tick(clock.now_ms()) == []  # not twice for the same deadline
    event = service.get(alert.id).history[-1]
    assert (event.action, event.actor, event.at_ms) == ("escalated", "hub", T0 + 5 * MINUTE_MS)
    assert event.detail == {"from_tier": 1, "tier": 2, "recipients": ["cg-grid"]}

    clock.advance_to(T0 + 10 * MINUTE_MS)
    assert service.tick(clock.now_ms()) == []
    assert actions(service, alert.id)[-1] == "escalation_exhausted"
    assert service.get(alert.id).alert.deadline_ms is None


def test_the_running_service_escalates_on_the_hubs_clock(tmp_path: Path, clock: FollowedClock) -> None:
    """A simulation at 600x: the deadline is met in the hub's time, not tick_interval_s of wall time later
    (5 wall seconds there are 50 simulated minutes)."""
    service = alert_service(tmp_path / "hub.sqlite3", clock)
    service.start()
    try:
        alert = service.raise_alert(resident_request("fall", "critical"))
        for minute in range(1, 6):  # the simulator's clock messages, one per simulated minute, 0.1 s apart
            time.sleep(0.1)
            clock.advance_to(T0 + minute * MINUTE_MS)
        wall_deadline = time.monotonic() + 2  # well under the 5-second wall-time fallback
        while actions(service, alert.id)[-1] != "escalated" and time.monotonic() < wall_deadline:
            time.sleep(0.02)
        event = service.get(alert.id).history[-1]
        assert (event.action, event.at_ms) == ("escalated", T0 + 5 * MINUTE_MS)
    finally:
        service.close()


def test_an_alert_that_reaches_nobody_is_itself_an_alert(tmp_path: Path, clock: FollowedClock,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A falling object in a community with no property security and no duty officer: raised all the same,
    with a WARNING and an `unreachable` alert, instead of quietly running out to `escalation_exhausted`."""
    no_staff = (RegistryBuilder().community("sunshine", "阳光社区").compound("c1").building("b7", floors=18)
                .device("hac-07", "high_altitude_camera", building="b7").registry())
    service = alert_service(tmp_path / "hub.sqlite3", clock, no_staff)
    caplog.set_level(logging.WARNING, logger="hub.alerts.service")
    try:
        falling = service.raise_alert(falling_object_request("e-1"))
        [ops] = service.list(kind="unreachable")
        assert (ops.subject, ops.severity, ops.evidence) == \
            ("b7", "critical", {"alert_id": falling.id, "alert_kind": "falling_object"})
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert f"alert {falling.id} (falling_object about b7 in sunshine) reaches nobody" in warnings[0]
        assert len(warnings) == 2, "the unreachable alert reaches nobody either: logged, not raised again"
        assert len(service.list()) == 2
    finally:
        service.close()


def test_an_alert_with_recipients_raises_no_unreachable_alert(service: AlertService) -> None:
    service.raise_alert(falling_object_request("e-1"))
    service.raise_alert(resident_request("fall", "critical"))
    assert service.list(kind="unreachable") == []


def test_acknowledging_stops_escalation(service: AlertService, clock: FollowedClock) -> None:
    alert = service.raise_alert(resident_request("fall", "critical"))
    clock.advance_to(T0 + 2 * MINUTE_MS)
    service.acknowledge(alert.id, by="李女士")
    clock.advance_to(T0 + 60 * MINUTE_MS)
    assert service.tick(clock.now_ms()) == []
    assert actions(service, alert.id) == ["raised", "acknowledged"]


def test_deadlines_come_from_settings(tmp_path: Path, clock: FollowedClock) -> None:
    settings = AlertSettings(ack_deadline_warning_s=60)
    service = alert_service(tmp_path / "hub.sqlite3", clock, settings=settings)
    try:
        alert = service.raise_alert(resident_request(severity="warning"))
        assert alert.deadline_ms == T0 + 60_000
        assert service.tick(T0 + 60_000)[0].tier == 2
    finally:
        service.close()


def test_a_restarted_service_still_escalates_overdue_alerts(tmp_path: Path, clock: FollowedClock) -> None:
    store_path = tmp_path / "hub.sqlite3"
    before = alert_service(store_path, clock)
    alert = before.raise_alert(resident_request("sos", "critical"))
    before.close()  # the hub stops (or dies) before the deadline

    clock.advance_to(T0 + 3 * 60 * MINUTE_MS)  # and comes back hours later
    after = alert_service(store_path, clock)
    try:
        [escalated] = after.tick(clock.now_ms())
        assert (escalated.id, escalated.tier) == (alert.id, 2)
        # The new tier gets a full deadline from when it was told, not one already passed.
        assert escalated.deadline_ms == clock.now_ms() + 5 * MINUTE_MS
    finally:
        after.close()


def test_request_from_detectors_round_trips_its_fields() -> None:
    request = AlertRequest(kind="device_offline", severity="info", subject="hac-07", community="sunshine",
                           building="b7", device="hac-07", raised_at_ms=T0)
    assert request.household is None and request.resident is None
    assert request.occurrence() is None


def test_equipment_alerts_go_to_the_duty_officer_not_the_family() -> None:
    registry = community_registry()
    for kind in ("coverage", "device_offline", "battery_low"):
        tiers = recipient_tiers(registry, kind=kind, community="sunshine", household="h1402",
                                resident="r-wang")
        assert [c.role for tier in tiers.values() for c in tier] == ["duty_officer"], kind
    welfare = recipient_tiers(registry, kind="inactivity", community="sunshine", household="h1402",
                              resident="r-wang")
    assert welfare[1][0].role == "family"


def test_everyone_told_hears_who_took_it_on_and_how_it_ended(tmp_path: Path, clock: FollowedClock) -> None:
    # A webhook no one listens on: deliveries are queued (and their sending fails), which is what is read.
    nowhere = WebhookSink("http://127.0.0.1:9/", "s", 1, allow_http=True)
    service = alert_service(tmp_path / "hub.sqlite3", clock, sinks=[nowhere])
    try:
        alert = service.raise_alert(resident_request("fall", "critical"))
        clock.advance_to(T0 + 5 * MINUTE_MS)
        service.tick(clock.now_ms())  # tier 2 told
        service.acknowledge(alert.id, by="cg-grid")
        service.resolve(alert.id, "visited", by="cg-grid", note="on the floor, helped up")
        told = [(d.reason, d.tier) for d in service.get(alert.id).deliveries]
        assert told == [("raised", 1), ("escalated", 2), ("acknowledged", 1), ("acknowledged", 2),
                        ("resolved", 1), ("resolved", 2)]
    finally:
        service.close()


def test_the_running_hub_takes_over_what_the_cli_did(tmp_path: Path, clock: FollowedClock) -> None:
    """The CLI runs no sinks and no live stream: the hub's next tick tells the caregivers already notified
    and announces the change — also when the change was made while the hub was down."""
    path = tmp_path / "hub.sqlite3"
    nowhere = WebhookSink("http://127.0.0.1:9/", "s", 1, allow_http=True)
    announced: list[Alert] = []
    with closing(AlertService(path, community_registry, clock, AlertSettings(), hands_over=True)) as cli:
        with closing(alert_service(path, clock, sinks=[nowhere])) as hub:
            hub.add_listener(announced.append)
            alert = hub.raise_alert(resident_request("fall", "critical"))
            announced.clear()
            cli.acknowledge(alert.id, by="cg-li")
            cli.assign(alert.id, to="cg-grid", by="cg-li")
            assert announced == [] and [d.reason for d in hub.get(alert.id).deliveries] == ["raised"]
            hub.tick(clock.now_ms())
            (taken,) = announced
            assert (taken.id, taken.state, taken.assigned_to) == (alert.id, "acknowledged", "cg-grid")
            # The assignee is told too, through their own channels.
            assert [(d.reason, d.recipient) for d in hub.get(alert.id).deliveries][1:] == \
                [("acknowledged", None), ("assigned", None)]
            hub.tick(clock.now_ms())
            assert len(announced) == 1 and len(hub.get(alert.id).deliveries) == 3, "taken over once"

        cli.resolve(alert.id, "resident_ok", by="cg-grid")  # while the hub is down
        with closing(alert_service(path, clock, sinks=[nowhere])) as restarted:
            restarted.tick(clock.now_ms())
            told = [d.reason for d in restarted.get(alert.id).deliveries]
            assert told == ["raised", "acknowledged", "assigned", "resolved"]


def _told(service: AlertService, alert_id: int) -> list[tuple[str, int]]:
    return [(d.reason, d.tier) for d in service.get(alert_id).deliveries]


def test_a_new_incident_is_told_also_after_acknowledging_and_a_repeat_is_not(
        tmp_path: Path, clock: FollowedClock) -> None:
    nowhere = WebhookSink("http://127.0.0.1:9/", "s", 1, allow_http=True)
    with closing(alert_service(tmp_path / "hub.sqlite3", clock, sinks=[nowhere])) as service:
        silence = {"last_activity_ms": T0 - 3 * 3600_000}
        alert = service.raise_alert(resident_request(evidence=silence))
        service.acknowledge(alert.id, by="cg-li")
        # The same silence, re-raised every minute by the detector: counted, told to no one.
        service.raise_alert(resident_request(evidence=silence, raised_at_ms=T0 + MINUTE_MS))
        assert _told(service, alert.id) == [("raised", 1), ("acknowledged", 1)]
        # She was active again, then silent again: a new incident, although the first is acknowledged.
        later = service.raise_alert(resident_request(evidence={"last_activity_ms": T0 + 3600_000},
                                                     raised_at_ms=T0 + 4 * 3600_000))
        assert (later.id, later.state, later.count) == (alert.id, "acknowledged", 3)
        assert _told(service, alert.id)[-1] == ("new_incident", 1)
        history = [e for e in service.get(alert.id).history if e.action == "repeated"]
        assert [e.detail["new_incident"] for e in history] == [False, True]

        # An SOS pressed again after it was acknowledged; the new press redelivered adds nothing.
        sos = service.raise_alert(resident_request("sos", "critical", raised_at_ms=T0))
        service.acknowledge(sos.id, by="cg-li")
        for _ in range(2):
            service.raise_alert(resident_request("sos", "critical", raised_at_ms=T0 + 3 * 3600_000))
        assert _told(service, sos.id) == [("raised", 1), ("acknowledged", 1), ("new_incident", 1)]
        assert service.get(sos.id).alert.count == 2


def test_an_acknowledged_alert_past_its_resolution_deadline_is_told_to_the_tier_above_once(
        tmp_path: Path, clock: FollowedClock) -> None:
    nowhere = WebhookSink("http://127.0.0.1:9/", "s", 1, allow_http=True)
    with closing(alert_service(tmp_path / "hub.sqlite3", clock, sinks=[nowhere])) as service:
        alert = service.raise_alert(resident_request("fall", "critical"))
        acknowledged = service.acknowledge(alert.id, by="cg-li")  # the daughter, tier 1
        assert acknowledged.deadline_ms == T0 + 2 * 3600_000  # critical: resolve within 2 h
        clock.advance_to(T0 + 2 * 3600_000 - 1)
        assert service.tick(clock.now_ms()) == []
        clock.advance_to(T0 + 2 * 3600_000)
        (overdue,) = service.tick(clock.now_ms())
        assert (overdue.state, overdue.deadline_ms) == ("acknowledged", None)
        assert _told(service, alert.id)[-1] == ("overdue", 2)  # the grid worker, above the daughter
        clock.advance_to(T0 + 5 * 3600_000)
        assert service.tick(clock.now_ms()) == [], "once per deadline"
        (event,) = [e for e in service.get(alert.id).history if e.action == "overdue"]
        assert event.detail == {"acknowledged_by": "cg-li", "tier": 2, "deadline_ms": T0 + 2 * 3600_000,
                                "recipients": ["cg-grid"]}
        # Acknowledged by the top tier: nobody above, so the top tier itself hears it.
        other = service.raise_alert(resident_request("sos", "critical"))
        service.acknowledge(other.id, by="cg-grid")
        clock.advance_to(T0 + 8 * 3600_000)
        service.tick(clock.now_ms())
        assert _told(service, other.id)[-1] == ("overdue", 2)


def test_assigning_tells_the_assignee_through_their_channels(tmp_path: Path, clock: FollowedClock) -> None:
    """The apprise sink addresses people: the assignee is the one addressed, no one else."""
    registry = community_registry({"cg-li": ["json://127.0.0.1:9/li"], "cg-grid": ["json://127.0.0.1:9/g"]})
    with closing(alert_service(tmp_path / "hub.sqlite3", clock, registry, sinks=[AppriseSink()])) as service:
        alert = service.raise_alert(resident_request("fall", "critical"))
        service.assign(alert.id, to="cg-grid", by="cg-duty")
        deliveries = service.get(alert.id).deliveries
        assert [(d.reason, d.tier, d.recipient) for d in deliveries] == [
            ("raised", 1, "cg-li"), ("assigned", 2, "cg-grid")]
        (event,) = [e for e in service.get(alert.id).history if e.action == "assigned"]
        assert (event.actor, event.detail["to"]) == ("cg-duty", "cg-grid")
        assert deliveries[1].event_id == event.id


def test_a_cameras_duplicate_event_adds_nothing_and_a_new_event_is_told(
        tmp_path: Path, clock: FollowedClock) -> None:
    nowhere = WebhookSink("http://127.0.0.1:9/", "s", 1, allow_http=True)
    with closing(alert_service(tmp_path / "hub.sqlite3", clock, sinks=[nowhere])) as service:
        alert = service.raise_alert(falling_object_request("evt-1"))
        service.acknowledge(alert.id, by="cg-guard")
        for _ in range(2):  # the same event from a second camera, or redelivered
            service.raise_alert(falling_object_request("evt-1", raised_at_ms=T0 + 1000))
        assert [r for r, _ in _told(service, alert.id)] == ["raised", "acknowledged"]
        assert service.get(alert.id).alert.count == 1
        service.raise_alert(falling_object_request("evt-2", raised_at_ms=T0 + 60_000))
        assert [r for r, _ in _told(service, alert.id)] == ["raised", "acknowledged", "new_incident"]
