"""Hub nodes' community leases (hub/leases.py) on a real PostgreSQL: acquire, renew, expire, hand over,
never two owners (a join included), and the rendezvous assignment's spread and its moves; two nodes'
evaluations each raising only their own communities' presses, each once, through a join, the communities
handed over with their checkpoints."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from hub.alerts.model import AlertRequest
from hub.clock import SystemClock
from hub.evaluation import Evaluator
from hub.leases import CommunityLeases, LeaseTable, assignment, rendezvous
from hub.migrations import migrate_postgresql
from hub.postgres import PgConnection
from hub.registry import Registry
from hub.store import Batch, Observation, Store
from tests.real_servers import wait_until
from tests.registry_builder import RegistryBuilder

COMMUNITIES = [f"c{i:02d}" for i in range(12)]


@pytest.fixture
def migrated(pg_url: str) -> str:
    db = PgConnection(pg_url)
    migrate_postgresql(db)
    db.close()
    return pg_url


@pytest.fixture
def tables(migrated: str) -> Iterator[dict[str, LeaseTable]]:
    opened: dict[str, LeaseTable] = {}

    def table(node: str, lease_s: float = 1.0) -> LeaseTable:
        opened[node] = LeaseTable(PgConnection(migrated), node, lease_s)
        return opened[node]

    yield {node: table(node) for node in ("a", "b")}
    for t in opened.values():
        t.db.close()


def test_acquire_renew_and_refuse_while_held(tables: dict[str, LeaseTable]) -> None:
    a, b = tables["a"], tables["b"]
    assert a.acquire(["c1"]) == {"c1"}
    assert b.acquire(["c1", "c2"]) == {"c2"}  # one statement: what is free is taken, the rest refused
    assert a.acquire(["c1"]) == {"c1"}  # a renewal
    assert a.owners() == {"c1": "a", "c2": "b"}
    assert a.acquire([]) == set()


def test_an_expired_lease_is_taken_and_a_released_one_at_once(tables: dict[str, LeaseTable]) -> None:
    a, b = tables["a"], tables["b"]
    assert a.acquire(["c1", "c2"]) == {"c1", "c2"}
    assert 0.5 < (b.next_expiry_s() or 0) <= 1.0  # a's leases of 1 s, seen from b
    assert a.next_expiry_s() is None  # its own do not count
    a.release(["c2"])
    assert b.acquire(["c2"]) == {"c2"}
    assert b.acquire(["c1"]) == set()
    time.sleep(1.1)  # a's lease of 1 s on c1, not renewed
    assert b.next_expiry_s() is None  # run out: nothing more to wait for
    assert b.acquire(["c1"]) == {"c1"}
    assert a.acquire(["c1"]) == set()  # the late renewal of the old owner fails: it stops evaluating it
    assert b.owners() == {"c1": "b"}  # c2 expired meanwhile: b did not renew it


def test_live_nodes_are_those_heartbeating(tables: dict[str, LeaseTable]) -> None:
    a, b = tables["a"], tables["b"]
    a.heartbeat(None)
    b.heartbeat(frozenset({"c1"}))
    assert a.live_nodes() == {"a": None, "b": frozenset({"c1"})}
    time.sleep(0.6)
    a.heartbeat(None)
    time.sleep(0.6)
    assert a.live_nodes() == {"a": None}
    b.leave()
    assert "b" not in a.live_nodes()


def test_racing_acquirers_never_both_win(migrated: str) -> None:
    nodes = [LeaseTable(PgConnection(migrated), f"n{i}", 5.0) for i in range(6)]
    winners: list[str] = []
    start = threading.Barrier(len(nodes))

    def race(table: LeaseTable) -> None:
        start.wait()
        if table.acquire(["c1"]):
            winners.append(table.node_id)

    threads = [threading.Thread(target=race, args=(t,)) for t in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    for table in nodes:
        table.db.close()


def test_rendezvous_spreads_evenly_and_moves_the_minimum() -> None:
    communities = [f"community-{i}" for i in range(3000)]
    three = {"a": None, "b": None, "c": None}
    before = assignment(communities, three)
    counts = Counter(before.values())
    assert all(900 < n < 1100 for n in counts.values()), counts
    after_join = assignment(communities, {**three, "d": None})
    moved = {c for c in communities if before[c] != after_join[c]}
    assert all(after_join[c] == "d" for c in moved)  # only to the newcomer, none between the others
    assert 650 < len(moved) < 850  # about a quarter
    after_leave = assignment(communities, {"a": None, "c": None})
    moved = {c for c in communities if before[c] != after_leave[c]}
    assert moved == {c for c in communities if before[c] == "b"}  # only the leaver's
    assert rendezvous("x", []) is None


def test_scopes_restrict_the_candidates() -> None:
    owners = assignment(COMMUNITIES, {"a": frozenset({"c01"}), "b": None})
    assert owners["c01"] in {"a", "b"}
    assert all(owner == "b" for c, owner in owners.items() if c != "c01")
    assert assignment(["c01"], {"a": frozenset({"c02"})}) == {}


class FakeEvaluation:
    """Confirms every ownership change at once, and records what it was given, as the evaluation does."""

    def __init__(self, leases: CommunityLeases) -> None:
        self.leases = leases
        leases.on_change = self.follow

    def follow(self) -> None:
        version, _ = self.leases.owned()
        self.leases.applied(version)


def node(url: str, name: str, registry: Registry, lease_s: float = 2.0) -> CommunityLeases:
    leases = CommunityLeases(lambda: PgConnection(url), name, None, lambda: registry, lease_s)
    FakeEvaluation(leases)
    leases.start()
    return leases


def registry_of(communities: list[str]) -> Registry:
    builder = RegistryBuilder()
    for community in communities:
        builder.community(community)
    return builder.registry()


def cut_off(leases: CommunityLeases) -> None:
    """The node can no longer reach PostgreSQL (as if killed, but still running): it neither renews nor
    leaves."""
    def unreachable(*_: object) -> PgConnection:
        raise psycopg.OperationalError("cut off")
    leases._connect = unreachable
    leases._step = unreachable  # type: ignore[method-assign,assignment]


def test_nodes_share_the_communities_and_never_two_own_one_on_join_and_death(migrated: str) -> None:
    registry = registry_of(COMMUNITIES)
    nodes = {"a": node(migrated, "a", registry)}
    alive = {"a"}
    overlaps: list[tuple[str, set[str]]] = []
    watching = threading.Event()

    def watch() -> None:  # what each node believes it owns, sampled all along: never two at once
        while not watching.is_set():
            held: dict[str, set[str]] = {}
            for name, leases in list(nodes.items()):
                for community in leases.owned()[1]:
                    held.setdefault(community, set()).add(name)
            overlaps.extend((c, owners) for c, owners in held.items() if len(owners) > 1)
            time.sleep(0.005)

    def settled() -> bool:
        expected = assignment(COMMUNITIES, dict.fromkeys(alive))
        return all(nodes[n].owned()[1] == {c for c, o in expected.items() if o == n} for n in alive)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        wait_until(lambda: nodes["a"].owned()[1] == set(COMMUNITIES), 10, what="a owns everything")
        for name in ("b", "c"):  # joins: a hands over before they take
            nodes[name] = node(migrated, name, registry)
            alive.add(name)
        wait_until(settled, 10, what="the joiners took their share")
        dead_owned = nodes["c"].owned()[1]
        assert dead_owned
        cut_off(nodes["c"])
        alive.remove("c")
        killed = time.monotonic()
        wait_until(lambda: set().union(*(nodes[n].owned()[1] for n in alive)) == set(COMMUNITIES), 10,
                   interval=0.01, what="the dead node's communities taken over")
        took = time.monotonic() - killed
        assert took < 2.0 + 0.5, took  # the lease, and slack: the survivors take it the moment it runs out
        assert nodes["c"].owned()[1] == frozenset()  # it stopped before the others took over
        wait_until(settled, 10, what="the survivors settled")
    finally:
        watching.set()
        watcher.join()
        for leases in nodes.values():
            leases.stop()
    assert overlaps == []


# --- the evaluation restricted to what its node owns ----------------------------------------------------


class RaisedBy:
    """Which node's evaluation raised each SOS press."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.presses: dict[str, list[str]] = {}

    def sink(self, node: str) -> Callable[[AlertRequest], None]:
        def raise_alert(request: AlertRequest) -> None:
            if request.kind == "sos" and request.device is not None:
                with self.lock:
                    self.presses.setdefault(request.device, []).append(node)
        return raise_alert


