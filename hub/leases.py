"""Which hub node evaluates which community, when several nodes share one PostgreSQL
(docs/operators/nodes.md).

Every node ingests; each community's evaluation (rules, detector, alerts raised) belongs to one live node
at a time, through a lease in `community_leases`: an owner and an expiry, renewed by the owner's
heartbeat, taken by another node only once it has expired or been released. The live nodes are the rows
of `hub_nodes` heartbeated within a lease; each community goes to the live node its rendezvous hash
ranks first among those whose `HUB_COMMUNITIES` allow it, so the communities spread evenly and a node
joining or leaving moves only the communities it wins or held.

A lease table rather than session advisory locks: a lock dies with its connection, so a node whose
connection broke (a restarted PostgreSQL, a network blip) would lose every community at once without
knowing when, and a lock says nothing of the other nodes, which the hashing needs. The table's expiry is
on the database's clock, the one clock all nodes read, and the `ON CONFLICT … WHERE` of the acquire is
the compare-and-set: two nodes can never both hold a community.

A node hands a community over by releasing it only after its evaluation has stopped evaluating it and
saved its cursor (`Ownership.applied`), so the next owner resumes where it stopped. A node that cannot
renew stops evaluating a community before its lease can have expired for the others.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

import psycopg

from hub.postgres import PgConnection
from hub.registry import Registry
from hub.threads import BackgroundThread

log = logging.getLogger(__name__)

_AFTER_EXPIRY_S = 0.05  # seconds after a lease runs out that the next heartbeat takes it

# A node's scope as the others see it: the communities it may take, None for every community.
Scopes = Mapping[str, frozenset[str] | None]


def _weight(node: str, community: str) -> int:
    # A hash every process computes alike (Python's own hash() is salted per process).
    return int.from_bytes(hashlib.blake2b(f"{node}\0{community}".encode(), digest_size=8).digest(), "big")


def rendezvous(community: str, nodes: Iterable[str]) -> str | None:
    """The node that should own `community` among `nodes` (highest random weight); None: no node."""
    return max(nodes, key=lambda node: (_weight(node, community), node), default=None)


def assignment(communities: Iterable[str], nodes: Scopes) -> dict[str, str]:
    """community → the node that should own it, among the nodes whose scope allows it."""
    owners: dict[str, str] = {}
    for community in communities:
        allowed = [node for node, scope in nodes.items() if scope is None or community in scope]
        owner = rendezvous(community, allowed)
        if owner is not None:
            owners[community] = owner
    return owners


def _scope_text(scope: frozenset[str] | None) -> str:
    return "" if scope is None else ",".join(sorted(scope))


def _scope_of(text: str) -> frozenset[str] | None:
    return None if not text else frozenset(text.split(","))


class LeaseTable:
    """The node registry and the leases, as SQL on one connection (autocommit: each statement its own
    transaction, none holding locks between heartbeats)."""

    def __init__(self, db: PgConnection, node_id: str, lease_s: float) -> None:
        self.db = db
        self.node_id = node_id
        self.lease_s = lease_s

    def heartbeat(self, scope: frozenset[str] | None) -> None:
        self.db.execute(
            "INSERT INTO hub_nodes (node_id, communities, heartbeat_at) VALUES (?, ?, clock_timestamp())"
            " ON CONFLICT (node_id) DO UPDATE SET communities = excluded.communities,"
            " heartbeat_at = excluded.heartbeat_at",
            (self.node_id, _scope_text(scope)))

    def live_nodes(self) -> dict[str, frozenset[str] | None]:
        rows = self.db.execute(
            "SELECT node_id, communities FROM hub_nodes"
            " WHERE heartbeat_at > clock_timestamp() - make_interval(secs => ?)", (self.lease_s,))
        return {node: _scope_of(text) for node, text in rows}

    def acquire(self, communities: Iterable[str]) -> set[str]:
        """Take or renew these leases, in one statement however many; returns those now held (not those
        another node holds unexpired). In sorted order, so two nodes taking overlapping sets lock their
        rows in the same order and never deadlock."""
        rows = self.db.execute(
            "INSERT INTO community_leases AS l (community, owner, expires_at)"
            " SELECT c, ?, clock_timestamp() + make_interval(secs => ?)"
            " FROM unnest(?::text[]) AS c ORDER BY c"
            " ON CONFLICT (community) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
            " WHERE l.owner = excluded.owner OR l.expires_at <= clock_timestamp()"
            " RETURNING community", (self.node_id, self.lease_s, sorted(communities)))
        return {community for (community,) in rows}

    def next_expiry_s(self) -> float | None:
        """Seconds until the soonest unexpired lease another node holds runs out (None: none)."""
        row = self.db.execute(
            "SELECT extract(epoch FROM min(expires_at) - clock_timestamp()) FROM community_leases"
            " WHERE owner <> ? AND expires_at > clock_timestamp()", (self.node_id,)).fetchone()
        return None if row[0] is None else float(row[0])

    def release(self, communities: Iterable[str]) -> None:
        self.db.execute("DELETE FROM community_leases WHERE owner = ? AND community = ANY(?)",
                        (self.node_id, list(communities)))

    def leave(self) -> None:
        """A clean stop: the others take this node's communities at their next heartbeat, not at expiry."""
        self.db.execute("DELETE FROM community_leases WHERE owner = ?", (self.node_id,))
        self.db.execute("DELETE FROM hub_nodes WHERE node_id = ?", (self.node_id,))

    def owners(self) -> dict[str, str]:
        """community → its owner, for the leases not expired."""
        rows = self.db.execute("SELECT community, owner FROM community_leases"
                               " WHERE expires_at > clock_timestamp()")
        return dict(rows)


