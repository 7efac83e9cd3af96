"""What a sink sends: one `Notification` (an alert, why it is being told now, and to which tier), rendered
as the JSON body the webhook sink sends and as the machine body the MQTT sink publishes; the message a
person reads is rendered from templates by `hub.alerts.messages`.

The MQTT body (`machine_body`) is for machines on a shared broker, not for people: ids, kind, severity,
state, times, counts and the evidence a dispatcher acts on. It never carries a name, a flat number, a phone
number, a notify URL, or any free text people typed (who acknowledged, the resolution note); a consumer
that shows people names looks the ids up in the registry it is entitled to. The evidence is filtered to
the keys in `MACHINE_EVIDENCE_KEYS` with scalar values (and `location` as lat/lon), so a detector that
adds a key does not leak it onto the broker until someone has decided it belongs there.

The rendering is pinned by the golden files in `hub/alerts/testdata/`: consumers parse these bodies, so a
change to them is a change to an interface.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hub.alerts.directory import Labels
from hub.alerts.model import Alert
from hub.registry import Caregiver

SCHEMA = "sc.alert/1"
MACHINE_SCHEMA = "sc.alert.machine/1"

# Evidence the detectors attach that a machine may act on: when it happened, how late it arrived, which
# device and what it measured. Anything else stays in the store and the people-facing sinks.
MACHINE_EVIDENCE_KEYS: frozenset[str] = frozenset({
    "occurrence", "device_kind", "late", "late_s", "received_ms",
    "press_ts", "fall_ts",  # sos, fall
    "reason", "last_heard_ms", "checkin_interval_s",  # device_offline
    "opened_at_ms", "closed_at_ms", "limit_s",  # door_left_open, night_exit
    "battery",  # battery_low
    "event_id", "building", "camera", "floor_min", "floor_max", "confidence", "clip",  # falling_object
    "last_activity_ms", "silence_s", "surprise", "left_ms",  # inactivity, coverage, not_back_home
    "day_ended_ms", "share_of_usual",  # activity_decline
    "location",  # {"lat", "lon"}: where to go
    "outside_m", "accuracy_m",  # left_geofence
    "tamper", "online", "lens_blocked", "storage_ok", "fps", "below", "reports",  # equipment faults
    "floor_source", "heart_rate", "min", "max", "since_ms", "event_ts", "lingering_s", "day",
    "worn_days", "of_days",  # falling_object, heart_rate, door_lingering, not_worn
    "visit", "due_ms", "grid",  # visit_overdue
})

@dataclass(frozen=True, slots=True)
class Notification:
    alert: Alert
    event_id: int  # the history event this tells about; with the alert id, a consumer's dedup key
    reason: str  # raised, escalated, severity_raised, acknowledged, resolved, cleared, new_incident, overdue,
    # assigned
    tier: int
    recipients: tuple[Caregiver, ...]  # everyone notified in this tier
    recipient: Caregiver | None  # whom this one delivery addresses; None for broadcast sinks
    resident_name: str | None
    unit: str | None
    timezone: str  # the community's, for the times people read
    labels: Labels | None = None  # names, the home, whom to call (`hub.alerts.messages` renders them)


def _head(notification: Notification, schema: str) -> dict[str, Any]:
    """What both bodies begin with: which alert, which event of it, and where."""
    a = notification.alert
    return {
        "schema": schema,
        "alert_id": a.id,
        "event_id": notification.event_id,
        "reason": notification.reason,
        "kind": a.kind,
        "severity": a.severity,
        "state": a.state,
        "subject": a.subject,  # a resident, household, device or building id
        "community": a.community,
        "building": a.building,
        "household": a.household,
        "grid": a.grid,  # its home's grid (网格); None for a building's alert
    }


def body(notification: Notification) -> dict[str, Any]:
    a = notification.alert
    return {
        **_head(notification, SCHEMA),
        "unit": notification.unit,
        "resident": a.resident,
        "resident_name": notification.resident_name,
        "device": a.device,
        "count": a.count,
        "first_seen_ms": a.first_seen_ms,
        "last_seen_ms": a.last_seen_ms,
        "evidence": a.evidence,
        "tier": notification.tier,
        # Phone numbers and notify URLs stay out: this body goes to brokers and third-party services.
        "recipients": [{"id": c.id, "name": c.name, "role": c.role} for c in notification.recipients],
        "assigned_to": a.assigned_to,
        "acknowledged_by": a.acknowledged_by,
        "resolved_by": a.resolved_by,
        "outcome": a.outcome,
    }


def body_bytes(notification: Notification) -> bytes:
    """The exact bytes the webhook sink sends (and signs)."""
    return _json_bytes(body(notification))


def machine_body(notification: Notification) -> dict[str, Any]:
    """What the MQTT sink publishes: ids and what a machine needs, nothing that names a person (see the
    module doc). (`alert_id`, `event_id`) is a consumer's dedup key."""
    a = notification.alert
    return {
        **_head(notification, MACHINE_SCHEMA),
        "resident": a.resident,
        "device": a.device,
        "count": a.count,
        "first_seen_ms": a.first_seen_ms,
        "last_seen_ms": a.last_seen_ms,
        "deadline_ms": a.deadline_ms,
        "acknowledged_ms": a.acknowledged_ms,
        "resolved_ms": a.resolved_ms,
        "outcome": a.outcome,
        "evidence": machine_evidence(a.evidence),
        "tier": notification.tier,
        "recipients": [{"id": c.id, "role": c.role} for c in notification.recipients],
    }


def machine_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """`evidence` cut down to `MACHINE_EVIDENCE_KEYS`: scalars, and `location` as numeric lat/lon."""
    kept: dict[str, Any] = {}
    for key, value in evidence.items():
        if key not in MACHINE_EVIDENCE_KEYS:
            continue
        if key == "location":
            if isinstance(value, dict):
                point = {k: v for k, v in value.items() if k in ("lat", "lon") and _is_number(v)}
                if len(point) == 2:
                    kept[key] = point
        elif value is None or isinstance(value, (bool, int, float, str)):
            kept[key] = value
    return kept


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def machine_body_bytes(notification: Notification) -> bytes:
    """The exact bytes the MQTT sink publishes."""
    return _json_bytes(machine_body(notification))


def _json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
