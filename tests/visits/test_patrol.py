"""Patrol (巡查): visits planned from the communities' visit plans, scheduled, recorded and overdue on a
simulated clock, with the overdue alert told to the grid's workers and then the supervisor; and how long
visits are kept. Against a real store of each backend and the real alert service."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from hub.alerts.service import AlertService
from hub.clock import FollowedClock
from hub.registry import Registry
from hub.retention import RetentionPolicy, apply_retention
from hub.store import OPEN_VISIT, Store, Visit, VisitFilter
from hub.visits.patrol import PatrolThread, patrol, record
from hub.visits.plans import DAY_MS, visit_every_days
from tests.alerts.support import T0, alert_service
from tests.conftest import OpenStore
from tests.registry_builder import RegistryBuilder

HOUR_MS = 3600 * 1000


def patrol_registry(**wang: object) -> Registry:
    """One grid of two workers and a supervisor; 独居老人 weekly and 失能 twice a week."""
    return (RegistryBuilder()
            .community("sunshine", "阳光社区", visit_plans={"独居老人": 7, "失能": 3.5})
            .compound("c1").building("b1", name="1号楼").grid("g1", workers=["cg-grid", "cg-grid2"])
            .household("h1", unit="1-101").household("h2", unit="1-102").household("h3", unit="1-103")
            .caregiver("cg-li", "李女士", "family")
            .caregiver("cg-grid", "张网格员", "grid_worker").caregiver("cg-grid2", "陈网格员", "grid_worker")
            .caregiver("cg-boss", "刘主任", "supervisor")
            .resident("r-wang", "王奶奶", household="h1", flags=["独居老人"], caregivers={"cg-li": 1}, **wang)
            .resident("r-zhao", "赵爷爷", household="h2", flags=["独居老人", "失能"])
            .resident("r-sun", "孙阿姨", household="h3")  # no flag with a plan: no visits
            .registry())


@pytest.fixture
def clock() -> FollowedClock:
    clock = FollowedClock()
    clock.advance_to(T0)
    return clock


@pytest.fixture
def alerts(open_store: OpenStore, clock: FollowedClock) -> Iterator[AlertService]:
    service = alert_service(open_store.path, clock, patrol_registry(), store_url=open_store.url)
    yield service
    service.close()


def open_visits(store: Store) -> dict[str, Visit]:
    return {v.resident: v for v in store.visits(VisitFilter(statuses=OPEN_VISIT))}


def test_the_most_frequent_plan_applies_and_the_residents_own_overrides_it() -> None:
    registry = patrol_registry()
    community = registry.data.communities[0]
    wang, zhao, sun = registry.data.residents
    assert [visit_every_days(r, community) for r in (wang, zhao, sun)] == [7, 3.5, None]
    assert visit_every_days(wang.model_copy(update={"visit_every_days": 2}), community) == 2
    assert visit_every_days(wang.model_copy(update={"visit_every_days": 0}), community) is None
    default = RegistryBuilder().community("moon").registry().data.communities[0]
    assert default.visit_plans == {"独居老人": 7}, "living alone is visited weekly unless a community says"


def test_visits_are_scheduled_fall_overdue_escalate_to_the_supervisor_and_are_recorded(
        open_store: OpenStore, alerts: AlertService, clock: FollowedClock) -> None:
    registry, store = patrol_registry(), open_store()
    report = patrol(store, registry, T0, alerts.raise_alert)
    visits = open_visits(store)
    assert report.scheduled == 2 and set(visits) == {"r-wang", "r-zhao"}
    assert visits["r-wang"].due_ms == T0 + 7 * DAY_MS and visits["r-zhao"].due_ms == T0 + 84 * HOUR_MS
    assert (visits["r-zhao"].grid, visits["r-zhao"].assigned_to, visits["r-zhao"].status) == (
        "g1", "cg-grid", "scheduled")
    assert patrol(store, registry, T0 + HOUR_MS, alerts.raise_alert).scheduled == 0, "one open visit each"

    clock.advance_to(T0 + 84 * HOUR_MS + 1)
    assert patrol(store, registry, clock.now_ms(), alerts.raise_alert).overdue == 1
    zhao = open_visits(store)["r-zhao"]
    assert zhao.status == "overdue" and zhao.alert_id is not None
    assert open_visits(store)["r-wang"].status == "scheduled", "not due for days yet"
    assert patrol(store, registry, clock.now_ms() + HOUR_MS, alerts.raise_alert).overdue == 0, "alerted once"
    detail = alerts.get(zhao.alert_id)
    assert (detail.alert.kind, detail.alert.severity, detail.alert.resident) == (
        "visit_overdue", "warning", "r-zhao")
    assert detail.history[0].detail["recipients"] == ["cg-grid", "cg-grid2"], "the grid's workers first"

    clock.advance_to(clock.now_ms() + 31 * 60_000)  # nobody acknowledged within the warning's 30 minutes
    (escalated,) = alerts.tick(clock.now_ms())
    assert alerts.get(escalated.id).history[-1].detail["recipients"] == ["cg-boss"], "then the supervisor"

    done = replace(zhao, status="done", done_ms=clock.now_ms(), resident_seen=True, outcome="ok",
                   note="精神不错", recorded_by="cg-grid2", token_id="t1")
    recorded = record(store, registry, done)
    assert recorded is not None
    assert (recorded.status, recorded.outcome, recorded.resident_seen, recorded.recorded_by) == (
        "done", "ok", True, "cg-grid2")
    assert open_visits(store)["r-zhao"].due_ms == clock.now_ms() + 84 * HOUR_MS, "the next from this one"
    assert record(store, registry, done) is None, "a visit is recorded once"


def test_a_visit_that_did_not_see_the_resident_is_followed_up_within_a_day(
        open_store: OpenStore, alerts: AlertService) -> None:
    registry, store = patrol_registry(), open_store()
    patrol(store, registry, T0, alerts.raise_alert)
    wang = open_visits(store)["r-wang"]
    done_ms = T0 + 2 * DAY_MS
    record(store, registry, replace(wang, status="done", done_ms=done_ms, resident_seen=False,
                                    outcome="not_home", recorded_by="cg-grid"))
    assert open_visits(store)["r-wang"].due_ms == done_ms + DAY_MS


def test_open_visits_follow_plan_changes_and_end_with_the_plan(
        open_store: OpenStore, alerts: AlertService) -> None:
    store = open_store()
    patrol(store, patrol_registry(), T0, alerts.raise_alert)
    assert patrol(store, patrol_registry(visit_every_days=2), T0, alerts.raise_alert).changed == 1
    assert open_visits(store)["r-wang"].due_ms == T0 + 2 * DAY_MS
    assert patrol(store, patrol_registry(visit_every_days=0), T0, alerts.raise_alert).cancelled == 1
    assert "r-wang" not in open_visits(store)
    assert store.visits(VisitFilter(statuses=("cancelled",)))[0].resident == "r-wang"


def eventually(check: Callable[[], bool]) -> bool:
    for _ in range(500):
        if check():
            return True
        time.sleep(0.01)
    return False


def test_the_patrol_thread_runs_on_the_hubs_clock(open_store: OpenStore, alerts: AlertService,
                                                  clock: FollowedClock) -> None:
    store = open_store()
    thread = PatrolThread(open_store, patrol_registry, clock, alerts.raise_alert, interval_s=3600)
    thread.start()
    try:
        assert eventually(lambda: len(open_visits(store)) == 2), "the first pass schedules at start"
        # A week passes in the simulation: the pass waiting for the next hour of hub time runs at once.
        clock.advance_to(T0 + 8 * DAY_MS)
        assert eventually(lambda: {v.status for v in open_visits(store).values()} == {"overdue"})
    finally:
        thread.stop()


def test_visits_done_are_kept_a_year_and_the_phones_location_a_month(
        open_store: OpenStore, alerts: AlertService) -> None:
    registry, store = patrol_registry(), open_store()
    patrol(store, registry, T0, alerts.raise_alert)
    wang = open_visits(store)["r-wang"]
    record(store, registry, replace(wang, status="done", done_ms=T0 + DAY_MS, resident_seen=True,
                                    outcome="ok", lat=31.23, lon=121.47, recorded_by="cg-grid"))
    policy = RetentionPolicy(180, 30, 180, 1095, 1095, 1095, visits_days=365, visit_locations_days=30)
    report = apply_retention(store, policy, T0 + 40 * DAY_MS)
    kept = store.visit(wang.id)
    assert report.visit_locations == 1 and kept is not None and (kept.lat, kept.lon) == (None, None)
    assert kept.outcome == "ok", "the visit itself is kept"
    report = apply_retention(store, policy, T0 + 7 * DAY_MS + 366 * DAY_MS)
    assert report.visits == 1 and store.visit(wang.id) is None
    assert open_visits(store), "an open visit is work still to do: never deleted"
