"""`/api/v1/supervision`: supervision's figures (督查) for one unit — a city, district, subdistrict,
community or grid — over a period, with its units one level down and its workers
(docs/operators/supervision.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hub.api.auth import ScopeDep, require_role
from hub.api.deps import ClockDep, RegistryDep, StoreDep
from hub.api.errors import REFUSALS, forbidden, invalid, not_found
from hub.api.schemas import epoch_ms
from hub.api.tokens import Role
from hub.supervision.figures import (
    SUPERVISED_LEVELS,
    SupervisedLevel,
    Supervision,
    UnitFigures,
    WorkerFigures,
)
from hub.supervision.sources import StoredVisits, read_history

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])
SUPERVISING_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.READ_ONLY})
DEFAULT_PERIOD = timedelta(days=30)
LONGEST_PERIOD = timedelta(days=366)  # a year's figures at most: one request reads the whole period


class SupervisionOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    period_from: datetime = Field(alias="from")
    period_to: datetime = Field(alias="to")
    unit: UnitFigures
    children: list[UnitFigures] = Field(description="its units one level down (a grid has none)")
    workers: list[WorkerFigures]


@router.get("", responses={**REFUSALS, 404: {"description": "no such unit in the token's scope"}})
def supervision(  # noqa: PLR0917 - FastAPI passes query parameters by name
    registry: RegistryDep, store_at: StoreDep, scope: ScopeDep, clock: ClockDep,
    level: Annotated[SupervisedLevel, Query(description="the unit's level")],
    id: Annotated[str, Query(description="the unit's registry id")],
    period_from: Annotated[AwareDatetime | None, Query(alias="from", description=(
        "start of the period, ISO 8601 with its zone (default: 30 days before `to`)"))] = None,
    period_to: Annotated[AwareDatetime | None, Query(alias="to", description=(
        "end of the period, excluded (default: now, in hub time)"))] = None,
) -> SupervisionOut:
    """Alerts by kind, time to acknowledge and to resolve, overdue and escalated alerts, the false-alarm
    share, device coverage and visits, for the unit, each of its units one level down, and its workers."""
    require_role(scope.token, SUPERVISING_ROLES, "read supervision figures")
    until = period_to or datetime.fromtimestamp(clock.now_ms() / 1000, UTC)
    since = period_from or until - DEFAULT_PERIOD
    if since >= until:
        raise invalid(("query", "to"), "`to` is not after `from`", until.isoformat())
    if until - since > LONGEST_PERIOD:
        raise invalid(("query", "from"), f"the period is longer than {LONGEST_PERIOD.days} days",
                      since.isoformat())
    hierarchy = registry.hierarchy
    # Wholly outside the token's communities: answered as if there were no such unit (a 403 would confirm
    # the id exists); partly outside (a subdistrict with other communities): refused, saying why.
    communities = hierarchy.communities_under(level, id) if hierarchy.has(level, id) else set()
    if not communities or not scope.sees_any(communities):
        raise not_found(f"{level} {id}")
    if not scope.sees_all(communities):
        raise forbidden(f"{level} {id} has communities outside {scope.who}'s communities")
    history = read_history(store_at, StoredVisits(store_at), epoch_ms(since), epoch_ms(until), clock.now_ms())
    figures = Supervision(registry, history)
    below = SUPERVISED_LEVELS[SUPERVISED_LEVELS.index(level) + 1:][:1]
    return SupervisionOut(
        period_from=since, period_to=until, unit=figures.unit(level, id),
        children=[figures.unit(child, c) for child in below for c in figures.units(child, (level, id))],
        workers=figures.workers(lambda place: place.at(level) == id))
