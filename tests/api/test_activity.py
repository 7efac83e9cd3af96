"""A resident's activity view from a real hub subprocess after real readings over MQTT: the running
detector's state (last activity, what it expects next, the pending deadlines, at home) and the home's
recent readings."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.api.tokens import Role
from tests.api.support import client, make_token, publish, write_registry
from tests.conftest import StartHub
from tests.real_servers import Mosquitto, wait_until

MINUTE_MS = 60_000


def _ms(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp() * 1000)


def test_activity_view_follows_the_readings(
    start_hub: StartHub, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    hub = start_hub(write_registry(tmp_path / "registry.yaml"))
    li = make_token(hub, "li", Role.CAREGIVER, caregiver="cg-li")
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("*",))
    now = (int(time.time() * 1000) // 1000) * 1000
    publish(mosquitto, [
        ("sc/sunshine/motion_sensor/motion-wang/event", {"ts": now - 10 * MINUTE_MS, "occupancy": True}),
        ("sc/sunshine/motion_sensor/motion-wang/event", {"ts": now - 9 * MINUTE_MS, "occupancy": False}),
        ("sc/sunshine/wristband/band-wang/event", {"ts": now - 5 * MINUTE_MS, "steps": 120, "worn": True}),
        ("sc/sunshine/wristband/band-zhao/event", {"ts": now - 4 * MINUTE_MS, "steps": 30, "worn": True}),
    ])
    with client(hub, li) as api:
        def followed() -> dict[str, Any] | None:
            view: dict[str, Any] = api.get("/api/v1/residents/r-wang/activity").json()
            # The evaluation sets the last activity a moment before the deadlines that follow from it.
            settled = view["last_activity"] and view["alert_deadline"]
            return view if settled and len(view["timeline"]) == 3 else None

        view = wait_until(followed, 20, what="the readings in r-wang's activity view")
        assert view is not None
        assert view["resident"] == "r-wang" and view["evaluated"] is True
        assert _ms(view["last_activity"]) == now - 5 * MINUTE_MS, "the band's steps are the last activity"
        assert view["away"] is False and view["coverage_ok"] is True
        assert view["not_back_deadline"] is None
        assert view["track"] == "band", "r-wang wears a band"
        assert view["expected"]["basis"].startswith("not yet measured on real wearers")
        expected, warning, critical = (_ms(view[k]) for k in
                                       ("expected_next_activity", "alert_deadline", "critical_deadline"))
        assert now - 5 * MINUTE_MS < expected < warning < critical
        assert warning - (now - 5 * MINUTE_MS) >= 30 * MINUTE_MS, "never sooner than the shortest timeout"

        timeline = view["timeline"]
        assert [(e["device"], e["kind"]) for e in timeline] == [
            ("band-wang", "wristband"), ("motion-wang", "motion_sensor"), ("motion-wang", "motion_sensor")]
        assert [now - _ms(e["ts"]) for e in timeline] == [5 * MINUTE_MS, 9 * MINUTE_MS, 10 * MINUTE_MS]
        assert timeline[0]["fields"]["steps"] == 120
        assert "band-zhao" not in {e["device"] for e in timeline}, "another home's band is not in it"
        limited = api.get("/api/v1/residents/r-wang/activity", params={"limit": 1}).json()["timeline"]
        assert [e["device"] for e in limited] == ["band-wang"]
        assert api.get("/api/v1/residents/r-wang/activity", params={"limit": 0}).status_code == 422

    with client(hub, operator) as api:
        quiet = api.get("/api/v1/residents/r-moon/activity").json()
        assert (quiet["evaluated"], quiet["last_activity"], quiet["alert_deadline"], quiet["timeline"]) == (
            True, None, None, [])
        assert api.get("/api/v1/residents/r-nobody/activity").status_code == 404


def test_a_missed_incident_raises_the_sensitivity_shown_in_the_view_and_an_operator_reverts_it(
    start_hub: StartHub, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    hub = start_hub(write_registry(tmp_path / "registry.yaml"))
    li = make_token(hub, "li", Role.CAREGIVER, caregiver="cg-li")
    operator = make_token(hub, "ops", Role.OPERATOR, communities=("*",))
    now = (int(time.time() * 1000) // 1000) * 1000
    publish(mosquitto, [
        ("sc/sunshine/wristband/band-wang/event", {"ts": now - 5 * MINUTE_MS, "steps": 120, "worn": True})])
    with client(hub, li) as api:
        before = wait_until(lambda: api.get("/api/v1/residents/r-wang/activity").json()["alert_deadline"],
                            20, what="r-wang's alert deadline")
        view = api.get("/api/v1/residents/r-wang/activity").json()
        assert view["sensitivity"] == {"registry": 1.0, "by_band": dict.fromkeys(
            ("night", "morning", "afternoon", "evening"), 1.0), "changes": []}
        # "We found her on the floor just now, no alert came": now's band becomes more sensitive.
        at = datetime.fromtimestamp(now / 1000).astimezone().isoformat()
        reported = api.post("/api/v1/residents/r-wang/missed-incidents", json={"at": at, "note": "floor"})
        assert reported.status_code == 201, reported.text
        change = reported.json()
        assert (change["cause"], change["by"], change["old"], change["new"]) == ("missed", "cg-li", 1.0, 1.25)
        assert api.post(f"/api/v1/residents/r-wang/sensitivity/{change['id']}/revert",
                        json={}).status_code == 403, "operators revert, caregivers do not"

        def sooner() -> str | None:
            deadline: str | None = api.get("/api/v1/residents/r-wang/activity").json()["alert_deadline"]
            return deadline if deadline and _ms(deadline) < _ms(before) else None

        wait_until(sooner, 20, what="the detector's deadline moved by the new sensitivity")
        shown = api.get("/api/v1/residents/r-wang/activity").json()["sensitivity"]
        assert shown["by_band"][change["band"]] == 1.25
        assert [c["id"] for c in shown["changes"]] == [change["id"]]
    with client(hub, operator) as api:
        reverted = api.post(f"/api/v1/residents/r-wang/sensitivity/{change['id']}/revert",
                            json={"note": "she had tripped over the mat"})
        assert reverted.status_code == 201, reverted.text
        assert (reverted.json()["cause"], reverted.json()["reverts"], reverted.json()["new"]) == \
            ("reverted", change["id"], 1.0)
        assert api.post("/api/v1/residents/r-wang/sensitivity/999/revert", json={}).status_code == 404
        shown = api.get("/api/v1/residents/r-wang/activity").json()["sensitivity"]
        assert shown["by_band"][change["band"]] == 1.0 and len(shown["changes"]) == 2
