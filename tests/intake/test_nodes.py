"""Hub nodes: `HUB_NODE_ID` names a hub among others on one broker (and its MQTT client id by default),
`HUB_COMMUNITIES` restricts what it subscribes to and stores. Two hubs on a real Mosquitto, each taking
one community, each store only their own; a node whose session still holds another community's messages
keeps them as dead letters for the node that takes it; an intake worker subscribes to a compound its node's
communities gain when its registry changes."""

from __future__ import annotations

import json
import queue
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from typer.testing import CliRunner

from hub.cli import app
from hub.intake import Rejected, Router, RouterLimits
from hub.intake_processes import (
    IntakeProcessesError,
    SubscriptionsFollowRegistry,
    check_intake_processes,
    dropped_topics,
    intake_process_client_id,
    intake_topics,
)
from hub.mqtt import Message, Subscriber
from hub.node import NodeError, NodeScope
from hub.registry import RegistryHolder
from hub.settings import Settings
from hub.store import Observation
from tests.api.support import publish
from tests.real_servers import HubProcess, Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder

Z2M = "zigbee2mqtt"


def two_communities() -> RegistryBuilder:
    """sunshine (compounds s1, s2) and moonlight (compound m1), each with a native door contact and a
    Zigbee2MQTT one behind its compound's gateway."""
    return (RegistryBuilder()
            .community("sunshine").compound("s1").building("sb1").grid("sg1").household("sh1")
            .device("sun-door", "door_sensor").device("sun-z", "door_sensor", zigbee2mqtt="101/door")
            .compound("s2").building("sb2").grid("sg2").household("sh2")
            .community("moonlight").compound("m1").building("mb1").grid("mg1").household("mh1")
            .device("moon-door", "door_sensor").device("moon-z", "door_sensor", zigbee2mqtt="101/door"))


def settings(**values: object) -> Settings:
    return Settings.model_validate({"node_id": "node-a", **values})


# --- settings and scope ---------------------------------------------------------------------------------


