"""The community builder: a few parameters → a complete, valid `RegistryFile`.

Layout: community → one compound → buildings → grids (about 30 households each, one grid worker) →
households on random floors → one resident (living alone) or an elderly couple. Each resident has a
family caregiver (tier 1), their grid worker (tier 2) and the community's duty officer (tier 3).
Each household has a smart peephole, 1–3 motion sensors and a wristband per resident, and most a door
sensor on the entrance (`door_contact_share`); each building has 1–2 high-altitude cameras. A share of
the devices whose kind has a Zigbee2MQTT form is registered under a Zigbee2MQTT friendly name, and is
then simulated that way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from devices import KINDS, door_sensor, high_altitude_camera, motion_sensor, smart_peephole, wristband
from devices.registry import (
    Building,
    Caregiver,
    CaregiverLink,
    Community,
    Compound,
    Device,
    Grid,
    Household,
    RegistryFile,
    Resident,
)
from simulators.device import Coordinates
from simulators.residents import ROOMS, Room

Share = Annotated[float, Field(ge=0, le=1)]

LIVES_ALONE_FLAG = "独居老人"
_COMMUNITY_NAMES = ("幸福里", "阳光", "和平", "长青", "康乐", "松鹤", "福寿", "安康")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_ELDER_NAMES = ("秀英", "桂英", "玉兰", "凤英", "淑珍", "建国", "国华", "德明", "志强", "振华",
                "桂兰", "秀兰", "文华", "玉珍", "长春", "明亮", "福生", "金凤", "素芬", "宝山")
_YOUNGER_NAMES = ("伟", "磊", "静", "敏", "丽", "强", "洋", "艳", "军", "勇", "婷", "涛")
_UNITS_PER_FLOOR = 4
# Where the first community is; further ones lie a kilometre or so apart.
_FIRST_LOCATION = Coordinates(31.2304, 121.4737)


class CommunityParameters(BaseModel):
    """What a community looks like; the `community` section of a scenario file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    communities: int = Field(1, ge=1, le=99)
    buildings: int = Field(3, ge=1, le=99, description="per community")
    households: int = Field(50, ge=1, le=100_000, description="per community")
    living_alone_share: Share = 0.8
    wandering_risk_share: Share = Field(0.1, description="residents at risk of wandering off (dementia)")
    flag_shares: dict[str, Share] = Field(default_factory=lambda: {"高龄老人": 0.3, "残疾人": 0.05})
    zigbee2mqtt_share: Share = Field(0.3, description="of the devices whose kind has a Zigbee2MQTT form")
    # Of the four real homes, two have no front-door contact that works (house E none, house B's never
    # fired): half, from four homes. A programme that fits one wherever it can does better; where it
    # cannot (a steel security door a reed contact will not sit on, a tenant who refuses one, a contact
    # never paired), its residents' outings look like silences at home. We take a quarter.
    door_contact_share: Share = Field(0.75, description="households with a front-door contact")
    households_per_grid: int = Field(30, ge=1)
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class BuiltCommunity:
    """The registry plus what the simulation needs that the registry does not hold."""

    registry: RegistryFile
    rooms: dict[str, Room]                 # motion sensor id → the room it watches
    locations: dict[str, Coordinates]      # community id → where it is


def build_community(parameters: CommunityParameters, rng: np.random.Generator) -> BuiltCommunity:
    builder = _Builder(parameters, rng)
    for index in range(parameters.communities):
        builder.add_community(index)
    registry = RegistryFile(
        communities=builder.communities, compounds=builder.compounds, buildings=builder.buildings,
        grids=builder.grids, households=builder.households, caregivers=builder.caregivers,
        residents=builder.residents, devices=builder.devices,
    )
    return BuiltCommunity(registry, builder.rooms, builder.locations)


