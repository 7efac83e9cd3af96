"""Supervision's figures against a scripted month whose answers were worked out by hand (percentiles by
linear interpolation between the closest ranks: p90 of 60, 180, 300 s is 180 + 0.8 × 120 = 276 s)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from hub.store import StoreAt
from hub.supervision.figures import Durations, Supervision
from hub.supervision.metrics import SupervisionCollector
from hub.supervision.sources import StoredVisits, read_history
from tests.conftest import OpenStore
from tests.supervision.support import (
    AFTER_MS,
    DECEMBER_MS,
    NOVEMBER_MS,
    SetClock,
    registry,
    script_history,
    script_visits,
)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Supervision:
    store = tmp_path_factory.mktemp("supervision") / "hub.sqlite3"
    place = registry()
    script_history(store, place)
    script_visits(store)
    at = StoreAt(store)
    return Supervision(place, read_history(at, StoredVisits(at), NOVEMBER_MS, DECEMBER_MS, AFTER_MS))


def took(count: int, median: float | None, p90: float | None) -> Durations:
    return Durations(count=count, median_s=median, p90_s=p90)


def test_a_grid_counts_its_alerts_times_overdue_false_alarms_and_visits(month: Supervision) -> None:
    g1 = month.unit("grid", "g1")
    assert g1.name == "一网格"
    figures = g1.figures
    assert figures.alerts_by_kind == {"fall": 1, "inactivity": 1, "sos": 1}
    assert figures.acknowledgement == took(3, 180, 276)  # 60, 180, 300 s
    assert figures.resolution == took(3, 1200, 72240)  # 600, 1200, 90000 s
    assert (figures.overdue, figures.escalated) == (1, 0)
    assert (figures.resolved, figures.false_alarms, figures.false_alarm_share) == (3, 1, 0.3333)
    assert (figures.devices, figures.device_coverage) == (2, 1.0)
    # Done; missed; scheduled for the 29th and still not done when the figures are read.
    assert (figures.visits_due, figures.visits_done, figures.visits_overdue) == (3, 1, 2)


def test_an_alert_raised_before_the_period_counts_for_what_was_done_in_it(month: Supervision) -> None:
    figures = month.unit("grid", "g2").figures
    assert figures.alerts == 2  # the October one is not raised in November
    assert figures.acknowledgement == took(3, 1200, 2160)  # 120, 1200 (October's), 2400 s
    assert figures.resolution == took(2, 2550, 3870)  # 900, 4200 (October's) s
    assert (figures.overdue, figures.escalated, figures.false_alarm_share) == (1, 1, 0.5)
    assert (figures.visits_due, figures.visits_overdue) == (0, 0)


def test_a_community_adds_the_alerts_of_its_buildings_in_no_grid(month: Supervision) -> None:
    figures = month.unit("community", "sunshine").figures
    assert figures.alerts_by_kind == {"door_left_open": 1, "fall": 1, "falling_object": 1, "inactivity": 2,
                                      "sos": 1}
    assert figures.acknowledgement == took(7, 180, 1680)  # 30, 60, 120, 180, 300, 1200, 2400 s
    assert figures.resolution == took(6, 1050, 47100)  # 300, 600, 900, 1200, 4200, 90000 s
    assert (figures.overdue, figures.escalated, figures.resolved, figures.false_alarms) == (2, 1, 6, 2)
    assert (figures.devices, figures.device_coverage) == (4, 1.0)


def test_coverage_is_the_device_time_not_under_an_offline_alert(month: Supervision) -> None:
    moon = month.unit("community", "moon").figures
    assert moon.alerts_by_kind == {"device_offline": 1, "sos": 1}
    assert moon.resolution == took(1, 1800, 1800)  # the hub's clearing is nobody's work
    assert moon.false_alarm_share == 1.0
    assert moon.device_coverage == round(1 - 2 / 30, 4)  # one sensor, two days of thirty
    hm = month.unit("subdistrict", "hm").figures
    assert hm.devices == 5 and hm.device_coverage == round(1 - 2 / (5 * 30), 4)


def test_a_subdistrict_sums_its_communities(month: Supervision) -> None:
    figures = month.unit("subdistrict", "hm").figures
    assert figures.alerts == 8
    assert figures.acknowledgement == took(8, 210, 1560)
    assert figures.resolution == took(7, 1200, 38520)
    assert (figures.overdue, figures.escalated, figures.resolved, figures.false_alarms) == (2, 1, 7, 3)
    assert figures.false_alarm_share == round(3 / 7, 4)
    assert (figures.visits_due, figures.visits_done, figures.visits_overdue) == (4, 2, 2)
    assert month.unit("subdistrict", "zj").figures.alerts == 0
    assert month.units("grid", within=("subdistrict", "hm")) == ["g1", "g2", "g3"]
    assert month.units("community", within=("subdistrict", "hm")) == ["moon", "sunshine"]


def test_each_worker_answers_for_what_it_acknowledged_and_resolved(month: Supervision) -> None:
    workers = {w.caregiver: w for w in month.workers(lambda place: place.subdistrict == "hm")}
    assert set(workers) == {"cg-wang", "cg-zhao", "cg-qian", "duty"}  # never the hub
    wang = workers["cg-wang"]
    assert (wang.name, wang.grids) == ("王网格员", ["g1"])
    assert wang.acknowledgement == took(3, 180, 276)
    assert (wang.overdue, wang.false_alarms, wang.visits_done) == (1, 1, 1)
    zhao = workers["cg-zhao"]
    assert zhao.acknowledgement == took(3, 1200, 2160) and zhao.resolution == took(2, 2550, 3870)
    assert (zhao.overdue, zhao.false_alarms, zhao.visits_done) == (1, 1, 0)
    assert (workers["cg-qian"].visits_done, workers["duty"].grids) == (1, [])


def test_no_visits_table_is_no_visits(tmp_path: Path) -> None:
    store = tmp_path / "hub.sqlite3"
    script_history(store, registry())
    assert StoredVisits(StoreAt(store)).visits(NOVEMBER_MS, DECEMBER_MS) == []


def test_each_backend_gives_the_same_figures(open_store: OpenStore) -> None:
    """The same month on each backend: the store's queries for the figures and for the metrics speak
    both dialects."""
    open_store().close()  # the schema, as the hub makes it
    place = registry()
    script_history(open_store.path, place, open_store.url)
    script_visits(open_store.path, open_store.url)
    at = StoreAt(open_store.path, open_store.url)
    month = Supervision(place, read_history(at, StoredVisits(at), NOVEMBER_MS, DECEMBER_MS, AFTER_MS))
    figures = month.unit("subdistrict", "hm").figures
    assert (figures.alerts, figures.acknowledgement, figures.resolution) == (8, took(8, 210, 1560),
                                                                           took(7, 1200, 38520))
    assert (figures.overdue, figures.escalated, figures.false_alarms, figures.device_coverage) == (
        2, 1, 3, round(1 - 2 / (5 * 30), 4))
    assert (figures.visits_due, figures.visits_done, figures.visits_overdue) == (4, 2, 2)
    served = CollectorRegistry()
    served.register(SupervisionCollector(lambda: place, at, SetClock(AFTER_MS), StoredVisits(at)))
    labels = {"subdistrict": "hm", "community": "sunshine", "grid": "g2"}
    assert served.get_sample_value("hub_supervision_alerts_overdue", labels) == 1
    assert served.get_sample_value("hub_supervision_acknowledgement_seconds_sum", labels) == 120 + 1200 + 2400
