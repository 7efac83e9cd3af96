"""Which inactivity track a home's devices put it on, and what detection to expect there.

A community buys devices, and the devices decide how soon a collapse can be noticed: a home with sensors
inside sees its resident's day; a home with only the front-door contact and the smart peephole sees
only passages, so a silence there must run far longer before it means anything. The expectations are
the figures `make bench-real` measures on recordings of real people living alone, pooled over the homes
of each track (docs/detection-on-real-homes.md); they are shown beside each home so that nobody
expects of a door contact what only indoor sensors can give.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from devices import KINDS
from devices.kind import Sees


class Track(StrEnum):
    BAND = "band"                  # a wristband worn by the resident, with whatever sensors the home has
    INDOOR = "indoor_sensors"      # sensors inside the home (motion and the like), no band
    DOOR_ONLY = "door_only"        # only the front-door contact and/or the smart peephole
    NONE = "none"                  # nothing in the home reports the resident's activity


@dataclass(frozen=True, slots=True)
class Expectation:
    median_delay_h: float | None      # from the collapse to the alert, half the time sooner
    detected_24h: float | None        # share of collapses alerted within 24 h
    false_alarms_per_month: float | None
    basis: str                        # where the figures come from

    def cells(self) -> tuple[str, str, str]:
        """Median delay, share within 24 h and false alarms a month, as a person reads them."""
        return ("–" if self.median_delay_h is None else f"{self.median_delay_h:g} h",
                "–" if self.detected_24h is None else f"{100 * self.detected_24h:.0f} %",
                "–" if self.false_alarms_per_month is None else f"{self.false_alarms_per_month:g}")


EXPECTED: dict[Track, Expectation] = {
    Track.INDOOR: Expectation(6.3, 0.96, 2.5, "4 real homes with indoor sensors (make bench-real)"),
    Track.DOOR_ONLY: Expectation(15.3, 1.0, 3.1, "2 real homes, front-door events only (make bench-real)"),
    Track.BAND: Expectation(None, None, None, "not yet measured on real wearers: a still band warns within "
                            "minutes; with the band off, as indoor sensors"),
    Track.NONE: Expectation(None, None, None, "no device reports activity: no inactivity detection"),
}

# Tracks by what a home's devices see of the resident, best first (cameras watch a building, not a home).
_TRACKS = ((Sees.WEARER, Track.BAND), (Sees.INDOOR, Track.INDOOR), (Sees.FRONT_DOOR, Track.DOOR_ONLY))


def track_of(kinds: Iterable[str]) -> Track:
    """The track of a home (and its resident) with devices of these kinds."""
    seen = {place for kind in set(kinds) if kind in KINDS for place in KINDS[kind].places}
    return next((track for place, track in _TRACKS if place in seen), Track.NONE)
