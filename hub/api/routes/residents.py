"""`/api/v1/residents`: the residents a token may see, and each one's current detector view and recent
readings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from influxdb_client.rest import ApiException

from hub.alerts.model import AlertError
from hub.api.activity import coverage_ok, detector_view
from hub.api.audit import record_read
from hub.api.auth import ACTING_ROLES, ScopeDep, actor, require_role
from hub.api.deps import (
    ActivityDep,
    AlertsDep,
    ClockDep,
    OfflineDevicesDep,
    RegistryDep,
    SettingsDep,
    StoreDep,
)
from hub.api.errors import REFUSALS, conflict, not_found
from hub.api.places import PlacesDep
from hub.api.registry_editor import RegistryEditor
from hub.api.schemas import (
    ActivityOut,
    ErasureOut,
    ExpectationOut,
    MissedIncidentIn,
    ResidentOut,
    ResidentReadOut,
    RevertIn,
    SensitivityChangeOut,
    SensitivityOut,
    TimelineEntry,
    at,
)
from hub.api.scope import Scope, registry_index
from hub.api.tokens import Role
from hub.clock import SystemClock
from hub.monitoring_track import EXPECTED, track_of
from hub.personal_data import ErasureRefusedError, Who, erase_resident, export_resident, influx_points
from hub.registry import Registry
from hub.sensitivity import by_band
from hub.store import Store

router = APIRouter(prefix="/api/v1/residents", tags=["residents"])
OPERATORS = frozenset({Role.OPERATOR})  # export, erase, and the read audit

@router.get("", responses=REFUSALS)
def list_residents(registry: RegistryDep, store_at: StoreDep, scope: ScopeDep,
                   places: PlacesDep) -> list[ResidentOut]:
    """Residents in service whom the token may see (a caregiver: those it cares for)."""
    index = registry_index(registry)
    households = {h.id: h for h in registry.data.households}
    building_names = {b.id: b.name for b in registry.data.buildings}
    zones = {c.id: c.timezone for c in registry.data.communities}
    found = []
    for r in registry.data.residents:
        place = index.resident_community[r.id]
        levels = registry.hierarchy.resident(r.id)
        if not scope.sees_resident(r.id, place) or not places.matches(levels):
            continue
        acts = scope.token.role in ACTING_ROLES  # health flags are for those who act on them
        building = levels.building or ""
        found.append(ResidentOut(
            id=r.id, name=r.name, household=r.household, unit=households[r.household].unit or None,
            building=building, building_name=building_names[building] or None, grid=levels.grid or "",
            community=place,
            timezone=zones[place],
            lives_alone=r.lives_alone, flags=r.flags if acts else None,
            wandering_risk=r.wandering_risk if acts else None, caregivers=r.caregivers))
    record_read(store_at, scope, "residents", [r.id for r in found])
    return found


@router.get("/reads", responses=REFUSALS)
def resident_reads(
    registry: RegistryDep, store_at: StoreDep, scope: ScopeDep, resident: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[ResidentReadOut]:
    """The read audit, newest first: who was shown which residents' data (lists, activity, registry
    entries, exports). Operators only; with `resident`, the reads that showed that resident."""
    require_role(scope.token, OPERATORS, "read the read audit")
    index = registry_index(registry)
    store = Store(store_at.path, read_only=True, url=store_at.url)
    try:
        reads = store.reads(resident, limit)
    finally:
        store.close()
    out = []
    for read in reads:
        mine = [r for r in read.residents if scope.sees_resident(r, index.resident_community.get(r, ""))]
        moment = at(read.at_ms)
        if mine and moment is not None:
            out.append(ResidentReadOut(at=moment, actor=read.actor, token_id=read.token_id, role=read.role,
                                       what=read.what, residents=mine))
    return out


def _resident_in_scope(registry: Registry, scope: Scope, resident_id: str, doing: str) -> None:
    require_role(scope.token, OPERATORS, doing)
    if not any(r.id == resident_id for r in registry.file.residents) or not scope.sees_resident(
            resident_id, registry_index(registry).resident_community.get(resident_id, "")):
        raise not_found(f"resident {resident_id!r}")  # as if absent: a 403 would confirm it


def _who(scope: Scope) -> Who:
    return Who(scope.token.name, scope.token.id, scope.token.role.value)


@router.get("/{resident_id}/export", responses={**REFUSALS, 404: {"description": "no such resident"}})
def export(registry: RegistryDep, settings: SettingsDep, scope: ScopeDep, resident_id: str) -> dict[str, Any]:
    """Everything the hub holds about the resident (registry entry, caregivers, devices, readings, dead
    letters, alerts with history and deliveries, who viewed their data, InfluxDB points), as JSON.
    Operators only; recorded in the read audit."""
    _resident_in_scope(registry, scope, resident_id, "export a resident's data")
    return export_resident(resident_id, registry, store_path=settings.store_path,
                           store_url=settings.store_url, influx=influx_points(settings), who=_who(scope),
                           now_ms=SystemClock().now_ms())


@router.post("/{resident_id}/erase", responses={
    **REFUSALS, 404: {"description": "no such resident"},
    409: {"description": "the resident has unresolved alerts"},
    502: {"description": "InfluxDB refused to delete the points: nothing was erased"}})
def erase(request: Request, registry: RegistryDep, settings: SettingsDep, scope: ScopeDep,
          resident_id: str) -> ErasureOut:
    """Erase the resident everywhere: readings, dead letters and InfluxDB points deleted; alerts, their
    history and the registry entry anonymised (counts kept for statistics). Operators only; recorded
    with who and when (`hub residents erasures`)."""
    _resident_in_scope(registry, scope, resident_id, "erase a resident's data")
    editor: RegistryEditor = request.app.state.registry_editor
    with editor.lock:
        try:
            counts = erase_resident(resident_id, editor.current().file, store_path=settings.store_path,
                                    store_url=settings.store_url, influx=influx_points(settings),
                                    who=_who(scope), now_ms=SystemClock().now_ms(),
                                    write_registry=lambda change: editor.replace(
                                        change, actor=scope.token.name,
                                        what=f"erase residents {resident_id}"))
        except ErasureRefusedError as exc:
            raise conflict(str(exc)) from None
        except (OSError, ApiException) as exc:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"InfluxDB: {exc}") from None
    return ErasureOut(resident=resident_id, counts=counts)


@router.get("/{resident_id}/activity", responses={**REFUSALS, 404: {"description": "no such resident"}})
def resident_activity(  # noqa: PLR0917 - FastAPI passes dependencies and query parameters by name
    registry: RegistryDep,
    store_at: StoreDep,
    activity: ActivityDep,
    offline: OfflineDevicesDep,
    clock: ClockDep,
    scope: ScopeDep,
    resident_id: str,
    limit: Annotated[int, Query(ge=1, le=1000, description="readings in the timeline")] = 50,
    hours: Annotated[int, Query(ge=1, le=168, description="how far back the timeline goes")] = 24,
) -> ActivityOut:
    """The detector's view of the resident now (last activity, the next expected one, the pending alert
    deadlines, away or at home, whether the home's sensors report, the track its devices put it on and
    the detection to expect there) and the newest readings of the home's devices and the resident's
    wristband, of the last `hours`."""
    resident = next((r for r in registry.data.residents if r.id == resident_id), None)
    if resident is None:
        raise not_found(f"resident {resident_id!r} in service")
    if not scope.sees_resident(resident.id, registry_index(registry).resident_community[resident.id]):
        raise not_found(f"resident {resident_id!r} in service")  # as if absent: a 403 would confirm it
    record_read(store_at, scope, "activity", [resident.id])
    view = detector_view(activity, resident.id)
    mine = [d for d in registry.file.devices
            if d.household == resident.household and d.resident in (None, resident.id)]
    devices = [d.id for d in mine]
    track = track_of(d.kind for d in mine)
    expected = EXPECTED[track]
    store = Store(store_at.path, read_only=True, url=store_at.url)
    try:
        rows = store.recent_observations(devices, limit, clock.now_ms() - hours * 3_600_000)
        changes = store.sensitivity_changes(resident.id)
    finally:
        store.close()
    return ActivityOut(
        resident=resident.id, evaluated=view.evaluated, last_activity=at(view.last_activity_ms),
        expected_next_activity=at(view.expected_next_ms), alert_deadline=at(view.alert_deadline_ms),
        critical_deadline=at(view.critical_deadline_ms), not_back_deadline=at(view.not_back_deadline_ms),
        away=view.away, coverage_ok=coverage_ok(registry, resident.household, offline),
        track=track.value, expected=ExpectationOut(
            median_delay_h=expected.median_delay_h, detected_24h=expected.detected_24h,
            false_alarms_per_month=expected.false_alarms_per_month, basis=expected.basis),
        sensitivity=SensitivityOut(registry=resident.inactivity_sensitivity, by_band=by_band(changes),
                                   changes=[SensitivityChangeOut.of(c, registry) for c in changes]),
        timeline=[TimelineEntry(ts=at(row.ts), device=row.device_id, kind=row.kind, fields=row.fields)
                  for row in rows],
    )



def _visible_resident(registry: Registry, scope: Scope, resident_id: str) -> None:
    resident = next((r for r in registry.data.residents if r.id == resident_id), None)
    if resident is None or not scope.sees_resident(resident.id,
                                                   registry_index(registry).resident_community[resident.id]):
        raise not_found(f"resident {resident_id!r} in service")  # as if absent: a 403 would confirm it


@router.post("/{resident_id}/missed-incidents", status_code=status.HTTP_201_CREATED,
             responses={**REFUSALS, 404: {"description": "no such resident"}})
def report_missed_incident(alerts: AlertsDep, registry: RegistryDep, scope: ScopeDep, resident_id: str,
                           body: MissedIncidentIn) -> SensitivityChangeOut:
    """An incident no alert told of ("we found her on the floor at 10:00"): the resident's inactivity
    sensitivity at that time of day moves one bounded step toward more alerts."""
    require_role(scope.token, ACTING_ROLES, "report missed incidents")
    _visible_resident(registry, scope, resident_id)
    try:
        change = alerts.report_missed(resident_id, int(body.at.timestamp() * 1000), by=actor(scope.token),
                                      note=body.note)
    except AlertError as exc:
        raise not_found(str(exc)) from None
    return SensitivityChangeOut.of(change, registry)


@router.post("/{resident_id}/sensitivity/{change_id}/revert", status_code=status.HTTP_201_CREATED,
             responses={**REFUSALS, 404: {"description": "no such resident or change"}})
def revert_sensitivity_change(  # noqa: PLR0917 - FastAPI passes dependencies and parameters by name
        alerts: AlertsDep, registry: RegistryDep, scope: ScopeDep, resident_id: str, change_id: int,
        body: RevertIn) -> SensitivityChangeOut:
    """An operator takes a sensitivity change back (a false alarm that was not one): that band returns to
    its value before the change, itself a change that can be reverted."""
    require_role(scope.token, OPERATORS, "revert sensitivity changes")
    _visible_resident(registry, scope, resident_id)
    change = next((c for c in alerts.sensitivity_changes(resident_id) if c.id == change_id), None)
    if change is None:
        raise not_found(f"sensitivity change {change_id} of resident {resident_id!r}")
    reverted = alerts.revert_sensitivity(change_id, by=actor(scope.token), note=body.note)
    return SensitivityChangeOut.of(reverted, registry)
