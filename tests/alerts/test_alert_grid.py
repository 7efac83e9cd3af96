"""Alerts carry the grid of their home, from the registry when raised, and lists filter by it and by
several ids of a level (what a district or compound filter becomes), on each store backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.alerts.store import AlertFilter, AlertStore
from hub.clock import FollowedClock
from tests.alerts.support import alert_service, falling_object_request, resident_request


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_an_alert_carries_its_homes_grid_and_lists_filter_by_it(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FollowedClock, backend: str
) -> None:
    path = tmp_path / "hub.sqlite3"
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    service = alert_service(path, clock, store_url=url)
    store = AlertStore(path, url=url)
    try:
        home = service.raise_alert(resident_request())
        building = service.raise_alert(falling_object_request("e1"))
        assert (home.grid, building.grid) == ("g7", None), "a building's alert is in no grid"

        def listed(*among: tuple[str, tuple[str, ...]]) -> list[int]:
            return [a.id for a in store.alerts(AlertFilter(among=among))]

        assert listed(("grid", ("g7",))) == [home.id]
        assert listed(("building", ("b7", "b8"))) == [building.id, home.id]
        assert listed(("grid", ("g7",)), ("community", ("moon",))) == []
        assert listed(("community", ())) == [], "no ids at a level: nothing"
    finally:
        store.close()
        service.close()
