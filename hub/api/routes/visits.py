"""`/api/v1/visits`: grid workers' planned visits (巡查, hub/visits/), listed by any level of the registry,
and recorded once each by a worker of the visit's grid or an operator in scope. The record is the audit:
who recorded it (a caregiver's registry id, or the token's name), with which token, when, and what they
found; recording also resolves the visit's overdue alert, in that alert's own history."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from hub.alerts.model import AlertError
from hub.api.audit import record_read
from hub.api.auth import ScopeDep, actor
from hub.api.deps import AlertsDep, ClockDep, RegistryDep, StoreDep
from hub.api.errors import REFUSALS, conflict, forbidden, invalid, not_found
from hub.api.schemas import at, epoch_ms
from hub.api.scope import Scope
from hub.api.tokens import Role
from hub.registry import Level, Registry
from hub.store import Store, Visit, VisitFilter, VisitStatus
from hub.visits.patrol import record

router = APIRouter(prefix="/api/v1/visits", tags=["visits"])

VisitId = Annotated[int, Path(ge=1, le=2**63 - 1)]
VisitOutcome = Literal["ok", "concern", "not_home", "referred"]
NOTE_MAX = 500  # a visit's note says what was found, not a case file: PIPL, keep only what is needed


class VisitOut(BaseModel):
    id: int
    resident: str
    resident_name: str | None
    community: str
    building: str | None
    building_name: str | None
    unit: str | None = Field(description="the household's unit as people say it (`7-2-1402`)")
    grid: str
    timezone: str = Field(description="the community's, in which people read the times")
    due: AwareDatetime
    status: VisitStatus
    assigned_to: str | None = Field(description="the grid worker it was planned for (caregiver id)")
    alert_id: int | None = Field(description="its visit_overdue alert, once overdue")
    done_at: AwareDatetime | None
    resident_seen: bool | None
    outcome: VisitOutcome | None
    note: str
    lat: float | None
    lon: float | None
    recorded_by: str | None

    @classmethod
    def of(cls, visit: Visit, registry: Registry) -> VisitOut:
        data = registry.data
        resident = next((r for r in registry.file.residents if r.id == visit.resident), None)
        household = next((h for h in registry.file.households if h.id == visit.household), None)
        building = registry.hierarchy.household(visit.household).building if household else None
        names = {b.id: b.name for b in registry.file.buildings}
        zone = next((c.timezone for c in data.communities if c.id == visit.community), "Asia/Shanghai")
        due = at(visit.due_ms)
        assert due is not None
        return cls(id=visit.id, resident=visit.resident, resident_name=resident.name if resident else None,
                   community=visit.community, building=building,
                   building_name=names.get(building or "") or None,
                   unit=(household.unit or household.id) if household else None, grid=visit.grid,
                   timezone=zone, due=due, status=visit.status, assigned_to=visit.assigned_to,
                   alert_id=visit.alert_id, done_at=at(visit.done_ms), resident_seen=visit.resident_seen,
                   outcome=visit.outcome,
                   note=visit.note, lat=visit.lat, lon=visit.lon, recorded_by=visit.recorded_by)


class VisitRecordIn(BaseModel):
    model_config = {"extra": "forbid"}

    resident_seen: bool = Field(description="whether the worker saw the resident; if not, the next visit is "
                                            "due within a day")
    outcome: VisitOutcome
    note: str = Field("", max_length=NOTE_MAX)
    lat: float | None = Field(None, ge=-90, le=90, description="the phone's location, when it allowed it")
    lon: float | None = Field(None, ge=-180, le=180)


# --- who may do what: the hooks role and scope changes extend -------------------------------------------


def recording_refusal(scope: Scope, registry: Registry, visit: Visit) -> str | None:
    """Who may record a visit: a worker of the visit's grid (caregiver token), a grid worker token of that
    grid, or an operator or supervisor whose communities hold it. Why not, or None."""
    token = scope.token
    if token.role is Role.GRID_WORKER:
        return None if scope.grids is not None and visit.grid in scope.grids else (
            f"{scope.who} does not work grid {visit.grid}, whose visit this is")
    if token.role is Role.CAREGIVER:
        workers = {w.id for w in registry.hierarchy.grid_workers(visit.grid)}
        return None if token.caregiver in workers else (
            f"{scope.who} is not a grid worker of grid {visit.grid}, whose visit this is")
    if token.role in {Role.OPERATOR, Role.SUPERVISOR}:
        return None if scope.sees_community(visit.community) else (
            f"visit {visit.id} is in community {visit.community}, outside {scope.who}'s communities")
    return (f"a {token.role.value} token may not record visits"
            " (that takes: caregiver, grid_worker, operator, supervisor)")


def _sees(scope: Scope, visit: Visit) -> bool:
    """A caregiver's or grid worker's residents' visits (a grid worker's caregiver token includes the
    residents of the grids it works: `Scope.of`); for the other roles, their communities'."""
    if scope.residents is not None:
        return visit.resident in scope.residents
    return scope.sees_community(visit.community)


