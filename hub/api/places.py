"""The filter every list takes by places at any level: `city`, `district`, `subdistrict`, `community`,
`compound`, `building`, `grid` (each once; together, what lies in all of them), within the token's scope.

A place outside the scope is a 403 that says so; a place that does not exist is a 422 for a token that
sees everything, and the same 403 for a scoped one, which cannot tell an unknown id from another's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from hub.api.auth import ScopeDep
from hub.api.deps import RegistryDep
from hub.api.errors import forbidden, invalid
from hub.api.scope import PlaceFilter
from hub.registry import LEVELS, Level

_Place = Annotated[str | None, Query(description="an id at this level: only what lies in it")]


def place_filter(  # noqa: PLR0917 - FastAPI passes query parameters by name
    registry: RegistryDep,
    scope: ScopeDep,
    city: _Place = None,
    district: _Place = None,
    subdistrict: _Place = None,
    community: _Place = None,
    compound: _Place = None,
    building: _Place = None,
    grid: _Place = None,
) -> PlaceFilter:
    given = (city, district, subdistrict, community, compound, building, grid)
    named: list[tuple[Level, str]] = [(level, place) for level, place in zip(LEVELS, given, strict=True)
                                      if place is not None]
    for level, place in named:
        if not scope.sees_place(level, place):
            raise forbidden(f"{level} {place} is outside {scope.who}'s {scope.places}")
        if not registry.hierarchy.has(level, place):
            raise invalid(("query", level), f"there is no {level} {place!r} in the registry", place)
    return PlaceFilter(tuple(named))


PlacesDep = Annotated[PlaceFilter, Depends(place_filter)]
