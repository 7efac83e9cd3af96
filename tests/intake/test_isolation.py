"""A broken decoder for one kind leaves the other kinds flowing, and its device still counts as seen."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from devices import KINDS
from devices.kind import Reading
from hub.intake import IntakeStats, Router, RouterLimits, build_batch
from hub.mqtt import Message
from hub.registry import Registry, RegistryHolder
from hub.store import Store


def crash(raw: bytes) -> Reading:
    raise RuntimeError("firmware 2.1 changed the payload")


def test_a_crashing_decoder_is_a_dead_letter_and_other_kinds_flow(
    tmp_path: Path, one_of_each_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(KINDS, "motion_sensor", dataclasses.replace(KINDS["motion_sensor"], decode=crash))
    router = Router(RegistryHolder(Registry.load(one_of_each_registry)).current, "zigbee2mqtt",
                    RouterLimits())
    ts = 1_763_856_000_000
    messages = [
        Message(
            "sc/sunshine/motion_sensor/motion-1/event",
            json.dumps({"ts": ts, "occupancy": True}).encode(),
            ts,
            1,
            1,
            1,
        ),
        Message(
            "sc/sunshine/door_sensor/door-1/event",
            json.dumps({"ts": ts, "contact": "open"}).encode(),
            ts,
            2,
            1,
            1,
        ),
    ]
    store = Store(tmp_path / "hub.sqlite3")
    store.commit(build_batch(router, messages, 16_384, IntakeStats()))
    assert store.counts_by_kind() == {"door_sensor": 1}
    (dead,) = store.dead_letters()
    assert (dead.reason, dead.device_id) == ("decoder_error", "motion-1")
    assert "firmware 2.1 changed the payload" in dead.detail
    seen = store.device_seen("motion-1")
    assert seen is not None and seen["last_error"] == "decoder_error"
