"""`/api/v1/residents`: the residents a token may see, and each one's current detector view and recent
readings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hub.api.activity import coverage_ok, detector_view
from hub.api.auth import ScopeDep
from hub.api.deps import HubDep
from hub.api.errors import REFUSALS, forbidden, not_found
from hub.api.schemas import ActivityOut, ExpectationOut, ResidentOut, TimelineEntry, at
from hub.api.scope import registry_index
from hub.monitoring_track import EXPECTED, track_of
from hub.store import Store

router = APIRouter(prefix="/api/v1/residents", tags=["residents"])

@router.get("", responses=REFUSALS)
def list_residents(hub: HubDep, scope: ScopeDep, community: str | None = None) -> list[ResidentOut]:
    """Residents in service whom the token may see (a caregiver: those it cares for)."""
    if community is not None and not scope.sees_community(community):
        raise forbidden(f"community {community} is outside {scope.who}'s communities")
    registry = hub.registry
    index = registry_index(registry)
    households = {h.id: h for h in registry.data.households}
    grids = {g.id: g.building for g in registry.data.grids}
    found = []
    for r in registry.data.residents:
        place = index.resident_community[r.id]
        if not scope.sees_resident(r.id, place) or community not in (None, place):
            continue
        found.append(ResidentOut(
            id=r.id, name=r.name, household=r.household, building=grids[households[r.household].grid],
            community=place, lives_alone=r.lives_alone, flags=r.flags, wandering_risk=r.wandering_risk,
            caregivers=r.caregivers))
    return found


@router.get("/{resident_id}/activity", responses={**REFUSALS, 404: {"description": "no such resident"}})
def resident_activity(
    hub: HubDep,
    scope: ScopeDep,
    resident_id: str,
    limit: Annotated[int, Query(ge=1, le=1000, description="readings in the timeline")] = 50,
    hours: Annotated[int, Query(ge=1, le=168, description="how far back the timeline goes")] = 24,
) -> ActivityOut:
    """The detector's view of the resident now (last activity, the next expected one, the pending alert
    deadlines, away or at home, whether the home's sensors report, the track its devices put it on and
    the detection to expect there) and the newest readings of the home's devices and the resident's
    wristband, of the last `hours`."""
    registry = hub.registry
    resident = next((r for r in registry.data.residents if r.id == resident_id), None)
    if resident is None:
        raise not_found(f"resident {resident_id!r} in service")
    if not scope.sees_resident(resident.id, registry_index(registry).resident_community[resident.id]):
        raise not_found(f"resident {resident_id!r} in service")  # as if absent: a 403 would confirm it
    view = detector_view(hub.evaluation.activity, resident.id)
    mine = [d for d in registry.file.devices
            if d.household == resident.household and d.resident in (None, resident.id)]
    devices = [d.id for d in mine]
    track = track_of(d.kind for d in mine)
    expected = EXPECTED[track]
    store = Store(hub.settings.store_path, read_only=True)
    try:
        rows = store.recent_observations(devices, limit, hub.clock.now_ms() - hours * 3_600_000)
    finally:
        store.close()
    return ActivityOut(
        resident=resident.id, evaluated=view.evaluated, last_activity=at(view.last_activity_ms),
        expected_next_activity=at(view.expected_next_ms), alert_deadline=at(view.alert_deadline_ms),
        critical_deadline=at(view.critical_deadline_ms), not_back_deadline=at(view.not_back_deadline_ms),
        away=view.away, coverage_ok=coverage_ok(registry, resident.household, _offline(hub)),
        track=track.value, expected=ExpectationOut(
            median_delay_h=expected.median_delay_h, detected_24h=expected.detected_24h,
            false_alarms_per_month=expected.false_alarms_per_month, basis=expected.basis),
        timeline=[TimelineEntry(ts=at(row.ts), device=row.device_id, kind=row.kind, fields=row.fields)
                  for row in rows],
    )


def _offline(hub: HubDep) -> set[str]:
    # The evaluation thread adds to and removes from this set while we copy it; retry a torn copy.
    for _ in range(5):
        try:
            return hub.evaluation.rules.offline_devices()
        except RuntimeError:  # "Set changed size during iteration"
            continue
    return set()
