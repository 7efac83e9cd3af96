"""How often a resident is visited, and when the next visit is due: pure computation, no I/O.

A community's `visit_plans` map resident flags to days between visits (独居老人 weekly by default); of a
resident's flags the most frequent plan applies, and the resident's own `visit_every_days` overrides them
all (0: no planned visits). The next visit is due that many days after the last one done, or, before any
visit, after the resident was first planned for.
"""

from __future__ import annotations

from devices.registry import Community, Resident

DAY_MS = 24 * 3600 * 1000


def visit_every_days(resident: Resident, community: Community) -> float | None:
    """Days between visits to `resident`, or None when no visits are planned."""
    if resident.visit_every_days is not None:
        return resident.visit_every_days or None
    planned = [community.visit_plans[flag] for flag in resident.flags if flag in community.visit_plans]
    return min(planned, default=None)


def due_ms(from_ms: int, every_days: float) -> int:
    """When the next visit is due, counting from the last visit done (or the first plan)."""
    return from_ms + round(every_days * DAY_MS)
