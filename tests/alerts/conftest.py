"""Fixtures the alert tests share: a followed clock at T0 and the alert service on each store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.alerts.service import AlertService
from hub.clock import FollowedClock
from tests.alerts.support import T0, alert_service


@pytest.fixture
def clock() -> FollowedClock:
    clock = FollowedClock()
    clock.advance_to(T0)
    return clock


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def service(request: pytest.FixtureRequest, tmp_path: Path, clock: FollowedClock) -> Iterator[AlertService]:
    """The alert service on each store backend in turn."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    service = alert_service(tmp_path / "hub.sqlite3", clock, store_url=url)
    yield service
    service.close()
