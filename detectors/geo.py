"""Distances on the ground, for geofences: how far outside its fence a position fix lies.

A fence is a few hundred metres to a few kilometres across, so an equirectangular projection around the
fix is exact to well under a metre there, and needs no geodesy library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from devices.registry import Geofence

_EARTH_RADIUS_M = 6_371_000.0


def _to_metres(lat: float, lon: float, origin_lat: float, origin_lon: float) -> tuple[float, float]:
    """(east, north) metres of (lat, lon) from the origin."""
    east = math.radians(lon - origin_lon) * math.cos(math.radians(origin_lat)) * _EARTH_RADIUS_M
    north = math.radians(lat - origin_lat) * _EARTH_RADIUS_M
    return east, north


def _segment_distance(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _inside(p: tuple[float, float], corners: Sequence[tuple[float, float]]) -> bool:
    """Ray casting: a horizontal ray from `p` crosses the polygon's edges an odd number of times."""
    x, y = p
    inside = False
    for (ax, ay), (bx, by) in zip(corners, [*corners[1:], corners[0]], strict=True):
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside


def outside_by_m(fence: Geofence, lat: float, lon: float) -> float:
    """How many metres outside `fence` the position is: zero or less when it is inside."""
    if fence.centre is not None and fence.radius_m is not None:
        east, north = _to_metres(fence.centre.lat, fence.centre.lon, lat, lon)
        return math.hypot(east, north) - fence.radius_m
    assert fence.polygon is not None  # a geofence has one of the two shapes
    corners = [_to_metres(c.lat, c.lon, lat, lon) for c in fence.polygon]
    edge = min(_segment_distance((0.0, 0.0), a, b)
               for a, b in zip(corners, [*corners[1:], corners[0]], strict=True))
    return -edge if _inside((0.0, 0.0), corners) else edge
