"""Reports filed by hand (`hub.alerts.reports`) and reopening (`AlertService.reopen`): both run the same
loop as the detectors' alerts, with who did what in the history; and the links that belong to them."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from hub.alerts.links import LinkRefusedError, dispatch_token, is_dispatch_token, issue, read
from hub.alerts.model import AlertError
from hub.alerts.reports import report_request
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.alerts.sinks import AppriseSink, WebhookSink
from hub.clock import FollowedClock
from tests.alerts.support import MINUTE_MS, T0, alert_service, community_registry, resident_request


def told(service: AlertService, alert_id: int) -> list[tuple[str, str | None]]:
    return [(d.reason, d.recipient) for d in service.get(alert_id).deliveries]


def test_a_report_becomes_an_alert_of_its_category_told_by_the_directory(service: AlertService) -> None:
    request = report_request(community_registry(), category="resident_unwell", place="resident",
                             place_id="r-wang", note="敲门没人应", by="cg-grid", at_ms=T0,
                             location={"lat": 31.23, "lon": 121.47})
    assert (request.kind, request.severity, request.community, request.building, request.household) == \
        ("report_resident_unwell", "critical", "sunshine", "b7", "h1402")
    alert = service.raise_alert(request, by="cg-grid", role="caregiver")
    assert alert.evidence["note"] == "敲门没人应" and alert.evidence["reporter_name"] == "张网格员"
    assert alert.evidence["location"] == {"lat": 31.23, "lon": 121.47}
    (raised,) = service.get(alert.id).history
    assert (raised.actor, raised.action, raised.detail["role"]) == ("cg-grid", "raised", "caregiver")
    assert raised.detail["recipients"] == ["cg-li"]  # the resident's family first, as for any alert
    assert raised.detail["report"] == {"category": "resident_unwell", "note": "敲门没人应",
                                       "reported_by": "cg-grid"}

    # A hazard in a building goes to property security; a broken device to the duty officer.
    hazard = service.raise_alert(report_request(community_registry(), category="hazard", place="building",
                                                place_id="b7", note="楼梯灯坏了", by="cg-grid", at_ms=T0))
    assert (hazard.kind, hazard.severity, hazard.household) == ("report_hazard", "warning", None)
    assert service.get(hazard.id).history[0].detail["recipients"] == ["cg-guard"]
    broken = service.raise_alert(report_request(community_registry(), category="broken_device",
                                                place="device", place_id="band-1402", note="表带断了",
                                                by="cg-li", at_ms=T0))
    assert (broken.kind, broken.device) == ("report_broken_device", "band-1402")
    assert service.get(broken.id).history[0].detail["recipients"] == ["cg-duty"]


def test_a_second_report_about_the_same_place_counts_on_the_unresolved_alert_with_its_own_words(
    service: AlertService, clock: FollowedClock
) -> None:
    first = service.raise_alert(report_request(community_registry(), category="hazard", place="building",
                                               place_id="b7", note="楼梯灯坏了", by="cg-grid", at_ms=T0))
    clock.advance_to(T0 + MINUTE_MS)
    second = service.raise_alert(report_request(
        community_registry(), category="hazard", place="building", place_id="b7", note="三楼积水",
        by="cg-duty", at_ms=T0 + MINUTE_MS), by="cg-duty", role="operator")
    assert (second.id, second.count) == (first.id, 2)
    notes = [e.detail["report"]["note"] for e in service.get(first.id).history]
    assert notes == ["楼梯灯坏了", "三楼积水"]
    assert service.get(first.id).history[1].detail["new_incident"] is True


def test_a_report_about_what_is_not_in_the_registry_is_refused() -> None:
    registry = community_registry()
    for category, place, place_id in (("hazard", "building", "b-nowhere"), ("other", "resident", "r-x"),
                                      ("other", "flat", "h1402"), ("fire", "resident", "r-wang")):
        with pytest.raises(AlertError):
            report_request(registry, category=category, place=place, place_id=place_id, note="x", by="a",
                           at_ms=T0)


def test_reopening_sends_the_alert_round_the_loop_again_and_tells_who_handled_it(
    tmp_path: Path, clock: FollowedClock
) -> None:
    nowhere = WebhookSink("http://127.0.0.1:9/", "s", 1, allow_http=True)  # queued, never sent: read
    with closing(alert_service(tmp_path / "hub.sqlite3", clock, sinks=[nowhere])) as service:
        alert = service.raise_alert(resident_request("fall", "critical"))
        with pytest.raises(AlertError, match="it is open, not resolved"):
            service.reopen(alert.id, by="supervisor", note="why")
        service.acknowledge(alert.id, by="cg-li", role="caregiver")
        service.assign(alert.id, to="cg-grid", by="cg-li", role="caregiver")
        service.resolve(alert.id, "resident_ok", by="cg-grid", note="fine", role="caregiver")
        assert alert.cycle == 0
        with pytest.raises(AlertError, match="without a note"):
            service.reopen(alert.id, by="supervisor", note="  ")

        clock.advance_to(T0 + 60 * MINUTE_MS)
        before = len(service.get(alert.id).deliveries)
        reopened = service.reopen(alert.id, by="supervisor", note="nobody visited her", role="operator")
        assert (reopened.state, reopened.cycle, reopened.tier, reopened.note) == \
            ("open", 1, 1, "nobody visited her")
        assert (reopened.acknowledged_by, reopened.resolved_by, reopened.outcome) == (None, None, None)
        assert reopened.assigned_to == "cg-grid"  # still responsible until someone assigns another
        assert reopened.deadline_ms == T0 + 65 * MINUTE_MS  # escalation starts over (critical: 5 min)
        event = service.get(alert.id).history[-1]
        assert (event.actor, event.action, event.from_state, event.to_state) == \
            ("supervisor", "reopened", "resolved", "open")
        assert event.detail["note"] == "nobody visited her" and event.detail["role"] == "operator"
        assert event.detail["previous"]["resolved_by"] == "cg-grid"
        # Tier 1 (her daughter, who acknowledged) and the grid worker (assigned, resolved) hear of it.
        assert told(service, alert.id)[before:] == [("reopened", None)]
        (delivery,) = service.get(alert.id).deliveries[before:]
        assert delivery.event_id == event.id

        # Round the loop again: a new acknowledgement is needed, and escalation runs from tier 1.
        clock.advance_to(T0 + 66 * MINUTE_MS)
        (escalated,) = service.tick(clock.now_ms())
        assert escalated.tier == 2
        service.acknowledge(alert.id, by="cg-grid")
        assert service.resolve(alert.id, "visited", by="cg-grid").state == "resolved"


def test_reopening_tells_each_person_who_handled_it_through_their_channels(
    tmp_path: Path, clock: FollowedClock
) -> None:
    registry = community_registry(notify={c: [f"json://127.0.0.1:9/{c}"] for c in ("cg-li", "cg-grid")})
    apprise = AppriseSink()  # addresses people one by one, so who is told can be read
    with closing(alert_service(tmp_path / "hub.sqlite3", clock, registry, sinks=[apprise])) as service:
        alert = service.raise_alert(resident_request("fall", "critical"))
        service.acknowledge(alert.id, by="cg-li")
        service.resolve(alert.id, "resident_ok", by="cg-grid")  # tier 2, never told before: still told
        before = len(service.get(alert.id).deliveries)
        service.reopen(alert.id, by="supervisor", note="check again")
        assert sorted(told(service, alert.id)[before:]) == [("reopened", "cg-grid"), ("reopened", "cg-li")]


def test_a_reopening_at_the_command_line_is_told_by_the_running_hub(tmp_path: Path,
                                                                    clock: FollowedClock) -> None:
    path = tmp_path / "hub.sqlite3"
    nowhere = WebhookSink("http://127.0.0.1:9/", "s", 1, allow_http=True)
    with closing(AlertService(path, community_registry, clock, AlertSettings(), hands_over=True)) as cli, \
            closing(alert_service(path, clock, sinks=[nowhere])) as hub:
        alert = hub.raise_alert(resident_request("fall", "critical"))
        hub.resolve(alert.id, "resident_ok", by="cg-li")
        cli.reopen(alert.id, by="supervisor", note="check again", role="cli")
        assert [reason for reason, _ in told(hub, alert.id)] == ["raised", "resolved"]
        hub.tick(clock.now_ms())
        assert [reason for reason, _ in told(hub, alert.id)] == ["raised", "resolved", "reopened"]


def test_reopening_is_refused_while_a_newer_alert_about_the_same_is_unresolved(service: AlertService) -> None:
    first = service.raise_alert(resident_request("sos", "critical", evidence={"occurrence": "1"}))
    service.resolve(first.id, "false_alarm", by="cg-li")
    newer = service.raise_alert(resident_request("sos", "critical", evidence={"occurrence": "2"}))
    with pytest.raises(AlertError, match=f"alert {newer.id} about the same sos is unresolved"):
        service.reopen(first.id, by="supervisor", note="x")


def test_an_acknowledge_link_is_good_for_the_cycle_it_was_made_in_only() -> None:
    key = b"k"
    before = issue(key, 7, "cg-li", expires_s=2_000_000_000)
    assert read(key, before, 7, 0, cycle=0) == "cg-li"
    with pytest.raises(LinkRefusedError, match="before the alert was reopened"):
        read(key, before, 7, 0, cycle=1)
    after = issue(key, 7, "cg-li", expires_s=2_000_000_000, cycle=1)
    assert read(key, after, 7, 0, cycle=1) == "cg-li"
    with pytest.raises(LinkRefusedError, match="before the alert was reopened"):
        read(key, after, 7, 0, cycle=0)


def test_the_dispatch_callback_token_is_for_one_alert_and_no_acknowledge_token_passes_for_one() -> None:
    key = b"k"
    assert is_dispatch_token(key, dispatch_token(key, 7), 7)
    assert not is_dispatch_token(key, dispatch_token(key, 7), 8)
    assert not is_dispatch_token(b"other", dispatch_token(key, 7), 7)
    assert not is_dispatch_token(key, issue(key, 7, "cg-li", 2_000_000_000), 7)
    assert not is_dispatch_token(key, "点", 7)
