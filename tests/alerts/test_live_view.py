"""The live view's alert table: names people know, and times in the community's zone saying so."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from rich.console import Console

from hub.clock import FollowedClock
from hub.intake_processes import MainIntake
from hub.live_view import LiveView
from tests.alerts.support import (
    T0,
    alert_service,
    community_registry,
    falling_object_request,
    resident_request,
)


def test_latest_alerts_name_whom_they_are_about_in_the_communitys_time(tmp_path: Path) -> None:
    clock = FollowedClock()
    clock.advance_to(T0)
    registry = community_registry()
    service = alert_service(tmp_path / "hub.sqlite3", clock, registry)
    try:
        service.raise_alert(resident_request("fall", "critical"))
        service.raise_alert(falling_object_request("e-1"))
        # The table alone: it reads the alert service, not intake.
        view = LiveView(cast(MainIntake, None), clock, service, None, broker_url="mqtt://broker",
                        registry=registry)
        console = Console(width=200, record=True)
        console.print(view._alerts())
        text = console.export_text()
    finally:
        service.close()
    assert "王奶奶" in text and "r-wang" not in text
    assert "11-23 10:13 UTC+8" in text  # T0 is 02:13 UTC
