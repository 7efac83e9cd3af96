"""The seven levels (市 → 区 → 街道 → 社区 → 小区 → 楼栋, and 网格 across buildings): where every entry
sits, who looks after a grid, what a level holds, the errors a wrong hierarchy gives, registries written
before the levels existed loading unchanged, and tokens scoped by level (kept in the token store, and
resolved to what lies below them; over HTTP in tests/api/test_hierarchy_scope.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.api.scope import Scope
from hub.api.tokens import Role, Token, TokenError, TokenStore
from hub.registry import Levels, Registry, RegistryError
from tests.registry_builder import RegistryBuilder


def seven_levels() -> Registry:
    """Shanghai → 浦东 → 花木街道 → two communities. In 阳光: grid g1 spans buildings b1 and b2, and b2 is
    split between g1 and g2; 月亮 is in another subdistrict of the same district."""
    return (RegistryBuilder()
            .city("sh", "上海市").district("pd", "浦东新区")
            .subdistrict("hm", "花木街道")
            .community("sunshine", "阳光社区").compound("c1")
            .grid("g1", workers=["cg-grid1"])
            .building("b1").household("h101").building("b2").household("h201")
            .grid("g2", workers=["cg-grid2", "cg-grid2b"]).household("h202")
            .caregiver("cg-grid1", "一网格员", "grid_worker").caregiver("cg-grid2", "二网格员", "grid_worker")
            .caregiver("cg-grid2b", "二网格员乙", "grid_worker", active=False)
            .caregiver("cg-super", "督导", "supervisor").caregiver("cg-li", "李女士", "family")
            .resident("r1", "王奶奶", household="h201", caregivers={"cg-li": 1})
            .device("band-1", "wristband", resident="r1")
            .device("cam-b2", "high_altitude_camera", building="b2")
            .subdistrict("lj", "陆家嘴街道")
            .community("moon", "月亮社区").compound("c9").building("b9").grid("g9").household("h901")
            .registry())


def test_every_entry_knows_its_seven_levels() -> None:
    registry = seven_levels()
    hierarchy, file = registry.hierarchy, registry.file
    community = Levels("sh", "pd", "hm", "sunshine")
    by_id = {e.id: e for table in ("cities", "districts", "subdistricts", "communities", "compounds",
                                   "buildings", "grids", "households", "caregivers", "residents", "devices")
             for e in getattr(file, table)}
    expected = {
        "sh": Levels("sh"), "pd": Levels("sh", "pd"), "hm": Levels("sh", "pd", "hm"), "sunshine": community,
        "c1": Levels("sh", "pd", "hm", "sunshine", "c1"),
        "b2": Levels("sh", "pd", "hm", "sunshine", "c1", "b2"),
        # A grid cuts across buildings: above it, only the community's levels.
        "g1": Levels("sh", "pd", "hm", "sunshine", grid="g1"),
        "h201": Levels("sh", "pd", "hm", "sunshine", "c1", "b2", "g1"),
        "h202": Levels("sh", "pd", "hm", "sunshine", "c1", "b2", "g2"),
        "r1": Levels("sh", "pd", "hm", "sunshine", "c1", "b2", "g1"),
        "band-1": Levels("sh", "pd", "hm", "sunshine", "c1", "b2", "g1"),
        "cam-b2": Levels("sh", "pd", "hm", "sunshine", "c1", "b2"),
        "cg-li": community,
        "h901": Levels("sh", "pd", "lj", "moon", "c9", "b9", "g9"),
    }
    assert {entry: hierarchy.levels_of(by_id[entry]) for entry in expected} == expected
    assert hierarchy.resident("r1").grid == "g1" and hierarchy.household("h101").building == "b1"
    assert (registry.devices["band-1"].grid, registry.devices["cam-b2"].grid) == ("g1", None)


def test_a_grid_spans_buildings_and_a_building_is_split_between_grids() -> None:
    hierarchy = seven_levels().hierarchy
    assert hierarchy.grid_buildings == {"g1": {"b1", "b2"}, "g2": {"b2"}, "g9": {"b9"}}
    assert hierarchy.building_grids == {"b1": {"g1"}, "b2": {"g1", "g2"}, "b9": {"g9"}}
    assert hierarchy.buildings_under("grid", "g1") == {"b1", "b2"}
    assert hierarchy.buildings_under("district", "pd") == {"b1", "b2", "b9"}
    assert hierarchy.buildings_under("compound", "c9") == {"b9"}


def test_what_each_level_holds() -> None:
    hierarchy = seven_levels().hierarchy
    assert hierarchy.communities_under("city", "sh") == {"sunshine", "moon"}
    assert hierarchy.communities_under("subdistrict", "hm") == {"sunshine"}
    assert hierarchy.communities_under("grid", "g9") == {"moon"}
    assert hierarchy.communities_under("district", "nowhere") == set()
    assert hierarchy.has("subdistrict", "lj") and not hierarchy.has("subdistrict", "sunshine")
    assert hierarchy.at("building", "b9").subdistrict == "lj"


def test_grid_workers_and_supervisors_are_those_in_service() -> None:
    hierarchy = seven_levels().hierarchy
    assert [c.id for c in hierarchy.grid_workers("g2")] == ["cg-grid2"], "not the deactivated one"
    assert [c.id for c in hierarchy.grid_workers("g9")] == []
    assert hierarchy.grids_of_worker("cg-grid1") == ["g1"]
    assert [c.id for c in hierarchy.supervisors("sunshine")] == ["cg-super"]
    assert hierarchy.supervisors("moon") == []


OLD_REGISTRY = """
communities: [{id: s, name: S}]
compounds: [{id: c, community: s}]
buildings: [{id: b1, compound: c}, {id: b2, compound: c}]
grids: [{id: g1, building: b1}, {id: g2, building: b2}]
households: [{id: h1, grid: g1}, {id: h2, grid: g2, building: b2}]
caregivers: [{id: w, community: s, name: W, role: grid_worker}]
residents: [{id: r, household: h1, name: R, caregivers: [{caregiver: w, tier: 2}]}]
devices: [{id: d, kind: door_sensor, household: h1}, {id: cam, kind: high_altitude_camera, building: b2}]
"""


def test_a_registry_written_before_the_levels_loads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(OLD_REGISTRY, encoding="utf-8")
    registry = Registry.load(path)
    # A grid with `building:` is in that building's community; its households without one are in it.
    assert registry.hierarchy.household("h1") == Levels(community="s", compound="c", building="b1", grid="g1")
    assert registry.hierarchy.levels_of(registry.file.grids[0]) == Levels(community="s", grid="g1")
    assert registry.devices["d"].building == "b1" and registry.devices["d"].grid == "g1"
    registry.dump(path)
    assert Registry.load(path).file == registry.file, "and is written back as it was"


BASE = """
communities: [{id: s, name: S}, {id: t, name: T}]
compounds: [{id: c, community: s}, {id: ct, community: t}]
buildings: [{id: b, compound: c}, {id: bt, compound: ct}]
caregivers:
  - {id: fam, community: s, name: F, role: family}
  - {id: wt, community: t, name: W, role: grid_worker}
