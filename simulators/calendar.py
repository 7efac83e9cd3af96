"""The scenario's local days: residents live by the community's wall clock, not by UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from simulators.message import MINUTE_MS, SECOND_MS


@dataclass(frozen=True, slots=True)
class LocalDay:
    """One local calendar day of the scenario, [start_ms, end_ms) in epoch milliseconds.

    A day is 23 or 25 hours long where daylight saving time changes; `minutes` says how many.
    """

    index: int
    start_ms: int
    end_ms: int
    weekday: int  # Monday is 0

    @property
    def minutes(self) -> int:
        return (self.end_ms - self.start_ms) // MINUTE_MS

    @property
    def is_weekend(self) -> bool:
        return self.weekday >= 5

    def at(self, minute: float) -> int:
        """Epoch ms of `minute` minutes after local midnight (fractions give seconds)."""
        return self.start_ms + round(minute * MINUTE_MS)


class Calendar:
    """The `days` local days starting at the local midnight on or before `start`."""

    def __init__(self, start: datetime, days: int, zone: ZoneInfo) -> None:
        local = start.astimezone(zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        self.zone = zone
        self.days: list[LocalDay] = []
        for index in range(days):
            # Add calendar days to the date, not 24 h to the instant, so DST days keep local midnights.
            day = (midnight.replace(tzinfo=None) + timedelta(days=index)).replace(tzinfo=zone)
            following = (day.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
            self.days.append(LocalDay(index, _epoch_ms(day), _epoch_ms(following), day.weekday()))
        self.start_ms = _epoch_ms(start) - _epoch_ms(start) % MINUTE_MS
        self.end_ms = self.days[-1].end_ms

    def day_of(self, sim_ms: int) -> LocalDay:
        for day in self.days:
            if day.start_ms <= sim_ms < day.end_ms:
                return day
        raise ValueError(f"{sim_ms} is outside the scenario")

    def local_hour(self, sim_ms: int) -> float:
        moment = datetime.fromtimestamp(sim_ms / SECOND_MS, self.zone)
        return moment.hour + moment.minute / 60


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * SECOND_MS)
