"""The registry file's model: city 市 → district 区 → subdistrict 街道 → community 社区 → compound 小区 →
building 楼栋, and grids 网格 of a community, each covering households (a household names its building and
its grid: a grid may span buildings, a building may be split between grids); residents, caregivers, and
the devices placed in households or on buildings, with where each device reports from.

Pure data (no I/O): the hub loads, indexes and persists it (`hub.registry`), the simulators build one
for the community they simulate, and both resolve each device's place the same way (`place_devices`).
Operators write it as one YAML (or JSON) file of flat lists whose entries name their parent by id; flat
lists diff well, and every reference is checked at load so a typo is an error at start, not a device
whose messages silently become dead letters.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from devices import KINDS

# Ids appear in MQTT topics and InfluxDB tags: no wildcards, separators or spaces.
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Record(Entry):
    """An entry with an id. Taken out of service it is deactivated, never deleted: the observations and
    alerts that name it still resolve, and its id is never reused for something else."""

    id: Id
    active: bool = True


class City(Record):
    """市."""

    name: str


class District(Record):
    """区."""

    city: Id
    name: str


class Subdistrict(Record):
    """街道."""

    district: Id
    name: str


LIVES_ALONE_FLAG = "独居老人"
"""The flag that marks a resident living alone, whatever `lives_alone` says."""

VisitDays = Annotated[float, Field(gt=0, le=366)]


class Community(Record):
    """社区. The levels above it are optional: a registry that names none is a community on its own."""

    name: str
    timezone: str = "Asia/Shanghai"
    subdistrict: Id | None = None
    visit_plans: dict[str, VisitDays] = Field(
        default_factory=lambda: {LIVES_ALONE_FLAG: 7.0},
        description="resident flag -> a grid worker visits every so many days (巡查); the most frequent "
                    "plan of a resident's flags applies. Replaces the default (独居老人 weekly); {}: none")


class Compound(Record):
    community: Id
    name: str = ""


class Building(Record):
    compound: Id
    name: str = ""
    floors: int | None = Field(default=None, ge=1, le=200)


class Grid(Record):
    """网格: the households of a community a grid worker (网格员) looks after, in one building or several.

    It names its `community`. A grid of an older registry names a `building` instead, and is in that
    building's community; its households that name no building are in that one."""

    community: Id | None = None
    building: Id | None = None
    name: str = ""
    workers: list[Id] = Field(default_factory=list, description="its grid workers: caregivers of its"
                                                                 " community with the role grid_worker")

    @model_validator(mode="after")
    def _placed(self) -> Self:
        if self.community is None and self.building is None:
            raise ValueError("a grid names its `community` (or, in an older registry, its `building`)")
        return self


class Household(Record):
    grid: Id
    building: Id | None = Field(default=None, description="required unless its grid names a building")
    unit: str = ""


CaregiverRole = Literal["family", "grid_worker", "duty_officer", "property_security", "supervisor"]
"""A `supervisor` oversees its community's grid workers: overdue visits and figures go to it."""


class Caregiver(Record):
    community: Id = Field(description="the community it serves: it may be linked to residents there only")
    name: str
    role: CaregiverRole
    phone: str = ""
    notify: list[str] = Field(default_factory=list, description="apprise URLs")
    language: Literal["zh", "en"] = Field(default="zh", description="the language of its notifications")


class CaregiverLink(Entry):
    caregiver: Id
    tier: int = Field(ge=1, le=9, description="1 is notified first; the next tier on no acknowledgement")


class LatLon(Entry):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Geofence(Entry):
    """Where a resident at risk of wandering is safe: a circle (`centre` and `radius_m`) or a `polygon`
    (at least three corners, in order)."""

    centre: LatLon | None = None
    radius_m: float | None = Field(default=None, gt=0, le=100_000)
    polygon: list[LatLon] | None = Field(default=None, min_length=3, max_length=200)

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        circle = self.centre is not None and self.radius_m is not None
        if circle == (self.polygon is not None) or (self.centre is None) != (self.radius_m is None):
            raise ValueError("a geofence is either `centre` with `radius_m`, or a `polygon`")
        return self


