"""`/api/v1/alerts`: list and filter, one alert with its history and deliveries, acknowledge, assign,
resolve, reopen, the live stream, and a dispatcher's answers. Every action is done by the alert service,
which records it in the alert's history with the actor (the token's name; a caregiver's registry id),
the role it acted in and the time."""

from __future__ import annotations

from contextlib import closing
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import AwareDatetime

from detectors.severity import Severity
from hub.alerts.directory import caregiver
from hub.alerts.links import is_dispatch_token
from hub.alerts.model import ALERT_KINDS, Alert, AlertDetail, AlertError, AlertState
from hub.alerts.service import AlertService
from hub.alerts.store import AlertFilter, AlertStore
from hub.api.audit import named_residents, record_read
from hub.api.auth import ACTING_ROLES, ScopeDep, actor, require_role
from hub.api.deps import AlertsDep, LinksDep, RegistryDep, StoreDep
from hub.api.errors import REFUSALS, conflict, forbidden, invalid, not_found
from hub.api.places import PlacesDep
from hub.api.schemas import (
    AlertDetailOut,
    AlertEventOut,
    AlertOut,
    AssignIn,
    DeliveryOut,
    DispatchAnswerIn,
    ReopenIn,
    ResolveIn,
    epoch_ms,
)
from hub.api.scope import Scope
from hub.api.stream import AlertStream, StreamLimitError
from hub.api.tokens import Role
from hub.registry import Registry
from hub.store import StoreAt

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

# Who may send a resolved alert round the loop again: the one place this is decided.
REOPEN_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR})

# SQLite's integers are 64-bit: a larger id is no alert, not a server error.
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]

_ACTION_REFUSALS: dict[int | str, dict[str, Any]] = {
    **REFUSALS, 404: {"description": "no such alert"},
    409: {"description": "not possible in the alert's state (e.g. already resolved)"},
}


