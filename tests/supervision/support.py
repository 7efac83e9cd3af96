"""A scripted month of alerts and visits in two communities of one subdistrict, with the figures it must
give worked out by hand (tests/supervision/test_figures.py states them)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from detectors.severity import Severity
from hub.alerts.model import AlertRequest, ClearRequest
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.postgres import PgConnection
from hub.registry import Registry
from tests.registry_builder import RegistryBuilder

ZONE = ZoneInfo("Asia/Shanghai")
NOVEMBER_MS = int(datetime(2025, 11, 1, tzinfo=ZONE).timestamp() * 1000)
DECEMBER_MS = int(datetime(2025, 12, 1, tzinfo=ZONE).timestamp() * 1000)
DAY_MS = 86_400_000
AFTER_MS = DECEMBER_MS + 10 * DAY_MS  # when the figures are read: the month is over
SETTINGS = AlertSettings(ack_deadline_critical_s=300, ack_deadline_warning_s=1800,
                         resolve_deadline_critical_s=7200, resolve_deadline_warning_s=86400)


def november(day: int, hour: int = 0) -> int:
    """The time of day `day` of November 2025 at `hour`, in Shanghai."""
    return NOVEMBER_MS + (day - 1) * DAY_MS + hour * 3_600_000


def registry() -> Registry:
    """花木街道 (hm) of 浦东新区: 阳光社区 (sunshine) with grids g1 and g2 in building b1, 月亮社区 (moon)
    with grid g3; a community of another subdistrict (star); a worker per grid."""
    return (RegistryBuilder()
            .city("sh", "上海市").district("pd", "浦东新区").subdistrict("hm", "花木街道")
            .community("sunshine", "阳光社区").compound("c1").building("b1", floors=18)
            .grid("g1", name="一网格", workers=["cg-wang"]).household("h1", unit="1-101")
            .resident("r1", "王奶奶", caregivers={"cg-li": 1, "cg-wang": 2})
            .device("band-1", "wristband", resident="r1").device("door-1", "door_sensor", household="h1")
            .resident("r1b", "王爷爷", household="h1")
            .grid("g2", name="二网格", workers=["cg-zhao"]).household("h2", unit="1-201")
            .resident("r2", "赵爷爷", caregivers={"cg-li": 1, "cg-zhao": 2})
            .device("door-2", "door_sensor", household="h2")
            .device("camera-1", "high_altitude_camera", building="b1")
            .caregiver("cg-li", "李女士", "family").caregiver("cg-wang", "王网格员", "grid_worker")
            .caregiver("cg-zhao", "赵网格员", "grid_worker").caregiver("duty", "值班员", "duty_officer")
            .community("moon", "月亮社区").compound("c2").building("b2")
            .grid("g3", name="三网格", workers=["cg-qian"]).household("h3", unit="2-101")
            .resident("r3", "钱奶奶", caregivers={"cg-qian": 1})
            .device("door-3", "door_sensor", household="h3")
            .caregiver("cg-qian", "钱网格员", "grid_worker").caregiver("duty-moon", "值班员", "duty_officer")
            .subdistrict("zj", "张江镇").community("star", "星星社区").compound("c3").building("b3")
            .grid("g9").household("h9").resident("r9", "孙爷爷")
            .caregiver("duty-star", "值班员", "duty_officer")
            .registry())


class SetClock:
    """Hub time where the script puts it."""

    def __init__(self, at: int = 0) -> None:
        self.at = at

    def now_ms(self) -> int:
        return self.at


def script_history(store_path: Path, place: Registry, store_url: str | None = None) -> None:
    """The month, through the alert service as the hub and the caregivers would make it."""
    clock = SetClock()
    service = AlertService(store_path, lambda: place, clock, SETTINGS, store_url=store_url)

    def raised(kind: str, severity: Severity, at: int, *, resident: str | None = None,
               household: str | None = None, building: str, community: str = "sunshine",
               device: str | None = None) -> int:
        clock.at = at
        return service.raise_alert(AlertRequest(
            kind=kind, severity=severity, subject=device or resident or household or building,
            community=community, building=building, household=household, resident=resident, device=device,
            evidence={"occurrence": str(at)} if kind in ("sos", "fall") else {}, raised_at_ms=at)).id

    def acknowledged(alert: int, by: str, at: int) -> None:
        clock.at = at
        service.acknowledge(alert, by=by, at_ms=at)

    def resolved(alert: int, by: str, outcome: str, at: int) -> None:
        clock.at = at
        service.resolve(alert, outcome, by=by)

    def ticked(at: int) -> None:
        clock.at = at
        service.tick(at)

    try:
        # October, over and done with before November: in no figure.
        a0 = raised("sos", Severity.CRITICAL, november(1) - 2 * DAY_MS, resident="r1", household="h1",
                    building="b1")
        acknowledged(a0, "cg-wang", november(1) - 2 * DAY_MS + 10_000)
        resolved(a0, "cg-wang", "visited", november(1) - 2 * DAY_MS + 20_000)
        # g1: three alerts acknowledged in 60, 180, 300 s and resolved in 600, 1200, 90000 s; the third
        # is told overdue (acknowledged, unresolved a day later).
        a1 = raised("sos", Severity.CRITICAL, november(1, 10), resident="r1", household="h1", building="b1")
        acknowledged(a1, "cg-wang", november(1, 10) + 60_000)
        resolved(a1, "cg-wang", "visited", november(1, 10) + 600_000)
        a2 = raised("fall", Severity.CRITICAL, november(2, 10), resident="r1", household="h1", building="b1")
        acknowledged(a2, "cg-wang", november(2, 10) + 180_000)
        resolved(a2, "cg-wang", "false_alarm", november(2, 10) + 1_200_000)
        a3 = raised("inactivity", Severity.WARNING, november(3, 8), resident="r1", household="h1",
                    building="b1")
        acknowledged(a3, "cg-wang", november(3, 8) + 300_000)
        ticked(november(3, 8) + 300_000 + DAY_MS + 60_000)
        resolved(a3, "cg-wang", "resident_ok", november(3, 8) + 90_000_000)
        # g2: raised 10 minutes before November, acknowledged (1200 s) and resolved (4200 s) in it.
        a9 = raised("inactivity", Severity.WARNING, november(1) - 600_000, resident="r2", household="h2",
                    building="b1")
        acknowledged(a9, "cg-zhao", november(1) + 600_000)
        resolved(a9, "cg-zhao", "resident_ok", november(1) + 3_600_000)
        a4 = raised("door_left_open", Severity.WARNING, november(4, 9), household="h2", building="b1")
        acknowledged(a4, "cg-zhao", november(4, 9) + 120_000)
        resolved(a4, "cg-zhao", "false_alarm", november(4, 9) + 900_000)
        # Escalated (nobody within 1800 s), acknowledged at 2400 s, overdue a day later, never resolved.
        a5 = raised("inactivity", Severity.WARNING, november(5, 9), resident="r2", household="h2",
                    building="b1")
        ticked(november(5, 9) + 1_860_000)
        acknowledged(a5, "cg-zhao", november(5, 9) + 2_400_000)
        ticked(november(5, 9) + 2_400_000 + DAY_MS + 60_000)
        # On building b1, in no grid: counts for 阳光社区 and above.
        a6 = raised("falling_object", Severity.CRITICAL, november(6, 14), building="b1",
                    device="camera-1")
        acknowledged(a6, "duty", november(6, 14) + 30_000)
        resolved(a6, "duty", "visited", november(6, 14) + 300_000)
        # g3 in 月亮社区: an SOS pressed by mistake; a door sensor offline for two days, cleared by the hub.
        a7 = raised("sos", Severity.CRITICAL, november(7, 10), resident="r3", household="h3", building="b2",
                    community="moon")
        acknowledged(a7, "cg-qian", november(7, 10) + 240_000)
        resolved(a7, "cg-qian", "false_alarm", november(7, 10) + 1_800_000)
        raised("device_offline", Severity.INFO, november(10), household="h3", building="b2",
               community="moon", device="door-3")
        clock.at = november(12)
        service.clear(ClearRequest(kind="device_offline", subject="door-3", device="door-3",
                                   cleared_at_ms=november(12)))
        # December: in no November figure.
        raised("fall", Severity.CRITICAL, DECEMBER_MS + 3_600_000, resident="r3", household="h3",
               building="b2", community="moon")
    finally:
        service.close()


def script_visits(store_path: Path, store_url: str | None = None) -> None:
    """g1: one visit done, one overdue, one still scheduled past its time, one cancelled; g3: one done; one
    in December. Into the store's own `visits` table (the migrations made it with the alert tables)."""
    visits = [("r1", "sunshine", "h1", "g1", november(2, 9), "done", november(2, 10), "cg-wang"),
              ("r1", "sunshine", "h1", "g1", november(9, 9), "overdue", None, None),
              ("r1b", "sunshine", "h1", "g1", november(20, 9), "cancelled", None, None),
              ("r1b", "sunshine", "h1", "g1", november(29, 9), "scheduled", None, None),
              ("r3", "moon", "h3", "g3", november(3, 9), "done", november(3, 11), "cg-qian"),
              ("r3", "moon", "h3", "g3", DECEMBER_MS + DAY_MS, "scheduled", None, None)]
    insert = ("INSERT INTO visits (resident, community, household, grid, from_ms, due_ms, status, done_ms,"
              " recorded_by) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)")
    if store_url is not None:
        with closing(PgConnection(store_url)) as pg:
            pg.executemany(insert, visits)
        return
    with closing(sqlite3.connect(store_path)) as db, db:
        db.executemany(insert, visits)
