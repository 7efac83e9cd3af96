"""Who is told about an alert, and the names people read in it, looked up in the registry at the moment of
notifying (so a registry reload applies to the next notification, including escalations).

Tiers. An alert about a resident goes to that resident's caregivers in their tiers (tier 1 first). One
about a household without a named resident goes to the caregivers of everyone living there. Alerts about
a building or a device with no one behind it (falling objects, offline cameras, coverage) go to the
community's staff by role: falling objects to `property_security` (tier 1) then `duty_officer` (tier 2),
everything else to `duty_officer`. Reports filed by hand (`hub.alerts.reports`) follow the same rules by
their kind: a resident reported unwell goes to the resident's caregivers, a hazard about a building to
property security then the duty officer, a broken device to the duty officer. An overdue visit
(`visit_overdue`) goes to the workers of the resident's grid (tier 1), then the community's supervisors
(tier 2), not to the family: the visit is the grid worker's job. A resident alert that finds no caregiver
at all falls back to the staff too. A community's staff are its caregivers (`community`) with that role.

A registry without that staff leaves some alerts with no one to tell: `AlertService` raises an
`unreachable` alert for each (to the duty officer, if there is one; else the global notify URLs, the
machine sinks and the page see it) and `hub registry check` warns of the gap (`unreachable_kinds`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from devices import KINDS
from hub.alerts.model import Alert
from hub.registry import Caregiver, CaregiverRole, Registry, Resident

_STAFF_ROLES_BY_KIND: dict[str, tuple[CaregiverRole, ...]] = {
    "falling_object": ("property_security", "duty_officer"),
    "report_hazard": ("property_security", "duty_officer"),  # a hazard reported in a stairwell, a yard
}
_DEFAULT_STAFF_ROLES: tuple[CaregiverRole, ...] = ("duty_officer",)

UNREACHABLE = "unreachable"
"""The alert kind raised for an alert that has no one to tell (`AlertService`): the duty officer's."""

Tiers = dict[int, list[Caregiver]]


def _staff_roles(kind: str) -> tuple[CaregiverRole, ...]:
    return _STAFF_ROLES_BY_KIND.get(kind, _DEFAULT_STAFF_ROLES)


@dataclass(frozen=True, slots=True)
class Labels:
    """What people read in a notification besides ids: names, the home as people say it, and the people
    one may call (`hub.alerts.messages` picks from these what each recipient needs)."""

    resident_name: str | None
    unit: str | None
    timezone: str
    community_name: str | None = None
    building_name: str | None = None
    residents: tuple[Resident, ...] = ()  # the alert's resident, or everyone living in its household
    caregivers: tuple[Caregiver, ...] = ()  # the residents' caregivers and the community's staff

    @property
    def people(self) -> str | None:
        """The resident's name, or everyone's in the household: who the alert is about, as people say it."""
        return self.resident_name or "、".join(r.name for r in self.residents) or None


def alert_labels(registry: Registry, alert: Alert) -> Labels:
    """`labels` for an alert that was raised: what the page, `hub alerts` and the live view show for it."""
    return labels(registry, kind=alert.kind, community=alert.community, building=alert.building,
                  household=alert.household, resident=alert.resident)


def person_name(registry: Registry, who: str | None) -> str | None:
    """A caregiver id's name; anything else (a name typed on the command line, `hub`) as it is."""
    found = None if who is None else caregiver(registry, who)
    return who if found is None else found.name


def _staff(registry: Registry, community: str, roles: tuple[CaregiverRole, ...]) -> Tiers:
    tiers: Tiers = {}
    for tier, role in enumerate(roles, start=1):
        chosen = [c for c in registry.data.caregivers if c.role == role and c.community == community]
        if chosen:
            tiers[tier] = chosen
    return tiers


# Alerts about equipment rather than the person: the operator's to handle, not a welfare alarm for
# the family ("no data" is not "no activity"); with them every fault a device kind reports itself (a
# tamper switch, a camera's lens or storage). A band left off (`not_worn`) is about equipment too, but
# only the family can ask the resident to put it on: it goes to the resident's caregivers.
OPERATOR_KINDS = frozenset({"coverage", "device_offline", "battery_low", UNREACHABLE,
                            "report_broken_device"}) | frozenset(
    fault.alert for kind in KINDS.values() for fault in kind.faults)


VISIT_OVERDUE = "visit_overdue"


def patrol_tiers(registry: Registry, community: str, household: str | None) -> Tiers:
    """Who is told of an overdue visit to a household: its grid's workers, then the community's
    supervisors (a tier with nobody in it is left out)."""
    grid = None if household is None else registry.hierarchy.household(household).grid
    tiers = {1: registry.hierarchy.grid_workers(grid) if grid else [],
             2: registry.hierarchy.supervisors(community)}
    return {tier: people for tier, people in tiers.items() if people}


