"""What the alert loop talks about: requests from the detectors, alerts with their lifecycle, the audit
history and the per-sink deliveries.

An alert is open → acknowledged → resolved. There is at most one unresolved alert per (subject, kind): a
repeated request folds into it (count, last seen, newest evidence, a severity that may rise but never
falls) so a condition a detector re-raises every minute is one alert, not hundreds.

Occurrences. A request may name the real-world occurrence it reports in `evidence["occurrence"]` (an SOS
press: the reading's `ts`; a falling object: the camera's `event_id`). A request repeating an occurrence
already counted for that (subject, kind) is a redelivery and changes nothing, not even after the alert was
resolved, so at-least-once intake never turns one press into two or reopens a resolved alert. `sos`
always has an occurrence: without one the request's `raised_at_ms` (the reading's time) stands in for it.
A *new* press while an SOS alert is unresolved counts on that same alert (count = presses) rather than
opening a second one: the caregivers already called keep one thing to acknowledge, and all of them hear
of the new press (`new_incident`), also when it was acknowledged; once it is resolved, the next press
opens a new alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from detectors.severity import SEVERITIES, Severity

# An open set on purpose (detectors grow new kinds), checked against this tuple so a typo is an error.
ALERT_KINDS: tuple[str, ...] = (
    "inactivity", "not_back_home", "coverage", "activity_decline", "sos", "fall", "falling_object",
    "door_left_open", "night_exit", "device_offline", "battery_low",
    "tamper", "camera_offline", "lens_blocked", "storage_failed", "low_frame_rate",
    "door_lingering", "heart_rate", "not_worn", "left_geofence",
    "unreachable",  # an alert the registry has no one to tell of: the duty officer's to take on
    # Filed by hand by a caregiver or grid worker (`hub.alerts.reports`), one kind per category.
    "report_resident_unwell", "report_hazard", "report_broken_device", "report_other",
    "visit_overdue",  # a grid worker's planned visit (hub/visits/) is past due
)

# Alerts about equipment, whose cause the hub sees end (the device heard again, the battery replaced, the
# fault reported healthy, the band worn again): the hub resolves them itself, as `cleared`. Welfare alerts
# never clear by themselves: someone has to look.
SELF_CLEARING_KINDS = frozenset({
    "device_offline", "battery_low", "tamper", "camera_offline", "lens_blocked", "storage_failed",
    "low_frame_rate", "not_worn",
})

AlertState = Literal["open", "acknowledged", "resolved"]
ALERT_STATES: tuple[AlertState, ...] = get_args(AlertState)

ChosenOutcome = Literal["resident_ok", "visited", "hospital", "false_alarm", "device_fault"]
OUTCOMES: tuple[ChosenOutcome, ...] = get_args(ChosenOutcome)
"""The outcomes a person resolves an alert with."""
CLEARED = "cleared"
Outcome = ChosenOutcome | Literal["cleared"]  # cleared: the hub saw the cause of an equipment alert end

OCCURRENCE_KEY = "occurrence"


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


class AlertError(Exception):
    """An alert action that cannot be done; the message says why."""


class AlertRequest(BaseModel):
    """A detector's or rule's request to raise (or refresh) an alert."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    severity: Severity
    subject: str = Field(min_length=1, description="resident id, device id, or building id")
    community: str
    building: str
    household: str | None = None
    resident: str | None = None
    device: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    raised_at_ms: int = Field(ge=0)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {kind!r}; known: {', '.join(ALERT_KINDS)}")
        return kind

    def occurrence(self) -> str | None:
        """The occurrence this request reports (see the module docstring), as text."""
        value = self.evidence.get(OCCURRENCE_KEY)
        if value is None and self.kind == "sos":
            return str(self.raised_at_ms)
        return None if value is None else str(value)


class ClearRequest(BaseModel):
    """The rules saw the cause of an equipment alert end: resolve the unresolved alert of `kind` about
    `subject`, if any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    subject: str = Field(min_length=1)
    device: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    cleared_at_ms: int = Field(ge=0)

    @field_validator("kind")
    @classmethod
    def _clears_itself(cls, kind: str) -> str:
        if kind not in SELF_CLEARING_KINDS:
            raise ValueError(f"{kind!r} alerts never clear by themselves; these do:"
                             f" {', '.join(sorted(SELF_CLEARING_KINDS))}")
        return kind


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: str
    severity: Severity
    state: AlertState
    subject: str
    community: str
    building: str
    household: str | None
    resident: str | None
    device: str | None
    evidence: dict[str, Any]
    count: int
    first_seen_ms: int
    last_seen_ms: int
    tier: int  # the highest caregiver tier notified so far
    # Open: when the next tier is notified unless someone acknowledges first. Acknowledged: when the tier
    # above the acknowledger's is told it is overdue unless it is resolved first (spent once told).
    deadline_ms: int | None
    assigned_to: str | None
    acknowledged_by: str | None
    acknowledged_ms: int | None
    resolved_by: str | None
    resolved_ms: int | None
    outcome: Outcome | None
    note: str
    grid: str | None = None  # its home's grid when raised (the registry's); None for a building's
    # How many times a supervisor reopened it: acknowledge links are signed for one cycle
    # (`hub.alerts.links`), so one made before a reopening cannot acknowledge the alert after it.
    cycle: int = 0


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One line of an alert's audit history."""

    id: int
    alert_id: int
    at_ms: int
    actor: str
    action: str
    from_state: AlertState | None
    to_state: AlertState
    detail: dict[str, Any]


DeliveryStatus = Literal["pending", "sent", "failed"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification to send through one sink (for one recipient, where the sink addresses people)."""

    id: int
    alert_id: int
    event_id: int  # the history event (raised, escalated, ...) this notification tells about
    reason: str
    tier: int
    sink: str
    recipient: str | None  # caregiver id; None for broadcast sinks and the global apprise URLs
    status: DeliveryStatus
    attempts: int
    next_attempt_ms: int
    last_error: str | None
    sent_ms: int | None


@dataclass(frozen=True, slots=True)
class AlertDetail:
    alert: Alert
    history: list[AlertEvent] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