class Resident(Record):
    household: Id
    name: str
    lives_alone: bool = True
    phone: str = Field(default="", description="for the grid worker and duty officer to call")
    flags: list[str] = Field(default_factory=list, description="special groups, e.g. 独居老人, 残疾人")
    wandering_risk: bool = False
    caregivers: list[CaregiverLink] = Field(default_factory=list)
    door_open_limit_s: int | None = Field(default=None, ge=60, description="overrides the rule's default")
    inactivity_sensitivity: float = Field(
        default=1.0, gt=0, le=4,
        description="scales this resident's inactivity score: 2 alerts after about half the usual silence, "
                    "0.5 after about twice it (a resident who sleeps long, or needs closer watching)",
    )
    heart_rate_min: int | None = Field(default=None, ge=20, le=250, description="overrides HUB_RULES_'s")
    heart_rate_max: int | None = Field(default=None, ge=20, le=250, description="overrides HUB_RULES_'s")
    geofence: Geofence | None = Field(
        default=None, description="where the resident is safe; followed while `wandering_risk` is set")
    visit_every_days: float | None = Field(
        default=None, ge=0, le=366,
        description="overrides the community's visit plans for this resident; 0: no planned visits")

    @model_validator(mode="after")
    def _heart_rate_range(self) -> Self:
        if self.heart_rate_min is not None and self.heart_rate_max is not None \
                and self.heart_rate_min >= self.heart_rate_max:
            raise ValueError(f"heart_rate_min {self.heart_rate_min} is not below heart_rate_max"
                             f" {self.heart_rate_max}")
        return self


class Device(Record):
    kind: str
    household: Id | None = None
    building: Id | None = None
    resident: Id | None = Field(default=None, description="wearer of a wristband")
    zigbee2mqtt: str | None = Field(default=None, description="Zigbee2MQTT friendly name")
    checkin_interval_s: int | None = Field(default=None, ge=10)
    door_open_limit_s: int | None = Field(default=None, ge=60, description="for a door sensor")
    room: str | None = Field(default=None, max_length=40, description=(
        "where in the home an indoor sensor is, in words (bedroom/卧室, bathroom/卫生间, kitchen/厨房…): "
        "the inactivity detector learns silences after each room apart"))
    floor_lines: dict[int, float] | None = Field(
        default=None, min_length=2,
        description="for a camera: floor -> pixel row of the line at the bottom of that floor in its view")

    @model_validator(mode="after")
    def _placed_once(self) -> Self:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.floor_lines is not None:
            if KINDS[self.kind].first_row_field is None:
                raise ValueError(f"floor_lines: a {self.kind} reports no pixel rows")
            rows = [self.floor_lines[floor] for floor in sorted(self.floor_lines)]
            if any(lower <= upper for lower, upper in itertools.pairwise(rows)):
                raise ValueError("floor_lines: a higher floor's line must be higher in the picture (a"
                                 " smaller row)")
        if (self.household is None) == (self.building is None):
            raise ValueError("a device is placed in exactly one of `household` or `building`")
        return self


