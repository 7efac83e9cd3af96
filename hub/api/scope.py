"""What one token may see in one registry, as a Python predicate (the live stream, single alerts) and as
SQL (alert lists), side by side so the two cannot drift apart.

An operator, device admin or read-only token sees its communities (`*`: all of them). A caregiver token
sees the residents whose `caregivers` list its caregiver, and the alerts about them: those naming one of
them, and those about one of their homes without a named resident (a door left open), except equipment
alerts (device offline, battery low, coverage), which are the duty officer's, not the family's.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass

from hub.alerts.directory import OPERATOR_KINDS
from hub.alerts.model import Alert
from hub.api.tokens import Role, Token
from hub.registry import City, District, Level, Record, Registry, Subdistrict
from hub.store import placeholders


class RegistryIndex:
    """Where each registry entry sits (its community), built once per registry."""

    def __init__(self, registry: Registry) -> None:
        file = registry.file  # deactivated entries too: they still have a place, and may be edited
        self.hierarchy = hierarchy = registry.hierarchy
        self.resident_community = {r.id: hierarchy.resident(r.id).community or "" for r in file.residents}
        # Whom each caregiver looks after now: in-service residents only.
        self.cared_for: defaultdict[str, set[str]] = defaultdict(set)
        for r in registry.data.residents:
            for link in r.caregivers:
                self.cared_for[link.caregiver].add(r.id)
        self.resident_household = {r.id: r.household for r in file.residents}

    def communities_of(self, entry: Record) -> set[str]:
        """The communities an entry belongs to (one: a caregiver has its own, like everything else)."""
        match entry:
            case City() | District() | Subdistrict():  # above communities: those below it
                level: Level = "city" if isinstance(entry, City) else "district" if isinstance(
                    entry, District) else "subdistrict"
                return self.hierarchy.communities_under(level, entry.id)
        return {self.hierarchy.levels_of(entry).community or ""}


@functools.lru_cache(maxsize=4)
def registry_index(registry: Registry) -> RegistryIndex:
    """Registries are immutable and swapped whole, so the index of the current one is built once."""
    return RegistryIndex(registry)


@dataclass(frozen=True, slots=True)
class Scope:
    token: Token
    communities: frozenset[str] | None  # None: every community
    residents: frozenset[str] | None  # a caregiver's residents; None: everyone in the communities
    households: frozenset[str] | None  # ... and their homes

    @classmethod
    def of(cls, token: Token, registry: Registry) -> Scope:
        if token.role is Role.CAREGIVER:
            index = registry_index(registry)
            residents = frozenset(index.cared_for.get(token.caregiver or "", set()))
            return cls(token, frozenset(index.resident_community[r] for r in residents), residents,
                       frozenset(index.resident_household[r] for r in residents))
        communities = None if token.all_communities else frozenset(token.communities)
        return cls(token, communities, None, None)

    @property
    def who(self) -> str:
        if self.token.role is Role.CAREGIVER:
            return f"caregiver {self.token.caregiver}"
        return f"token {self.token.name!r}"

    def sees_community(self, community: str) -> bool:
        return self.communities is None or community in self.communities

    def sees_any(self, communities: set[str]) -> bool:
        """For entries placed in several communities (caregivers), or none yet."""
        return self.communities is None or not communities or bool(communities & self.communities)

    def sees_all(self, communities: set[str]) -> bool:
        return self.communities is None or communities <= self.communities

    def sees_resident(self, resident: str, community: str) -> bool:
        if self.residents is not None:
            return resident in self.residents
        return self.sees_community(community)

    def alert_refusal(self, alert: Alert) -> str | None:
        """Why this scope may not see the alert; None when it may."""
        if self.residents is not None:
            assert self.households is not None
            if alert.resident is not None:
                if alert.resident in self.residents:
                    return None
                return (f"alert {alert.id} is about resident {alert.resident},"
                        f" whom {self.who} does not care for")
            if alert.household in self.households and alert.kind not in OPERATOR_KINDS:
                return None
            return f"alert {alert.id} is not about a resident {self.who} cares for"
        if self.sees_community(alert.community):
            return None
        return f"alert {alert.id} is in community {alert.community}, outside {self.who}'s communities"

    def alert_sql(self) -> tuple[str, list[object]]:
        """`alert_refusal(alert) is None` as an SQL condition on the `alerts` table, with its arguments."""
        clauses: list[str] = []
        args: list[object] = []

        def among(column: str, values: frozenset[str] | tuple[str, ...]) -> str:
            args.extend(sorted(values))
            return f"{column} IN ({placeholders(len(values))})"

        if self.residents is not None:
            assert self.households is not None
            residents = among("resident", self.residents)
            households = among("household", self.households)
            kinds = among("kind", tuple(OPERATOR_KINDS))
            clauses.append(f"({residents} OR (resident IS NULL AND {households} AND NOT {kinds}))")
        elif self.communities is not None:
            clauses.append(among("community", self.communities))
        return " AND ".join(clauses) or "TRUE", args
