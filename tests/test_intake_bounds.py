"""Intake's queue is bounded in bytes as well as in messages (issue 12, item 8): Receive Maximum counts
messages, and 20,000 of them at the payload limit would be 1.3 GB. Past the byte budget, `submit` waits
(holding paho's network thread, so the backlog stays at the broker) until intake has taken messages."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from hub.intake import IntakeWorker, Router, RouterLimits
from hub.mqtt import Message
from hub.registry import Registry
from hub.store import Store
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
    intake = IntakeWorker(lambda: Store(path),
                          Router(Registry.load(one_of_each_registry), "zigbee2mqtt", RouterLimits()),
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
    intake = IntakeWorker(lambda: Store(tmp_path / "hub.sqlite3"),
                          Router(Registry.load(one_of_each_registry), "zigbee2mqtt", RouterLimits()),
                          lambda message: None, batch_max=1000, linger_s=0.0, keep_bytes=1024,
                          queue_max_bytes=10_000)
    done = threading.Event()

    def network_thread() -> None:
        intake.submit(big)
        done.set()

    threading.Thread(target=network_thread, daemon=True).start()
    assert done.wait(10), "an empty queue takes any one message"
    assert intake.queued_bytes == len(big.payload)