class _Builder:
    """Accumulates the registry's flat lists, one community at a time."""

    def __init__(self, parameters: CommunityParameters, rng: np.random.Generator) -> None:
        self.parameters = parameters
        self.rng = rng
        self.communities: list[Community] = []
        self.compounds: list[Compound] = []
        self.buildings: list[Building] = []
        self.grids: list[Grid] = []
        self.households: list[Household] = []
        self.caregivers: list[Caregiver] = []
        self.residents: list[Resident] = []
        self.devices: list[Device] = []
        self.rooms: dict[str, Room] = {}
        self.locations: dict[str, Coordinates] = {}
        self._zigbee_kinds = {name for name, kind in KINDS.items() if kind.zigbee2mqtt_model is not None}

    def add_community(self, index: int) -> None:
        community_id = f"c{index + 1:02d}"
        name = _COMMUNITY_NAMES[index % len(_COMMUNITY_NAMES)] + "社区"
        self.communities.append(Community(id=community_id, name=name, timezone=self.parameters.timezone))
        self.locations[community_id] = Coordinates(_FIRST_LOCATION.lat + 0.01 * index,
                                                   _FIRST_LOCATION.lon + 0.01 * index)
        compound_id = f"{community_id}-p1"
        self.compounds.append(Compound(id=compound_id, community=community_id, name=f"{name}一期"))
        # The community's supervisor (社区督导) oversees its grid workers; no alert tier names it.
        self.caregivers.append(Caregiver(id=f"{community_id}-supervisor", community=community_id,
                                         name=f"{name}督导", role="supervisor"))
        duty_officer = f"{community_id}-duty"
        self.caregivers.append(Caregiver(id=duty_officer, community=community_id, name=f"{name}值班室",
                                         role="duty_officer"))
        # Falling objects go to property security first: without it they would wait out a tier for nobody.
        self.caregivers.append(Caregiver(id=f"{community_id}-security", community=community_id,
                                         name=f"{name}物业保安", role="property_security"))
        per_building = np.array_split(np.arange(self.parameters.households), self.parameters.buildings)
        for number, households in enumerate(per_building, start=1):
            self._add_building(compound_id, f"{community_id}-b{number:02d}", number, len(households),
                               duty_officer, community_id=community_id)

    def _add_building(self, compound_id: str, building_id: str, number: int, households: int,
                      duty_officer: str, *, community_id: str) -> None:
        floors = max(int(self.rng.integers(6, 19)), math.ceil(households / _UNITS_PER_FLOOR))
        self.buildings.append(Building(id=building_id, compound=compound_id, name=f"{number}号楼",
                                       floors=floors))
        for camera in range(1, int(self.rng.integers(1, 3)) + 1):
            self.devices.append(Device(id=f"{building_id}-hac{camera}", kind=high_altitude_camera.KIND.name,
                                       building=building_id))
        slots = np.sort(self.rng.choice(floors * _UNITS_PER_FLOOR, size=households, replace=False))
        # Slot k is on floor k // 4 + 1, door k % 4 + 1: unit 1203 is the third door on floor 12.
        units = [(s // _UNITS_PER_FLOOR + 1) * 100 + s % _UNITS_PER_FLOOR + 1 for s in map(int, slots)]
        grid_count = max(1, math.ceil(households / self.parameters.households_per_grid))
        for grid_index, grid_units in enumerate(np.array_split(np.array(units, dtype=int), grid_count), 1):
            grid_id = f"{building_id}-g{grid_index}"
            grid_worker = f"{grid_id}-worker"
            self.grids.append(Grid(id=grid_id, community=community_id, name=f"{number}号楼第{grid_index}网格",
                                   workers=[grid_worker]))
            self.caregivers.append(Caregiver(id=grid_worker, community=community_id,
                                             name=self._name(_YOUNGER_NAMES), role="grid_worker"))
            for unit in grid_units:
                links = [CaregiverLink(caregiver=grid_worker, tier=2),
                         CaregiverLink(caregiver=duty_officer, tier=3)]
                self._add_household(building_id, number, grid_id, int(unit), community_id=community_id,
                                    links=links)

    def _add_household(self, building_id: str, building_number: int, grid_id: str, unit: int, *,
                       community_id: str, links: list[CaregiverLink]) -> None:
        household_id = f"{building_id}-{unit:04d}"
        self.households.append(Household(id=household_id, grid=grid_id, building=building_id,
                                         unit=f"{building_number}-{unit}"))
        surname = _SURNAMES[int(self.rng.integers(len(_SURNAMES)))]
        family = f"{household_id}-family"
        self.caregivers.append(Caregiver(id=family, community=community_id,
                                         name=surname + self._given(_YOUNGER_NAMES), role="family"))
        lives_alone = bool(self.rng.random() < self.parameters.living_alone_share)
        zigbee_prefix = f"{building_id}/{unit:04d}"
        for number in range(1, 2 if lives_alone else 3):
            resident_id = f"{household_id}-r{number}"
            flags = [LIVES_ALONE_FLAG] if lives_alone else []
            flag_shares = self.parameters.flag_shares.items()
            flags += [flag for flag, share in flag_shares if self.rng.random() < share]
            self.residents.append(Resident(
                id=resident_id, household=household_id, name=surname + self._given(_ELDER_NAMES),
                lives_alone=lives_alone, flags=flags,
                wandering_risk=bool(self.rng.random() < self.parameters.wandering_risk_share),
                caregivers=[CaregiverLink(caregiver=family, tier=1), *links],
            ))
            self._add_device(f"{resident_id}-band", wristband.KIND.name, household_id,
                             f"{zigbee_prefix}/sos_pendant_{number}", resident=resident_id)
        if self.rng.random() < self.parameters.door_contact_share:
            self._add_device(f"{household_id}-door", door_sensor.KIND.name, household_id,
                             f"{zigbee_prefix}/front_door")
        self._add_device(f"{household_id}-peephole", smart_peephole.KIND.name, household_id, None)
        for room in ROOMS[:int(self.rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))]:
            sensor_id = f"{household_id}-pir-{room}"
            self._add_device(sensor_id, motion_sensor.KIND.name, household_id, f"{zigbee_prefix}/pir_{room}")
            self.rooms[sensor_id] = room

    def _add_device(self, device_id: str, kind: str, household_id: str, zigbee_name: str | None,
                    resident: str | None = None) -> None:
        zigbee = kind in self._zigbee_kinds and bool(self.rng.random() < self.parameters.zigbee2mqtt_share)
        self.devices.append(Device(id=device_id, kind=kind, household=household_id, resident=resident,
                                   zigbee2mqtt=zigbee_name if zigbee else None))

    def _name(self, given: tuple[str, ...]) -> str:
        return _SURNAMES[int(self.rng.integers(len(_SURNAMES)))] + self._given(given)

    def _given(self, given: tuple[str, ...]) -> str:
        return given[int(self.rng.integers(len(given)))]
