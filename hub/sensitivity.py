"""Learning from caregivers' verdicts: a resident's inactivity sensitivity per time of day.

A `false_alarm` outcome on an inactivity alert moves that resident's sensitivity at that time of day one
step toward fewer alerts; a missed incident reported by hand (nobody was alerted, and someone should
have been) moves it one step back. The time of day is one of `BANDS` (six hours each, local time), so a
resident who naps long after lunch stops paging the family at 14:00 without being watched less at night.

The factor multiplies the registry's `inactivity_sensitivity` in the detector (`ResidentActivity`
applies the factor of the band the clock is in to every resident); it is bounded (`FLOOR`..`CEILING`)
so no run of verdicts can switch watching off or turn it into a pager that never stops. It lives here,
in the store, not in the detector's arrays: the detector keeps ≤ 2,048 bytes per resident, and this is
the caregivers' knowledge, not something learned from readings.

Every change is one row of `sensitivity_changes` (who, when, which alert or reported incident, which
band, old → new): the audit and the current value at once (a band's factor is its newest row's `new`,
1 without one). An operator reverses a change by its id: a new row setting the band back to the change's
`old`, naming the change it reverses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

BANDS: tuple[str, ...] = ("night", "morning", "afternoon", "evening")  # 00–06, 06–12, 12–18, 18–24 local
BAND_HOURS = 24 // len(BANDS)
STEP = 0.8  # one step toward fewer alerts multiplies the factor by this; toward more alerts divides
FLOOR = 0.5  # at most about twice the silence before a warning
CEILING = 1.5

Learned = Literal["false_alarm", "missed"]
Cause = Learned | Literal["reverted"]


class Database(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


@dataclass(frozen=True, slots=True)
class SensitivityChange:
    id: int
    resident: str
    band: str
    at_ms: int
    actor: str
    cause: Cause
    alert_id: int | None  # the false alarm
    incident_ms: int | None  # the missed incident reported: when it happened
    reverts: int | None  # the change this one reverses
    old: float
    new: float
    note: str


def band_of(at_ms: int, timezone: str) -> int:
    """The band (index into `BANDS`) of `at_ms` in `timezone`."""
    return datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(ZoneInfo(timezone)).hour // BAND_HOURS


def band_at(at_ms: int, utc_offset_s: int) -> int:
    """The band of `at_ms` at a fixed UTC offset (as the detector keeps each resident's)."""
    return (at_ms // 1000 + utc_offset_s) // 3600 % 24 // BAND_HOURS


def stepped(factor: float, cause: Learned) -> float:
    """One bounded step: fewer alerts after a false alarm, more after a missed incident."""
    moved = factor * STEP if cause == "false_alarm" else factor / STEP
    return round(min(CEILING, max(FLOOR, moved)), 4)


_COLUMNS = ("id, resident, band, at_ms, actor, cause, alert_id, incident_ms, reverts, old_value, new_value,"
            " note")


def _change(row: Any) -> SensitivityChange:
    return SensitivityChange(int(row[0]), row[1], BANDS[int(row[2])], int(row[3]), row[4], row[5],
                             None if row[6] is None else int(row[6]), None if row[7] is None else int(row[7]),
                             None if row[8] is None else int(row[8]), float(row[9]), float(row[10]), row[11])


def factor(db: Database, resident: str, band: int) -> float:
    row = db.execute("SELECT new_value FROM sensitivity_changes WHERE resident = ? AND band = ?"
                     " ORDER BY id DESC LIMIT 1", (resident, band)).fetchone()
    return 1.0 if row is None else float(row[0])


def record(db: Database, *, resident: str, band: int, at_ms: int, actor: str, cause: Cause, new: float,
           alert_id: int | None = None, incident_ms: int | None = None, reverts: int | None = None,
           note: str = "") -> SensitivityChange:
    """Set `resident`'s factor in `band` to `new` (inside the caller's transaction), audited."""
    old = factor(db, resident, band)
    row = db.execute(
        f"INSERT INTO sensitivity_changes ({_COLUMNS.removeprefix('id, ')})"
        f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
        (resident, band, at_ms, actor, cause, alert_id, incident_ms, reverts, old, new, note)).fetchone()
    return _change(row)


def changes(db: Database, resident: str) -> list[SensitivityChange]:
    """`resident`'s changes, oldest first."""
    rows = db.execute(f"SELECT {_COLUMNS} FROM sensitivity_changes WHERE resident = ? ORDER BY id",
                      (resident,)).fetchall()
    return [_change(row) for row in rows]


def change(db: Database, change_id: int) -> SensitivityChange | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM sensitivity_changes WHERE id = ?", (change_id,)).fetchone()
    return None if row is None else _change(row)


def factors(db: Database) -> tuple[int, dict[str, list[float]]]:
    """(the newest change's id, every resident's factor per band, for those with any change): the id
    tells a reader whether anything changed since it last looked."""
    rows = db.execute(
        "SELECT c.id, c.resident, c.band, c.new_value FROM sensitivity_changes c"
        " WHERE c.id = (SELECT max(id) FROM sensitivity_changes d"
        " WHERE d.resident = c.resident AND d.band = c.band)").fetchall()
    by_resident: dict[str, list[float]] = {}
    newest = 0
    for change_id, resident, band, value in rows:
        by_resident.setdefault(resident, [1.0] * len(BANDS))[int(band)] = float(value)
        newest = max(newest, int(change_id))
    return newest, by_resident


def by_band(history: list[SensitivityChange]) -> dict[str, float]:
    """A resident's factor per band name (1 where never changed), from their changes oldest first."""
    current = dict.fromkeys(BANDS, 1.0)
    for change in history:
        current[change.band] = change.new
    return current
