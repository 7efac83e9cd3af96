"""What only the PostgreSQL store does: daily partitions of observations created ahead as data arrives,
retention that drops whole partitions, and ids in commit order however many writers commit at once (a
reader following observations by id skips none), and alert deliveries claimed with SKIP LOCKED so
workers on several nodes share one queue. What both backends do is tested on both in
tests/store/test_store.py and tests/intake/."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from hub.alerts.model import AlertRequest
from hub.alerts.store import AlertStore
from hub.postgres import DAY_MS, PgConnection, existing_partitions, partition_name
from hub.store import Batch, Observation, Store

DAY = 1_763_856_000_000 - 1_763_856_000_000 % DAY_MS  # a UTC midnight


def pg_store(url: str) -> Store:
    return Store(Path("unused"), url=url)


def commit(store: Store, *observations: Observation) -> None:
    batch = Batch()
    for observation in observations:
        batch.add_observation(observation, observation.received_ms)
    store.commit(batch)


def reading(device: str, ts: int) -> Observation:
    return Observation(device, "motion_sensor", ts, {"occupancy": True}, ts)


def partitions(url: str) -> list[str]:
    db = PgConnection(url)
    try:
        return sorted(existing_partitions(db))
    finally:
        db.close()


def test_a_days_partition_and_the_next_are_made_as_its_first_reading_arrives(pg_url: str) -> None:
    store = pg_store(pg_url)
    assert partitions(pg_url) == [], "none before data"
    commit(store, reading("m-1", DAY + 5), reading("m-1", DAY + 2 * DAY_MS + 7))
    assert partitions(pg_url) == [partition_name(DAY + d * DAY_MS) for d in range(4)], (
        "the days of the batch, each with the day after it")
    other = pg_store(pg_url)  # another writer, which has not seen them made: finds them there
    commit(other, reading("m-2", DAY + 1))
    assert other.count_observations() == 3
    other.close()
    store.close()


def test_a_refused_batch_takes_its_new_partitions_with_it_and_the_next_batch_makes_them(pg_url: str) -> None:
    """PostgreSQL refuses a NUL in a field (intake then splits the batch until that message alone is a dead
    letter): the partitions made in the rolled-back transaction are gone, and must be made again."""
    store = pg_store(pg_url)
    with pytest.raises(psycopg.errors.UntranslatableCharacter):
        commit(store, Observation("d-1", "door_sensor", DAY + 1, {"note": "a\x00b"}, DAY))
    assert partitions(pg_url) == []
    commit(store, reading("m-1", DAY + 2))
    assert store.count_observations() == 1
    store.close()


def test_retention_drops_whole_days_and_trims_the_day_of_the_cutoff(pg_url: str) -> None:
    store = pg_store(pg_url)
    commit(store, *(reading(device, DAY + day * DAY_MS + hour * 3_600_000)
                    for device in ("m-1", "m-2") for day in range(5) for hour in (1, 13)))
    cutoff = DAY + 2 * DAY_MS + 12 * 3_600_000  # noon of the third day
    assert store.drop_readings_before(cutoff) == 10, "2 devices x (4 readings on days 1-2 + 1 on day 3)"
    assert partition_name(DAY) not in partitions(pg_url)
    assert partition_name(DAY + DAY_MS) not in partitions(pg_url)
    assert partition_name(DAY + 2 * DAY_MS) in partitions(pg_url), "the cutoff's day is trimmed, kept"
    assert min(ts for _, ts in store.observation_keys()) == DAY + 2 * DAY_MS + 13 * 3_600_000
    assert store.drop_readings_before(cutoff) == 0, "a second run removes nothing"
    commit(store, reading("m-1", DAY + 30 * 60_000))  # a late reading of a dropped day: its day comes back
    assert store.count_observations() == 11
    store.close()


def test_a_reader_following_ids_misses_nothing_while_writers_commit_at_once(pg_url: str) -> None:
    """Two intake processes committing into one PostgreSQL store: ids are allocated in the writers' turn,
    so a reader's cursor (as the evaluation keeps) never passes a row that commits later with a lower id."""
    pg_store(pg_url).close()  # migrated once
    writers, batches, per_batch = 2, 40, 50
    done = threading.Event()
    seen: set[int] = set()

    def write(index: int) -> None:
        store = pg_store(pg_url)
        for b in range(batches):
            commit(store, *(reading(f"w{index}-{i}", DAY + b) for i in range(per_batch)))
        store.close()

    def follow() -> None:
        store = pg_store(pg_url)
        cursor = 0
        while True:
            finished = done.is_set()
            rows = store.observations_after(cursor, 10_000)
            seen.update(row.id for row in rows)
            cursor = max((row.id for row in rows), default=cursor)
            if finished and not rows:
                break
        store.close()

    reader = threading.Thread(target=follow)
    reader.start()
    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    assert len(seen) == writers * batches * per_batch


def alert_store_with_deliveries(url: str, count: int) -> AlertStore:
    store = AlertStore(Path("unused"), url=url)
    request = AlertRequest(kind="sos", severity="critical", subject="r1", community="c", building="b",
                           resident="r1", raised_at_ms=DAY)
    with store.transaction():
        alert_id = store.insert_alert(request, None, 1, None)
        event = store.add_event(alert_id, at_ms=DAY, actor="hub", action="raised", from_state=None,
                                to_state="open")
        for i in range(count):
            store.add_delivery(alert_id, event_id=event, reason="raised", tier=1, sink="webhook",
                               recipient=f"cg-{i}", now_ms=DAY + i)
    return store


def test_delivery_claims_skip_rows_another_node_is_claiming_without_waiting(pg_url: str) -> None:
    store = alert_store_with_deliveries(pg_url, 30)
    other_node = PgConnection(pg_url)
    try:
        with other_node.transaction(lock=None):  # another node, mid-claim of the ten oldest
            held = {row[0] for row in other_node.execute(
                "SELECT id FROM alert_deliveries ORDER BY next_attempt_ms LIMIT 10 FOR UPDATE")}
            store._db.execute("SET statement_timeout = '2s'")  # waiting would fail the claim
            claimed = store.claim_due_deliveries("webhook", DAY + 100, 100, lease_ms=60_000)
            assert len(claimed) == 20 and not held & {d.id for d in claimed}
            assert store.claim_due_deliveries("webhook", DAY + 100, 100, lease_ms=60_000) == [], (
                "the other node's rows stay with it while it holds them; ours are leased")
    finally:
        other_node.close()
    assert {d.id for d in store.claim_due_deliveries("webhook", DAY + 100, 100, lease_ms=60_000)} == held, (
        "the other node let go without claiming: they are due again")
    store.close()


def test_claimers_share_the_queue_each_delivery_once_then_again_after_the_lease(pg_url: str) -> None:
    AlertStore(Path("unused"), url=pg_url).close()
    alert_store_with_deliveries(pg_url, 200).close()
    claimed: list[int] = []

    def claimer() -> None:
        store = AlertStore(Path("unused"), url=pg_url)
        while batch := store.claim_due_deliveries("webhook", DAY + 1_000, 5, lease_ms=60_000):
            claimed.extend(d.id for d in batch)
        store.close()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 200 and len(set(claimed)) == 200, "every delivery claimed, none twice"
    store = AlertStore(Path("unused"), url=pg_url)
    assert store.claim_due_deliveries("webhook", DAY + 1_000 + 59_999, 500, lease_ms=60_000) == [], "leased"
    assert len(store.claim_due_deliveries("webhook", DAY + 1_000 + 60_000, 500, lease_ms=60_000)) == 200, (
        "a claimer that died while sending leaves them to another once the lease is over")
    store.close()
