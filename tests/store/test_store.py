from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hub.alerts.store import AlertStore
from hub.api.tokens import Role, TokenError, TokenStore
from hub.store import Batch, Checkpoint, Observation, RegistryEdit, ResidentRead, Store
from tests.conftest import OpenStore


def commit(store: Store, *observations: Observation) -> None:
    batch = Batch()
    batch.observations.extend(observations)
    store.commit(batch)


def test_redelivery_lands_on_itself_and_is_not_exported_again(open_store: OpenStore) -> None:
    store = open_store()
    reading = Observation("door-1", "door_sensor", 1_763_856_000_000, {"open": True, "battery": 80}, 1)
    commit(store, reading)
    first = store.observations_after(0, 10)
    commit(store, reading)
    assert store.observations_after(0, 10) == first, "same row, same id: nothing to export again"


def test_zigbee2mqtt_sos_reset_merges_into_the_press(open_store: OpenStore) -> None:
    """Zigbee2MQTT sends `action: emergency` then a reset with the same last_seen: one press, kept."""
    store = open_store()
    ts = 1_763_856_000_000
    commit(store, Observation("sos-1", "wristband", ts, {"sos": True, "battery": 90}, 1))
    (pressed,) = store.observations_after(0, 10)
    commit(store, Observation("sos-1", "wristband", ts, {"battery": 89, "linkquality": 70}, 2))
    (merged,) = store.observations_after(0, 10)
    assert merged.fields == {"sos": True, "battery": 89, "linkquality": 70}
    assert merged.id > pressed.id, "a changed row moves to the end of the outbox to be exported again"
    assert store.count_observations() == 1


def test_both_in_one_batch_merge_too(open_store: OpenStore) -> None:
    store = open_store()
    ts = 1_763_856_000_000
    commit(store, Observation("sos-1", "wristband", ts, {"sos": True}, 1),
           Observation("sos-1", "wristband", ts, {"battery": 88}, 1))
    (row,) = store.observations_after(0, 10)
    assert row.fields == {"sos": True, "battery": 88}


def test_seen_is_folded_per_device(open_store: OpenStore) -> None:
    store = open_store()
    batch = Batch()
    batch.mark_seen("d", "door_sensor", 200, 1_000)
    batch.mark_seen("d", "door_sensor", None, 3_000, "invalid_json")
    batch.mark_seen("d", "door_sensor", 100, 2_000)
    store.commit(batch)
    seen = store.device_seen("d")
    assert seen is not None
    assert (seen["last_ts"], seen["last_received_ms"], seen["last_error"]) == (200, 3_000, "invalid_json")


def test_many_devices_seen_and_available_in_one_batch_and_the_next(open_store: OpenStore) -> None:
    """On PostgreSQL the batch's liveness rows go in as one statement (arrays): missing values (a message
    that failed to decode has no device time) and a later batch's merge are the same as row by row."""
    store = open_store()
    first = Batch()
    for i in range(300):
        first.mark_seen(f"d{i}", "door_sensor", 1_000 + i, 2_000 + i)
    first.mark_seen("bad", None, None, 2_500, "invalid_json")
    first.set_availability("d0", False, 2_600)
    store.commit(first)
    second = Batch()
    second.mark_seen("d1", "door_sensor", 500, 9_000)  # older device time: last_ts keeps the newest
    second.set_availability("d0", True, 9_100)
    store.commit(second)
    d0, d1, bad = (store.device_seen(device) for device in ("d0", "d1", "bad"))
    assert d0 is not None and d1 is not None and bad is not None
    assert (d0["last_ts"], d0["online"], d0["availability_ms"], d0["last_received_ms"]) == (
        1_000, 1, 9_100, 9_100)
    assert (d1["last_ts"], d1["last_received_ms"], d1["kind"]) == (1_001, 9_000, "door_sensor")
    assert (bad["kind"], bad["last_ts"], bad["last_error"]) == (None, None, "invalid_json")
    assert store.device_seen("d299") is not None


