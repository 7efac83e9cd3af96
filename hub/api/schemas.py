"""What the API reads and writes: the alert, its history and deliveries, residents and their activity.

Times are ISO 8601 in UTC (`…Z`), never epoch numbers: the page shows them, people read them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from detectors.severity import Severity
from hub.alerts.directory import alert_labels, person_name
from hub.alerts.model import Alert, AlertEvent, AlertState, ChosenOutcome, Delivery, DeliveryStatus, Outcome
from hub.alerts.reports import NOTE_MAX, PLACES, ReportCategory
from hub.alerts.sinks.dispatch import DispatchAnswer
from hub.registry import CaregiverLink, Registry
from hub.sensitivity import SensitivityChange


def at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class AlertNames(BaseModel):
    """What people read beside the alert's ids, from the registry now (null where it has none)."""

    resident: str | None = Field(description="the resident's name; for a household alert, everyone there")
    unit: str | None = Field(description="the household's unit as people say it (`7-2-1402`)")
    building: str | None
    community: str | None
    assigned_to: str | None = Field(description="the caregiver's name")
    acknowledged_by: str | None = Field(description="the caregiver's name, or the name as typed")
    resolved_by: str | None = Field(description="the caregiver's name, or the name as typed")
    timezone: str = Field(description="the community's time zone, in which people read the alert's times")

    @classmethod
    def of(cls, alert: Alert, registry: Registry) -> AlertNames:
        words = alert_labels(registry, alert)
        return cls(resident=words.people, unit=words.unit, building=words.building_name,
                   community=words.community_name, assigned_to=person_name(registry, alert.assigned_to),
                   acknowledged_by=person_name(registry, alert.acknowledged_by),
                   resolved_by=person_name(registry, alert.resolved_by), timezone=words.timezone)


class AlertOut(BaseModel):
    id: int
    kind: str
    severity: Severity
    state: AlertState
    subject: str = Field(description="resident, device or building id")
    community: str
    building: str
    grid: str | None = Field(description="its home's grid when it was raised; null for a building's alert")
    household: str | None
    resident: str | None
    device: str | None
    evidence: dict[str, Any]
    count: int = Field(description="how many times it was raised (repeats fold into one alert)")
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    tier: int = Field(description="the highest caregiver tier notified so far")
    deadline: AwareDatetime | None = Field(
        description="open: the next tier is notified then, unless acknowledged; acknowledged: the tier above "
                    "the acknowledger's is told it is overdue then, unless resolved")
    assigned_to: str | None
    acknowledged_by: str | None
    acknowledged_at: AwareDatetime | None
    resolved_by: str | None
    resolved_at: AwareDatetime | None
    outcome: Outcome | None
    note: str = Field(description="resolved: the resolution's note; reopened and not yet resolved: why it "
                                  "was reopened")
    cycle: int = Field(description="how many times it was reopened (0: never)")
    names: AlertNames = Field(description="the names people read where the fields above have ids")

    @classmethod
    def of(cls, alert: Alert, registry: Registry) -> AlertOut:
        return cls(
            id=alert.id, kind=alert.kind, severity=alert.severity, state=alert.state, subject=alert.subject,
            community=alert.community, building=alert.building, grid=alert.grid, household=alert.household,
            resident=alert.resident, device=alert.device, evidence=alert.evidence, count=alert.count,
            first_seen=at(alert.first_seen_ms), last_seen=at(alert.last_seen_ms), tier=alert.tier,
            deadline=at(alert.deadline_ms), assigned_to=alert.assigned_to,
            acknowledged_by=alert.acknowledged_by, acknowledged_at=at(alert.acknowledged_ms),
            resolved_by=alert.resolved_by, resolved_at=at(alert.resolved_ms), outcome=alert.outcome,
            note=alert.note, cycle=alert.cycle, names=AlertNames.of(alert, registry),
        )


