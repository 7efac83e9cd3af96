"""The registry file's model: community → compound → building → grid → household → resident, caregivers,
and the devices placed in households or on buildings, with where each device reports from.

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
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

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


class Community(Record):
    name: str
    timezone: str = "Asia/Shanghai"


class Compound(Record):
    community: Id
    name: str = ""


class Building(Record):
    compound: Id
    name: str = ""
    floors: int | None = Field(default=None, ge=1, le=200)


class Grid(Record):
    """网格: the patch of a building a grid worker (网格员) looks after."""

    building: Id
    name: str = ""


class Household(Record):
    grid: Id
    unit: str = ""


CaregiverRole = Literal["family", "grid_worker", "duty_officer", "property_security"]


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


LIVES_ALONE_FLAG = "独居老人"
"""The flag that marks a resident living alone, whatever `lives_alone` says."""


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

        for c in self.compounds:
            check("compounds", c.id, "community", "communities", c.community)
        for b in self.buildings:
            check("buildings", b.id, "compound", "compounds", b.compound)
        for g in self.grids:
            check("grids", g.id, "building", "buildings", g.building)
        for h in self.households:
            check("households", h.id, "grid", "grids", h.grid)
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
            problems += _links_across_communities(self)
        if not problems:  # each gateway names its own compound's devices: unique per compound
            compounds = device_compounds(self)
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


def _links_across_communities(data: RegistryFile) -> list[str]:
    """A caregiver is linked only to residents of its own community: a link would show it the resident's
    data and the resident's operators its phone and notify URLs (its references must resolve)."""
    compound_community = {c.id: c.community for c in data.compounds}
    building_community = {b.id: compound_community[b.compound] for b in data.buildings}
    grid_community = {g.id: building_community[g.building] for g in data.grids}
    household_community = {h.id: grid_community[h.grid] for h in data.households}
    caregiver_community = {cg.id: cg.community for cg in data.caregivers}
    return [f"residents {r.id!r}: caregiver {link.caregiver!r} is in community "
            f"{caregiver_community[link.caregiver]!r}, the resident in {household_community[r.household]!r}"
            " (caregivers are linked within their community)"
            for r in data.residents for link in r.caregivers
            if caregiver_community[link.caregiver] != household_community[r.household]]


def device_compounds(data: RegistryFile) -> dict[str, str]:
    """Device id → the compound it is in (its references must resolve)."""
    building_compound = {b.id: b.compound for b in data.buildings}
    grid_building = {g.id: g.building for g in data.grids}
    household_building = {h.id: grid_building[h.grid] for h in data.households}
    return {d.id: building_compound[household_building[d.household] if d.household else d.building or ""]
            for d in data.devices}


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


def place_devices(data: RegistryFile) -> dict[str, PlacedDevice]:
    """Each device of `data` resolved to where it reports from (its references must resolve)."""
    compound_community = {c.id: c.community for c in data.compounds}
    building_compound = {b.id: b.compound for b in data.buildings}
    grid_building = {g.id: g.building for g in data.grids}
    household_building = {h.id: grid_building[h.grid] for h in data.households}
    placed: dict[str, PlacedDevice] = {}
    for d in data.devices:
        building = household_building[d.household] if d.household else d.building
        assert building is not None  # guaranteed by Device._placed_once
        compound = building_compound[building]
        placed[d.id] = PlacedDevice(
            d.id, d.kind, compound_community[compound], compound, building, d.household, d.resident, d.room
        )
    return placed