class RegistryFile(Entry):
    cities: list[City] = Field(default_factory=list)
    districts: list[District] = Field(default_factory=list)
    subdistricts: list[Subdistrict] = Field(default_factory=list)
    communities: list[Community] = Field(default_factory=list)
    compounds: list[Compound] = Field(default_factory=list)
    buildings: list[Building] = Field(default_factory=list)
    grids: list[Grid] = Field(default_factory=list)
    households: list[Household] = Field(default_factory=list)
    caregivers: list[Caregiver] = Field(default_factory=list)
    residents: list[Resident] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        problems: list[str] = []
        tables: dict[str, Iterable[Any]] = {
            "cities": self.cities, "districts": self.districts, "subdistricts": self.subdistricts,
            "communities": self.communities, "compounds": self.compounds, "buildings": self.buildings,
            "grids": self.grids, "households": self.households, "caregivers": self.caregivers,
            "residents": self.residents, "devices": self.devices,
        }
        ids = {name: [e.id for e in entries] for name, entries in tables.items()}
        for name, values in ids.items():
            problems += [f"{name}: duplicate id {v!r}" for v, n in Counter(values).items() if n > 1]
        known = {name: set(values) for name, values in ids.items()}
        inactive = {name: {e.id for e in entries if not e.active} for name, entries in tables.items()}

        def check(table: str, entry_id: str, field: str, target: str, value: str | None) -> None:
            if value is not None and value not in known[target]:
                problems.append(f"{table} {entry_id!r}: {field} {value!r} is not in {target}")
            elif value in inactive[target] and entry_id not in inactive[table]:
                # What is in service must stand on what is in service: deactivate children first.
                problems.append(f"{table} {entry_id!r}: {field} {value!r} is deactivated in {target}")

        for district in self.districts:
            check("districts", district.id, "city", "cities", district.city)
        for subdistrict in self.subdistricts:
            check("subdistricts", subdistrict.id, "district", "districts", subdistrict.district)
        for cm in self.communities:
            check("communities", cm.id, "subdistrict", "subdistricts", cm.subdistrict)
        for c in self.compounds:
            check("compounds", c.id, "community", "communities", c.community)
        for b in self.buildings:
            check("buildings", b.id, "compound", "compounds", b.compound)
        for g in self.grids:
            check("grids", g.id, "community", "communities", g.community)
            check("grids", g.id, "building", "buildings", g.building)
            for worker in g.workers:
                check("grids", g.id, "worker", "caregivers", worker)
        for h in self.households:
            check("households", h.id, "grid", "grids", h.grid)
            check("households", h.id, "building", "buildings", h.building)
        for cg in self.caregivers:
            check("caregivers", cg.id, "community", "communities", cg.community)
        for r in self.residents:
            check("residents", r.id, "household", "households", r.household)
            for link in r.caregivers:
                check("residents", r.id, "caregiver", "caregivers", link.caregiver)
        for d in self.devices:
            check("devices", d.id, "household", "households", d.household)
            check("devices", d.id, "building", "buildings", d.building)
            check("devices", d.id, "resident", "residents", d.resident)
        if not problems:
            problems += _grids_within_communities(self)
        if not problems:
            hierarchy = Hierarchy(self)
            problems += _links_across_communities(self, hierarchy)
        if not problems:  # each gateway names its own compound's devices: unique per compound
            compounds = device_compounds(self, hierarchy)
            names = Counter((compounds[d.id], d.zigbee2mqtt) for d in self.devices if d.zigbee2mqtt)
            problems += [f"devices: zigbee2mqtt name {n!r} used {c} times in compound {compound!r}"
                         for (compound, n), c in names.items() if c > 1]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def in_service(self) -> RegistryFile:
        """Only the active entries: what the running hub routes, evaluates and notifies. Its references
        resolve, since an active entry may not name a deactivated one."""
        tables = type(self).model_fields
        if all(entry.active for table in tables for entry in getattr(self, table)):
            return self
        return self.model_copy(
            update={table: [e for e in getattr(self, table) if e.active] for table in tables}
        )


def _grids_within_communities(data: RegistryFile) -> list[str]:
    """A grid, its households and their buildings are in one community, and its workers are that
    community's grid workers (its references must resolve)."""
    compound_community = {c.id: c.community for c in data.compounds}
    building_community = {b.id: compound_community[b.compound] for b in data.buildings}
    grids = {g.id: g for g in data.grids}
    caregivers = {cg.id: cg for cg in data.caregivers}
    problems: list[str] = []
    for g in data.grids:
        community = g.community or building_community[g.building or ""]
        if g.building is not None and building_community[g.building] != community:
            problems.append(f"grids {g.id!r}: building {g.building!r} is in community "
                            f"{building_community[g.building]!r}, the grid in {community!r}")
        for worker in map(caregivers.__getitem__, g.workers):
            if worker.role != "grid_worker" or worker.community != community:
                problems.append(f"grids {g.id!r}: worker {worker.id!r} is not a grid_worker of community"
                                f" {community!r}")
    for h in data.households:
        grid = grids[h.grid]
        building = h.building or grid.building
        if building is None:
            problems.append(f"households {h.id!r}: names no building, and its grid {h.grid!r} covers no"
                            " single building to take it from")
            continue
        community = grid.community or building_community[grid.building or ""]
        if building_community[building] != community:
            problems.append(f"households {h.id!r}: building {building!r} is in community "
                            f"{building_community[building]!r}, its grid {h.grid!r} in {community!r}")
    return problems


