"""Malformed messages interleaved with valid ones: each malformed one becomes a dead letter with the right
reason, every valid one is stored, and the hub stays up (issue: ingestion spine, test 4)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from devices import KINDS
from hub.mqtt import Publisher
from tests.conftest import StartHub
from tests.real_servers import Mosquitto

NATIVE = {"door-1": "door_sensor", "peephole-1": "smart_peephole", "band-1": "wristband",
          "camera-1": "high_altitude_camera", "motion-1": "motion_sensor"}


def valid(device: str, ts: int) -> tuple[str, bytes]:
    kind = NATIVE[device]
    return f"sc/sunshine/{kind}/{device}/event", json.dumps({**KINDS[kind].example, "ts": ts}).encode()


def malformed(now: int) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected dead-letter reason)."""
    door = "sc/sunshine/door_sensor/door-1/event"
    return [
        (door, b'{"ts": 1763856000000, "contact": "open"', "invalid_json"),
        (door, b"\xff\xfe\x00garbage", "not_utf8"),
        (door, json.dumps({"ts": now, "contact": 1}).encode(), "invalid_payload"),
        (door, json.dumps({"contact": "open"}).encode(), "missing_ts"),
        (door, json.dumps({"ts": now + 86_400_000, "contact": "open"}).encode(), "ts_in_future"),
        (door, json.dumps({"ts": now, "contact": "open", "pad": "x" * 70_000}).encode(), "too_large"),
        ("sc/sunshine/door_sensor/door-404/event", json.dumps({"ts": now, "contact": "open"}).encode(),
         "unknown_device"),
        ("sc/sunshine/motion_sensor/door-1/event", json.dumps({"ts": now, "occupancy": True}).encode(),
         "topic_mismatch"),
        ("sc/sunshine//door-1/event", b"{}", "unknown_topic"),  # matches sc/+/+/+/event, names no kind
        ("zigbee2mqtt/c1/nobody's device", b'{"contact": true}', "unknown_device"),
        ("zigbee2mqtt/c1/101/front door", b'{"contact": "yes", "last_seen": 1763856000000}',
         "invalid_payload"),
        ("sc/sunshine/wristband/band-1/availability", b"perhaps", "invalid_payload"),
        ("sc/sunshine/wristband/band-1/event", json.dumps({"ts": now}).encode(), "invalid_payload"),
        ("sc/sunshine/high_altitude_camera/camera-1/event",
         json.dumps({"ts": now, "type": "falling_object"}).encode(), "invalid_payload"),
    ]


def test_malformed_messages_become_dead_letters_and_valid_ones_flow(
    mosquitto: Mosquitto, start_hub: StartHub, one_of_each_registry: Path
) -> None:
    hub = start_hub(one_of_each_registry)
    publisher = Publisher(mosquitto.address)
    publisher.start()
    now = int(time.time() * 1000)
    bad = malformed(now)
    expected_reasons: Counter[str] = Counter()
    valid_keys: set[tuple[str, int]] = set()
    handles = []
    rounds = 20
    for i in range(rounds):
        for device in NATIVE:
            ts = now - 3_600_000 + i * 1000
            topic, payload = valid(device, ts)
            handles.append(publisher.publish(topic, payload))
            valid_keys.add((device, ts))
        topic, payload, reason = bad[i % len(bad)]
        handles.append(publisher.publish(topic, payload))
        expected_reasons[reason] += 1
    assert all(h.wait(10) for h in handles)
    publisher.stop()

    def settled(store) -> bool:
        return bool(store.count_observations() >= len(valid_keys)
                    and sum(store.dead_letter_counts().values()) >= rounds)

    hub.wait_for(settled, 30, "valid observations and dead letters")
    store = hub.store()
    assert set(store.observation_keys()) == valid_keys
    assert store.dead_letter_counts() == dict(expected_reasons)
    letters = store.dead_letters(limit=1000)
    assert all(d.detail for d in letters), "every dead letter says why"
    too_large = [d for d in letters if d.reason == "too_large"]
    assert too_large and too_large[0].payload_size > 70_000 and len(too_large[0].payload) == 16 * 1024
    not_utf8 = next(d for d in letters if d.reason == "not_utf8")
    assert not_utf8.payload == b"\xff\xfe\x00garbage", "the raw bytes are kept"
    # A device whose payload failed to decode still counts as seen, with the reason remembered.
    # Liveness is written when traffic pauses, without waiting for another message.
    def door_error_seen(store) -> bool:
        seen = store.device_seen("door-1")
        return seen is not None and seen["last_error"] is not None

    hub.wait_for(door_error_seen, 5, "door-1's decode failure in devices_seen")
    assert hub.alive
