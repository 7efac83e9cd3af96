"""What one token may see in one registry, as a Python predicate (the live stream, single alerts, registry
entries) and as SQL (alert lists), side by side so the two cannot drift apart.

An operator, supervisor, device admin or read-only token sees its communities (`*`: all of them) and
those below its cities, districts and subdistricts. A caregiver token sees the residents whose
`caregivers` list its caregiver (and, when that caregiver works grids, their residents), and the alerts
about them: those naming one of them, and those about one
of their homes without a named resident (a door left open), except equipment alerts (device offline,
battery low, coverage), which are the duty officer's, not the family's. A grid worker token sees its
grids: their households and residents, the alerts raised about them (equipment ones too: a grid worker
visits the homes), and the alerts about a building its grids cover a home of that concern people (a
falling object), not the building's equipment, which is property management's and the duty officer's.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field

from hub.alerts.directory import OPERATOR_KINDS
from hub.alerts.model import Alert
from hub.api.tokens import Role, Token
from hub.registry import Hierarchy, Level, Levels, Record, Registry
from hub.store import placeholders


class RegistryIndex:
    """Who may see what in one registry, built once per registry."""

    def __init__(self, registry: Registry) -> None:
        file = registry.file  # deactivated entries too: they still have a place, and may be edited
        hierarchy = registry.hierarchy
        self.resident_community = {r.id: hierarchy.resident(r.id).community or "" for r in file.residents}
        # Whom each caregiver looks after now: in-service residents only.
        self.cared_for: defaultdict[str, set[str]] = defaultdict(set)
        for r in registry.data.residents:
            for link in r.caregivers:
                self.cared_for[link.caregiver].add(r.id)
        self.resident_household = {r.id: r.household for r in file.residents}
        self.grid_households: defaultdict[str, set[str]] = defaultdict(set)
        for h in file.households:
            self.grid_households[h.grid].add(h.id)
        self.household_residents: defaultdict[str, set[str]] = defaultdict(set)
        for r in file.residents:
            self.household_residents[r.household].add(r.id)


@functools.lru_cache(maxsize=4)
def registry_index(registry: Registry) -> RegistryIndex:
    """Registries are immutable and swapped whole, so the index of the current one is built once."""
    return RegistryIndex(registry)


@dataclass(frozen=True, slots=True)
class Scope:
    token: Token
    hierarchy: Hierarchy = field(compare=False)  # the registry's, where every place is
    communities: frozenset[str] | None  # None: every community
    residents: frozenset[str] | None = None  # a caregiver's or grid worker's; None: all there
    households: frozenset[str] | None = None  # ... and their homes
    grids: frozenset[str] | None = None  # a grid worker's grids
    buildings: frozenset[str] = frozenset()  # ... and the buildings they cover a home of

    @classmethod
    def of(cls, token: Token, registry: Registry) -> Scope:
        index = registry_index(registry)
        hierarchy = registry.hierarchy
        if token.role is Role.CAREGIVER:
            # Those it cares for, and, for a grid worker signed in with its caregiver token, the residents
            # of the grids it works: its overdue visits are about them.
            worked = (r for g in hierarchy.grids_of_worker(token.caregiver or "")
                      for h in index.grid_households[g] for r in index.household_residents[h])
            residents = frozenset(index.cared_for.get(token.caregiver or "", set())).union(worked)
            return cls(token, hierarchy, frozenset(index.resident_community[r] for r in residents), residents,
                       frozenset(index.resident_household[r] for r in residents))
        if token.role is Role.GRID_WORKER:
            grids = frozenset(g for g in token.grids if hierarchy.has("grid", g))  # a removed grid: nothing
            households = frozenset(h for g in grids for h in index.grid_households[g])
            return cls(token, hierarchy, frozenset(hierarchy.at("grid", g).community or "" for g in grids),
                       frozenset(r for h in households for r in index.household_residents[h]), households,
                       grids, frozenset(b for g in grids for b in hierarchy.grid_buildings[g]))
        if token.all_communities:
            return cls(token, hierarchy, None)
        communities = set(token.communities)
        above: tuple[tuple[Level, tuple[str, ...]], ...] = (
            ("city", token.cities), ("district", token.districts), ("subdistrict", token.subdistricts))
        for level, ids in above:
            for place in ids:
                communities |= hierarchy.communities_under(level, place)
        return cls(token, hierarchy, frozenset(communities))

    @property
    def who(self) -> str:
        if self.token.role is Role.CAREGIVER:
            return f"caregiver {self.token.caregiver}"
        return f"token {self.token.name!r}"

    @property
    def places(self) -> str:
        """What its scope is made of, in words, for refusals."""
        return "grids" if self.grids is not None else "communities"

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

    def sees_entry(self, entry: Record) -> bool:
        """Whether a registry entry is in scope: a grid worker's are its grids and what is in their homes
        (itself, their households, residents and devices); anyone else's, what is in its communities."""
        if self.grids is not None:
            return self.hierarchy.levels_of(entry).grid in self.grids
        return self.sees_any(self.hierarchy.communities_of(entry))

    def sees_place(self, level: Level, place: str) -> bool:
        """Whether anything it sees is in the place `place` at `level` (false for a place that does not
        exist, unless it sees everything: a scoped token cannot tell an unknown id from another's)."""
        hierarchy = self.hierarchy
        if self.communities is None:
            return True
        if not hierarchy.has(level, place):
            return False
        if self.households is not None:  # a caregiver's or grid worker's: the homes it sees
            return (level == "grid" and self.grids is not None and place in self.grids) or any(
                hierarchy.household(h).at(level) == place for h in self.households)
        return bool(hierarchy.communities_under(level, place) & self.communities)

    def alert_refusal(self, alert: Alert) -> str | None:
        """Why this scope may not see the alert; None when it may."""
        if self.grids is not None:
            if alert.grid in self.grids or (alert.grid is None and alert.household is None
                                            and alert.building in self.buildings
                                            and alert.kind not in OPERATOR_KINDS):
                return None
            return f"alert {alert.id} is not about a home or building of {self.who}'s grids"
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

        if self.grids is not None:
            grids = among("grid", self.grids)
            buildings = among("building", self.buildings)
            kinds = among("kind", tuple(OPERATOR_KINDS))
            clauses.append(f"({grids} OR (grid IS NULL AND household IS NULL AND {buildings}"
                           f" AND NOT {kinds}))")
        elif self.residents is not None:
            assert self.households is not None
            residents = among("resident", self.residents)
            households = among("household", self.households)
            kinds = among("kind", tuple(OPERATOR_KINDS))
            clauses.append(f"({residents} OR (resident IS NULL AND {households} AND NOT {kinds}))")
        elif self.communities is not None:
            clauses.append(among("community", self.communities))
        return " AND ".join(clauses) or "TRUE", args


@dataclass(frozen=True, slots=True)
class PlaceFilter:
    """A list's filter by places at any levels (`?district=pd&grid=g1`): what lies in all of them."""

    named: tuple[tuple[Level, str], ...] = ()

    def matches(self, levels: Levels) -> bool:
        return all(levels.at(level) == place for level, place in self.named)

    def alert_columns(self, hierarchy: Hierarchy) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The filter on the `alerts` table: (column, ids) pairs, each to be in one of its ids. Alerts
        carry their community, building and grid; a level above is its communities, a compound its
        buildings."""
        columns: list[tuple[str, tuple[str, ...]]] = []
        for level, place in self.named:
            if level in ("community", "building", "grid"):
                columns.append((level, (place,)))
            elif level == "compound":
                columns.append(("building", tuple(sorted(hierarchy.buildings_under(level, place)))))
            else:
                columns.append(("community", tuple(sorted(hierarchy.communities_under(level, place)))))
        return tuple(columns)