"""


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("grids: [{id: g}]", "a grid names its `community`"),
        ("grids: [{id: g, community: s}]\nhouseholds: [{id: h, grid: g}]",
         "households 'h': names no building, and its grid 'g' covers no single building"),
        ("grids: [{id: g, community: s}]\nhouseholds: [{id: h, grid: g, building: bt}]",
         "households 'h': building 'bt' is in community 't', its grid 'g' in 's'"),
        ("grids: [{id: g, community: s, building: bt}]",
         "grids 'g': building 'bt' is in community 't', the grid in 's'"),
        ("grids: [{id: g, community: s, workers: [fam]}]",
         "grids 'g': worker 'fam' is not a grid_worker of community 's'"),
        ("grids: [{id: g, community: s, workers: [wt]}]",
         "grids 'g': worker 'wt' is not a grid_worker of community 's'"),
        ("grids: [{id: g, community: s, workers: [ghost]}]", "worker 'ghost' is not in caregivers"),
        ("grids: [{id: g, community: nowhere}]", "grids 'g': community 'nowhere' is not in communities"),
        ("subdistricts: [{id: sd, name: SD, district: nowhere}]",
         "subdistricts 'sd': district 'nowhere' is not in districts"),
        ("cities: [{id: x, name: X, active: false}]\ndistricts: [{id: d, name: D, city: x}]",
         "districts 'd': city 'x' is deactivated in cities"),
    ],
)
def test_hierarchy_errors_say_what_is_wrong(tmp_path: Path, entries: str, message: str) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(BASE + entries, encoding="utf-8")
    with pytest.raises(RegistryError, match=message):
        Registry.load(path)


def test_a_community_names_its_subdistrict(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(BASE.replace("{id: t, name: T}", "{id: t, name: T, subdistrict: gone}"), encoding="utf-8")
    with pytest.raises(RegistryError, match="communities 't': subdistrict 'gone' is not in subdistricts"):
        Registry.load(path)


def test_a_token_keeps_its_places_and_each_role_is_scoped_one_way(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "hub.sqlite3")
    try:
        worker, _ = store.create(name="网格员", role=Role.GRID_WORKER, communities=[], caregiver="cg-grid1",
                                 now_ms=1, places={"grids": ["g1", "g2", "g1"]})
        district, _ = store.create(name="浦东", role=Role.SUPERVISOR, communities=["moon"], caregiver=None,
                                   now_ms=1, places={"districts": ["pd"], "cities": []})
        assert {t.name: t for t in store.tokens()} == {"网格员": worker, "浦东": district}, "as stored"
        assert (worker.places(), district.places()) == ({"grids": ("g1", "g2")}, {"districts": ("pd",)})
        for role, communities, caregiver, places, why in (
            (Role.GRID_WORKER, [], None, {}, "needs --grid"),
            (Role.GRID_WORKER, ["sunshine"], None, {"grids": ["g1"]}, "takes no --community"),
            (Role.OPERATOR, [], None, {"grids": ["g1"]}, "only grid_worker tokens take --grid"),
            (Role.SUPERVISOR, [], None, {}, "needs --community ('*' for every one), --subdistrict"),
            (Role.CAREGIVER, [], "cg-li", {"districts": ["pd"]}, "a caregiver token takes no"),
            (Role.READ_ONLY, [], None, {"towns": ["x"]}, "no such level for a token's places: towns"),
            (Role.READ_ONLY, [], None, {"districts": ["p d"]}, "'p d' is not a registry id"),
        ):
            with pytest.raises(TokenError, match=re.escape(why)):
                store.create(name="bad", role=role, communities=communities, caregiver=caregiver, now_ms=1,
                             places=places)
    finally:
        store.close()


def test_a_scope_at_each_level_resolves_to_what_lies_below_it() -> None:
    registry = seven_levels()

    def scope(role: Role, communities: tuple[str, ...] = (), *, cities: tuple[str, ...] = (),
              districts: tuple[str, ...] = (), subdistricts: tuple[str, ...] = (),
              grids: tuple[str, ...] = ()) -> Scope:
        return Scope.of(Token("t", "t", role, None, communities, 0, None, None, cities, districts,
                              subdistricts, grids), registry)

    district = scope(Role.OPERATOR, districts=("pd",))
    assert district.communities == frozenset({"sunshine", "moon"})
    assert scope(Role.SUPERVISOR, subdistricts=("lj",)).communities == frozenset({"moon"})
    assert scope(Role.READ_ONLY, ("x",), cities=("sh",)).communities == frozenset({"sunshine", "moon", "x"})
    worker = scope(Role.GRID_WORKER, grids=("g1", "gone"))
    assert (worker.grids, worker.households, worker.residents, worker.buildings) == (
        frozenset({"g1"}), frozenset({"h101", "h201"}), frozenset({"r1"}), frozenset({"b1", "b2"}))
    assert worker.sees_place("building", "b2") and not worker.sees_place("grid", "g2")
    assert worker.sees_place("district", "pd") and not worker.sees_place("community", "moon")
    assert not district.sees_place("district", "nowhere") and not district.sees_place("grid", "g-x")
    assert district.sees_place("compound", "c9") and district.sees_place("city", "sh")
