"""`/api/v1/reports`: a caregiver or operator files a report by hand (`hub.alerts.reports`): a resident
unwell, a hazard, a broken device. It becomes an alert in the same loop as the detectors' and is answered
with it (201). The reporter is the token's caregiver (or name), recorded in the alert's history.

A token may report only about what it sees: a caregiver token about its residents and their homes (and
the devices in them), an operator token about anything in its communities. Anything else is answered as
if it did not exist (404), as for alerts: a 403 would confirm the id.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from hub.alerts.model import AlertError
from hub.alerts.reports import report_request
from hub.api.auth import ScopeDep, actor, require_role
from hub.api.deps import AlertsDep, ClockDep, RegistryDep
from hub.api.errors import REFUSALS, not_found
from hub.api.schemas import AlertOut, ReportIn
from hub.api.scope import Scope
from hub.api.tokens import Role

router = APIRouter(prefix="/api/v1/reports", tags=["alerts"])

# Who may file a report: the one place this is decided.
REPORT_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.CAREGIVER, Role.GRID_WORKER})


def _covers(scope: Scope, *, community: str, building: str | None, household: str | None,
            resident: str | None) -> bool:
    """Whether the report's place is within the token's scope (the same predicates alerts are seen by)."""
    if resident is not None:
        return scope.sees_resident(resident, community)
    if scope.households is not None:  # a caregiver or grid worker: the homes it sees ...
        if household is None and building is not None:  # ... and a grid worker the buildings it covers
            return building in scope.buildings
        return household in scope.households
    return scope.sees_community(community)


@router.post("", status_code=status.HTTP_201_CREATED,
             responses={**REFUSALS, 404: {"description": "no such resident, household, device or building "
                                                         "in the token's scope"}})
def file_report(alerts: AlertsDep, registry: RegistryDep, clock: ClockDep, scope: ScopeDep,
                body: ReportIn) -> AlertOut:
    """File a report: it is raised as an alert of its category's kind (`report_<category>`), told to
    whom that kind goes to, and handled like any other alert."""
    require_role(scope.token, REPORT_ROLES, "file reports")
    ((place, place_id),) = body.places()
    by = actor(scope.token)
    try:
        request = report_request(registry, category=body.category, place=place, place_id=place_id,
                                 note=body.note, by=by, at_ms=clock.now_ms(),
                                 location=None if body.location is None
                                 else body.location.model_dump(exclude_none=True))
    except AlertError:
        raise not_found(f"{place} {place_id}") from None
    if not _covers(scope, community=request.community, building=request.building,
                   household=request.household, resident=request.resident):
        raise not_found(f"{place} {place_id}")
    return AlertOut.of(alerts.raise_alert(request, by=by, role=scope.token.role.value), registry)