# --- routes --------------------------------------------------------------------------------------------


@router.get("", responses=REFUSALS)
def list_visits(  # noqa: PLR0917 - FastAPI passes query parameters by name
    store_at: StoreDep, registry: RegistryDep, scope: ScopeDep,
    status: Annotated[list[VisitStatus] | None, Query(description="repeatable")] = None,
    due_after: Annotated[AwareDatetime | None, Query(description="due at or after (ISO 8601)")] = None,
    due_before: Annotated[AwareDatetime | None, Query(description="due at or before (ISO 8601)")] = None,
    resident: str | None = None,
    city: str | None = None, district: str | None = None, subdistrict: str | None = None,
    community: str | None = None, compound: str | None = None, building: str | None = None,
    grid: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[VisitOut]:
    """Visits the token may see, soonest due first. Any level filters: the visits of households under it."""
    if due_after is not None and due_before is not None and due_after > due_before:
        raise invalid(("query", "due_before"), "`due_before` is before `due_after`", due_before.isoformat())
    if community is not None and not scope.sees_community(community):
        raise forbidden(f"community {community} is outside {scope.who}'s communities")
    levels: dict[Level, str | None] = {"city": city, "district": district, "subdistrict": subdistrict,
                                       "community": community, "compound": compound, "building": building,
                                       "grid": grid}
    households: frozenset[str] | None = None
    hierarchy = registry.hierarchy
    for level, value in levels.items():
        if value is None:
            continue
        if not hierarchy.has(level, value):
            raise invalid(("query", level), f"there is no {level} {value!r} in the registry", value)
        under = frozenset(h.id for h in registry.file.households
                          if hierarchy.household(h.id).at(level) == value)
        households = under if households is None else households & under
    residents = scope.residents
    if resident is not None:
        if residents is not None and resident not in residents:
            raise forbidden(f"{scope.who} does not see resident {resident}'s visits")
        residents = frozenset({resident})
    where = VisitFilter(
        statuses=tuple(status or ()), households=households, residents=residents,
        communities=None if scope.communities is None or residents is not None else scope.communities,
        due_after_ms=None if due_after is None else epoch_ms(due_after),
        due_before_ms=None if due_before is None else epoch_ms(due_before), limit=limit)
    store = Store(store_at.path, read_only=True, url=store_at.url)
    try:
        visits = store.visits(where)
    finally:
        store.close()
    record_read(store_at, scope, "visits", sorted({v.resident for v in visits}))
    return [VisitOut.of(v, registry) for v in visits]


@router.post("/{visit_id}/record", responses={
    **REFUSALS, 404: {"description": "no such visit"},
    409: {"description": "the visit was already recorded, or cancelled"}})
def record_visit(  # noqa: PLR0917 - FastAPI passes dependencies by name
    store_at: StoreDep, registry: RegistryDep, scope: ScopeDep, alerts: AlertsDep, clock: ClockDep,
    visit_id: VisitId, body: VisitRecordIn,
) -> VisitOut:
    """Record the visit as done: whether the resident was seen, the outcome, a note, and where the phone
    was (optional). The next visit is scheduled from it, and its overdue alert, if any, resolved."""
    if (body.lat is None) != (body.lon is None):
        raise invalid(("body", "lat" if body.lat is None else "lon"), "give both `lat` and `lon`, or neither")
    store = Store(store_at.path, url=store_at.url)
    try:
        visit = store.visit(visit_id)
        if visit is None or not _sees(scope, visit):
            raise not_found(f"visit {visit_id}")  # as if absent: a 403 would confirm it exists
        refusal = recording_refusal(scope, registry, visit)
        if refusal is not None:
            raise forbidden(refusal)
        if visit.status not in ("scheduled", "overdue"):
            raise conflict(f"visit {visit_id} is {visit.status}" + (
                f" (recorded by {visit.recorded_by})" if visit.status == "done" else ""))
        who = actor(scope.token)
        done = replace(visit, status="done", done_ms=clock.now_ms(), resident_seen=body.resident_seen,
                       outcome=body.outcome, note=body.note, lat=body.lat, lon=body.lon, recorded_by=who,
                       token_id=scope.token.id)
        recorded = record(store, registry, done)
    finally:
        store.close()
    if recorded is None:
        raise conflict(f"visit {visit_id} was recorded or cancelled a moment ago")
    if recorded.alert_id is not None:
        with contextlib.suppress(AlertError):  # resolved by someone already: the visit stands all the same
            alerts.resolve(recorded.alert_id, "visited", by=who,
                           note=f"visit {visit_id}: {body.outcome}" + (f"; {body.note}" if body.note else ""))
    return VisitOut.of(recorded, registry)