def recipient_tiers(registry: Registry, *, kind: str, community: str, household: str | None,
                    resident: str | None) -> Tiers:
    """Caregivers by tier for an alert placed like this (see the module docstring)."""
    if kind in OPERATOR_KINDS:
        return _staff(registry, community, _staff_roles(kind))
    if kind == VISIT_OVERDUE:
        return patrol_tiers(registry, community, household) or _staff(registry, community,
                                                                       _DEFAULT_STAFF_ROLES)
    caregivers = {c.id: c for c in registry.data.caregivers}
    residents = _residents(registry, household, resident)
    tiers: defaultdict[int, list[Caregiver]] = defaultdict(list)
    for r in residents:
        for link in sorted(r.caregivers, key=lambda link: link.tier):
            caregiver = caregivers.get(link.caregiver)
            if caregiver is not None and caregiver not in tiers[link.tier]:
                tiers[link.tier].append(caregiver)
    return dict(sorted(tiers.items())) or _staff(registry, community, _staff_roles(kind))


def next_tier(tiers: Tiers, after: int) -> int | None:
    return min((tier for tier in tiers if tier > after), default=None)


def timezone_of(registry: Registry, *, community: str | None = None, resident: str | None = None) -> str:
    """The time zone of a community, or of the community a resident lives in."""
    data = registry.data
    if community is None and any(r.id == resident for r in registry.file.residents):
        community = registry.hierarchy.resident(resident or "").community
    return next((c.timezone for c in data.communities if c.id == community), "Asia/Shanghai")


def caregiver(registry: Registry, caregiver_id: str) -> Caregiver | None:
    return next((c for c in registry.data.caregivers if c.id == caregiver_id), None)


def _residents(registry: Registry, household: str | None, resident: str | None) -> list[Resident]:
    data = registry.data
    if resident is not None:
        return [r for r in data.residents if r.id == resident]
    if household is not None:
        return [r for r in data.residents if r.household == household]
    return []


def labels(registry: Registry, *, kind: str, community: str, building: str, household: str | None,
           resident: str | None) -> Labels:
    data = registry.data
    resident_name = next((r.name for r in data.residents if r.id == resident), None)
    unit = next((h.unit or h.id for h in data.households if h.id == household), None)
    place = next((c for c in data.communities if c.id == community), None)
    building_name = next((b.name for b in data.buildings if b.id == building and b.name), None)
    residents = _residents(registry, household, resident)
    by_id = {c.id: c for c in data.caregivers}
    linked = [by_id[link.caregiver] for r in residents for link in r.caregivers if link.caregiver in by_id]
    # The staff told of this kind, and the duty officers whatever the kind: whom family may call.
    staff = [c for tiers in (_staff(registry, community, _staff_roles(kind)),
                             _staff(registry, community, _DEFAULT_STAFF_ROLES))
             for tier in tiers.values() for c in tier]
    caregivers = tuple({c.id: c for c in [*linked, *staff]}.values())  # each once, the resident's own first
    return Labels(resident_name, unit, place.timezone if place else "Asia/Shanghai",
                  place.name if place else None, building_name, tuple(residents), caregivers)


@dataclass(frozen=True, slots=True)
class Gap:
    """Alerts that, raised about `place`, would have no one to tell; any of `roles` there would do."""

    place: str  # "community <id>" or "resident <id>"
    kinds: tuple[str, ...]  # empty: every alert about the resident
    roles: tuple[CaregiverRole, ...]

    def __str__(self) -> str:
        what = ", ".join(self.kinds) or "any alert"
        return f"{self.place}: {what} would reach nobody (add a {' or '.join(self.roles)})"


def unreachable_kinds(registry: Registry) -> list[Gap]:
    """The alerts this registry's devices and residents can raise that would reach nobody, by the same
    rules as `recipient_tiers` (what `hub registry check` warns of)."""
    data = registry.data
    gaps: list[Gap] = []
    for community in data.communities:
        devices = [d for d in registry.devices.values() if d.community == community.id]
        # About equipment and buildings: the staff's. `unreachable` itself, whatever the devices.
        kinds = {UNREACHABLE} | {kind for d in devices for kind in _staff_kinds(d.kind, d.household)}
        missing = sorted(k for k in kinds if not recipient_tiers(registry, kind=k, community=community.id,
                                                                  household=None, resident=None))
        for roles in sorted({_staff_roles(k) for k in missing}):
            gaps.append(Gap(f"community {community.id}",
                            tuple(k for k in missing if _staff_roles(k) == roles), roles))
    for r in data.residents:
        community_id = registry.hierarchy.resident(r.id).community or ""
        if not recipient_tiers(registry, kind="sos", community=community_id, household=r.household,
                               resident=r.id):
            gaps.append(Gap(f"resident {r.id}", (), ("family", *_DEFAULT_STAFF_ROLES)))
    return gaps


def _staff_kinds(device_kind: str, household: str | None) -> set[str]:
    kind = KINDS[device_kind]
    kinds = {"device_offline", "battery_low"} | {fault.alert for fault in kind.faults}
    if household is None:  # a building's device: what it raises is about the building (a falling object)
        kinds |= set(kind.immediate_alerts)
    return kinds
