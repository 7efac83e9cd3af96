"""Replaying dead letters: after an operator fixes what made them fail (a device missing from the
registry, say), route the kept raw bytes again with the current registry and store what now decodes."""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.intake import AvailabilityChange, Rejected, Router
from hub.store import Batch, Observation, Store


@dataclass
class ReplayReport:
    stored: list[int] = field(default_factory=list)
    still_failing: dict[int, str] = field(default_factory=dict)
    truncated: list[int] = field(default_factory=list)


def replay(store: Store, router: Router, *, reason: str | None = None, ids: list[int] | None = None,
           limit: int = 10_000, now_ms: int) -> ReplayReport:
    report = ReplayReport()
    batch = Batch()
    for dead in store.dead_letters(reason=reason, ids=ids, limit=limit):
        if dead.payload_size > len(dead.payload):
            report.truncated.append(dead.id)  # only the first bytes were kept: nothing to decode
            continue
        # The original arrival time, so "ts in the future" is judged as it was then.
        routed = router.route(dead.topic, dead.payload, dead.received_ms)
        if isinstance(routed, Observation):
            batch.add_observation(routed, dead.received_ms)
            report.stored.append(dead.id)
        elif isinstance(routed, AvailabilityChange):
            batch.set_availability(routed.device.id, routed.online, dead.received_ms)
            report.stored.append(dead.id)
        elif isinstance(routed, Rejected):
            report.still_failing[dead.id] = f"{routed.reason}: {routed.detail}"
            if (routed.reason, routed.detail) != (dead.reason, dead.detail):
                store.update_dead_letter(dead.id, routed.reason, routed.detail)
        else:
            report.stored.append(dead.id)  # a topic the hub now ignores: nothing to keep
    # Storing is idempotent, so a crash between these two transactions only means replaying again.
    store.commit(batch)
    store.mark_replayed(report.stored, now_ms)
    return report