class AlertEventOut(BaseModel):
    at: AwareDatetime
    actor: str = Field(description="a token's name, a caregiver id, `hub` or `dispatcher`")
    actor_name: str = Field(description="the caregiver's name for a caregiver id; else the actor as it is")
    role: str | None = Field(description="the role the actor acted in: the API token's role (operator, "
                                         "caregiver, ...), `link` (an acknowledge link), `cli`, "
                                         "`dispatcher`, `hub`; null: recorded before roles were")
    action: str = Field(description="raised, repeated, severity_raised, escalated, acknowledged, assigned, "
                                    "resolved, reopened, dispatched, dispatch_answer, ...")
    from_state: AlertState | None
    to_state: AlertState
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: AlertEvent, registry: Registry) -> AlertEventOut:
        moment = at(event.at_ms)
        assert moment is not None
        detail = dict(event.detail)
        role = detail.pop("role", None)
        if role is None and event.actor == "hub":
            role = "hub"
        elif role is None and detail.get("via") == "link":
            role = "link"
        return cls(at=moment, actor=event.actor, actor_name=person_name(registry, event.actor) or event.actor,
                   role=role, action=event.action, from_state=event.from_state, to_state=event.to_state,
                   detail=detail)


class DeliveryOut(BaseModel):
    id: int
    event_id: int
    reason: str
    tier: int
    sink: str
    recipient: str | None
    status: DeliveryStatus
    attempts: int
    next_attempt: AwareDatetime
    last_error: str | None
    sent_at: AwareDatetime | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        next_attempt = at(delivery.next_attempt_ms)
        assert next_attempt is not None
        return cls(id=delivery.id, event_id=delivery.event_id, reason=delivery.reason, tier=delivery.tier,
                   sink=delivery.sink, recipient=delivery.recipient, status=delivery.status,
                   attempts=delivery.attempts, next_attempt=next_attempt, last_error=delivery.last_error,
                   sent_at=at(delivery.sent_ms))


class AlertDetailOut(AlertOut):
    history: list[AlertEventOut]
    deliveries: list[DeliveryOut]
    people: dict[str, str] = Field(
        default_factory=dict, description="the names of the caregivers the history names by id (actors, "
                                          "assignees, recipients), from the registry now")

    @staticmethod
    def people_of(registry: Registry, history: list[AlertEvent]) -> dict[str, str]:
        named = {event.actor for event in history}
        for event in history:
            detail = event.detail
            named |= {str(detail[key]) for key in ("to", "previous", "acknowledged_by") if detail.get(key)}
            named |= {str(r) for r in detail.get("recipients") or ()}
        return {who: name for who in sorted(named) if (name := person_name(registry, who)) != who and name}


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, description="the caregiver's registry id")


class ReopenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=2000, description="why it goes round the loop again")


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(None, ge=0, le=100_000)


class ReportIn(BaseModel):
    """A report filed by hand. Name exactly one of `resident`, `household`, `device`, `building`."""

    model_config = ConfigDict(extra="forbid")

    category: ReportCategory = Field(description="resident_unwell, hazard, broken_device, other")
    resident: str | None = None
    household: str | None = None
    device: str | None = None
    building: str | None = None
    note: str = Field(min_length=1, max_length=NOTE_MAX, description="what the reporter saw")
    location: LocationIn | None = Field(None, description="where the reporter's phone was, if they chose to "
                                                          "send it (WGS-84)")

    @model_validator(mode="after")
    def _one_place(self) -> Self:
        if len(self.places()) != 1:
            raise ValueError(f"name exactly one of {', '.join(PLACES)}")
        return self

    def places(self) -> list[tuple[str, str]]:
        return [(place, value) for place in PLACES if (value := getattr(self, place)) is not None]


class DispatchAnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: DispatchAnswer
    note: str = Field("", max_length=1000, description="e.g. the unit sent, an arrival time")


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: ChosenOutcome
    note: str = Field("", max_length=2000)


class MeOut(BaseModel):
    token_id: str
    name: str
    role: str
    caregiver: str | None
    communities: list[str] = Field(description="the communities it sees now")
    all_communities: bool = Field(description="scoped to every community, present and future")
    may_reopen: bool = Field(description="whether it may reopen resolved alerts (the page offers it then)")
    places: dict[str, list[str]] = Field(description="the cities, districts, subdistricts or grids it is"
                                                     " scoped to, by level (plural)")


