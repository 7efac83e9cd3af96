"""Bounded start-up: each community's learned detector state checkpointed into the store, a start that
restores it and relearns only the observations after it. On a real store and the real evaluation thread:
the state after a checkpoint and the rest equals the state after a full replay, the alerts are the same
across a restart at any point, a checkpoint that cannot be used is relearned from scratch, and the
communities' checkpoints are independent."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from detectors import state_from_bytes, state_to_bytes
from hub.alerts.model import AlertRequest
from hub.evaluation import CURSOR, Evaluator
from hub.registry import Registry, RegistryFile
from hub.store import Checkpoint, Observation, Store
from tests.benchmarks.startup import (
    DAY_MS,
    HOUR_MS,
    START_MS,
    Quiet,
    community_registry,
    evaluator,
    fill,
    observations,
)

DAYS = 10
END_MS = START_MS + DAYS * DAY_MS
REGISTRY = community_registry({"east": 3, "west": 3})
# Two silences at home (a fall on day 8, another on day 9 to the end): alerts to keep across restarts.
QUIET = (Quiet("east-r0", START_MS + 7 * DAY_MS + 10 * HOUR_MS, START_MS + 8 * DAY_MS + 9 * HOUR_MS),
         Quiet("west-r1", START_MS + 8 * DAY_MS + 8 * HOUR_MS, END_MS))


def stream(registry: Registry = REGISTRY) -> list[Observation]:
    return [o for day in observations(registry, START_MS, END_MS, sessions=12, heartbeat_h=1, quiet=QUIET)
            for o in day]


ROWS = stream()


def store_with(path: Path, rows: list[Observation], *, evaluated: bool = False) -> int:
    """Commit `rows` (as intake would) into the store at `path`; with `evaluated`, as if a hub had
    evaluated them all and crashed. Returns the last observation id."""
    store = Store(path)
    try:
        last = fill(store, iter([rows]), batch=5000) if rows else store.last_observation_id()
        if evaluated:
            store.set_export_cursor(CURSOR, last)
        return last
    finally:
        store.close()


def run(path: Path, registry: Registry = REGISTRY, *, until_ms: int,
        checkpoints: bool = True) -> tuple[Evaluator, list[AlertRequest]]:
    """Start an evaluation on the store, let it evaluate everything stored (its hub time at `until_ms`),
    and stop it cleanly (which checkpoints, with `checkpoints`)."""
    raised: list[AlertRequest] = []
    evaluation = evaluator(path, registry, until_ms, raised.append, 15 if checkpoints else None)
    store = Store(path)
    stored, start = store.last_observation_id(), store.export_cursor(CURSOR)
    store.close()
    evaluation.start()
    assert evaluation.armed.wait(60)
    deadline = time.monotonic() + 60
    while evaluation.stats.evaluated < stored - start:
        assert time.monotonic() < deadline, "the evaluation did not catch up"
        time.sleep(0.01)
    evaluation.stop()
    assert not evaluation.is_alive()
    return evaluation, raised


def full_replay(tmp_path: Path, registry: Registry = REGISTRY) -> dict[str, np.ndarray]:
    """The learned arrays of a start that relearns every stored observation (no checkpoint)."""
    path = tmp_path / "full.sqlite3"
    store_with(path, ROWS, evaluated=True)
    evaluation, _ = run(path, registry, until_ms=END_MS, checkpoints=False)
    assert evaluation.stats.restored == 0 and evaluation.stats.relearned == len(ROWS)
    return evaluation.activity.detector.get_state()


def armed(path: Path, registry: Registry = REGISTRY) -> Evaluator:
    """A start on the store: restored, relearned and armed (stopped before it evaluates anything new)."""
    evaluation, _ = run(path, registry, until_ms=END_MS, checkpoints=False)
    return evaluation


def assert_same_state(learned: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    for name, value in expected.items():
        np.testing.assert_array_equal(learned[name], value, err_msg=name)


def crashed_after_checkpoint(path: Path, cut: int) -> None:
    """A hub that evaluated the first `cut` readings and stopped (checkpointing them), then evaluated the
    rest and crashed before its next checkpoint."""
    store_with(path, ROWS[:cut])
    run(path, until_ms=ROWS[cut - 1].ts)
    store_with(path, ROWS[cut:], evaluated=True)


@pytest.mark.parametrize("share", [0.05, 0.5, 0.77, 0.97])
def test_a_checkpoint_and_the_rest_learn_what_a_full_replay_learns(tmp_path: Path, share: float) -> None:
    path = tmp_path / "hub.sqlite3"
    cut = int(len(ROWS) * share)
    crashed_after_checkpoint(path, cut)
    restarted = armed(path)
    assert restarted.stats.restored == 2
    assert restarted.stats.relearned == len(ROWS) - cut, "only what came after the checkpoint"
    expected = full_replay(tmp_path)
    assert expected["silence_room_n_"].sum() > 0, "silences learned by the room they began in"
    assert_same_state(restarted.activity.detector.get_state(), expected)


@pytest.mark.parametrize("share", [0.3, 0.785, 0.8, 0.9])
def test_a_restart_at_any_point_raises_the_same_alerts(tmp_path: Path, share: float) -> None:
    along = tmp_path / "uninterrupted.sqlite3"
    store_with(along, ROWS)
    _, expected = run(along, until_ms=ROWS[-1].ts)
    assert {(a.kind, a.subject) for a in expected} >= {("inactivity", "east-r0"), ("inactivity", "west-r1")}

    path = tmp_path / "restarted.sqlite3"
    cut = int(len(ROWS) * share)
    store_with(path, ROWS[:cut])
    _, before = run(path, until_ms=ROWS[cut - 1].ts)
    store_with(path, ROWS[cut:])
    restarted, after = run(path, until_ms=ROWS[-1].ts)
    assert restarted.stats.restored == 2 and restarted.stats.relearned == 0
    assert before + after == expected


def tamper(path: Path, community: str, **columns: object) -> None:
    with sqlite3.connect(path) as db:
        for column, value in columns.items():
            db.execute(f"UPDATE detector_checkpoints SET {column} = ? WHERE community = ?",
                       (value, community))


@pytest.mark.parametrize("broken", [
    {"format": 0},
    {"fingerprint": "taken with other parameters"},
    {"state": b"\x00" * 64},
    {"state": state_to_bytes({"counts_": np.zeros((3, 48), np.float32)})},
    {"last_fields": "{not json"},
    {"habits": '{"east-m0": {"yesterday": true}}'},
    {"last_id": 10**9},
], ids=["older format", "other parameters", "corrupt", "not a whole state", "corrupt fields",
        "corrupt habits", "ahead"])
def test_a_checkpoint_that_cannot_be_used_is_relearned_from_every_observation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, broken: dict[str, object],
) -> None:
    path = tmp_path / "hub.sqlite3"
    crashed_after_checkpoint(path, len(ROWS) // 2)
    for community in ("east", "west"):
        tamper(path, community, **broken)
    with caplog.at_level(logging.WARNING, logger="hub.evaluation"):
        restarted = armed(path)
    assert restarted.stats.restored == 0 and restarted.stats.relearned == len(ROWS)
    assert sum("not restored" in r.getMessage() for r in caplog.records) == 2
    assert_same_state(restarted.activity.detector.get_state(), full_replay(tmp_path))


def test_communities_are_checkpointed_and_restored_independently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "hub.sqlite3"
    early, late = len(ROWS) // 3, 2 * len(ROWS) // 3
    store_with(path, ROWS[:early])
    run(path, until_ms=ROWS[early - 1].ts)
    store = Store(path)
    east_early = store.checkpoint("east")
    store.close()
    store_with(path, ROWS[early:late])
    run(path, until_ms=ROWS[late - 1].ts)
    store_with(path, ROWS[late:])
    store = Store(path)
    assert east_early is not None and east_early.last_id == early
    store.save_checkpoints([east_early], {CURSOR: len(ROWS)})  # east's older than west's
    store.close()

    east_devices = {d for d, placed in REGISTRY.devices.items() if placed.community == "east"}
    east_after_early = sum(1 for o in ROWS[early:] if o.device_id in east_devices)
    west_after_late = sum(1 for o in ROWS[late:] if o.device_id not in east_devices)
    restarted = armed(path)
    assert restarted.stats.restored == 2
    assert restarted.stats.relearned == east_after_early + west_after_late
    expected = full_replay(tmp_path)
    assert_same_state(restarted.activity.detector.get_state(), expected)

    tamper(path, "west", state=b"corrupt")
    with caplog.at_level(logging.WARNING, logger="hub.evaluation"):
        restarted = armed(path)
    assert restarted.stats.restored == 1, "east's checkpoint still serves"
    refused = [r.getMessage() for r in caplog.records if "not restored" in r.getMessage()]
    assert [m.split(" not restored")[0] for m in refused] == ["detector checkpoint of community west"]
    assert_same_state(restarted.activity.detector.get_state(), expected)


def test_residents_added_removed_or_moved_since_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    store_with(path, ROWS)
    first, _ = run(path, until_ms=END_MS)
    learned = first.activity.detector.get_state()
    index = first.activity.index

    # Since: east-r1 moved out (deactivated), a newcomer moved into a new home, east-r2 moved next door.
    edited = REGISTRY.file.model_dump()
    edited["households"] += [{"id": f"east-h{n}", "grid": "east-g", "building": "east-b"} for n in (8, 9)]
    for resident in edited["residents"]:
        resident["active"] = resident["active"] and resident["id"] != "east-r1"
        if resident["id"] == "east-r2":
            resident["household"] = "east-h9"
    edited["residents"].append({"id": "east-r9", "household": "east-h8", "name": "新住户"})
    edited["devices"].append({"id": "east-m9", "kind": "motion_sensor", "household": "east-h8"})
    registry = Registry(RegistryFile.model_validate(edited))

    restarted, _ = run(path, registry, until_ms=END_MS)  # and stopped cleanly: checkpointed again
    assert restarted.stats.restored == 2 and restarted.stats.relearned == 0
    now = restarted.activity
    for kept in ("east-r0", "east-r2", "west-r0"):
        np.testing.assert_array_equal(now.detector.counts_[now.index[kept]], learned["counts_"][index[kept]])
    assert now.detector.counts_[now.index["east-r9"]].sum() == 0, "the newcomer starts from the prior"
    assert now.detector.last_activity_ms_[now.index["east-r9"]] == np.iinfo(np.int64).min

    store = Store(path)
    checkpoint = store.checkpoint("east")
    store.close()
    assert isinstance(checkpoint, Checkpoint)
    assert sorted(state_from_bytes(checkpoint.state)["resident_ids"]) == ["east-r0", "east-r2", "east-r9"], (
        "the resident gone is dropped")
