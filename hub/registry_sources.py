"""Where the registry in service comes from and where its edits go: the registry file (with SQLite, the
default), or its versions in PostgreSQL (`HUB_STORE_URL`), shared by every hub node.

On PostgreSQL each version is the whole registry document, a row of `registry_versions`; the newest is in
service. Every write takes one advisory lock, so writes from all nodes are serialised: an edit made on a
node that has not yet taken in the newest version takes it in first and applies the edit on top of it,
so no edit is lost and none is refused for being late. The commit announces the new version (NOTIFY
`hub_registry`) to every node; each node's `RegistryFollower` takes it in at once, and looks for a
version it was not told of every HUB_REGISTRY_POLL_S (its listening connection dropped and came back).
Whole documents are cheap enough at district scale (docs/operators/postgresql.md has the figures).

Only the newest HUB_REGISTRY_VERSIONS_KEPT versions are kept (the registry audit keeps every entry's
before and after), and an erasure deletes every version before the one it wrote: they hold the erased
resident's name, phone and health flags.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psycopg
from pydantic import ValidationError

from hub.migrations import migrate_postgresql
from hub.postgres import PgConnection
from hub.registry import Registry, RegistryError, RegistryFile, RegistryHolder
from hub.settings import Settings
from hub.threads import BackgroundThread

log = logging.getLogger(__name__)

# The channel a new version is announced on (its number as the payload), and the advisory lock every
# writer of a version takes (any fixed number, the same in every hub, distinct from the store's others).
CHANNEL = "hub_registry"
REGISTRY_WRITE_LOCK = 0x5C_2E61

# An edit: the registry now in service → the registry it becomes; raising refuses it, changing nothing.
Change = Callable[[Registry], Registry]


class RegistrySource(Protocol):
    def write(self, change: Change, *, actor: str, what: str, erasing: bool = False) -> Registry:
        """Apply `change` to the newest registry, keep the result and put it in service; returns it.
        `erasing`: the change erases a resident, so no earlier copy of the registry may be kept."""
        ...

    def close(self) -> None: ...


class FileRegistrySource:
    """The registry file is the registry: an edit writes the whole file (atomically and durably), then
    swaps the new registry in. One process writes it (the hub whose API is edited)."""

    def __init__(self, path: Path, holder: RegistryHolder) -> None:
        self._path = path
        self._holder = holder

    def write(self, change: Change, *, actor: str, what: str, erasing: bool = False) -> Registry:
        registry = change(self._holder.current())
        registry.dump(self._path)
        self._holder.replace(registry)
        return registry

    def close(self) -> None:
        pass  # nothing held open between writes


@dataclass(frozen=True, slots=True)
class RegistryVersion:
    """One row of `registry_versions`, without its document."""

    version: int
    at_ms: int
    actor: str
    what: str


class RegistryVersions:
    """The `registry_versions` table, on a connection its user owns (and locks, for a write)."""

    def __init__(self, db: PgConnection) -> None:
        self._db = db

    def newest(self) -> int:
        """The newest version's number, 0 when the store holds no registry yet."""
        return int(self._db.execute("SELECT coalesce(max(version), 0) FROM registry_versions").fetchone()[0])

    def load(self) -> tuple[int, Registry] | None:
        """The newest version and its registry, checked by the same model as the file; None when none."""
        row = self._db.execute(
            "SELECT version, document FROM registry_versions ORDER BY version DESC LIMIT 1").fetchone()
        if row is None:
            return None
        version, document = row
        try:
            return version, Registry(RegistryFile.model_validate_json(document))
        except ValidationError as exc:
            raise RegistryError(f"registry version {version} in the store is invalid:\n{exc}") from exc

    def history(self, limit: int) -> list[RegistryVersion]:
        rows = self._db.execute("SELECT version, at_ms, actor, what FROM registry_versions"
                                " ORDER BY version DESC LIMIT ?", (limit,))
        return [RegistryVersion(*row) for row in rows]

    def add(self, registry: Registry, *, actor: str, what: str, kept: int, erasing: bool = False) -> int:
        """Store `registry` as the next version and announce it (on commit); in a transaction holding
        `REGISTRY_WRITE_LOCK`. Returns its number."""
        version = self.newest() + 1
        # Pydantic's serializer: a third of model_dump and json.dumps's time (0.1 s for 20,000 residents).
        document = registry.file.model_dump_json(exclude_defaults=True)
        self._db.execute("INSERT INTO registry_versions (version, at_ms, actor, what, document)"
                         " VALUES (?, ?, ?, ?, ?::jsonb)",
                         (version, int(time.time() * 1000), actor, what, document))
        self._db.execute("DELETE FROM registry_versions WHERE version <= ?",
                         (version - 1 if erasing else version - kept,))
        self._db.execute("SELECT pg_notify(?, ?)", (CHANNEL, str(version)))
        return version


def connect(url: str) -> PgConnection:
    """A connection to the store with its schema brought up to date (the CLI may run before any hub)."""
    db = PgConnection(url)
    migrate_postgresql(db)
    return db


def import_registry(url: str, registry: Registry, *, actor: str, what: str, kept: int) -> int:
    """Store `registry` as the newest version (`hub registry import`); every node takes it in."""
    db = connect(url)
    try:
        with db.transaction(lock=REGISTRY_WRITE_LOCK):
            return RegistryVersions(db).add(registry, actor=actor, what=what, kept=kept)
    finally:
        db.close()