@router.get("", responses=REFUSALS)
def list_alerts(  # noqa: PLR0917 - FastAPI passes query parameters by name
    store_at: StoreDep,
    registry: RegistryDep,
    scope: ScopeDep,
    places: PlacesDep,
    state: Annotated[list[AlertState] | None, Query(description="repeatable")] = None,
    kind: Annotated[list[str] | None, Query(description="repeatable")] = None,
    severity: Annotated[list[Severity] | None, Query(description="repeatable")] = None,
    resident: str | None = None,
    since: Annotated[AwareDatetime | None, Query(description="still seen at or after (ISO 8601)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="first seen at or before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    """Alerts the token may see, newest first."""
    unknown = [k for k in kind or [] if k not in ALERT_KINDS]
    if unknown:
        raise invalid(("query", "kind"),
                      f"unknown alert kind {unknown[0]!r}; one of {', '.join(ALERT_KINDS)}", unknown[0])
    if since is not None and until is not None and since > until:
        raise invalid(("query", "until"), "`until` is before `since`", until.isoformat())
    if resident is not None and scope.residents is not None and resident not in scope.residents:
        raise forbidden(f"{scope.who} does not care for resident {resident}")
    where = AlertFilter(
        states=tuple(state or ()), kinds=tuple(kind or ()), severities=tuple(severity or ()),
        resident=resident, among=places.alert_columns(registry.hierarchy),
        since_ms=None if since is None else epoch_ms(since),
        until_ms=None if until is None else epoch_ms(until),
        limit=limit,
    )
    # A read-only connection of its own: a request never waits on the alert service's lock, which the
    # hub's threads raise alerts under.
    with closing(AlertStore(store_at.path, read_only=True, url=store_at.url)) as reader:
        found = reader.alerts(where, scope.alert_sql())
    _shown(store_at, scope, registry, "alerts", found)
    return [AlertOut.of(a, registry) for a in found]


def _shown(store_at: StoreAt, scope: Scope, registry: Registry, what: str, alerts: list[Alert]) -> None:
    """The read audit: the response shows these alerts' residents by name (docs/personal-data.md)."""
    record_read(store_at, scope, what, named_residents(registry, alerts))


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={**REFUSALS, 429: {"description": "the token holds as many live streams as it may"},
               200: {"content": {"text/event-stream": {}},
                                  "description": "`event: alert` + `data: <AlertOut JSON>` per change"}},
)
async def stream_alerts(request: Request, scope: ScopeDep) -> StreamingResponse:
    """Server-Sent Events: one `alert` event per change the token may see (raised, repeated,
    escalated, acknowledged, assigned, resolved), and a `: keepalive` comment every 15 s."""
    stream: AlertStream = request.app.state.alert_stream
    try:
        stream.check_room(scope.token)
    except StreamLimitError as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc)) from None
    return StreamingResponse(stream.events(scope.token), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _visible(alerts: AlertService, scope: Scope, alert_id: int) -> AlertDetail:
    try:
        detail = alerts.get(alert_id)
    except AlertError:
        raise not_found(f"alert {alert_id}") from None
    if scope.alert_refusal(detail.alert) is not None:
        # Answered as if there were no such alert: a 403 would confirm that the id exists.
        raise not_found(f"alert {alert_id}")
    return detail


@router.get("/{alert_id}", responses={**REFUSALS, 404: {"description": "no such alert"}})
def get_alert(alerts: AlertsDep, registry: RegistryDep, store_at: StoreDep, scope: ScopeDep,
              alert_id: AlertId) -> AlertDetailOut:
    """One alert with its full history (who did what, when) and its notifications."""
    detail = _visible(alerts, scope, alert_id)
    _shown(store_at, scope, registry, "alert", [detail.alert])
    return AlertDetailOut(
        **AlertOut.of(detail.alert, registry).model_dump(),
        history=[AlertEventOut.of(e, registry) for e in detail.history],
        deliveries=[DeliveryOut.of(d) for d in detail.deliveries],
        people=AlertDetailOut.people_of(registry, detail.history),
    )


def _acting(alerts: AlertService, scope: Scope, alert_id: int, doing: str) -> None:
    require_role(scope.token, ACTING_ROLES, f"{doing} alerts")
    _visible(alerts, scope, alert_id)


@router.post("/{alert_id}/acknowledge", responses=_ACTION_REFUSALS)
def acknowledge(alerts: AlertsDep, registry: RegistryDep, scope: ScopeDep, alert_id: AlertId) -> AlertOut:
    """Take the alert on: escalation to the next tier stops."""
    _acting(alerts, scope, alert_id, "acknowledge")
    try:
        return AlertOut.of(alerts.acknowledge(alert_id, by=actor(scope.token), role=scope.token.role.value),
                           registry)
    except AlertError as exc:
        raise conflict(str(exc)) from None


@router.post("/{alert_id}/assign", responses={**_ACTION_REFUSALS, 422: {"description": "no such caregiver"}})
def assign(alerts: AlertsDep, registry: RegistryDep, scope: ScopeDep, alert_id: AlertId,
           body: AssignIn) -> AlertOut:
    """Make a caregiver (registry id) responsible for the alert."""
    _acting(alerts, scope, alert_id, "assign")
    if caregiver(registry, body.to) is None:
        raise invalid(("body", "to"), f"there is no caregiver {body.to!r} in the registry", body.to)
    try:
        return AlertOut.of(alerts.assign(alert_id, body.to, by=actor(scope.token),
                                         role=scope.token.role.value), registry)
    except AlertError as exc:
        raise conflict(str(exc)) from None


@router.post("/{alert_id}/resolve", responses=_ACTION_REFUSALS)
def resolve(alerts: AlertsDep, registry: RegistryDep, scope: ScopeDep, alert_id: AlertId,
            body: ResolveIn) -> AlertOut:
    """Close the alert with its outcome (and a note)."""
    _acting(alerts, scope, alert_id, "resolve")
    try:
        return AlertOut.of(alerts.resolve(alert_id, body.outcome, by=actor(scope.token), note=body.note,
                                          role=scope.token.role.value), registry)
    except AlertError as exc:
        raise conflict(str(exc)) from None


@router.post("/{alert_id}/reopen", responses={**_ACTION_REFUSALS, 409: {"description": "not resolved"}})
def reopen(alerts: AlertsDep, registry: RegistryDep, scope: ScopeDep, alert_id: AlertId,
           body: ReopenIn) -> AlertOut:
    """Send a resolved alert round the loop again, saying why: it needs a new acknowledgement and
    resolution, escalation starts over, and whoever handled it before is told."""
    require_role(scope.token, REOPEN_ROLES, "reopen alerts")
    _visible(alerts, scope, alert_id)
    try:
        return AlertOut.of(alerts.reopen(alert_id, by=actor(scope.token), note=body.note,
                                         role=scope.token.role.value), registry)
    except AlertError as exc:
        raise conflict(str(exc)) from None


@router.post("/{alert_id}/dispatch-answer", status_code=status.HTTP_204_NO_CONTENT,
             responses={403: {"description": "not this alert's callback token"},
                        404: {"description": "no such alert"}})
def dispatch_answer(alerts: AlertsDep, links: LinksDep, alert_id: AlertId, body: DispatchAnswerIn,
                    t: Annotated[str, Query(max_length=100, description="the token of the callback URL")]
                    ) -> Response:
    """A dispatcher's answer about an alert it was handed (docs/integrators/dispatch.md): no sign-in, the
    callback URL's token is the permission, for this alert's history only."""
    if not is_dispatch_token(links.key, t, alert_id):
        raise forbidden("this is not the callback of that alert")
    try:
        alerts.dispatch_answer(alert_id, body.status, body.note)
    except AlertError:
        raise not_found(f"alert {alert_id}") from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
