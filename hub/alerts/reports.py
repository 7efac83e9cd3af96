"""Reports filed by hand: a caregiver or grid worker saw something no sensor did (a resident unwell, a
hazard in a stairwell, a broken sensor) and files it from the page or the command line. A report becomes
an alert of its category's kind and runs the same loop as any other: notified by the directory,
acknowledged, assigned, resolved, audited.

Each category has its kind, its severity, and (by the kind, in `hub.alerts.directory`) whom it goes to:

| category          | kind                     | severity | told                                          |
| ----------------- | ------------------------ | -------- | --------------------------------------------- |
| `resident_unwell` | `report_resident_unwell` | critical | the resident's caregivers, tier by tier       |
| `hazard`          | `report_hazard`          | warning  | about a home: its caregivers; else property   |
|                   |                          |          | security, then the duty officer               |
| `broken_device`   | `report_broken_device`   | warning  | the duty officer (equipment is staff's)       |
| `other`           | `report_other`           | info     | as an alert about the same place would be     |

A second report about the same place while the first is unresolved counts on that alert as a new
incident (everyone told so far hears of it) rather than opening another: two neighbours reporting one
broken stair light is one thing to fix. Each report's note and reporter stay in the history.

The note is free text about a person, so it is capped (`NOTE_MAX`) and kept as long as the alert it is
in (docs/personal-data.md); the phone's position is kept only when the reporter chose to send it.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from detectors.severity import Severity
from hub.alerts.directory import person_name
from hub.alerts.model import AlertError, AlertRequest
from hub.registry import Registry

ReportCategory = Literal["resident_unwell", "hazard", "broken_device", "other"]
REPORT_CATEGORIES: tuple[ReportCategory, ...] = get_args(ReportCategory)
SEVERITY_BY_CATEGORY: dict[str, Severity] = {
    "resident_unwell": Severity.CRITICAL, "hazard": Severity.WARNING, "broken_device": Severity.WARNING,
    "other": Severity.INFO,
}
REPORT_KINDS = frozenset(f"report_{category}" for category in REPORT_CATEGORIES)
NOTE_MAX = 1000
# What a report may be about, most precise first: the one the reporter named.
PLACES = ("resident", "household", "device", "building")


def kind_of(category: str) -> str:
    return f"report_{category}"


def report_request(registry: Registry, *, category: str, place: str, place_id: str, note: str, by: str,
                   at_ms: int, location: dict[str, float] | None = None) -> AlertRequest:
    """The alert request a report makes; `AlertError` when the place is not in the registry (in service).
    `by`: a caregiver id or a token's name; its name now is kept with the report, as people read it."""
    if category not in REPORT_CATEGORIES:
        raise AlertError(f"unknown report category {category!r}; one of {', '.join(REPORT_CATEGORIES)}")
    community, building, household, resident, device = _placed(registry, place, place_id)
    evidence: dict[str, Any] = {
        "occurrence": f"report:{by}:{at_ms}",  # each report is an incident of its own (module docstring)
        "category": category, "note": note[:NOTE_MAX], "reported_by": by,
        "reporter_name": person_name(registry, by), "reported_ms": at_ms,
    }
    if location is not None:
        evidence["location"] = location
    return AlertRequest(kind=kind_of(category), severity=SEVERITY_BY_CATEGORY[category], subject=place_id,
                        community=community, building=building, household=household, resident=resident,
                        device=device, evidence=evidence, raised_at_ms=at_ms)


def _placed(registry: Registry, place: str,
            place_id: str) -> tuple[str, str, str | None, str | None, str | None]:
    """(community, building, household, resident, device) of a registry entry in service."""
    data = registry.data
    household = resident = device = None
    building: str | None = None
    if place == "resident":
        found = next((r for r in data.residents if r.id == place_id), None)
        household, resident = (found.household, found.id) if found else (None, None)
    elif place == "household":
        household = next((h.id for h in data.households if h.id == place_id), None)
    elif place == "device":
        gadget = registry.devices.get(place_id)
        if gadget is not None:
            device, household, building = gadget.id, gadget.household, gadget.building
    elif place == "building":
        building = next((b.id for b in data.buildings if b.id == place_id), None)
    else:
        raise AlertError(f"a report is about one of {', '.join(PLACES)}, not {place!r}")
    if household is not None:
        building = registry.hierarchy.household(household).building
    if building is None:
        raise AlertError(f"there is no {place} {place_id!r} in service in the registry")
    community = registry.hierarchy.at("building", building).community
    assert community is not None  # every building is in a compound of a community
    return community, building, household, resident, device