def stored_registry(url: str) -> tuple[int, Registry] | None:
    """The newest version in the store and its registry (`hub registry export`, the CLI's commands)."""
    db = connect(url)
    try:
        return RegistryVersions(db).load()
    finally:
        db.close()


def stored_versions(url: str, limit: int) -> list[RegistryVersion]:
    """The newest `limit` versions, newest first (`hub registry versions`)."""
    db = connect(url)
    try:
        return RegistryVersions(db).history(limit)
    finally:
        db.close()


def registry_at_start(url: str, file: Path, *, node: str, kept: int) -> tuple[int, Registry]:
    """The registry a node on PostgreSQL starts with: the newest version; when the store holds none yet,
    the registry file imported as the first (a deployment moves its registry in by setting
    HUB_STORE_URL). Nodes starting together on an empty store import it once: under the write lock."""
    db = connect(url)
    try:
        versions = RegistryVersions(db)
        loaded = versions.load()
        if loaded is None:
            with db.transaction(lock=REGISTRY_WRITE_LOCK):
                loaded = versions.load() or _import_file(versions, file, node=node, kept=kept)
        else:
            log.info("registry version %d loaded from the store (%s is read only into a store holding "
                     "no registry)", loaded[0], file)
        return loaded
    finally:
        db.close()


def _import_file(versions: RegistryVersions, file: Path, *, node: str, kept: int) -> tuple[int, Registry]:
    try:
        registry = Registry.load(file)
    except RegistryError as exc:
        raise RegistryError(f"the store holds no registry yet, and {exc}; import one with "
                            "`hub registry import FILE`") from exc
    version = versions.add(registry, actor=f"node {node}", what=f"import {file}", kept=kept)
    log.info("registry %s imported into the store as version %d", file, version)
    return version, registry


class PostgresRegistrySource:
    """The registry's versions in PostgreSQL, as one node follows and writes them. `version` is the one
    in service on this node."""

    def __init__(self, url: str, holder: RegistryHolder, version: int, *, kept: int) -> None:
        self._url = url
        self._holder = holder
        self.version = version
        self._kept = kept
        self._db: PgConnection | None = None
        self._refused = 0  # a stored version this node could not load: logged once, not every poll
        self._lock = threading.Lock()  # one transaction at a time on the connection

    def _connection(self) -> PgConnection:
        """The connection, opened again after PostgreSQL dropped it (a restart, a fail-over)."""
        if self._db is None or self._db.raw.closed:
            self._db = PgConnection(self._url)
        return self._db

    def write(self, change: Change, *, actor: str, what: str, erasing: bool = False) -> Registry:
        with self._lock:
            db = self._connection()
            with db.transaction(lock=REGISTRY_WRITE_LOCK):
                versions = RegistryVersions(db)
                self._catch_up(versions)  # an edit on another node first: this one applies on top of it
                registry = change(self._holder.current())
                version = versions.add(registry, actor=actor, what=what, kept=self._kept, erasing=erasing)
            self._take(version, registry)  # committed: in service here now, on the others when told
            return registry

    def catch_up(self) -> bool:
        """Take in the newest version if this node does not have it yet; True when it took one in."""
        with self._lock:
            return self._catch_up(RegistryVersions(self._connection()))

    def _catch_up(self, versions: RegistryVersions) -> bool:
        newest = versions.newest()
        if newest <= self.version or newest == self._refused:
            return False
        try:
            loaded = versions.load()
        except RegistryError as exc:  # keep what is in service; say so once
            self._refused = newest
            log.error("registry version %d not taken in, version %d stays in service: %s", newest,
                      self.version, exc)
            return False
        if loaded is None:
            return False
        self._take(*loaded)
        log.info("registry version %d in service (%d devices)", self.version, len(loaded[1].devices))
        return True

    def _take(self, version: int, registry: Registry) -> None:
        self.version = version
        self._holder.replace(registry)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class RegistryFollower(BackgroundThread):
    """Takes each new registry version into this node when it is announced, and every `poll_s` looks for
    one it was not told of."""

    def __init__(self, url: str, source: PostgresRegistrySource, poll_s: float) -> None:
        super().__init__("registry-follower")
        self._url = url
        self._source = source
        self._poll_s = poll_s

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._follow()
            except Exception as exc:  # PostgreSQL away, most likely (then no traceback): again shortly
                log.warning("registry versions not followed (%s); again in %g s", exc, self._poll_s,
                            exc_info=not isinstance(exc, psycopg.Error))
                if self._sleep(self._poll_s):
                    return

    def _follow(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as listening:
            listening.execute(f"LISTEN {CHANNEL}")
            self._source.catch_up()  # what was written while this node was not listening
            next_poll = time.monotonic() + self._poll_s
            while not self._stopping.is_set():
                # Back every quarter of a second to see whether the hub is stopping.
                told = any(True for _ in listening.notifies(timeout=0.25, stop_after=1))
                if told or time.monotonic() >= next_poll:
                    self._source.catch_up()
                    next_poll = time.monotonic() + self._poll_s


def registry_in_service(settings: Settings, file: Path | None = None) -> Registry:
    """The registry a command works with: `file` when given; else, with HUB_STORE_URL, the newest version
    in the store; else the file at HUB_REGISTRY_PATH. Raises RegistryError saying what is wrong."""
    if file is not None or settings.store_url is None:
        return Registry.load(file or settings.registry_path)
    stored = stored_registry(settings.store_url)
    if stored is None:
        raise RegistryError("the store holds no registry yet: import one with `hub registry import FILE`")
    return stored[1]