def evaluating_node(url: str, name: str, registry: Registry,
                    raised: RaisedBy) -> tuple[CommunityLeases, Evaluator]:
    leases = CommunityLeases(lambda: PgConnection(url), name, None, lambda: registry, 2.0)
    evaluator = Evaluator(lambda: Store(Path("unused"), url=url), lambda: registry, SystemClock(),
                          raised.sink(name), settled_ms=lambda now: now, checkpoint_every_s=3600,
                          ownership=leases)
    leases.on_change = evaluator.wake
    leases.start()
    evaluator.start()
    return leases, evaluator


def test_each_press_is_evaluated_by_its_community_owner_once_through_a_join(migrated: str) -> None:
    communities = COMMUNITIES[:6]
    builder = RegistryBuilder()
    for c in communities:
        builder.community(c).compound(f"{c}-k").building(f"{c}-b").grid(f"{c}-g").household(f"{c}-h")
        for j in range(3):
            builder.resident(f"{c}-r{j}", "R").device(f"{c}-band{j}", "wristband", resident=f"{c}-r{j}")
    registry = builder.registry()
    writer = Store(Path("unused"), url=migrated)
    raised = RaisedBy()

    def press(j: int) -> None:
        batch = Batch()
        now = int(time.time() * 1000)
        for c in communities:
            batch.add_observation(Observation(f"{c}-band{j}", "wristband", now, {"sos": True}, now), now)
        writer.commit(batch)

    nodes = {"a": evaluating_node(migrated, "a", registry, raised)}
    try:
        wait_until(lambda: nodes["a"][0].owned()[1] == set(communities), 10, what="a owns everything")
        press(0)
        wait_until(lambda: len(raised.presses) == len(communities), 10, what="the first presses")
        nodes["b"] = evaluating_node(migrated, "b", registry, raised)
        press(1)  # while b joins: evaluated by a before the hand-over or by b after, once
        expected = assignment(communities, dict.fromkeys(nodes))
        wait_until(lambda: all(nodes[n][0].owned()[1] == {c for c, o in expected.items() if o == n}
                               for n in nodes), 10, what="b took its share")
        press(2)
        wait_until(lambda: len(raised.presses) == 3 * len(communities), 10, what="every press")
        time.sleep(1.5)  # anything raised twice would have been by now
        moved = [c for c, owner in expected.items() if owner == "b"]
        # a handed each over with its learned state, checkpointed at the cursor b resumed from
        assert all((checkpoint := writer.checkpoint(c)) is not None and checkpoint.last_id > 0 for c in moved)
    finally:
        for leases, evaluator in nodes.values():
            evaluator.stop()
            leases.stop()
        writer.close()
    assert all(len(by) == 1 for by in raised.presses.values()), raised.presses
    for c in communities:
        assert raised.presses[f"{c}-band0"] == ["a"]
        assert raised.presses[f"{c}-band2"] == [expected[c]]  # after the join: by its owner only
    assert set(expected.values()) == {"a", "b"}


