"""One way for every test to make a community registry: a fluent builder over hub.registry's records.

Each record goes under the one made last above it, unless named: a district in the last city, a
subdistrict in the last district, a community in the last subdistrict (if any), a compound in the last
community, a building in the last compound; a grid in the last community (or, named with `building=`, on
that building as in an older registry); a household in the last grid and the last building, so a grid
spans the buildings added while it is the last one, and naming `grid=` splits a building between grids;
a caregiver in the last community; a resident in the last household; a device in its wearer's household,
else the last household (or in a building, if one is named). Records keep the order they were added in,
so what is dumped is what a hand-written file would be.

    registry = (RegistryBuilder()
                .community("sunshine", "阳光社区").compound("c1").building("b1", floors=18).grid("g1")
                .household("h101", unit="1-101")
                .caregiver("cg-li", "李女士", "family")
                .resident("r1", "王奶奶", caregivers={"cg-li": 1})
                .device("band-1", "wristband", resident="r1")
                .device("hac-1", "high_altitude_camera", building="b1")
                .registry())

`build()` gives the RegistryFile, `registry()` the Registry, `dump(path)` writes the file and returns its
path."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self

from hub.registry import (
    Building,
    Caregiver,
    CaregiverLink,
    City,
    Community,
    Compound,
    Device,
    District,
    Grid,
    Household,
    Registry,
    RegistryFile,
    Resident,
    Subdistrict,
)


class RegistryBuilder:
    def __init__(self) -> None:
        self._file = RegistryFile()

    @staticmethod
    def _last(records: list[Any], what: str, parent: str | None) -> str:
        if parent is not None:
            return parent
        if not records:
            raise ValueError(f"no {what} yet to put this in: add one first or name it")
        last: str = records[-1].id
        return last

    def city(self, id: str, name: str | None = None, **fields: Any) -> Self:
        """`name` defaults to the id, here and at every level down to the community."""
        self._file.cities.append(City(id=id, name=id if name is None else name, **fields))
        return self

    def district(self, id: str, name: str | None = None, *, city: str | None = None, **fields: Any) -> Self:
        parent = self._last(self._file.cities, "city", city)
        self._file.districts.append(District(id=id, city=parent, name=id if name is None else name, **fields))
        return self

    def subdistrict(self, id: str, name: str | None = None, *, district: str | None = None,
                    **fields: Any) -> Self:
        parent = self._last(self._file.districts, "district", district)
        self._file.subdistricts.append(Subdistrict(id=id, district=parent, name=id if name is None else name,
                                                   **fields))
        return self

    def community(self, id: str, name: str | None = None, **fields: Any) -> Self:
        if self._file.subdistricts:
            fields.setdefault("subdistrict", self._file.subdistricts[-1].id)
        self._file.communities.append(Community(id=id, name=id if name is None else name, **fields))
        return self

    def compound(self, id: str, *, community: str | None = None, **fields: Any) -> Self:
        parent = self._last(self._file.communities, "community", community)
        self._file.compounds.append(Compound(id=id, community=parent, **fields))
        return self

    def building(self, id: str, *, compound: str | None = None, **fields: Any) -> Self:
        parent = self._last(self._file.compounds, "compound", compound)
        self._file.buildings.append(Building(id=id, compound=parent, **fields))
        return self

    def grid(self, id: str, *, community: str | None = None, building: str | None = None,
             **fields: Any) -> Self:
        """`workers`: the ids of its grid workers (caregivers), which may be added after it."""
        if building is None:
            fields["community"] = self._last(self._file.communities, "community", community)
        self._file.grids.append(Grid(id=id, building=building, **fields))
        return self

    def household(self, id: str, *, grid: str | None = None, building: str | None = None,
                  **fields: Any) -> Self:
        grid = self._last(self._file.grids, "grid", grid)
        building = self._last(self._file.buildings, "building", building)
        self._file.households.append(Household(id=id, grid=grid, building=building, **fields))
        return self

    def caregiver(self, id: str, name: str, role: str, *, community: str | None = None,
                  **fields: Any) -> Self:
        parent = self._last(self._file.communities, "community", community)
        self._file.caregivers.append(Caregiver(id=id, community=parent, name=name, role=role, **fields))
        return self

    def resident(self, id: str, name: str, *, household: str | None = None,
                 caregivers: Mapping[str, int] | None = None, **fields: Any) -> Self:
        """`caregivers`: caregiver id -> tier, in the order they are linked."""
        parent = self._last(self._file.households, "household", household)
        if caregivers:
            fields["caregivers"] = [CaregiverLink(caregiver=c, tier=tier) for c, tier in caregivers.items()]
        self._file.residents.append(Resident(id=id, household=parent, name=name, **fields))
        return self

    def device(self, id: str, kind: str, *, household: str | None = None, building: str | None = None,
               resident: str | None = None, **fields: Any) -> Self:
        """In `building` if named (a camera); else in `household`, the wearer's, or the last household."""
        if building is None and household is None and resident is not None:
            household = next((r.household for r in self._file.residents if r.id == resident), None)
        if building is None:
            household = self._last(self._file.households, "household", household)
        self._file.devices.append(Device(id=id, kind=kind, household=household, building=building,
                                         resident=resident, **fields))
        return self

    def devices(self, devices: Iterable[Device]) -> Self:
        """Devices made elsewhere, as they are."""
        self._file.devices.extend(devices)
        return self

    def build(self) -> RegistryFile:
        return self._file.model_copy(deep=True)

    def registry(self) -> Registry:
        return Registry(self.build())

    def dump(self, path: Path) -> Path:
        self.registry().dump(path)
        return path
