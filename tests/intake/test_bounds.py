"""Intake's sizes are bounded (issue 12, item 8). Its queue in bytes as well as in messages: Receive
Maximum counts messages, and 20,000 of them at the payload limit would be 1.3 GB; past the byte budget,
`submit` waits (holding paho's network thread, so the backlog stays at the broker) until intake has taken
messages. And the dead letters kept per device: past the cap they are counted, not kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hub.intake import IntakeThread, Router, RouterLimits
from hub.mqtt import Message
from hub.registry import Registry, RegistryHolder
from hub.store import Store
from tests.conftest import OpenStore
from tests.real_servers import wait_until

TS = 1_763_856_000_000
TOPIC = "sc/sunshine/motion_sensor/motion-1/event"


def test_submit_waits_for_room_in_bytes_and_loses_nothing(tmp_path: Path, one_of_each_registry: Path) -> None:
    budget = 100_000
    messages = [Message(TOPIC, json.dumps({"ts": TS + i, "occupancy": True, "note": "x" * 30_000}).encode(),
                        TS, i + 1, 1, 1) for i in range(10)]
    size = len(messages[0].payload)
    fits = budget // size  # 3 of about 30 KB
    path = tmp_path / "hub.sqlite3"
    intake = IntakeThread(lambda: Store(path),
                          Router(RegistryHolder(Registry.load(one_of_each_registry)).current, "zigbee2mqtt",
                                 RouterLimits()),
                          lambda message: None, batch_max=1000, linger_s=0.0, keep_bytes=1024,
                          queue_max=1000, queue_max_bytes=budget)
    submitted: list[int] = []

    def network_thread() -> None:
        for message in messages:
            intake.submit(message)
            submitted.append(message.mid)

    receiving = threading.Thread(target=network_thread, daemon=True)
    receiving.start()
    wait_until(lambda: len(submitted) == fits, 10, what=f"{fits} messages queued")
    time.sleep(0.3)  # the network thread would have queued more by now, had there been room
    assert len(submitted) == fits and receiving.is_alive(), "the fourth waits for room"
    assert intake.queued_bytes == fits * size <= budget

    intake.start()  # intake takes what is queued: room again, and everything goes through
    try:
        receiving.join(10)
        assert not receiving.is_alive() and len(submitted) == len(messages)
        wait_until(lambda: sum(intake.stats.stored.values()) == len(messages), 10, what="all stored")
    finally:
        intake.stop()
    assert intake.queued_bytes == 0
    store = Store(path, read_only=True)
    try:
        assert store.count_observations() == len(messages)
    finally:
        store.close()


def test_a_message_larger_than_the_whole_budget_still_goes_through_alone(
    tmp_path: Path, one_of_each_registry: Path
) -> None:
    payload = json.dumps({"ts": TS, "occupancy": True, "note": "x" * 50_000}).encode()
    big = Message(TOPIC, payload, TS, 1, 1, 1)
    intake = IntakeThread(lambda: Store(tmp_path / "hub.sqlite3"),
                          Router(RegistryHolder(Registry.load(one_of_each_registry)).current, "zigbee2mqtt",
                                 RouterLimits()),
                          lambda message: None, batch_max=1000, linger_s=0.0, keep_bytes=1024,
                          queue_max_bytes=10_000)
    done = threading.Event()

    def network_thread() -> None:
        intake.submit(big)
        done.set()

    threading.Thread(target=network_thread, daemon=True).start()
    assert done.wait(10), "an empty queue takes any one message"
    assert intake.queued_bytes == len(big.payload)


@pytest.mark.integration
def test_dead_letters_are_capped_per_device_and_the_rest_counted(open_store: OpenStore,
                                                                  one_of_each_registry: Path) -> None:
    acked: list[int] = []
    intake = IntakeThread(lambda: open_store(dead_letters_per_device=3),
                          Router(RegistryHolder(Registry.load(one_of_each_registry)).current, "zigbee2mqtt",
                                 RouterLimits()),
                          lambda message: acked.append(message.mid), batch_max=1000, linger_s=0.0,
                          keep_bytes=1024)
    garbage = [Message(TOPIC, b"not json %d" % i, TS + i, i + 1, 1, 1) for i in range(5)]
    unknown = [Message("sc/sunshine/motion_sensor/nobody/event", b"{}", TS, 10 + i, 1, 1) for i in range(2)]
    valid = Message(TOPIC, json.dumps({"ts": TS, "occupancy": True}).encode(), TS + 9, 20, 1, 1)
    intake.start()
    try:
        for message in [*garbage[:2], valid, *garbage[2:], *unknown]:
            intake.submit(message)
        wait_until(lambda: len(acked) == 8, 10, what="every message acknowledged")
    finally:
        intake.stop()
    store = open_store(read_only=True)
    try:
        kept = store.dead_letters()
        assert [d.payload for d in kept if d.device_id == "motion-1"] == [b"not json 0", b"not json 1",
                                                                          b"not json 2"], "the first three"
        assert sum(1 for d in kept if d.device_id is None) == 2, "no device, no cap: kept"
        assert store.dead_letters_dropped() == {"motion-1": (2, TS + 4, "invalid_json")}
        assert store.count_observations() == 1, "the device's valid reading is stored all the same"
    finally:
        store.close()
    shown = subprocess.run([sys.executable, "-m", "hub", "deadletter", "list"], capture_output=True,
                           text=True, env={**os.environ, **open_store.env, "COLUMNS": "250"},
                           timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "motion-1: 2 more dropped past HUB_DEAD_LETTERS_PER_DEVICE" in shown.stdout, shown.stdout


def test_a_reading_one_backend_cannot_hold_is_a_dead_letter_and_the_rest_is_stored(
        open_store: OpenStore, one_of_each_registry: Path) -> None:
    """PostgreSQL cannot hold a NUL character in a text or JSON value, SQLite can: where the store refuses
    such a reading, intake splits the batch until that message alone is a dead letter; nothing is lost
    and everything is acknowledged on both backends."""
    acked: list[int] = []
    intake = IntakeThread(open_store, Router(RegistryHolder(Registry.load(one_of_each_registry)).current,
                                             "zigbee2mqtt", RouterLimits()),
                          lambda message: acked.append(message.mid), batch_max=1000, linger_s=0.0,
                          keep_bytes=1024)
    falling = {"ts": TS, "type": "falling_object", "event_id": "e-\u0000-1", "camera_id": "camera-1",
               "building": "b1", "floor_min": 3, "floor_max": 5,
               "trajectory": [{"t": TS, "x": 1.0, "y": 2.0}], "confidence": 0.9}
    messages = [Message("sc/sunshine/high_altitude_camera/camera-1/event", json.dumps(falling).encode(),
                        TS, 1, 1, 1),
                Message(TOPIC, json.dumps({"ts": TS, "occupancy": True}).encode(), TS, 2, 1, 1)]
    intake.start()
    try:
        for message in messages:
            intake.submit(message)
        wait_until(lambda: len(acked) == 2, 20, what="both messages acknowledged")
    finally:
        intake.stop()
    store = open_store(read_only=True)
    stored = {device for device, _ in store.observation_keys()}
    dead = [d.device_id for d in store.dead_letters()]
    assert "motion-1" in stored, "the reading beside it is stored"
    assert ("camera-1" in stored) != ("camera-1" in dead), "the camera's event is stored or a dead letter"
    if open_store.url is not None:
        assert dead == ["camera-1"]
