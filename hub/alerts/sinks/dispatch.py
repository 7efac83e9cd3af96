"""Dispatch sink: for an SOS or a fall (`HUB_DISPATCH_KINDS`), a hand-off to a 120/110 or property
security dispatcher — one POST per alert raised, with what someone sent to the door needs: who (name,
phone, medical flags), where as people say it (community, building, unit) and the band's coordinates,
whom to call (family, grid worker, duty officer), and a callback URL to answer on. The JSON shape, an
example and the answers are in docs/integrators/dispatch.md. Sample configuration:

    HUB_DISPATCH_URL=https://dispatch.example.com/hooks/sc
    HUB_DISPATCH_SECRET=<shared secret>
    HUB_DISPATCH_KINDS=sos,fall

It is a webhook (`hub.alerts.sinks.webhook`): signed the same way (`Sc-Signature`), plain http:// refused
unless allowed, and sent through the durable delivery queue, so it is retried with back-off and survives
a restart. The alert service queues it when the alert is raised, never through the caregiver tiers; the
delivery worker records its success (`dispatched`) or giving up (`delivery_failed`) in the history, and
the dispatcher's answers arrive at `POST /api/v1/alerts/{id}/dispatch-answer?t=<token>`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from hub.alerts.links import Links
from hub.alerts.notification import Notification
from hub.alerts.sinks.webhook import WebhookSink
from hub.registry import Caregiver

DISPATCH = "dispatch"  # the sink's name and its deliveries' reason
SCHEMA = "sc.dispatch/1"
DispatchAnswer = Literal["accepted", "en_route", "arrived", "declined"]
DISPATCH_ANSWERS: tuple[DispatchAnswer, ...] = get_args(DispatchAnswer)
_CONTACT_ROLES = ("family", "grid_worker", "duty_officer")


def dispatch_body(notification: Notification, links: Links) -> dict[str, Any]:
    """The hand-off's JSON (docs/integrators/dispatch.md)."""
    a = notification.alert
    labels = notification.labels
    zone = ZoneInfo(notification.timezone)
    residents = labels.residents if labels is not None else ()
    location = a.evidence.get("location")
    address = {
        "community": labels.community_name if labels else None,
        "building": labels.building_name or a.building if labels else a.building,
        "unit": notification.unit,
    }
    return {
        "schema": SCHEMA,
        "alert_id": a.id,
        "kind": a.kind,
        "severity": a.severity,
        "time": datetime.fromtimestamp(a.first_seen_ms / 1000, UTC).astimezone(zone).isoformat(),
        "residents": [{"name": r.name, "phone": r.phone or None, "lives_alone": r.lives_alone,
                       "medical_flags": list(r.flags)} for r in residents],
        "address": {**address, "text": " ".join(part for part in address.values() if part)},
        "location": ({k: location[k] for k in ("lat", "lon", "accuracy_m") if k in location}
                     if isinstance(location, dict) else None),
        "contacts": [{"role": c.role, "name": c.name, "phone": c.phone}
                     for c in (labels.caregivers if labels else ()) if c.role in _CONTACT_ROLES and c.phone],
        "callback_url": links.dispatch_callback(a.id),
    }


class DispatchSink(WebhookSink):
    name = DISPATCH

    def __init__(self, url: str, secret: str, timeout_s: float, kinds: Collection[str], links: Links, *,
                 allow_http: bool = False, clock: Callable[[], float] = time.time) -> None:
        super().__init__(url, secret, timeout_s, allow_http=allow_http, clock=clock)
        self.kinds = frozenset(kinds)
        self._links = links

    def addressees(self, recipients: Sequence[Caregiver]) -> list[str | None]:
        return []  # never told through the tiers: the alert service queues the one hand-off itself

    def payload(self, notification: Notification) -> bytes:
        return json.dumps(dispatch_body(notification, self._links), ensure_ascii=False, sort_keys=True,
                          separators=(",", ":")).encode("utf-8")
