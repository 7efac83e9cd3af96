"""`POST /api/v1/reports` and `POST /api/v1/alerts/{id}/reopen` against a real hub subprocess: who may
file what about whom, who may reopen, the history saying who did what in which role, and an acknowledge
link sent before a reopening staying spent after it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.alerts.links import issue
from hub.api.tokens import Role
from tests.api.support import client, make_token, write_registry
from tests.conftest import StartHub
from tests.real_servers import HubProcess

SECRET = "test-link-secret"


@pytest.fixture
def hub(start_hub: StartHub, tmp_path: Path) -> HubProcess:
    return start_hub(write_registry(tmp_path / "registry.yaml"),
                     {"HUB_LINK_SECRET": SECRET, "HUB_PUBLIC_URL": "https://care.example.com"})


def tap(hub: HubProcess, alert_id: int, caregiver: str, cycle: int = 0) -> httpx.Response:
    token = issue(SECRET.encode(), alert_id, caregiver, int(time.time()) + 600, cycle)
    with httpx.Client(base_url=hub.http_url, timeout=10) as http:
        return http.post(f"/ack/{alert_id}", data={"t": token})


def history(api: httpx.Client, alert_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.get(f"/api/v1/alerts/{alert_id}").json()["history"]
    return found


def test_reports_are_filed_within_scope_and_a_reopened_alert_goes_round_again(hub: HubProcess) -> None:
    li = client(hub, make_token(hub, "李女士", Role.CAREGIVER, caregiver="cg-li"))
    operator = client(hub, make_token(hub, "值班主管", Role.OPERATOR, communities=("sunshine",)))
    reader = client(hub, make_token(hub, "看板", Role.READ_ONLY, communities=("sunshine",)))

    filed = li.post("/api/v1/reports", json={"category": "resident_unwell", "resident": "r-wang",
                                             "note": "电话没人接", "location": {"lat": 31.2, "lon": 121.4}})
    assert filed.status_code == 201, filed.text
    alert = filed.json()
    assert (alert["kind"], alert["severity"], alert["state"], alert["resident"]) == \
        ("report_resident_unwell", "critical", "open", "r-wang")
    assert alert["evidence"]["note"] == "电话没人接" and alert["evidence"]["reporter_name"] == "李女士"
    assert alert["id"] in [a["id"] for a in li.get("/api/v1/alerts").json()]  # in her own list
    (raised,) = history(li, alert["id"])
    assert (raised["actor"], raised["actor_name"], raised["role"]) == ("cg-li", "李女士", "caregiver")

    refused = {  # outside her scope: answered as if it did not exist
        "another's resident": (li.post("/api/v1/reports", json={"category": "other", "resident": "r-zhao",
                                                                "note": "x"}), 404),
        "a building": (li.post("/api/v1/reports", json={"category": "hazard", "building": "b1",
                                                        "note": "x"}), 404),
        "no such resident": (operator.post("/api/v1/reports", json={"category": "other", "resident": "r-x",
                                                                    "note": "x"}), 404),
        "another community": (operator.post("/api/v1/reports", json={"category": "other",
                                                                     "household": "h9", "note": "x"}), 404),
        "two places": (li.post("/api/v1/reports", json={"category": "other", "resident": "r-wang",
                                                        "household": "h1", "note": "x"}), 422),
        "no note": (li.post("/api/v1/reports", json={"category": "other", "resident": "r-wang",
                                                     "note": ""}), 422),
        "a long note": (li.post("/api/v1/reports", json={"category": "other", "resident": "r-wang",
                                                         "note": "长" * 1001}), 422),
        "unknown category": (li.post("/api/v1/reports", json={"category": "fire", "resident": "r-wang",
                                                              "note": "x"}), 422),
        "a reader": (reader.post("/api/v1/reports", json={"category": "other", "resident": "r-wang",
                                                          "note": "x"}), 403),
    }
    for what, (response, status) in refused.items():
        assert response.status_code == status, (what, response.status_code, response.text)
    hazard = operator.post("/api/v1/reports",
                           json={"category": "hazard", "building": "b1", "note": "楼道堆物"})
    assert hazard.status_code == 201 and hazard.json()["kind"] == "report_hazard"

    # The loop: acknowledged by her link, resolved, then reopened by the operator with a note.
    alert_id = alert["id"]
    assert tap(hub, alert_id, "cg-li").status_code == 200
    assert operator.post(f"/api/v1/alerts/{alert_id}/reopen", json={"note": "先别关"}).status_code == 409
    assert li.post(f"/api/v1/alerts/{alert_id}/resolve", json={"outcome": "visited"}).status_code == 200
    assert li.post(f"/api/v1/alerts/{alert_id}/reopen", json={"note": "再看看"}).status_code == 403
    assert operator.post(f"/api/v1/alerts/{alert_id}/reopen", json={"note": ""}).status_code == 422
    assert operator.post("/api/v1/alerts/999999/reopen", json={"note": "x"}).status_code == 404
    reopened = operator.post(f"/api/v1/alerts/{alert_id}/reopen", json={"note": "邻居说老人还是不舒服"})
    assert reopened.status_code == 200, reopened.text
    assert (reopened.json()["state"], reopened.json()["acknowledged_by"]) == ("open", None)

    # Her link from before the reopening is spent; one sent with the reopening's message works.
    stale = tap(hub, alert_id, "cg-li")
    assert stale.status_code == 409 and "reopened" in stale.text
    assert tap(hub, alert_id, "cg-li", cycle=1).status_code == 200

    who_did_what = [(e["action"], e["actor_name"], e["role"]) for e in history(operator, alert_id)]
    assert who_did_what[:4] == [("raised", "李女士", "caregiver"), ("acknowledged", "李女士", "link"),
                                ("resolved", "李女士", "caregiver"), ("reopened", "值班主管", "operator")]
    assert who_did_what[-1] == ("acknowledged", "李女士", "link")
    (reopening,) = [e for e in history(operator, alert_id) if e["action"] == "reopened"]
    assert reopening["detail"]["note"] == "邻居说老人还是不舒服"
    assert reopening["detail"]["previous"]["resolved_by"] == "cg-li"