class CommunityLeases(BackgroundThread):
    """This node's side: heartbeat, take what the hashing gives it, renew, hand over what it no longer
    should have. The evaluation reads `owned()` and confirms with `applied()` (hub/evaluation.py's
    `Ownership`)."""

    def __init__(self, connect: Callable[[], PgConnection], node_id: str, scope: frozenset[str] | None,
                 registry: Callable[[], Registry], lease_s: float) -> None:
        super().__init__("leases")
        self._connect = connect
        self._node_id = node_id
        self._scope = scope
        self._registry = registry
        self.lease_s = lease_s
        # Four heartbeats per lease: a renewal can miss two and still land before the expiry.
        self.heartbeat_s = lease_s / 4
        self._changed = threading.Condition()
        self._held: dict[str, float] = {}  # community → monotonic time until which it is surely ours
        self._version = 0  # bumped at every change of what is held
        self._applied = 0  # the newest version the evaluation has acted on
        self.on_change: Callable[[], None] = lambda: None  # wakes the evaluation

    def owned(self) -> tuple[int, frozenset[str]]:
        """(version, the communities this node may evaluate now)."""
        now = time.monotonic()
        with self._changed:
            return self._version, frozenset(c for c, until in self._held.items() if until > now)

    def applied(self, version: int) -> None:
        """The evaluation evaluates only what `owned()` gave at `version`, and saved the cursors of the
        rest."""
        with self._changed:
            self._applied = max(self._applied, version)
            self._changed.notify_all()

    def run(self) -> None:
        table: LeaseTable | None = None
        try:
            while True:
                try:
                    if table is None:
                        table = LeaseTable(self._connect(), self._node_id, self.lease_s)
                    if self._stopping.is_set():
                        table.leave()
                        break
                    pause = self._step(table)
                except psycopg.Error as error:
                    # Held leases lapse locally (`owned()`) before they can expire for the others.
                    log.warning("node heartbeat failed (%s); trying again", error)
                    if table is not None:
                        table.db.close()
                    table = None
                    if self._stopping.is_set():
                        break
                    pause = self.heartbeat_s
                self._sleep(pause)
        finally:
            if table is not None:
                table.db.close()

    def _step(self, table: LeaseTable) -> float:
        """One heartbeat; returns the seconds until the next: a heartbeat, or less when another node's
        lease runs out sooner (a live node renews its leases well before, so that node is dead). The
        take-over of a dead node's communities then waits for its leases alone, not for them and up to
        a heartbeat more; `_AFTER_EXPIRY_S` later, as its node row (written just before its renewal)
        has gone stale by then too."""
        table.heartbeat(self._scope)
        communities = [c.id for c in self._registry().file.communities]
        owners = assignment(communities, table.live_nodes())
        wanted = {c for c, node in owners.items() if node == self._node_id}
        with self._changed:
            leaving = set(self._held) - wanted
        if leaving:
            self._hand_over(table, leaving)
        started = time.monotonic()
        held = table.acquire(wanted)
        with self._changed:
            gained = bool(held - self._held.keys())
            if gained:
                self._version += 1
            for community in held:
                # Counted from before the statement, and a heartbeat short: surely within the lease.
                self._held[community] = started + self.lease_s - self.heartbeat_s
        lost = (wanted - held) & self._held.keys()
        if lost:  # taken from us (we failed to renew in time): stop at once
            self._drop(lost)
        if gained:
            self.on_change()
        expiry = table.next_expiry_s()
        return self.heartbeat_s if expiry is None else min(self.heartbeat_s, expiry + _AFTER_EXPIRY_S)

    def _drop(self, communities: set[str]) -> int:
        with self._changed:
            for community in communities:
                self._held.pop(community, None)
            self._version += 1
            return self._version

    def _hand_over(self, table: LeaseTable, communities: set[str]) -> None:
        """Stop evaluating them, wait until the evaluation has saved their cursors, then release them so
        the next owner takes them at once. An evaluation that does not confirm before the leases could
        have expired leaves them to expire: released early, two nodes could evaluate at once."""
        with self._changed:
            deadline = min(self._held[c] for c in communities)
        version = self._drop(communities)
        self.on_change()
        with self._changed:
            confirmed = self._changed.wait_for(lambda: self._applied >= version,
                                               timeout=max(0.0, deadline - time.monotonic()))
        if confirmed:
            table.release(communities)
        log.info("handed over communities %s%s", ", ".join(sorted(communities)),
                 "" if confirmed else " (left to expire)")
