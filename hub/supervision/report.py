"""The monthly supervision summary a subdistrict (街道) prints: a CSV with a row for the subdistrict, each
community, each grid and each worker, and a self-contained HTML page laid out for A4 paper (the browser's
print to PDF makes the PDF; no PDF library needed)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader

from hub.alerts.messages import words
from hub.registry import Level
from hub.supervision.figures import Durations, Figures, Supervision, UnitFigures, WorkerFigures

_pages = Environment(loader=PackageLoader("hub.supervision", "templates"), autoescape=True)

CSV_COLUMNS = (
    "row", "id", "name", "community", "alerts", "alerts_by_kind", "ack_count", "ack_median_s", "ack_p90_s",
    "resolve_count", "resolve_median_s", "resolve_p90_s", "overdue", "escalated", "resolved", "false_alarms",
    "false_alarm_share", "devices", "device_coverage", "visits_due", "visits_done", "visits_overdue",
)


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    """One subdistrict's month: its figures, its communities', its grids' and its workers'."""

    month: date  # its first day
    zone: ZoneInfo
    generated_ms: int
    subdistrict: UnitFigures
    communities: list[UnitFigures]
    grids: list[tuple[str, UnitFigures]]  # (community, grid)
    workers: list[WorkerFigures]

    def community_name(self, community: str) -> str:
        return next((c.name for c in self.communities if c.id == community), community)

    @classmethod
    def of(cls, figures: Supervision, subdistrict: str, month: date, zone: ZoneInfo,
           generated_ms: int) -> MonthlyReport:
        within: tuple[Level, str] = ("subdistrict", subdistrict)
        hierarchy = figures.hierarchy
        return cls(
            month=month, zone=zone, generated_ms=generated_ms,
            subdistrict=figures.unit("subdistrict", subdistrict),
            communities=[figures.unit("community", c) for c in figures.units("community", within)],
            grids=[(hierarchy.at("grid", g).community or "", figures.unit("grid", g))
                   for g in figures.units("grid", within)],
            workers=figures.workers(lambda place: place.subdistrict == subdistrict))


def _durations(took: Durations) -> list[object]:
    return [took.count, _blank(took.median_s), _blank(took.p90_s)]


def _blank(value: float | None) -> object:
    return "" if value is None else value


def _unit_row(row: str, unit: UnitFigures, community: str) -> list[object]:
    f: Figures = unit.figures
    kinds = " ".join(f"{kind}:{n}" for kind, n in f.alerts_by_kind.items())
    return [row, unit.id, unit.name, community, f.alerts, kinds, *_durations(f.acknowledgement),
            *_durations(f.resolution), f.overdue, f.escalated, f.resolved, f.false_alarms,
            _blank(f.false_alarm_share), f.devices, _blank(f.device_coverage), f.visits_due, f.visits_done,
            f.visits_overdue]


def to_csv(report: MonthlyReport) -> str:
    """Seconds and shares as numbers, for a spreadsheet; a worker's row leaves the unit's columns empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(_unit_row("subdistrict", report.subdistrict, ""))
    for unit in report.communities:
        writer.writerow(_unit_row("community", unit, unit.id))
    for community, unit in report.grids:
        writer.writerow(_unit_row("grid", unit, community))
    for w in report.workers:
        writer.writerow(["worker", w.caregiver, w.name, "", "", "", *_durations(w.acknowledgement),
                         *_durations(w.resolution), w.overdue, "", "", w.false_alarms, "", "", "", "",
                         w.visits_done, ""])
    return out.getvalue()


def _minutes(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f}"


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f}%"


def to_html(report: MonthlyReport) -> str:
    generated = datetime.fromtimestamp(report.generated_ms / 1000, report.zone)
    return _pages.get_template("report.html.j2").render(
        report=report, minutes=_minutes, percent=_percent, kinds=words("zh")["kinds"],
        generated=generated.strftime("%Y-%m-%d %H:%M"))
