"""The registry in PostgreSQL (HUB_STORE_URL), on a real server: `hub registry import` checks a file as a
hub's start does and stores it as the newest version, `hub registry export` writes it back; a node starts
on the newest version, its file imported once when the store has none; edits from two nodes at once are
serialised, none lost; every node takes a new version in as soon as it is announced; an erasure leaves no
earlier version holding the resident. With two real hub nodes: an edit through one's API is served by the
other, and a device and a compound's gateway added through one are taken by the other's intake."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from hub.api.registry_editor import Editor, RegistryEditor
from hub.api.tokens import ALL_COMMUNITIES, Role
from hub.cli import app
from hub.personal_data import anonymised
from hub.postgres import PgConnection
from hub.registry import Device, Registry, RegistryError, RegistryHolder
from hub.registry_sources import (
    PostgresRegistrySource,
    RegistryFollower,
    registry_at_start,
    stored_registry,
)
from hub.store import Store, StoreAt
from tests.api.support import client, make_token, publish
from tests.conftest import StartHub
from tests.real_servers import Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder

# A node takes a new version in as soon as it is told of it (NOTIFY): well within this, which is less
# than HUB_REGISTRY_POLL_S (5 s), the bound when it is not told.
PROPAGATION_S = 2.0


def two_communities() -> RegistryBuilder:
    return (RegistryBuilder()
            .community("sunshine").compound("s1").building("sb1").grid("sg1").household("sh1")
            .caregiver("cg-li", "李女士", "family")
            .resident("r-wang", "王奶奶", caregivers={"cg-li": 1}, phone="13800000000")
            .device("band-wang", "wristband", resident="r-wang")
            .community("moonlight").compound("m1").building("mb1").grid("mg1").household("mh1")
            .device("moon-door", "door_sensor"))


def allowed_to_all(_entry: object, _registry: Registry) -> None:
    """An edit every caller may make (the API's scope checks are tested with the API)."""


def versions(url: str) -> list[tuple[int, str, str]]:
    with closing(PgConnection(url)) as db:
        return [tuple(row) for row in db.execute(
            "SELECT version, actor, what FROM registry_versions ORDER BY version")]


def invoke(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["registry", *args], env={"HUB_STORE_URL": url})
    return result.exit_code, result.output


def test_import_checks_the_file_and_export_writes_the_version_in_service(pg_url: str, tmp_path: Path) -> None:
    path = two_communities().dump(tmp_path / "registry.yaml")
    code, output = invoke(pg_url, "import", str(path))
    assert code == 0, output
    assert "stored as registry version 1: 2 communities" in output
    stored = stored_registry(pg_url)
    assert stored is not None and stored[0] == 1
    assert stored[1].file == Registry.load(path).file

    # A file a hub would refuse at start is refused with the same words, and nothing is stored.
    broken = tmp_path / "broken.yaml"
    broken.write_text(path.read_text(encoding="utf-8").replace("household: sh1", "household: nowhere"),
                      encoding="utf-8")
    with pytest.raises(RegistryError) as refused:
        Registry.load(broken)
    code, output = invoke(pg_url, "import", str(broken))
    assert code == 2
    assert " ".join(str(refused.value).split()) in " ".join(output.split())
    assert [v for v, _, _ in versions(pg_url)] == [1]

    exported = tmp_path / "exported.json"
    code, output = invoke(pg_url, "export", str(exported))
    assert code == 0, output
    assert Registry.load(exported).file == Registry.load(path).file
    assert exported.stat().st_mode & 0o777 == 0o600, "residents' personal data: the owner's only"
    code, output = invoke(pg_url, "versions")
    assert code == 0 and "import registry.yaml" in output


def test_the_brokers_users_come_from_the_registry_in_postgresql(pg_url: str, tmp_path: Path) -> None:
    """The compose stack's broker-config passes the seed file: on PostgreSQL it seeds an empty store only,
    and the users follow the registry in service there, which API edits change."""
    seed = two_communities().dump(tmp_path / "seed.yaml")
    out, secrets = tmp_path / "mosquitto", tmp_path / "mqtt-secrets.yaml"

    def export() -> str:
        code, output = invoke(pg_url, "export-mosquitto", "--registry", str(seed), "--out", str(out),
                              "--secrets", str(secrets))
        assert code == 0, output
        return (out / "acl").read_text(encoding="utf-8")

    assert "user band-wang" in export()
    assert [v for v, _, _ in versions(pg_url)] == [1], "the seed imported into the empty store"
    edited = two_communities().device("band-9", "wristband", resident="r-wang").dump(tmp_path / "new.yaml")
    assert invoke(pg_url, "import", str(edited))[0] == 0  # as an edit through any node's API would
    assert "user band-9" in export(), "the store's registry, not the seed"
    assert [v for v, _, _ in versions(pg_url)] == [1, 2]


def test_without_postgresql_the_file_is_the_registry_and_the_store_commands_say_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_STORE_URL", raising=False)
    path = two_communities().dump(tmp_path / "registry.yaml")
    for command in (["import", str(path)], ["export", str(tmp_path / "out.yaml")], ["versions"]):
        result = CliRunner().invoke(app, ["registry", *command])
        assert result.exit_code == 2
        said = " ".join(result.output.split())
        assert "works on the registry in PostgreSQL (HUB_STORE_URL is not set)" in said
    assert not (tmp_path / "out.yaml").exists()


def test_a_node_starts_on_the_newest_version_and_imports_its_file_only_into_an_empty_store(
        pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="the store holds no registry yet, and cannot read registry"):
        registry_at_start(pg_url, tmp_path / "absent.yaml", node="node-0", kept=20)
    path = two_communities().dump(tmp_path / "registry.yaml")
    starts: list[tuple[int, Registry]] = []
    nodes = [threading.Thread(target=lambda n=n: starts.append(
        registry_at_start(pg_url, path, node=f"node-{n}", kept=20))) for n in range(3)]
    for thread in nodes:
        thread.start()
    for thread in nodes:
        thread.join()
    assert [version for version, _ in starts] == [1, 1, 1], "three nodes starting at once import it once"
    assert versions(pg_url)[0][2] == f"import {path}"

    # From then on the store is the registry: a changed file is not read again.
    RegistryBuilder().community("elsewhere").dump(path)
    version, registry = registry_at_start(pg_url, path, node="node-0", kept=20)
    assert (version, {c.id for c in registry.file.communities}) == (1, {"sunshine", "moonlight"})


class Node:
    """One node's registry, as `hub run` wires it: holder, PostgreSQL source, follower and API editor."""

    def __init__(self, url: str, tmp_path: Path, version: int, registry: Registry) -> None:
        self.holder = RegistryHolder(registry)
        self.source = PostgresRegistrySource(url, self.holder, version, kept=100)
        self.follower = RegistryFollower(url, self.source, poll_s=5)
        self.editor = RegistryEditor(self.source, self.holder.current,
                                     StoreAt(tmp_path / "unused.sqlite3", url))

    def add_device(self, device_id: str) -> None:
        self.editor.create("devices", Device(id=device_id, kind="door_sensor", household="sh1"),
                           allowed_to_all, Editor("installer", "t1", "device_admin"))

    def close(self) -> None:
        if self.follower.ident is not None:  # started
            self.follower.stop()
        self.source.close()


def serving(node: Node, version: int) -> bool:
    return node.source.version == version


@pytest.fixture
def nodes(pg_url: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    version, registry = registry_at_start(pg_url, two_communities().dump(tmp_path / "registry.yaml"),
                                          node="node-a", kept=100)
    Store(tmp_path / "unused.sqlite3", url=pg_url).close()  # the audit's tables
    a, b = Node(pg_url, tmp_path, version, registry), Node(pg_url, tmp_path, version, registry)
    yield a, b
    a.close()
    b.close()


def test_edits_on_two_nodes_at_once_are_serialised_and_every_node_takes_each_version_in(
        nodes: tuple[Node, Node], pg_url: str) -> None:
    a, b = nodes
    a.follower.start()
    b.follower.start()
    start = threading.Barrier(2)

    def edit(node: Node, prefix: str) -> None:
        start.wait()
        for i in range(10):
            node.add_device(f"{prefix}-{i}")

    editing = [threading.Thread(target=edit, args=(a, "a")), threading.Thread(target=edit, args=(b, "b"))]
    for thread in editing:
        thread.start()
    for thread in editing:
        thread.join()
    expected = {f"{p}-{i}" for p in "ab" for i in range(10)}
    stored = stored_registry(pg_url)
    assert stored is not None
    assert stored[0] == 21 and expected <= set(stored[1].devices), "none lost: each applied on the last"
    assert [v for v, _, _ in versions(pg_url)] == list(range(1, 22))
    with closing(Store(Path("unused"), url=pg_url, read_only=True)) as store:
        assert len(store.registry_edits()) == 20

    # Both nodes serve the newest version: each heard of the other's last edit.
    for node in (a, b):
        wait_until(functools.partial(serving, node, 21), PROPAGATION_S, interval=0.01,
                   what="the newest version in service")
        assert expected <= set(node.holder.current().devices)

    # One edit timed, from its commit on node a to its being in service on node b.
    written = time.monotonic()
    a.add_device("timed")
    wait_until(lambda: "timed" in b.holder.current().devices, PROPAGATION_S, interval=0.005,
               what="node b serving node a's edit")
    assert time.monotonic() - written < PROPAGATION_S


def test_a_node_not_told_of_a_version_takes_it_in_at_its_next_edit(nodes: tuple[Node, Node]) -> None:
    a, b = nodes  # no followers: b hears of nothing
    a.add_device("first")
    b.add_device("second")  # applied on top of a's, not on the version b had
    assert {"first", "second"} <= set(b.holder.current().devices)
    assert b.source.version == 3


def test_a_node_whose_listening_connection_dropped_takes_in_what_it_was_not_told_of(
        nodes: tuple[Node, Node], pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    a, b = nodes
    b.follower = RegistryFollower(pg_url, b.source, poll_s=0.5)
    b.follower.start()
    with closing(PgConnection(pg_url)) as db:
        listening = "SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN hub_registry'"
        wait_until(lambda: db.execute(listening).fetchall(), 5, what="node b listening")
        db.execute(f"SELECT pg_terminate_backend(pid) FROM ({listening}) AS listeners")
        a.add_device("while-away")
        wait_until(lambda: "while-away" in b.holder.current().devices, 5, interval=0.02,
                   what="node b taking in the version it was not told of")
    assert "registry versions not followed" in caplog.text


def test_an_erasure_keeps_no_earlier_version_holding_the_resident(nodes: tuple[Node, Node],
                                                                   pg_url: str) -> None:
    a, _ = nodes
    a.add_device("more")
    with a.editor.lock:
        a.editor.replace(lambda newest: anonymised(newest, "r-wang"), actor="ops",
                         what="erase residents r-wang")
    assert [what for _, _, what in versions(pg_url)] == ["erase residents r-wang"]
    with closing(PgConnection(pg_url)) as db:
        (document,) = db.execute("SELECT document::text FROM registry_versions").fetchone()
    assert "王奶奶" not in document and "13800000000" not in document
    assert "more" in a.holder.current().devices, "the erasure applied to the newest registry"


def test_hub_residents_erase_writes_a_version_and_keeps_no_earlier_one(pg_url: str, tmp_path: Path) -> None:
    path = two_communities().dump(tmp_path / "registry.yaml")
    assert invoke(pg_url, "import", str(path))[0] == 0
    assert invoke(pg_url, "import", str(path))[0] == 0
    result = CliRunner().invoke(app, ["residents", "erase", "r-wang", "--yes", "--by", "ops"],
                                env={"HUB_STORE_URL": pg_url, "HUB_STORE_PATH": str(tmp_path / "unused")})
    assert result.exit_code == 0, result.output
    assert versions(pg_url) == [(3, "ops", "erase residents r-wang")]
    stored = stored_registry(pg_url)
    assert stored is not None
    (resident,) = stored[1].file.residents
    assert (resident.name, resident.active) == ("", False)


def test_only_the_newest_versions_are_kept(pg_url: str, tmp_path: Path) -> None:
    version, registry = registry_at_start(pg_url, two_communities().dump(tmp_path / "registry.yaml"),
                                          node="node-a", kept=3)
    source = PostgresRegistrySource(pg_url, RegistryHolder(registry), version, kept=3)
    try:
        for i in range(4):
            source.write(lambda newest: newest, actor="ops", what=f"edit {i}")
    finally:
        source.close()
    assert [v for v, _, _ in versions(pg_url)] == [3, 4, 5]


# --- two real hub nodes ---------------------------------------------------------------------------------


def test_an_edit_through_one_nodes_api_reaches_the_other_node_and_its_intake(
        tmp_path: Path, mosquitto: Mosquitto, pg_url: str, start_hub: StartHub) -> None:
    path = two_communities().dump(tmp_path / "registry.yaml")
    a = start_hub(path, {"HUB_STORE_URL": pg_url, "HUB_NODE_ID": "node-a", "HUB_COMMUNITIES": "sunshine"})
    b = start_hub(path, {"HUB_STORE_URL": pg_url, "HUB_NODE_ID": "node-b", "HUB_COMMUNITIES": "moonlight"})
    operator = make_token(a, "ops", Role.OPERATOR, communities=(ALL_COMMUNITIES,))
    now = int(time.time() * 1000)
    with client(a, operator) as api_a, client(b, operator) as api_b:
        # A new compound of node b's community with a home behind its Zigbee2MQTT gateway, and a native
        # door contact, all added through node a.
        for table, entry in (("compounds", {"id": "m2", "community": "moonlight"}),
                             ("buildings", {"id": "mb2", "compound": "m2"}),
                             ("grids", {"id": "mg2", "building": "mb2"}),
                             ("households", {"id": "mh2", "grid": "mg2"}),
                             ("devices", {"id": "moon-z", "kind": "door_sensor", "household": "mh2",
                                          "zigbee2mqtt": "201/door"}),
                             ("devices", {"id": "moon-new", "kind": "door_sensor", "household": "mh1"})):
            created = api_a.post(f"/api/v1/registry/{table}", json=entry)
            assert created.status_code == 201, created.text
        written = time.monotonic()
        seen = wait_until(lambda: _ok(api_b.get("/api/v1/registry/devices/moon-new")), PROPAGATION_S,
                          interval=0.02, what="node b serving the device added through node a")
        assert seen is not None and seen.json()["household"] == "mh1"
        assert time.monotonic() - written < PROPAGATION_S + 0.5  # and an HTTP round trip
        conflict = api_b.post("/api/v1/registry/devices", json={"id": "moon-new", "kind": "door_sensor",
                                                                 "household": "mh1"})
        assert conflict.status_code == 409, "node b edits on top of node a's version"
        # Text PostgreSQL cannot store is refused as bad input, not failed on.
        nul = api_b.patch("/api/v1/registry/devices/moon-new", json={"room": "卧\x00室"})
        assert nul.status_code == 422 and nul.json()["detail"][0]["loc"] == ["body", "room"], nul.text

    # Node b routes both devices' readings (the gateway's through its new subscription), node a neither.
    wait_until(lambda: "subscribed to zigbee2mqtt/m2/#" in b.log(), 5, what="node b subscribing to m2")
    publish(mosquitto, [("sc/moonlight/door_sensor/moon-new/event", {"ts": now, "contact": "open"}),
                        ("zigbee2mqtt/m2/201/door", {"contact": True, "last_seen": now})])
    b.wait_for(lambda store: {"moon-new", "moon-z"} <= {d for d, _ in store.observation_keys()}, 15,
               "node b storing the new devices' readings")
    with closing(b.store()) as store:
        assert store.dead_letter_counts() == {}, "not a dead letter on either node"


def _ok(response: httpx.Response) -> httpx.Response | None:
    return response if response.status_code == 200 else None
