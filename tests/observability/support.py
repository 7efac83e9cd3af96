"""Shared pieces of the metrics and dashboard tests."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from hub.registry import Caregiver, CaregiverLink, City, District, Registry, Subdistrict
from tests.real_servers import HubProcess

# Valid readings per native device of the one-of-each registry (one of the wristband's is an SOS press).
PUBLISHED = {"door_sensor": ("door-1", 3), "smart_peephole": ("peephole-1", 4), "wristband": ("band-1", 5),
             "high_altitude_camera": ("camera-1", 2), "motion_sensor": ("motion-1", 6)}


def scrape(hub: HubProcess) -> str:
    with urllib.request.urlopen(f"{hub.http_url}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.geturl() == f"{hub.http_url}/metrics", "served at /metrics itself, no redirect"
        return str(response.read().decode())


def with_caregivers(registry_path: Path) -> None:
    """Give the one resident two tiers of caregivers, so an unacknowledged alert can escalate."""
    data = Registry.load(registry_path).file
    resident = data.residents[0].model_copy(update={"caregivers": [
        CaregiverLink(caregiver="cg-family", tier=1), CaregiverLink(caregiver="cg-grid", tier=2)]})
    Registry(data.model_copy(update={
        "caregivers": [Caregiver(id="cg-family", community="sunshine", name="李女士", role="family"),
                       Caregiver(id="cg-grid", community="sunshine", name="张网格员", role="grid_worker")],
        "residents": [resident]})).dump(registry_path)


def in_a_subdistrict(registry_path: Path, subdistrict: str) -> None:
    """Put every community in `subdistrict` (of a district of a city): the supervision series name it."""
    data = Registry.load(registry_path).file
    Registry(data.model_copy(update={
        "cities": [City(id="city", name="市")],
        "districts": [District(id="district", city="city", name="区")],
        "subdistricts": [Subdistrict(id=subdistrict, district="district", name="街道")],
        "communities": [c.model_copy(update={"subdistrict": subdistrict}) for c in data.communities]},
    )).dump(registry_path)
