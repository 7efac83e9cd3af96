"""The one-tap acknowledge link (`/ack/<alert id>?t=<token>`, hub/api/routes/ack_link.py) against a real hub
subprocess over real HTTP, with alerts raised by real wristband messages through a real Mosquitto: it
acknowledges once, as the caregiver it was made for, and refuses reuse, expiry, another alert, someone
not notified and a forged signature."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.alerts.links import issue
from hub.api.tokens import Role
from tests.api.support import client, make_token, publish, sos_alert_of, wait_for_alerts, write_registry
from tests.conftest import StartHub
from tests.real_servers import HubProcess, Mosquitto

SECRET = "test-link-secret"
KEY = SECRET.encode()


@pytest.fixture
def hub(start_hub: StartHub, tmp_path: Path) -> HubProcess:
    return start_hub(write_registry(tmp_path / "registry.yaml"),
                     {"HUB_LINK_SECRET": SECRET, "HUB_PUBLIC_URL": "https://care.example.com"})


def token(alert_id: int, caregiver: str, *, valid_s: int = 600, key: bytes = KEY) -> str:
    return issue(key, alert_id, caregiver, int(time.time()) + valid_s)


def tap(hub: HubProcess, alert_id: int, t: str) -> httpx.Response:
    """What the page's button does: POST the form with the token."""
    with httpx.Client(base_url=hub.http_url, timeout=10) as http:
        return http.post(f"/ack/{alert_id}", data={"t": t})


def detail(api: httpx.Client, alert_id: int) -> dict[str, Any]:
    response = api.get(f"/api/v1/alerts/{alert_id}")
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def test_the_link_acknowledges_once_as_its_caregiver_and_refuses_everything_else(
    hub: HubProcess, mosquitto: Mosquitto
) -> None:
    operator = client(hub, make_token(hub, "ops", Role.OPERATOR, communities=("sunshine",)))
    now = int(time.time() * 1000)
    publish(mosquitto, [("sc/sunshine/wristband/band-wang/event", {"ts": now, "sos": True}),
                        ("sc/sunshine/wristband/band-zhao/event", {"ts": now, "fall": True})])
    sos = sos_alert_of(operator, "r-wang")["id"]
    (fall,) = wait_for_alerts(operator, lambda found: len(found) == 1, "the fall", kind="fall")
    fall_id = fall["id"]

    # Opening the link (or a chat app's preview of it) changes nothing: it shows a button.
    with httpx.Client(base_url=hub.http_url, timeout=10) as http:
        page = http.get(f"/ack/{sos}", params={"t": token(sos, "cg-li")})
    assert page.status_code == 200 and 'name="t"' in page.text and "SOS 求助" in page.text
    assert "王奶奶" not in page.text  # the page needs no name to confirm
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert detail(operator, sos)["state"] == "open"

    # Refused, and nothing changes: made with another key, for another alert, expired, for someone
    # not (yet) notified of it (the grid worker is tier 2), for another resident's caregiver.
    refusals = {
        "forged": (tap(hub, sos, token(sos, "cg-li", key=b"not-the-hubs-key")), 403),
        "tampered": (tap(hub, sos, token(sos, "cg-li")[:-2] + "AA"), 403),
        "another alert": (tap(hub, fall_id, token(sos, "cg-li")), 403),
        "expired": (tap(hub, sos, token(sos, "cg-li", valid_s=-1)), 410),
        "not notified yet": (tap(hub, sos, token(sos, "cg-grid")), 403),
        "another recipient": (tap(hub, sos, token(sos, "cg-zhou")), 403),
        "no token": (tap(hub, sos, ""), 403),
    }
    for what, (response, status) in refusals.items():
        assert response.status_code == status, (what, response.status_code, response.text)
        assert 'id="outcome"' in response.text, what
    assert detail(operator, sos)["state"] == "open"
    assert detail(operator, fall_id)["state"] == "open"

    # The right link, tapped: acknowledged by that caregiver, via the link, and the others hear of it.
    link = token(sos, "cg-li")
    done = tap(hub, sos, link)
    assert done.status_code == 200, done.text
    assert "李女士" in done.text
    after = detail(operator, sos)
    assert (after["state"], after["acknowledged_by"]) == ("acknowledged", "cg-li")
    (event,) = [e for e in after["history"] if e["action"] == "acknowledged"]
    assert (event["actor"], event["detail"]) == ("cg-li", {"via": "link"})
    assert any(d["reason"] == "acknowledged" for d in after["deliveries"]), after["deliveries"]

    # Used once: the same link, again, is refused; so is the page.
    again = tap(hub, sos, link)
    assert again.status_code == 409 and "already acknowledged" in again.text
    with httpx.Client(base_url=hub.http_url, timeout=10) as http:
        assert http.get(f"/ack/{sos}", params={"t": link}).status_code == 409
    assert detail(operator, fall_id)["state"] == "open"  # the other alert was never touched