class ResidentOut(BaseModel):
    id: str
    name: str
    household: str
    unit: str | None = Field(description="the household's unit as people say it (`7-2-1402`)")
    building: str
    building_name: str | None
    grid: str
    community: str
    timezone: str = Field(description="the community's time zone, in which people read the resident's times")
    lives_alone: bool
    flags: list[str] | None = Field(description="health flags; null: not shown to this role (read_only, "
                                                "device_admin)")
    wandering_risk: bool | None = Field(description="null: not shown to this role")
    caregivers: list[CaregiverLink]


class ResidentReadOut(BaseModel):
    at: AwareDatetime
    actor: str = Field(description="the token's name, or the person at the CLI")
    token_id: str
    role: str
    what: str = Field(description="residents (a list), activity, registry, export")
    residents: list[str]


class ErasureOut(BaseModel):
    resident: str
    counts: dict[str, int] = Field(description="what was removed or anonymised, kept for statistics")


class TimelineEntry(BaseModel):
    ts: AwareDatetime = Field(description="the device's own time of the reading")
    device: str
    kind: str
    fields: dict[str, Any]


class ExpectationOut(BaseModel):
    """What detection to expect on the home's track, as measured on real homes (`make bench-real`)."""

    median_delay_h: float | None = Field(description="collapse to alert: half the time sooner than this")
    detected_24h: float | None = Field(description="share of collapses alerted within 24 h")
    false_alarms_per_month: float | None
    basis: str = Field(description="where the figures come from")


class SensitivityChangeOut(BaseModel):
    id: int = Field(description="revert it with POST /api/v1/residents/{resident}/sensitivity/{id}/revert")
    band: str = Field(description="night 00–06, morning 06–12, afternoon 12–18, evening 18–24 (local)")
    at: AwareDatetime
    by: str
    cause: str = Field(description="false_alarm (an alert resolved so), missed (an incident reported by "
                                   "hand), reverted (an operator took a change back)")
    alert_id: int | None
    incident: AwareDatetime | None = Field(description="a missed incident: when it happened")
    reverts: int | None
    old: float
    new: float
    note: str
    by_name: str = Field(description="`by` as people read it: a caregiver's name, anyone else as recorded")

    @classmethod
    def of(cls, change: SensitivityChange, registry: Registry) -> SensitivityChangeOut:
        return cls(id=change.id, band=change.band, at=at(change.at_ms), by=change.actor, cause=change.cause,
                   alert_id=change.alert_id, incident=at(change.incident_ms), reverts=change.reverts,
                   old=change.old, new=change.new, note=change.note,
                   by_name=person_name(registry, change.actor) or change.actor)


class SensitivityOut(BaseModel):
    registry: float = Field(description="the registry's inactivity_sensitivity")
    by_band: dict[str, float] = Field(description="the caregivers' factor per time-of-day band (1: "
                                                  "unchanged), multiplying the registry's")
    changes: list[SensitivityChangeOut] = Field(description="oldest first")


class MissedIncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime = Field(description="when it happened (found on the floor at 10:00: 10:00)")
    note: str = Field("", max_length=2000)


class RevertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=2000)


class ActivityOut(BaseModel):
    resident: str
    evaluated: bool = Field(description="whether the running detector follows this resident yet")
    last_activity: AwareDatetime | None
    expected_next_activity: AwareDatetime | None = Field(
        description="when one more active minute is due by the resident's learned rhythm")
    alert_deadline: AwareDatetime | None = Field(description="an inactivity warning is raised then")
    critical_deadline: AwareDatetime | None
    not_back_deadline: AwareDatetime | None = Field(description="while away: not_back_home is raised then")
    away: bool
    coverage_ok: bool = Field(description="whether any of the home's sensors is reporting")
    track: str = Field(description="what the home's devices let the detector see: band, indoor_sensors, "
                                   "door_only or none")
    expected: ExpectationOut = Field(description="the detection to expect on that track")
    sensitivity: SensitivityOut = Field(description="how sensitive the detector is for this resident, and "
                                                    "what caregivers' verdicts changed")
    timeline: list[TimelineEntry]