def test_a_sqlite_store_keyed_by_device_first_is_rekeyed_by_time_keeping_ids(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE observations (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, kind TEXT NOT NULL,
            ts INTEGER NOT NULL, fields TEXT NOT NULL, received_ms INTEGER NOT NULL, UNIQUE (device_id, ts));
        INSERT INTO observations VALUES (7, 'door-1', 'door_sensor', 1000, '{"open":true}', 1001);
        INSERT INTO observations VALUES (9, 'band-1', 'wristband', 900, '{"steps":5}', 1002);
    """)
    old.commit()
    old.close()
    store = Store(path)
    assert not store._keyed_by_device_first()
    assert [(o.id, o.device_id, o.ts) for o in store.observations_after(0, 10)] == [
        (7, "door-1", 1000), (9, "band-1", 900)], "ids kept: the cursors point at them"
    commit(store, Observation("door-1", "door_sensor", 1000, {"open": True}, 2000))  # a redelivery
    assert store.count_observations() == 2
    assert Store(path).count_observations() == 2, "a second opening finds nothing to do"


def test_recent_readings_of_a_home_newest_first_within_the_window(open_store: OpenStore) -> None:
    store = open_store()
    commit(store, *(Observation(device, "motion_sensor", ts, {"occupancy": True}, ts)
                    for device in ("m-home", "m-other", "m-hall") for ts in range(1_000, 10_000, 1_000)))
    recent = store.recent_observations(["m-home", "m-hall"], 5, since_ms=3_000)
    assert [(o.device_id, o.ts) for o in recent] == [
        ("m-home", 9_000), ("m-hall", 9_000), ("m-home", 8_000), ("m-hall", 8_000), ("m-home", 7_000)]
    window = store.recent_observations(["m-home"], 100, since_ms=7_000)
    assert [o.ts for o in window] == [9_000, 8_000, 7_000]
    assert store.recent_observations([], 5, since_ms=0) == []


def test_api_tokens_are_created_looked_up_and_revoked(open_store: OpenStore) -> None:
    tokens = TokenStore(open_store.path, url=open_store.url)
    try:
        token, secret = tokens.create(name="duty desk", role=Role.OPERATOR, communities=["sunshine"],
                                      caregiver=None, now_ms=1_000, expires_ms=10_000)
        assert tokens.lookup(secret, now_ms=2_000) == token
        assert tokens.lookup(secret, now_ms=10_000) is None, "expired"
        with pytest.raises(TokenError, match="already exists"):
            tokens.create(name="duty desk", role=Role.OPERATOR, communities=["*"], caregiver=None,
                          now_ms=2_000)
        assert tokens.live([token.id, "nope"], now_ms=2_000) == {token.id}
        tokens.revoke(token.id, now_ms=3_000)
        assert tokens.lookup(secret, now_ms=4_000) is None and tokens.live([token.id], now_ms=4_000) == set()
        assert [t.revoked_ms for t in tokens.tokens()] == [3_000]
    finally:
        tokens.close()


def test_the_audits_record_reads_edits_and_erasures(open_store: OpenStore) -> None:
    store = open_store()
    store.record_read(ResidentRead(1, "op", "t1", "operator", "residents", ["r1", "r2"]))
    store.record_read(ResidentRead(2, "cg", "t2", "caregiver", "activity", ["r2"]))
    assert [r.at_ms for r in store.reads()] == [2, 1], "newest first"
    assert [r.actor for r in store.reads("r1")] == ["op"], "the reads that showed r1"
    edit = RegistryEdit(3, "op", "t1", "operator", "devices", "band-1", "create", None, {"id": "band-1"})
    first = store.record_registry_edit(edit)
    second = store.record_registry_edit(edit)
    assert second > first
    store.forget_registry_edit(second)
    assert store.registry_edits() == [edit]
    store.record_erasure("r9", {"readings": 3}, at_ms=4, actor="op", token_id=None, role="operator")
    assert store.erasures() == [{"at_ms": 4, "actor": "op", "token_id": None, "role": "operator",
                                 "resident": "r9", "counts": {"readings": 3}}]


def test_checkpoints_move_the_cursor_with_them_and_an_erasure_drops_them(open_store: OpenStore) -> None:
    store = open_store()
    commit(store, Observation("motion-1", "motion_sensor", 1_000, {"occupancy": True}, 1_001))
    checkpoint = Checkpoint("east", 1, "fingerprint", 1, 1_000, b"state", "{}")
    west = Checkpoint("west", 1, "fingerprint", 1, 1_000, b"other", "{}", '{"band-1":{"2026-11-01":true}}')
    store.save_checkpoints([checkpoint, west], {"evaluation": 1})
    assert store.checkpoint("east") == checkpoint and store.export_cursor("evaluation") == 1
    assert store.checkpoint("west") == west, "with the safety rules' habits"
    assert store.checkpoint("north") is None

    AlertStore(store.path, url=open_store.url).close()  # the alert tables an erasure anonymises
    store.erase(["motion-1"], "resident = ?", ["r1"], "r1", {})
    assert store.checkpoint("east") is None and store.checkpoint("west") is None, (
        "a checkpoint holds the resident's learned rhythm: the next start relearns what is left")
    store.close()