def test_a_node_takes_its_first_communities_with_what_its_start_learned(migrated: str) -> None:
    """The start restores each community's checkpoint and relearns up to its cursor; the first leases
    then find it learned already, and restore nothing a second time."""
    communities = COMMUNITIES[:2]
    builder = RegistryBuilder()
    for c in communities:
        builder.community(c).compound(f"{c}-k").building(f"{c}-b").grid(f"{c}-g").household(f"{c}-h")
        builder.resident(f"{c}-r", "R").device(f"{c}-band", "wristband", resident=f"{c}-r")
    registry = builder.registry()
    writer = Store(Path("unused"), url=migrated)
    now = int(time.time() * 1000)
    batch = Batch()
    for c in communities:
        batch.add_observation(Observation(f"{c}-band", "wristband", now, {"steps": 3}, now), now)
    writer.commit(batch)
    raised = RaisedBy()

    def started_and_stopped() -> tuple[int, int]:
        """A run of node a until it evaluates both communities: (restored, relearned)."""
        leases, evaluator = evaluating_node(migrated, "a", registry, raised)
        try:
            wait_until(lambda: leases.owned()[1] == set(communities) and evaluator.armed.is_set()
                       and evaluator.stats.communities == len(communities), 10, what="a owns both")
            time.sleep(0.5)
        finally:
            evaluator.stop()  # a clean stop checkpoints what it evaluates
            leases.stop()
        return evaluator.stats.restored, evaluator.stats.relearned

    try:
        assert started_and_stopped() == (0, 0)  # nothing checkpointed yet; the readings were evaluated
        assert all(writer.checkpoint(c) is not None for c in communities)
        assert started_and_stopped() == (2, 0)  # restored at start, not again at the first leases
    finally:
        writer.close()
