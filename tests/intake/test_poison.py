"""One poisoned message must never stop intake (issue 12, item 1).

`Infinity` and `NaN` are not JSON, yet Python's JSON writer wrote them into the stored fields, and SQLite's
JSON functions refuse such fields once the same (device, ts) arrives again, as any QoS 1 redelivery does:
intake then retried that batch forever, acknowledged nothing, and every community's SOS alerts stopped,
across restarts too. Both ends are tested here on a real Mosquitto and a real hub subprocess: the payload
models refuse non-finite numbers (a dead letter), and a batch the store refuses for any other reason (here
a row such a message left in a store written before that check) is split until the one message it
refuses is a dead letter, while the rest is committed and acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from pathlib import Path

from hub.alerts.model import Alert
from hub.mqtt import Publisher
from tests.alerts.receivers import alerts_in
from tests.conftest import StartHub
from tests.real_servers import Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder

COMMUNITIES = ("sunshine", "harmony")


def two_communities(path: Path) -> Path:
    """A home in each of two communities: a resident with a wristband, and a door sensor."""
    builder = RegistryBuilder()
    for c in COMMUNITIES:
        (builder.community(c).compound(f"{c}-c1").building(f"{c}-b1", floors=6).grid(f"{c}-g1")
         .household(f"{c}-h1", unit="1-101").resident(f"{c}-r1", f"resident of {c}"))
    for c in COMMUNITIES:
        builder.device(f"{c}-band", "wristband", resident=f"{c}-r1").device(f"{c}-door", "door_sensor",
                                                                            household=f"{c}-h1")
    return builder.dump(path)


def band_topic(community: str) -> str:
    return f"sc/{community}/wristband/{community}-band/event"


def door_topic(community: str) -> str:
    return f"sc/{community}/door_sensor/{community}-door/event"


def live_traffic(start_ms: int, rounds: int) -> list[tuple[str, bytes, tuple[str, int]]]:
    """(topic, payload, stored key) of valid readings from both communities, interleaved."""
    traffic = []
    for i in range(rounds):
        ts = start_ms + i * 1000
        for community in COMMUNITIES:
            band = json.dumps({"ts": ts, "steps": i, "heart_rate": 70}).encode()
            traffic.append((band_topic(community), band, (f"{community}-band", ts)))
            traffic.append((door_topic(community),
                            json.dumps({"ts": ts, "contact": "open" if i % 2 else "closed"}).encode(),
                            (f"{community}-door", ts)))
    return traffic


def poisoned(ts: int) -> list[tuple[str, bytes]]:
    """Non-finite numbers where the models take floats: a wristband's location, in each community."""
    return [
        (band_topic("sunshine"), b'{"ts": %d, "steps": 3, "location": {"lat": 31.2, "lon": 121.4, '
                                 b'"accuracy_m": Infinity}}' % ts),
        (band_topic("harmony"), b'{"ts": %d, "heart_rate": 71, "location": {"lat": NaN, "lon": 121.4}}' % ts),
    ]


def publish_all(publisher: Publisher, messages: list[tuple[str, bytes]]) -> None:
    handles = [publisher.publish(topic, payload) for topic, payload in messages]
    assert all(handle.wait(10) for handle in handles)


def ready(http_url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"{http_url}/ready", timeout=5) as response:
            body: dict[str, object] = json.loads(response.read())
            return body
    except OSError:  # 503 (HTTPError is an OSError) or not listening yet
        return None


def test_poisoned_messages_redelivered_across_a_restart_stop_nothing(
    mosquitto: Mosquitto, start_hub: StartHub, tmp_path: Path
) -> None:
    registry = two_communities(tmp_path / "registry.yaml")
    hub = start_hub(registry)
    publisher = Publisher(mosquitto.address)
    publisher.start()
    now = int(time.time() * 1000)
    poison_ts = now - 600_000

    # Live traffic of both communities with the poisoned messages in the middle of it.
    first = live_traffic(now - 3_600_000, 20)
    poison = poisoned(poison_ts)
    publish_all(publisher, [(t, p) for t, p, _ in first[:40]] + poison + [(t, p) for t, p, _ in first[40:]])
    keys = {key for _, _, key in first}
    hub.wait_for(lambda store: store.dead_letter_counts().get("invalid_payload", 0) >= 2
                 and store.count_observations() >= len(keys), 30, "first traffic and its dead letters")
    store = hub.store()
    try:
        dead = store.dead_letters(reason="invalid_payload")
        assert {d.device_id for d in dead} == {"sunshine-band", "harmony-band"}
        assert all("finite" in d.detail for d in dead), [d.detail for d in dead]
    finally:
        store.close()

    # The hub stops. A store written before non-finite numbers were refused holds such a reading: put
    # one there, as that hub would have written it (the models refuse it now; SQLite still stores it).
    hub.stop()
    refused_ts = now - 1_800_000
    with sqlite3.connect(hub.store_path) as db:
        db.execute("INSERT INTO observations (device_id, kind, ts, fields, received_ms)"
                   " VALUES (?, ?, ?, ?, ?)",
                   ("harmony-band", "wristband", refused_ts, '{"steps":1,"accuracy_m":Infinity}', refused_ts))
    db.close()

    # While it is down, the broker queues for its session: the poisoned messages redelivered, a reading
    # for that stored (device, ts), which SQLite's json_patch refuses, then more traffic and an SOS from
    # each community behind them.
    second = live_traffic(now - 1_200_000, 10)
    collides = (band_topic("harmony"), json.dumps({"ts": refused_ts, "steps": 2}).encode())
    sos = [(band_topic(c), json.dumps({"ts": now - 60_000, "sos": True}).encode()) for c in COMMUNITIES]
    publish_all(publisher, [*poison, collides, *[(t, p) for t, p, _ in second], *poison, *sos])
    publisher.stop()
    keys |= {key for _, _, key in second} | {(f"{c}-band", now - 60_000) for c in COMMUNITIES}

    hub.start()

    def sos_alerts() -> list[Alert]:
        alerts = [a for a in alerts_in(hub.store_path, registry) if a.kind == "sos"]
        return alerts if len(alerts) == len(COMMUNITIES) else []

    alerts = wait_until(sos_alerts, 30, what=f"an SOS alert in each community; hub log:\n{hub.log()[-3000:]}")
    assert {alert.subject for alert in alerts} == {f"{c}-r1" for c in COMMUNITIES}
    hub.wait_for(lambda store: keys <= set(store.observation_keys()), 30, "every valid reading stored")
    store = hub.store()
    try:
        assert store.dead_letter_counts() == {"invalid_payload": 6, "store_refused": 1}
        (refused,) = store.dead_letters(reason="store_refused")
        assert refused.device_id == "harmony-band"
        assert json.loads(refused.payload) == {"ts": refused_ts, "steps": 2}, "the bytes are kept for replay"
        assert "malformed JSON" in refused.detail, refused.detail
    finally:
        store.close()
    status = wait_until(lambda: ready(hub.http_url), 20, what="/ready answering 200")
    assert status is not None and status["ready"] is True and status["store_writable"] is True, status
    # Everything was acknowledged: a restart brings nothing back (no new dead letter, no stall).
    hub.stop()
    hub.start()
    status = wait_until(lambda: ready(hub.http_url), 20, what="/ready answering 200 after a second restart")
    assert status is not None and status["ready"] is True, status
    store = hub.store()
    try:
        assert store.dead_letter_counts() == {"invalid_payload": 6, "store_refused": 1}
    finally:
        store.close()
