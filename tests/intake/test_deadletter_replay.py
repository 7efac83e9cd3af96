"""An operator registers a device that was sending before it was known, then replays its dead letters with
the real `hub deadletter` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.intake import IntakeStats, Router, RouterLimits, build_batch
from hub.mqtt import Message
from hub.registry import Device, Registry
from hub.store import Store


def hub_cli(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUB_STORE_PATH": str(store), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "hub", *args], env=env, text=True, capture_output=True, timeout=60, check=False
    )


@pytest.mark.integration
def test_replay_stores_what_now_decodes(tmp_path: Path, one_of_each_registry: Path) -> None:
    registry = Registry.load(one_of_each_registry)
    store_path = tmp_path / "hub.sqlite3"
    store = Store(store_path)
    topic = "sc/sunshine/door_sensor/door-new/event"
    messages = [
        Message(
            topic, json.dumps({"ts": 1763856000000 + i, "contact": "open"}).encode(), 1763856001000, i, 1, 1
        )
        for i in range(3)
    ] + [Message(topic, b"{broken", 1763856001000, 9, 1, 1)]
    store.commit(
        build_batch(Router(lambda: registry, "zigbee2mqtt", RouterLimits()), messages, 16_384, IntakeStats())
    )
    assert store.dead_letter_counts() == {"unknown_device": 4}

    listed = hub_cli("deadletter", "list", store=store_path)
    assert listed.returncode == 0, listed.stderr
    assert "door-new" in listed.stdout and "unknown_device: 4" in listed.stdout

    # The operator registers the device and replays.
    fixed = Registry(
        registry.data.model_copy(
            update={
                "devices": [
                    *registry.data.devices,
                    Device(id="door-new", kind="door_sensor", household="h101"),
                ]
            }
        )
    )
    fixed_path = tmp_path / "fixed.yaml"
    fixed.dump(fixed_path)
    replayed = hub_cli("deadletter", "replay", "--registry", str(fixed_path), store=store_path)
    assert replayed.returncode == 0, replayed.stderr
    assert "3 stored, 1 still failing" in replayed.stderr

    assert store.count_observations() == 3
    remaining = store.dead_letters()
    assert [d.reason for d in remaining] == ["invalid_json"], "the broken one now fails for its real reason"
    assert len(store.dead_letters(include_replayed=True)) == 4

    again = hub_cli("deadletter", "replay", "--registry", str(fixed_path), store=store_path)
    assert "0 stored, 1 still failing" in again.stderr, "replayed letters are not replayed twice"


@pytest.mark.integration
def test_replay_refuses_a_bad_registry_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices: [{id: d, kind: toaster, household: h}]\n")
    result = hub_cli("deadletter", "replay", "--registry", str(bad), store=tmp_path / "s.sqlite3")
    assert result.returncode == 2
    assert "unknown kind 'toaster'" in result.stderr
