"""Three hub nodes (`hub run` subprocesses, the same settings but `HUB_NODE_ID`) on one real Mosquitto and
one real PostgreSQL, a stream of six communities' wristbands with SOS presses, and one node killed with
kill -9 mid-stream: every reading stored once, every SOS alerted once, and the dead node's communities
taken over within a lease of the kill, an SOS pressed during the take-over alerted soon after
(docs/operators/nodes.md)."""

from __future__ import annotations

import json
import time
import urllib.request
from contextlib import closing
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from hub.leases import assignment
from hub.postgres import PgConnection
from hub.settings import Settings
from hub.topics import event_topic
from simulators.message import SimMessage
from tests.conftest import StartHub
from tests.real_servers import Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder
from tests.traffic import BackgroundPublisher

COMMUNITIES = [f"c{i}" for i in range(6)]
BANDS = 4  # per community: one pressed before the kill, one during the take-over, one after
NODES = ["node-a", "node-b", "node-c"]
LEASE_S = Settings.model_fields["lease_s"].default
HEARTBEAT_S = LEASE_S / 4


def band(community: str, j: int) -> str:
    return f"{community}-band{j}"


def write_registry(path: Path) -> Path:
    builder = RegistryBuilder()
    for community in COMMUNITIES:
        builder.community(community).compound(f"{community}-k").building(f"{community}-b").grid(f"{community}-g")
        for j in range(BANDS):
            builder.household(f"{community}-h{j}").resident(f"{community}-r{j}", f"R{j}")
            builder.device(band(community, j), "wristband", resident=f"{community}-r{j}")
    return builder.dump(path)


def message(community: str, j: int, ts: int, *, sos: bool = False) -> SimMessage:
    payload = {"ts": ts, "sos": True} if sos else {"ts": ts, "steps": 10, "worn": True}
    return SimMessage(sim_ms=ts, topic=event_topic(community, "wristband", band(community, j)),
                      payload=json.dumps(payload).encode(), qos=1, retain=False, kind="wristband",
                      device_id=band(community, j), reading_ts=ts)


def readings(start_ms: int, count: int) -> list[SimMessage]:
    """`count` rounds of a reading from every band, a second apart in device time."""
    return [message(c, j, start_ms + k * 1000)
            for k in range(count) for c in COMMUNITIES for j in range(BANDS)]


def presses(j: int) -> list[SimMessage]:
    now = int(time.time() * 1000)
    return [message(c, j, now, sos=True) for c in COMMUNITIES]


def publish(mosquitto: Mosquitto, messages: list[SimMessage], per_second: float = 0) -> None:
    publisher = BackgroundPublisher(mosquitto.address, messages, per_second=per_second)
    publisher.start()
    publisher.finish()


def leases(db: PgConnection) -> dict[str, str]:
    rows = db.execute("SELECT community, owner FROM community_leases WHERE expires_at > clock_timestamp()")
    return dict(rows)


def sos_alerts(db: PgConnection) -> dict[str, tuple[int, int, int]]:
    """device → (alerts, presses counted, when the first was raised, hub time ms) of its SOS alerts."""
    found: dict[str, tuple[int, int, int]] = {}
    for device, count, raised in db.execute(
            "SELECT a.device, a.count, e.at_ms FROM alerts a JOIN alert_events e ON e.alert_id = a.id"
            " WHERE a.kind = 'sos' AND e.action = 'raised'"):
        alerts, counted, earliest = found.get(device, (0, 0, raised))
        found[device] = (alerts + 1, counted + count, min(earliest, raised))
    return found


def evaluated_communities(http_url: str) -> float:
    with urllib.request.urlopen(f"{http_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return next(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                if sample.name == "hub_evaluation_communities")


def test_three_nodes_share_evaluation_and_take_over_a_killed_one(
        tmp_path: Path, mosquitto: Mosquitto, pg_url: str, start_hub: StartHub) -> None:
    registry = write_registry(tmp_path / "registry.yaml")
    expected = assignment(COMMUNITIES, dict.fromkeys(NODES))
    assert set(expected.values()) == set(NODES), "every node has a community to lose"
    hubs = {node: start_hub(registry, {"HUB_STORE_URL": pg_url, "HUB_NODE_ID": node}) for node in NODES}
    db = PgConnection(pg_url)
    with closing(db):
        wait_until(lambda: leases(db) == expected, 30, what="the communities spread over the three nodes")
        start = int(time.time() * 1000) - 3_600_000
        stream = readings(start, 30)
        publish(mosquitto, [*stream[:240], *presses(0)], per_second=400)
        wait_until(lambda: len(sos_alerts(db)) == len(COMMUNITIES), 30, what="the first presses alerted")

        victim = expected["c0"]
        orphans = {c for c, node in expected.items() if node == victim}
        rest = BackgroundPublisher(mosquitto.address, stream[240:], per_second=200)
        rest.start()
        killed = time.monotonic()
        hubs[victim].kill()
        during = presses(1)  # pressed while the victim's leases are still running out
        publish(mosquitto, during)
        pressed_ms = during[0].reading_ts
        assert pressed_ms is not None
        wait_until(lambda: orphans.isdisjoint(c for c, node in leases(db).items() if node == victim)
                   and set(leases(db)) == set(COMMUNITIES), 30, interval=0.05,
                   what="the killed node's communities taken over")
        took_s = time.monotonic() - killed
        rest.finish()
        publish(mosquitto, presses(2))
        every_press = {band(c, j) for c in COMMUNITIES for j in range(3)}
        wait_until(lambda: set(sos_alerts(db)) == every_press, 30, what="every press alerted")

        survivors = [node for node in NODES if node != victim]
        assert leases(db) == assignment(COMMUNITIES, dict.fromkeys(survivors))
        owned = {node: evaluated_communities(hubs[node].http_url) for node in survivors}
        assert owned == {node: list(assignment(COMMUNITIES, dict.fromkeys(survivors)).values()).count(node)
                         for node in survivors}
        store = hubs[survivors[0]].store()
        with closing(store):
            wait_until(lambda: store.count_observations() == len(stream) + 3 * len(COMMUNITIES), 30,
                       what="every reading stored")
            assert store.dead_letter_counts() == {}
        alerts = sos_alerts(db)
        assert all(alerts[device][:2] == (1, 1) for device in every_press), alerts  # once each
        late_s = {c: (alerts[band(c, 1)][2] - pressed_ms) / 1000 for c in COMMUNITIES}
        kept = set(COMMUNITIES) - orphans
        print(f"take-over after kill -9: {took_s:.1f} s (lease {LEASE_S} s, heartbeat {HEARTBEAT_S} s); "
              f"SOS pressed during it alerted after (s): the killed node's communities "
              f"{[late_s[c] for c in sorted(orphans)]}, the others' {[late_s[c] for c in sorted(kept)]}")
        # The survivors take a dead node's leases the moment they run out, HUB_LEASE_S after its last
        # renewal: within the lease of the kill, and a second of slack for a busy machine.
        assert took_s < LEASE_S + 1 < 10, took_s
        assert all(late_s[c] < LEASE_S + 3 for c in orphans), late_s
        assert all(late_s[c] < 5 for c in kept), late_s  # their owners are alive