def _links_across_communities(data: RegistryFile, hierarchy: Hierarchy) -> list[str]:
    """A caregiver is linked only to residents of its own community: a link would show it the resident's
    data and the resident's operators its phone and notify URLs (its references must resolve)."""
    caregiver_community = {cg.id: cg.community for cg in data.caregivers}
    household_community = {h.id: hierarchy.household(h.id).community for h in data.households}
    return [f"residents {r.id!r}: caregiver {link.caregiver!r} is in community "
            f"{caregiver_community[link.caregiver]!r}, the resident in {household_community[r.household]!r}"
            " (caregivers are linked within their community)"
            for r in data.residents for link in r.caregivers
            if caregiver_community[link.caregiver] != household_community[r.household]]


Level = Literal["city", "district", "subdistrict", "community", "compound", "building", "grid"]
LEVELS: tuple[Level, ...] = get_args(Level)
"""The levels, from the top. A list may be filtered by any of them."""


@dataclass(frozen=True, slots=True)
class Levels:
    """Where an entry sits: its id at each level above it and its own, None where it has none (a community
    with no subdistrict; a building, which grids cut across, has no grid; a grid no single building)."""

    city: str | None = None
    district: str | None = None
    subdistrict: str | None = None
    community: str | None = None
    compound: str | None = None
    building: str | None = None
    grid: str | None = None

    def at(self, level: Level) -> str | None:
        value: str | None = getattr(self, level)
        return value


