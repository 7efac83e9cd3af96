"""Intake batches linger to fill, except a batch holding an SOS press, a fall or a falling object, which is
committed (and acknowledged, and handed to evaluation) as soon as what is queued has been taken."""

from __future__ import annotations

import functools
import json
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

LINGER_S = 2.0
TS = 1_763_856_000_000


@pytest.mark.parametrize(("topic", "payload", "urgent"), [
    ("sc/sunshine/motion_sensor/motion-1/event", {"ts": TS, "occupancy": True}, False),
    ("sc/sunshine/wristband/band-1/event", {"ts": TS, "steps": 30, "worn": True}, False),
    ("sc/sunshine/wristband/band-1/event", {"ts": TS, "sos": True}, True),
    ("sc/sunshine/wristband/band-1/event", {"ts": TS, "fall": True, "worn": True}, True),
    ("zigbee2mqtt/c1/101/sos button", {"action": "emergency", "battery": 90}, True),
    ("sc/sunshine/high_altitude_camera/camera-1/event",
     {"ts": TS, "type": "falling_object", "event_id": "e-1", "camera_id": "camera-1", "building": "b1",
      "floor_min": 3, "floor_max": 5, "trajectory": [{"t": TS, "x": 1.0, "y": 2.0}], "confidence": 0.9},
     True),
])
def test_only_a_batch_with_an_urgent_reading_skips_the_linger(
    tmp_path: Path, one_of_each_registry: Path, topic: str, payload: dict[str, object], urgent: bool
) -> None:
    acked = threading.Event()
    intake = IntakeThread(lambda: Store(tmp_path / "hub.sqlite3"),
                          Router(RegistryHolder(Registry.load(one_of_each_registry)).current, "zigbee2mqtt",
                                 RouterLimits()),
                          lambda message: acked.set(), batch_max=1000, linger_s=LINGER_S, keep_bytes=1024)
    intake.start()
    try:
        started = time.monotonic()
        # An ordinary reading first, so an urgent one arriving while a batch lingers cuts that batch short.
        intake.submit(Message("sc/sunshine/motion_sensor/motion-1/event",
                              json.dumps({"ts": TS - 1000, "occupancy": False}).encode(), TS, 1, 1, 1))
        time.sleep(0.2)
        intake.submit(Message(topic, json.dumps(payload).encode(), TS, 2, 1, 1))
        assert acked.wait(LINGER_S + 5)
        waited = time.monotonic() - started
    finally:
        intake.stop()
    assert intake.stats.batches == 1 and sum(intake.stats.stored.values()) == 2, intake.stats
    if urgent:
        assert waited < LINGER_S / 2, f"an urgent reading waited {waited:.2f} s for its batch to fill"
    else:
        assert waited >= LINGER_S * 0.9, f"an ordinary batch was cut short after {waited:.2f} s"


def test_liveness_is_written_when_traffic_pauses(open_store: OpenStore, one_of_each_registry: Path) -> None:
    """`devices_seen` is written at most once per `seen_flush_s`; what was heard after the last write must
    not wait for the next message, which in a quiet community may be hours away."""
    intake = IntakeThread(open_store,
                          Router(RegistryHolder(Registry.load(one_of_each_registry)).current, "zigbee2mqtt",
                                 RouterLimits()),
                          lambda message: None, batch_max=1000, linger_s=0.0, keep_bytes=1024,
                          seen_flush_s=0.5)

    def committed(batches: int) -> bool:
        return intake.stats.batches >= batches

    intake.start()
    store = open_store()
    try:
        # The first batch writes liveness at once; the second falls inside the flush interval.
        readings: list[tuple[str, dict[str, object]]] = [("motion_sensor/motion-1", {"occupancy": True}),
                                                          ("door_sensor/door-1", {"contact": "open"})]
        for i, (device, fields) in enumerate(readings):
            payload = json.dumps({"ts": TS + i, **fields}).encode()
            intake.submit(Message(f"sc/sunshine/{device}/event", payload, TS + i, i + 1, 1, 1))
            wait_until(functools.partial(committed, i + 1), 15, interval=0.01, what=f"batch {i + 1}")
        assert intake.stats.batches == 2
        seen = wait_until(lambda: store.device_seen("door-1"), 15, interval=0.05,
                          what="door-1's reading in devices_seen without another message")
        assert seen is not None and seen["last_ts"] == TS + 1
    finally:
        store.close()
        intake.stop()


def test_liveness_goes_in_parts_and_never_with_an_urgent_batch(
    open_store: OpenStore, one_of_each_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once due, what was last heard is written a few devices per batch (one long commit a second held up
    whatever came behind it), and not in a batch holding an SOS press, which is committed first."""
    monkeypatch.setattr("hub.intake._SEEN_PER_BATCH", 1)
    intake = IntakeThread(open_store,
                          Router(RegistryHolder(Registry.load(one_of_each_registry)).current, "zigbee2mqtt",
                                 RouterLimits()),
                          lambda message: None, batch_max=1000, linger_s=0.0, keep_bytes=1024,
                          seen_flush_s=3600)
    store = open_store()

    def reading(device: str, fields: dict[str, object], n: int) -> Message:
        return Message(f"sc/sunshine/{device}/event", json.dumps({"ts": TS + n, **fields}).encode(), TS + n,
                       n, 1, 1)

    try:
        intake._commit_and_ack(store, [reading("motion_sensor/motion-1", {"occupancy": True}, 1),
                                       reading("door_sensor/door-1", {"contact": "open"}, 2)])
        assert store.device_seen("motion-1") is not None and store.device_seen("door-1") is None
        intake._urgent = True  # as `_next_messages` marks a batch holding an SOS press
        intake._commit_and_ack(store, [reading("wristband/band-1", {"sos": True}, 3)])
        assert store.device_seen("door-1") is None and store.device_seen("band-1") is None
        intake._urgent = False
        intake._commit_and_ack(store, [reading("motion_sensor/motion-1", {"occupancy": False}, 4)])
        intake._commit_and_ack(store, [reading("motion_sensor/motion-1", {"occupancy": True}, 5)])
        seen = store.device_seen("door-1"), store.device_seen("band-1")
        assert seen[0] is not None and seen[1] is not None, seen
    finally:
        store.close()