def test_communities_are_comma_separated_and_the_client_id_follows_the_node_id(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_COMMUNITIES", " moonlight,sunshine , moonlight")
    monkeypatch.setenv("HUB_NODE_ID", "node-b")
    monkeypatch.delenv("HUB_MQTT_CLIENT_ID", raising=False)
    env = Settings()
    assert env.communities == ["moonlight", "sunshine"]
    assert env.client_id == "sc-hub-node-b"
    monkeypatch.setenv("HUB_MQTT_CLIENT_ID", "sc-hub")  # an existing session, kept by name
    assert Settings().client_id == "sc-hub"
    monkeypatch.setenv("HUB_COMMUNITIES", "")
    assert Settings().communities == []
    monkeypatch.setenv("HUB_COMMUNITIES", "sun/shine")
    with pytest.raises(ValidationError, match="not community ids"):
        Settings()


def test_a_node_subscribes_to_its_communities_and_their_gateways_only() -> None:
    registry = two_communities().registry()
    scope = NodeScope.of(settings(communities=["sunshine"]), registry)
    assert scope == NodeScope(frozenset({"sunshine"}), frozenset({"s1", "s2"}))
    assert intake_topics(settings(communities=["sunshine"]), scope) == [
        "sc/sunshine/+/+/event", "sc/sunshine/+/+/availability", f"{Z2M}/s1/#", f"{Z2M}/s2/#"]
    # A session of an earlier, wider run (or of other communities) loses those filters.
    dropped = dropped_topics(settings(communities=["sunshine"]), scope, registry)
    assert {"sc/+/+/+/event", f"{Z2M}/#", "sc/moonlight/+/+/event", f"{Z2M}/m1/#",
            "$share/sc-hub/sc/sunshine/+/+/event"} <= set(dropped)
    assert not set(dropped) & set(intake_topics(settings(communities=["sunshine"]), scope))
    # Worker mode: the intake processes share the node's filters, the main hub hears their notices.
    workers = settings(communities=["sunshine"], intake_workers=2, mqtt_url="mqtt://127.0.0.1")
    assert intake_topics(workers, scope, main=False)[:2] == [
        "$share/sc-hub/sc/sunshine/+/+/event", "$share/sc-hub/sc/sunshine/+/+/availability"]
    assert intake_topics(workers, scope) == ["hub/sc-hub-node-a/intake/committed"]
    assert "sc/sunshine/+/+/event" in dropped_topics(workers, scope, registry, main=False)
    # Nodes splitting the stream: alone, through the shared subscription, and nothing else is dropped.
    shared = settings(communities=["sunshine"], mqtt_shared=True, mqtt_url="mqtt://127.0.0.1")
    assert intake_topics(shared, scope)[:2] == [
        "$share/sc-hub/sc/sunshine/+/+/event", "$share/sc-hub/sc/sunshine/+/+/availability"]
    assert "sc/sunshine/+/+/event" in dropped_topics(shared, scope, registry)
    with pytest.raises(IntakeProcessesError, match="HUB_MQTT_SHARED=true needs an external MQTT broker"):
        check_intake_processes(settings(mqtt_shared=True))
    # Unrestricted: every device, as before.
    assert intake_topics(settings(), NodeScope.of(settings(), registry)) == [
        "sc/+/+/+/event", "sc/+/+/+/availability", f"{Z2M}/#"]


def test_an_unknown_community_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = two_communities().registry()
    with pytest.raises(NodeError, match=r"'starlight', not in the registry .*moonlight, sunshine"):
        NodeScope.of(settings(communities=["sunshine", "starlight"]), registry)
    registry_path = tmp_path / "registry.yaml"
    registry.dump(registry_path)
    monkeypatch.setenv("HUB_COMMUNITIES", "starlight")
    monkeypatch.setenv("HUB_STORE_PATH", str(tmp_path / "hub.sqlite3"))
    result = CliRunner().invoke(app, ["run", "--registry", str(registry_path), "--no-view"])
    assert result.exit_code == 2
    assert "HUB_COMMUNITIES names 'starlight', not in the registry" in result.output


def test_another_communitys_message_is_a_dead_letter_not_a_reading() -> None:
    registry = two_communities().registry()
    router = Router(lambda: registry, Z2M, RouterLimits(), frozenset({"sunshine"}))
    now = int(time.time() * 1000)
    native = json.dumps({"ts": now, "contact": "open"}).encode()
    z2m = json.dumps({"contact": True, "last_seen": now}).encode()
    assert isinstance(router.route("sc/sunshine/door_sensor/sun-door/event", native, now), Observation)
    assert isinstance(router.route(f"{Z2M}/s1/101/door", z2m, now), Observation)
    for topic, payload in (("sc/moonlight/door_sensor/moon-door/event", native), (f"{Z2M}/m1/101/door", z2m)):
        routed = router.route(topic, payload, now)
        assert isinstance(routed, Rejected)
        assert routed.reason == "other_community"
        assert routed.device is None  # this node does not follow the other community's devices
        assert "'moonlight' is not taken by this node (HUB_COMMUNITIES=sunshine)" in routed.detail
    # A gateway of a compound nobody has is the usual dead letter, on every node.
    unknown = router.route(f"{Z2M}/x9/999/door", z2m, now)
    assert isinstance(unknown, Rejected) and unknown.reason == "unknown_device"


# --- two nodes on a real broker ---------------------------------------------------------------------------


def node(tmp_path: Path, registry: Path, mosquitto: Mosquitto, node_id: str, communities: str,
         **env: str) -> HubProcess:
    """A hub on its node id's default client id (sc-hub-<node id>), restricted to `communities`."""
    hub = HubProcess(tmp_path / node_id, registry, mosquitto,
                     {"HUB_NODE_ID": node_id, "HUB_COMMUNITIES": communities, **env})
    del hub.env["HUB_MQTT_CLIENT_ID"]
    hub.client_id = f"sc-hub-{node_id}"
    return hub


def readings(ts: int) -> list[tuple[str, dict[str, object]]]:
    """A native and a Zigbee2MQTT reading of each community's doors, at `ts`."""
    return [("sc/sunshine/door_sensor/sun-door/event", {"ts": ts, "contact": "open"}),
            (f"{Z2M}/s1/101/door", {"contact": True, "last_seen": ts}),
            ("sc/moonlight/door_sensor/moon-door/event", {"ts": ts, "contact": "open"}),
            (f"{Z2M}/m1/101/door", {"contact": True, "last_seen": ts})]


def stored(hub: HubProcess) -> set[str]:
    store = hub.store()
    try:
        return {device for device, _ in store.observation_keys()}
    finally:
        store.close()


def dead_letters(hub: HubProcess) -> dict[str, int]:
    store = hub.store()
    try:
        return store.dead_letter_counts()
    finally:
        store.close()


def node_info(hub: HubProcess) -> dict[str, str]:
    with urllib.request.urlopen(f"{hub.http_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    (sample,) = [sample for family in text_string_to_metric_families(text) for sample in family.samples
                 if sample.name == "hub_node_info"]
    return dict(sample.labels)


def test_two_nodes_each_store_only_their_own_community(tmp_path: Path, mosquitto: Mosquitto) -> None:
    registry = two_communities().dump(tmp_path / "registry.yaml")
    # One node with intake processes (shared subscriptions), one alone: both restrict what they take.
    sun = node(tmp_path, registry, mosquitto, "node-sun", "sunshine", HUB_INTAKE_WORKERS="2").start()
    moon = node(tmp_path, registry, mosquitto, "node-moon", "moonlight").start()
    try:
        wait_until(lambda: sun.log().count(" started: node node-sun, ") == 2, 30, what="both intake workers")
        ts = int(time.time() * 1000)
        publish(mosquitto, readings(ts))
        sun.wait_for(lambda store: store.count_observations() == 2, 20, what="sunshine's two readings")
        moon.wait_for(lambda store: store.count_observations() == 2, 20, what="moonlight's two readings")
        time.sleep(1)  # nothing else arrives late
        assert stored(sun) == {"sun-door", "sun-z"}
        assert stored(moon) == {"moon-door", "moon-z"}
        assert dead_letters(sun) == dead_letters(moon) == {}  # neither was even sent the other's
        assert "hub started: node node-moon (MQTT client id sc-hub-node-moon) taking communities moonlight" \
               in moon.log()
        assert node_info(moon) == {"node_id": "node-moon", "client_id": "sc-hub-node-moon",
                                   "communities": "moonlight"}
        assert intake_process_client_id(sun.client_id, 1) in sun.log()
    finally:
        sun.stop()
        moon.stop()


def test_a_node_narrowed_to_one_community_keeps_what_its_session_held_for_the_other(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    registry = two_communities().dump(tmp_path / "registry.yaml")
    wide = node(tmp_path, registry, mosquitto, "node-a", "").start()
    wide.stop()
    ts = int(time.time() * 1000)
    publish(mosquitto, readings(ts))  # queued in node-a's session under its wide filters
    narrow = node(tmp_path, registry, mosquitto, "node-a", "sunshine").start()
    try:
        narrow.wait_for(lambda store: store.count_observations() == 2, 20, what="sunshine's readings")
        narrow.wait_for(lambda store: store.dead_letter_counts() == {"other_community": 2}, 20,
                        what="moonlight's readings kept as dead letters")
        assert stored(narrow) == {"sun-door", "sun-z"}
        # The wide filters are gone from the session: moonlight's next readings do not come here at all.
        publish(mosquitto, readings(ts + 1000))
        narrow.wait_for(lambda store: store.count_observations() == 4, 20, what="sunshine's next readings")
        time.sleep(1)
        assert dead_letters(narrow) == {"other_community": 2}
    finally:
        narrow.stop()


def test_a_restricted_intake_worker_subscribes_to_a_compound_its_communities_gain(
        mosquitto: Mosquitto) -> None:
    """What an intake worker does when it reloads its node's registry snapshot, on a real broker: the new
    compound's gateway comes through its shared subscription, with no restart."""
    workers = settings(communities=["moonlight"], intake_workers=2, mqtt_url=mosquitto.url)
    before = two_communities().registry()
    scope = NodeScope.of(workers, before)
    received: queue.Queue[Message] = queue.Queue()
    subscriber = Subscriber(mosquitto.address, "node-a-intake-1", intake_topics(workers, scope, main=False),
                            received.put)
    holder = RegistryHolder(before)
    holder.add_listener(SubscriptionsFollowRegistry(workers, scope, subscriber, main=False))
    subscriber.start()
    try:
        assert subscriber.wait_subscribed(10)
        holder.replace(two_communities().compound("m2").building("mb2").grid("mg2").household("mh2")
                       .device("moon-z2", "door_sensor", zigbee2mqtt="201/door").registry())

        def gateway_heard() -> Message | None:  # subscribing is asynchronous: publish until it is heard
            publish(mosquitto, [(f"{Z2M}/m2/201/door", {"contact": True, "last_seen": 1})])
            try:
                return received.get(timeout=0.2)
            except queue.Empty:
                return None

        heard = wait_until(gateway_heard, 10, interval=0, what="the new compound's gateway heard")
        assert heard is not None and heard.topic == f"{Z2M}/m2/201/door"
    finally:
        subscriber.stop()