class Hierarchy:
    """Where every entry of a registry file sits, level by level, and who looks after each grid; built
    once per registry (its references must resolve, as they do in any `RegistryFile`).

    A household's building is its own `building`, or its grid's in an older registry; a grid's community
    is its own `community`, or its building's. Everything is indexed, deactivated entries too (they still
    have a place); the people it names (`grid_workers`, `supervisors`) are those in service."""

    def __init__(self, data: RegistryFile) -> None:
        self._data = data
        self._district = {d.id: Levels(city=d.city, district=d.id) for d in data.districts}
        self._subdistrict = {s.id: replace(self._district[s.district], subdistrict=s.id)
                             for s in data.subdistricts}
        self._community = {c.id: replace(self._subdistrict[c.subdistrict] if c.subdistrict else Levels(),
                                        community=c.id) for c in data.communities}
        self._compound = {c.id: replace(self._community[c.community], compound=c.id) for c in data.compounds}
        self._building = {b.id: replace(self._compound[b.compound], building=b.id) for b in data.buildings}
        grids = {g.id: g for g in data.grids}
        self._grid = {g.id: replace(self._community[g.community or self._building[g.building or ""].community
                                                   or ""], grid=g.id)
                      for g in data.grids}
        self._household: dict[str, Levels] = {}
        self.grid_buildings: dict[str, set[str]] = {g.id: set() for g in data.grids}
        """The buildings each grid covers a household of."""
        self.building_grids: dict[str, set[str]] = {b.id: set() for b in data.buildings}
        """The grids that cover a household of each building."""
        for h in data.households:
            building = h.building or grids[h.grid].building or ""
            self._household[h.id] = replace(self._building[building], grid=h.grid)
            self.grid_buildings[h.grid].add(building)
            self.building_grids[building].add(h.grid)
        self._resident_household = {r.id: r.household for r in data.residents}
        self._at: dict[Level, dict[str, Levels]] = {
            "city": {c.id: Levels(city=c.id) for c in data.cities}, "district": self._district,
            "subdistrict": self._subdistrict, "community": self._community, "compound": self._compound,
            "building": self._building, "grid": self._grid,
        }

    def levels_of(self, entry: Record) -> Levels:
        """The levels of any registry entry: a resident's and a household device's are its household's, a
        building device's its building's, a caregiver's its community's."""
        match entry:
            case City() | District() | Subdistrict() | Community() | Compound() | Building() | Grid():
                return self._at[_LEVEL_OF[type(entry)]][entry.id]
            case Household():
                return self._household[entry.id]
            case Resident():
                return self._household[entry.household]
            case Caregiver():
                return self._community[entry.community]
            case Device() if entry.household is not None:
                return self._household[entry.household]
            case Device():
                return self._building[entry.building or ""]
        raise TypeError(f"not a registry entry: {entry!r}")

    def communities_of(self, entry: Record) -> set[str]:
        """The communities an entry is in: its own, or those below a city, district or subdistrict."""
        level = _LEVEL_OF.get(type(entry))
        if level in ("city", "district", "subdistrict"):
            return self.communities_under(level, entry.id)
        return {self.levels_of(entry).community or ""}

    def household(self, household: str) -> Levels:
        return self._household[household]

    def resident(self, resident: str) -> Levels:
        return self._household[self._resident_household[resident]]

    def grid_of(self, *, household: str | None, resident: str | None) -> str | None:
        """The grid of an alert's home: its household's, else its resident's; None for a building's, or
        for ids not in the registry."""
        home = household or self._resident_household.get(resident or "")
        levels = self._household.get(home or "")
        return None if levels is None else levels.grid

    def has(self, level: Level, id: str) -> bool:
        """Whether `id` names an entry at `level`."""
        return id in self._at[level]

    def at(self, level: Level, id: str) -> Levels:
        """The levels of the entry `id` at `level`."""
        return self._at[level][id]

    def communities_under(self, level: Level, id: str) -> set[str]:
        """The communities at or below the entry `id` at `level`; below a community, its own."""
        if level in ("compound", "building", "grid"):
            return {self._at[level][id].community or ""}
        return {c for c, levels in self._community.items() if levels.at(level) == id}

    def buildings_under(self, level: Level, id: str) -> set[str]:
        """The buildings at or below the entry `id` at `level` (a grid's: those it covers a household of)."""
        if level == "grid":
            return set(self.grid_buildings[id])
        return {b for b, levels in self._building.items() if levels.at(level) == id}

    def grid_workers(self, grid: str) -> list[Caregiver]:
        """The grid's workers in service: its `workers`, in order."""
        workers = next(g.workers for g in self._data.grids if g.id == grid)
        caregivers = {cg.id: cg for cg in self._data.caregivers if cg.active}
        return [caregivers[w] for w in workers if w in caregivers]

    def grids_of_worker(self, caregiver: str) -> list[str]:
        """The grids in service a caregiver is a worker of."""
        return [g.id for g in self._data.grids if g.active and caregiver in g.workers]

    def supervisors(self, community: str) -> list[Caregiver]:
        """Who oversees the community's grid workers: its caregivers in service with the role supervisor."""
        return [cg for cg in self._data.caregivers
                if cg.active and cg.role == "supervisor" and cg.community == community]


_LEVEL_OF: dict[type[Record], Level] = {City: "city", District: "district", Subdistrict: "subdistrict",
                                      Community: "community", Compound: "compound", Building: "building",
                                      Grid: "grid"}


def device_compounds(data: RegistryFile, hierarchy: Hierarchy | None = None) -> dict[str, str]:
    """Device id → the compound it is in (its references must resolve)."""
    hierarchy = hierarchy or Hierarchy(data)
    return {d.id: hierarchy.levels_of(d).compound or "" for d in data.devices}


@dataclass(frozen=True, slots=True)
class PlacedDevice:
    """A device resolved to where it reports from: what intake and the exporters need, precomputed."""

    id: str
    kind: str
    community: str
    compound: str
    building: str
    household: str | None
    resident: str | None
    room: str | None = None
    grid: str | None = None


def place_devices(data: RegistryFile, hierarchy: Hierarchy | None = None) -> dict[str, PlacedDevice]:
    """Each device of `data` resolved to where it reports from (its references must resolve)."""
    hierarchy = hierarchy or Hierarchy(data)
    placed: dict[str, PlacedDevice] = {}
    for d in data.devices:
        levels = hierarchy.levels_of(d)
        assert levels.community and levels.compound and levels.building  # every device has a building
        placed[d.id] = PlacedDevice(d.id, d.kind, levels.community, levels.compound, levels.building,
                                    d.household, d.resident, d.room, levels.grid)
    return placed
