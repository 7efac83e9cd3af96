"""The embedded store: SQLite in WAL mode, the system of record on one machine.

It holds observations (one row per device reading, unique on (ts, device_id) so a redelivered message
lands on itself instead of counting twice), dead letters with their raw bytes, what the hub last heard
from each device, the cursors of the exporters that read observations as an outbox, and each community's
checkpoint of the detector's learned state.

The unique key leads with the device's time, not the device: readings arrive roughly in time order, so
each batch's index entries land together at the end of the index. Keyed by device first, a batch from
5,000 devices dirtied one index page per device and SQLite wrote 20 MB of them to its log per commit:
17,000-22,000 readings a second once the table held a million rows, against 160,000-220,000 keyed by
time (docs/developers/performance.md). Readings by device are read only for a home's recent timeline,
which scans the time index backwards over a bounded window.

Each thread opens its own `Store`: SQLite connections are not shared across threads, and WAL lets the
exporters and the CLI read while intake writes.

With `url` (`HUB_STORE_URL=postgresql://…`) the same `Store` runs on PostgreSQL: one text of each
statement for both where the dialects agree, hub/postgres.py where they do not (the batch upsert through
COPY, daily partitions of observations, retention by partition). The schema of both is versioned in
hub/migrations.py; the alert tables (hub/alerts/store.py) and API tokens (hub/api/tokens.py) follow the same
pattern. docs/operators/postgresql.md tells operators what differs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from devices.kind import Fields
from hub import sensitivity
from hub.migrations import OBSERVATIONS_TABLE_SQLITE, migrate_postgresql, migrate_sqlite
from hub.postgres import DAY_MS, Partitions, PgConnection, drop_partitions_before, upsert_observations

# A second message for the same (device, ts) is either a redelivery (same fields: nothing changes) or more
# of the same moment's state, e.g. Zigbee2MQTT's action reset that follows an SOS press with the same
# `last_seen`. Its fields are merged in, never replacing what was there (the press keeps `sos: true`),
# and a changed row takes a new id so the exporters send the merged point again.
_UPSERT_OBSERVATION = """
INSERT INTO observations (device_id, kind, ts, fields, received_ms) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (ts, device_id) DO UPDATE SET
    fields = json_patch(fields, excluded.fields),
    id = (SELECT max(id) + 1 FROM observations)
WHERE json_patch(fields, excluded.fields) != fields
"""


@dataclass(frozen=True, slots=True)
class StoreAt:
    """Where the store is, for the parts that open their own connections: the SQLite file at `path`, or
    the PostgreSQL database at `url` when it is set (HUB_STORE_URL)."""

    path: Path
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    device_id: str
    kind: str
    ts: int
    fields: Fields
    received_ms: int


@dataclass(frozen=True, slots=True)
class StoredObservation:
    id: int
    device_id: str
    kind: str
    ts: int
    fields: Fields
    received_ms: int | None = None  # hub time on arrival (None where a reader does not need it)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    reason: str
    detail: str
    payload: bytes
    payload_size: int
    received_ms: int
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    id: int
    received_ms: int
    topic: str
    reason: str
    detail: str
    device_id: str | None
    payload: bytes
    payload_size: int
    replayed_ms: int | None


@dataclass(frozen=True, slots=True)
class RegistryEdit:
    """One registry edit, for the audit: who (a token), when, which entry, and the entry before and after."""

    at_ms: int
    actor: str
    token_id: str
    role: str
    table: str
    entry_id: str
    action: str  # create, update, deactivate
    before: dict[str, Any] | None
    after: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResidentRead:
    """One read of residents' data, for the read audit."""

    at_ms: int
    actor: str
    token_id: str
    role: str
    what: str  # residents (a list), activity, export
    residents: list[str]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One community's learned detector state and the store position it covers."""

    community: str
    format: int
    fingerprint: str
    last_id: int
    hub_ms: int
    state: bytes
    last_fields: str  # JSON
    habits: str = "{}"  # JSON: the safety rules' habits of the community's devices (SafetyRules.habits)


VisitStatus = Literal["scheduled", "overdue", "done", "cancelled"]
OPEN_VISIT: tuple[VisitStatus, ...] = ("scheduled", "overdue")


@dataclass(frozen=True, slots=True)
class Visit:
    """A grid worker's planned visit to a resident (hub/visits/) and, once done, its record."""

    id: int
    resident: str
    community: str
    household: str
    grid: str
    from_ms: int  # what `due_ms` counts from: the last visit done, or when the resident was first planned
    due_ms: int
    assigned_to: str | None
    status: VisitStatus
    alert_id: int | None  # the visit_overdue alert, once raised
    done_ms: int | None = None
    resident_seen: bool | None = None
    outcome: str | None = None
    note: str = ""
    lat: float | None = None
    lon: float | None = None
    recorded_by: str | None = None
    token_id: str | None = None


@dataclass(frozen=True, slots=True)
class VisitFilter:
    """Which visits to list; empty or None filters nothing. `households`/`residents`: among these only."""

    statuses: tuple[str, ...] = ()
    due_after_ms: int | None = None
    due_before_ms: int | None = None
    households: frozenset[str] | None = None
    residents: frozenset[str] | None = None
    communities: frozenset[str] | None = None
    limit: int = 100


_VISIT_COLUMNS = ("id, resident, community, household, grid, from_ms, due_ms, assigned_to, status, alert_id,"
                  " done_ms, resident_seen, outcome, note, lat, lon, recorded_by, token_id")


def _visit(row: Sequence[Any]) -> Visit:
    values = list(row)
    values[11] = None if values[11] is None else bool(values[11])
    return Visit(*values)


@dataclass(frozen=True, slots=True)
class Committed:
    """What one commit added: the observations now holding ids (before_id, after_id] (a row merged with a
    new message moves into that range too), so a reader can follow the outbox without reading it back."""

    before_id: int
    after_id: int
    observations: list[Observation]


@dataclass(slots=True)
class Batch:
    """Everything one transaction writes. `seen` and `availability` are folded per device in memory first,
    so a batch of thousands of messages costs one upsert per device, not per message."""

    observations: list[Observation] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    seen: dict[str, tuple[str | None, int | None, int, str | None]] = field(default_factory=dict)
    availability: dict[str, tuple[bool, int]] = field(default_factory=dict)

    def mark_seen(
        self, device_id: str, kind: str | None, ts: int | None, received_ms: int, error: str | None = None
    ) -> None:
        old = self.seen.get(device_id)
        if old is not None:
            _, old_ts, old_received_ms, old_error = old
            if ts is None or (old_ts is not None and old_ts > ts):
                ts = old_ts
            received_ms = max(received_ms, old_received_ms)
            error = error or old_error
        self.seen[device_id] = (kind, ts, received_ms, error)

    def add_observation(self, observation: Observation, received_ms: int) -> None:
        """A reading to store; its device counts as seen."""
        self.observations.append(observation)
        self.mark_seen(observation.device_id, observation.kind, observation.ts, received_ms)

    def set_availability(self, device_id: str, online: bool, at_ms: int) -> None:
        self.availability[device_id] = (online, at_ms)

    def absorb_seen(self, other: Batch) -> None:
        """Fold another batch's `seen` into this one's (and leave the other's empty)."""
        for device_id, (kind, ts, received_ms, error) in other.seen.items():
            self.mark_seen(device_id, kind, ts, received_ms, error)
        other.seen = {}


def placeholders(count: int) -> str:
    """`?, ?, …` for an IN list of `count` values. An empty list is `NULL`, which matches nothing: `IN ()`
    is SQLite's only, a syntax error on PostgreSQL."""
    return ", ".join("?" * count) or "NULL"


def _insert_each(db: sqlite3.Connection | PgConnection, into: str, types: Sequence[str],
                 rows: Sequence[Sequence[Any]], on_conflict: str) -> None:
    """`INSERT INTO <into> … <on_conflict>` of every row, each row unique on the conflict key. On
    PostgreSQL one statement for them all, the columns as arrays (`types`) through unnest: a batch of
    5,000 devices' liveness was 5,000 statements; SQLite runs its prepared statement per row in-process."""
    if not rows:
        return
    if isinstance(db, PgConnection):
        arrays = ", ".join(f"?::{kind}[]" for kind in types)
        db.execute(f"INSERT INTO {into} SELECT * FROM unnest({arrays}) {on_conflict}",
                   [list(column) for column in zip(*rows, strict=True)])
    else:
        db.executemany(f"INSERT INTO {into} VALUES ({placeholders(len(types))}) {on_conflict}", rows)


def _merged_repeats(rows: list[tuple[str, str, int, str, int]]) -> list[tuple[str, str, int, str, int]]:
    """A batch's rows with repeats of one (ts, device) merged into the first, later fields winning, as
    the upsert would merge them one after the other (PostgreSQL's upsert may touch a row once per
    statement)."""
    merged: dict[tuple[int, str], tuple[str, str, int, str, int]] = {}
    for row in rows:
        device_id, _, ts, fields, _ = row
        first = merged.get((ts, device_id))
        if first is None:
            merged[ts, device_id] = row
        else:
            together = {**json.loads(first[3]), **json.loads(fields)}
            merged[ts, device_id] = (*first[:3], json.dumps(together, separators=(",", ":")), first[4])
    return list(merged.values())


def private_file(path: Path) -> Path:
    """Create `path` readable and writable by its owner only (0600) if it is not there, and tighten it if
    it is: the store and the registry hold residents' personal data. SQLite creates its -wal and -shm
    files with the database file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Never open an existing file here: closing any descriptor of a database file drops every POSIX lock
    # this process's SQLite connections hold on it.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    with contextlib.suppress(OSError):  # another user's file, opened where that is allowed
        os.chmod(path, 0o600)
    return path


def open_sqlite_for_writing(path: Path) -> sqlite3.Connection:
    """A connection to the SQLite store at `path` (made private), waiting up to 10 s for other writers,
    in WAL mode. The hub, its intake processes and a command line start together on a new store: the
    first to switch it to WAL holds the file alone for a moment, and SQLite refuses the others at once
    ("database is locked") instead of waiting on the busy timeout, so the switch is tried again."""
    db = sqlite3.connect(private_file(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 10000")
    deadline = time.monotonic() + 10
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return db
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.01)


class WriterTurn:
    """Writers of one store, in every thread and process (intake processes, the alert loop), queue here
    before they take SQLite's write lock: SQLite's busy handler sleep-polls (1, 2, 5 … 100 ms), which cost
    two intake processes committing back to back a sixth of their time and put 100 ms steps into the SOS
    path; flock() on `<store>.writer-lock` wakes the next writer the moment the lock is released, and the
    kernel releases it if its holder dies. One instance per thread (each opens its own file description)."""

    def __init__(self, store_path: Path) -> None:
        lock_path = f"{store_path}.writer-lock"
        self._file: IO[bytes]
        try:  # flock() needs no write access: a store remounted read-only still reports its own errors
            self._file = open(lock_path, "rb")  # noqa: SIM115 (held until close)
        except FileNotFoundError:
            self._file = open(private_file(Path(lock_path)), "rb")  # noqa: SIM115

    def __enter__(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)

    def close(self) -> None:
        self._file.close()


class Store:
    def __init__(
        self, path: Path, *, synchronous: Literal["full", "normal"] = "full", read_only: bool = False,
        dead_letters_per_device: int | None = None, url: str | None = None,
    ) -> None:
        self.path = path
        # A device sending garbage without end must not fill the disk: past this many dead letters of its
        # own (not yet replayed) the rest are counted in `dead_letters_dropped`, not kept. None: no cap.
        self._dead_letters_per_device = dead_letters_per_device
        self._writer_turn: WriterTurn | None = None
        self._db: sqlite3.Connection | PgConnection
        self._pg: PgConnection | None = None
        self._partitions = Partitions()
        if url is not None:
            self._db = self._pg = PgConnection(url, read_only=read_only)
            if not read_only:
                migrate_postgresql(self._pg)
            return
        if read_only:
            self._db = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA busy_timeout = 10000")
        else:
            self._db = open_sqlite_for_writing(path)
        if not read_only:
            self._db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            migrate_sqlite(self._db)
            if self._keyed_by_device_first():
                self._rekey_observations()

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self._pg is None else "postgresql"

    def _keyed_by_device_first(self) -> bool:
        for _, name, unique, *_ in self._db.execute("PRAGMA index_list(observations)").fetchall():
            columns = [row[2] for row in self._db.execute(f"PRAGMA index_info('{name}')")]
            if unique and columns == ["device_id", "ts"]:
                return True
        return False

    def _rekey_observations(self) -> None:
        """A store from before the time-first key: rebuild the table under the new key, ids kept (the
        exporters' and the evaluation's cursors point at them). Once, in one transaction."""
        with self._transaction() as db:
            if not self._keyed_by_device_first():
                return  # another process did it meanwhile
            db.execute(f"CREATE TABLE observations_rekeyed {OBSERVATIONS_TABLE_SQLITE}")
            db.execute("INSERT INTO observations_rekeyed SELECT id, device_id, kind, ts, fields, received_ms"
                       " FROM observations")
            db.execute("DROP TABLE observations")
            db.execute("ALTER TABLE observations_rekeyed RENAME TO observations")

    def close(self) -> None:
        self._db.close()
        if self._writer_turn is not None:
            self._writer_turn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection | PgConnection]:
        if self._pg is not None:
            with self._pg.transaction() as pg:
                yield pg
            return
        if self._writer_turn is None:
            self._writer_turn = WriterTurn(self.path)
        with self._writer_turn:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def commit(self, batch: Batch) -> Committed:
        """Write a batch in one transaction. When this returns, its messages may be acknowledged."""
        # Encoded before taking the write lock, which other writers (intake processes) wait for. NaN and
        # infinities are refused here (ValueError): SQLite's JSON functions refuse them once the same
        # (device, ts) arrives again, so a row holding one would fail every later batch that touches it.
        observations = [
            (o.device_id, o.kind, o.ts, json.dumps(o.fields, separators=(",", ":"), allow_nan=False),
             o.received_ms)
            for o in batch.observations
        ]
        new_partitions: list[int] = []
        with self._transaction() as db:
            before = self._max_observation_id(db)
            if isinstance(db, PgConnection):
                new_partitions = self._partitions.ensure(db, [row[2] for row in observations])
                upsert_observations(db, _merged_repeats(observations))
            else:
                db.executemany(_UPSERT_OBSERVATION, observations)
            kept, dropped = self._capped(db, batch.dead_letters)
            db.executemany(
                "INSERT INTO dead_letters"
                " (received_ms, topic, reason, detail, device_id, payload, payload_size)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(d.received_ms, d.topic, d.reason, d.detail, d.device_id, d.payload, d.payload_size)
                 for d in kept],
            )
            _insert_each(
                db, "dead_letters_dropped (device_id, dropped, last_ms, last_reason)",
                ("text", "bigint", "bigint", "text"),
                [(device, len(ds), max(d.received_ms for d in ds), ds[-1].reason)
                 for device, ds in dropped.items()],
                "ON CONFLICT (device_id) DO UPDATE SET"
                " dropped = dead_letters_dropped.dropped + excluded.dropped,"
                f" last_ms = {self._greatest}(dead_letters_dropped.last_ms, excluded.last_ms),"
                " last_reason = excluded.last_reason")
            _insert_each(
                db, "devices_seen (device_id, kind, last_ts, last_received_ms, last_error)",
                ("text", "text", "bigint", "bigint", "text"),
                [(device, *values) for device, values in batch.seen.items()],
                "ON CONFLICT (device_id) DO UPDATE SET"
                " kind = coalesce(excluded.kind, devices_seen.kind),"
                f" last_ts = {self._greatest}(coalesce(devices_seen.last_ts, 0),"
                " coalesce(excluded.last_ts, 0)),"
                f" last_received_ms = {self._greatest}(devices_seen.last_received_ms,"
                " excluded.last_received_ms),"
                " last_error = coalesce(excluded.last_error, devices_seen.last_error)")
            _insert_each(
                db, "devices_seen (device_id, last_received_ms, online, availability_ms)",
                ("text", "bigint", "smallint", "bigint"),
                [(device, at, int(online), at) for device, (online, at) in batch.availability.items()],
                "ON CONFLICT (device_id) DO UPDATE SET"
                " online = excluded.online, availability_ms = excluded.availability_ms,"
                f" last_received_ms = {self._greatest}(devices_seen.last_received_ms,"
                " excluded.last_received_ms)")
            after = self._max_observation_id(db)
        self._partitions.committed(new_partitions)
        return Committed(before, after, batch.observations)

    @property
    def _greatest(self) -> str:
        """The larger of two values: SQLite's scalar max(), PostgreSQL's greatest()."""
        return "max" if self._pg is None else "greatest"

    def _capped(self, db: sqlite3.Connection | PgConnection,
                dead_letters: list[DeadLetter]) -> tuple[list[DeadLetter], dict[str, list[DeadLetter]]]:
        """The dead letters to keep, and per device those past its cap (to count, not keep)."""
        cap = self._dead_letters_per_device
        if cap is None or not dead_letters:
            return dead_letters, {}
        held: dict[str, int] = {}
        kept: list[DeadLetter] = []
        dropped: dict[str, list[DeadLetter]] = {}
        for dead in dead_letters:
            device = dead.device_id
            if device is None:
                kept.append(dead)
                continue
            if device not in held:
                held[device] = db.execute(
                    "SELECT count(*) FROM dead_letters WHERE device_id = ? AND replayed_ms IS NULL",
                    (device,)).fetchone()[0]
            if held[device] < cap:
                held[device] += 1
                kept.append(dead)
            else:
                dropped.setdefault(device, []).append(dead)
        return kept, dropped

    def dead_letters_dropped(self) -> dict[str, tuple[int, int, str]]:
        """Per device: dead letters counted past its cap and not kept, the newest's arrival and reason."""
        rows = self._db.execute("SELECT device_id, dropped, last_ms, last_reason FROM dead_letters_dropped")
        return {device: (dropped, last_ms, reason) for device, dropped, last_ms, reason in rows}

    def describe_failure(self, exc: Exception) -> str:
        """A failed commit in words an operator can act on: SQLite's message and extended code (its
        "disk I/O error" covers a read-only remount too), plus what the store's file system says now."""
        text = f"{type(exc).__name__}: {exc}"
        code = getattr(exc, "sqlite_errorname", None) or getattr(exc, "sqlstate", None)
        if code:
            text += f" ({code})"
        if self._pg is not None:  # the server's message says it all; no file system of ours to look at
            return text
        try:
            fs = os.statvfs(self.path.parent)
        except OSError:
            return text
        if fs.f_flag & os.ST_RDONLY:
            text += "; the store's file system is read-only"
        elif fs.f_bavail == 0:
            text += "; the store's file system has no space left"
        return text

    @staticmethod
    def _max_observation_id(db: sqlite3.Connection | PgConnection) -> int:
        return int(db.execute("SELECT coalesce(max(id), 0) FROM observations").fetchone()[0])

    # --- reading -------------------------------------------------------------------------------

    def count_observations(self, kind: str | None = None) -> int:
        if kind is None:
            row = self._db.execute("SELECT count(*) FROM observations").fetchone()
        else:
            row = self._db.execute("SELECT count(*) FROM observations WHERE kind = ?", (kind,)).fetchone()
        return int(row[0])

    def counts_by_kind(self) -> dict[str, int]:
        rows = self._db.execute("SELECT kind, count(*) FROM observations GROUP BY kind")
        return {kind: n for kind, n in rows}

    def dead_letter_counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT reason, count(*) FROM dead_letters GROUP BY reason")
        return {reason: n for reason, n in rows}

    def observation_keys(self) -> list[tuple[str, int]]:
        return [(d, ts) for d, ts in self._db.execute("SELECT device_id, ts FROM observations")]

    def observations_after(self, last_id: int, limit: int) -> list[StoredObservation]:
        rows = self._db.execute(
            "SELECT id, device_id, kind, ts, fields, received_ms FROM observations WHERE id > ?"
            " ORDER BY id LIMIT ?",
            (last_id, limit),
        )
        return [StoredObservation(i, d, k, ts, json.loads(f), r) for i, d, k, ts, f, r in rows]

    def recent_observations(self, device_ids: Iterable[str], limit: int,
                            since_ms: int) -> list[StoredObservation]:
        """The newest readings (by device time, from `since_ms` on) of these devices, newest first. It walks
        the time index backwards over every device's readings until `limit` are found: keep the window to
        what a person reads (a day, a week)."""
        wanted = list(device_ids)
        if not wanted:
            return []
        rows = self._db.execute(
            "SELECT id, device_id, kind, ts, fields FROM observations"
            f" WHERE ts >= ? AND device_id IN ({', '.join('?' * len(wanted))})"
            " ORDER BY ts DESC, device_id DESC LIMIT ?",  # the index's order: no sorting
            (since_ms, *wanted, limit))
        return [StoredObservation(i, d, k, ts, json.loads(f)) for i, d, k, ts, f in rows]

    def sensitivity_factors(self) -> tuple[int, dict[str, list[float]]]:
        """The caregivers' factors per resident and band, with the newest change's id
        (`hub.sensitivity.factors`)."""
        return sensitivity.factors(self._db)

    def sensitivity_changes(self, resident: str) -> list[sensitivity.SensitivityChange]:
        return sensitivity.changes(self._db, resident)

    def last_observation_id(self) -> int:
        return int(self._db.execute("SELECT coalesce(max(id), 0) FROM observations").fetchone()[0])

    def liveness(self) -> list[tuple[str, int, bool | None]]:
        """(device, when the hub last heard from it, its last availability) for every device heard."""
        rows = self._db.execute("SELECT device_id, last_received_ms, online FROM devices_seen")
        return [(d, heard, None if online is None else bool(online)) for d, heard, online in rows]

    def availability_since(self, after_ms: int) -> list[tuple[str, bool, int]]:
        """(device, online, when the hub received it) of each device whose last availability message came
        after `after_ms`, oldest first."""
        rows = self._db.execute(
            "SELECT device_id, online, availability_ms FROM devices_seen"
            " WHERE availability_ms > ? AND online IS NOT NULL ORDER BY availability_ms", (after_ms,))
        return [(d, bool(online), at) for d, online, at in rows]

    def device_seen(self, device_id: str) -> dict[str, Any] | None:
        cursor = self._db.execute("SELECT * FROM devices_seen WHERE device_id = ?", (device_id,))
        row = cursor.fetchone()
        return None if row is None else dict(zip([c[0] for c in cursor.description], row, strict=True))

    def dead_letters(
        self,
        *,
        reason: str | None = None,
        ids: Iterable[int] | None = None,
        include_replayed: bool = False,
        limit: int = 100,
    ) -> list[StoredDeadLetter]:
        where: list[str] = []
        args: list[object] = []
        if reason is not None:
            where.append("reason = ?")
            args.append(reason)
        if ids is not None:
            wanted = list(ids)
            where.append(f"id IN ({placeholders(len(wanted))})")
            args += wanted
        if not include_replayed:
            where.append("replayed_ms IS NULL")
        sql = (
            "SELECT id, received_ms, topic, reason, detail, device_id, payload, payload_size, replayed_ms"
            " FROM dead_letters"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._db.execute(sql + " ORDER BY id LIMIT ?", (*args, limit))
        return [StoredDeadLetter(*row) for row in rows]

    def mark_replayed(self, ids: Iterable[int], at_ms: int) -> None:
        with self._transaction() as db:
            db.executemany("UPDATE dead_letters SET replayed_ms = ? WHERE id = ?", [(at_ms, i) for i in ids])

    def update_dead_letter(self, dead_letter_id: int, reason: str, detail: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE dead_letters SET reason = ?, detail = ? WHERE id = ?",
                (reason, detail, dead_letter_id),
            )

    # --- retention and erasure ------------------------------------------------------------------

    def has_table(self, name: str) -> bool:
        if self._pg is not None:
            return self._pg.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()[0] is True
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                (name,)).fetchone() is not None

    def purge(self, select_ids: str, args: Sequence[object], changes: Sequence[str], *,
              chunk: int = 5000) -> int:
        """Change (delete, clear) rows chunk by chunk, one transaction each, so intake waits for one chunk
        at most: `select_ids` selects the ids of the rows still to change (LIMIT is appended), each of
        `changes` runs with `{ids}` standing for them. Freed space is overwritten (secure_delete): what is
        deleted does not linger in the file. Returns how many ids were changed."""
        if self._pg is None:  # PostgreSQL's dead rows go with VACUUM (autovacuum)
            self._db.execute("PRAGMA secure_delete = ON")
        total = 0
        while True:
            with self._transaction() as db:
                ids = [row[0] for row in db.execute(f"{select_ids} LIMIT ?", (*args, chunk))]
                marks = ", ".join("?" * len(ids))
                for change in changes if ids else ():
                    db.execute(change.format(ids=marks), ids)
            total += len(ids)
            if len(ids) < chunk:
                return total

    def drop_readings_before(self, cutoff_ms: int) -> int:
        """Delete the readings whose device time is before `cutoff_ms`; returns how many. On PostgreSQL
        whole days go as partitions (no row-by-row delete, no bloat left), then what is left before the
        cutoff in the day it falls in."""
        dropped = 0
        if self._pg is not None:
            dropped, days = drop_partitions_before(self._pg, cutoff_ms)
            self._partitions.forget(days)
            if cutoff_ms % DAY_MS == 0:
                return dropped
        return dropped + self.purge("SELECT id FROM observations WHERE ts < ?", (cutoff_ms,),
                                    ["DELETE FROM observations WHERE id IN ({ids})"])

    def erase(self, devices: Sequence[str], alert_condition: str, alert_args: Sequence[object],
              resident: str, tombstone: dict[str, Any]) -> dict[str, int]:
        """Delete these devices' readings, dead letters and last-seen rows; anonymise the alerts matching
        `alert_condition` (their history's details, delivery errors too) and the resident's entries in the
        registry audit. One transaction, freed space overwritten, then the log emptied into the file so no
        old copy of a page stays behind. Returns what it removed or anonymised."""
        marks = placeholders(len(devices))
        if self._pg is None:
            self._db.execute("PRAGMA secure_delete = ON")
        with self._transaction() as db:
            readings = db.execute(f"DELETE FROM observations WHERE device_id IN ({marks})", devices).rowcount
            dead = db.execute(f"DELETE FROM dead_letters WHERE device_id IN ({marks})", devices).rowcount
            db.execute(f"DELETE FROM dead_letters_dropped WHERE device_id IN ({marks})", devices)
            db.execute(f"DELETE FROM devices_seen WHERE device_id IN ({marks})", devices)
            # The learned state holds the resident's rhythm too: the next start relearns what is left.
            db.execute("DELETE FROM detector_checkpoints")
            # What caregivers' verdicts taught about them (notes and all): their sensitivity is theirs.
            db.execute("DELETE FROM sensitivity_changes WHERE resident = ?", (resident,))
            # Grid workers' visits to them: notes, outcomes and where the phone was.
            visits = db.execute("DELETE FROM visits WHERE resident = ?", (resident,)).rowcount
            alerts = [row[0] for row in db.execute(f"SELECT id FROM alerts WHERE {alert_condition}",
                                                   alert_args)]
            among = placeholders(len(alerts))
            db.execute("UPDATE alerts SET evidence = '{}', occurrences = '[]', note = '',"
                       " subject = CASE WHEN subject = ? THEN 'erased' ELSE subject END,"
                       " resident = CASE WHEN resident IS NULL THEN NULL ELSE 'erased' END"
                       f" WHERE id IN ({among})", (resident, *alerts))
            db.execute(f"UPDATE alert_events SET detail = '{{}}' WHERE alert_id IN ({among})", alerts)
            db.execute(f"UPDATE alert_deliveries SET last_error = NULL WHERE alert_id IN ({among})", alerts)
            entry = json.dumps(tombstone, ensure_ascii=False)
            audits = db.execute(
                "UPDATE registry_audit SET before = CASE WHEN before IS NULL THEN NULL ELSE ? END, after = ?"
                " WHERE tbl = 'residents' AND entry_id = ?", (entry, entry, resident)).rowcount
        if self._pg is None:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # PostgreSQL keeps deleted row versions in its files until VACUUM reuses the space (autovacuum);
        # docs/operators/postgresql.md says how to make sure they are overwritten.
        return {"readings": readings, "dead_letters": dead, "alerts": len(alerts), "registry_edits": audits,
                "visits": visits}

    def record_erasure(self, resident: str, counts: dict[str, int], *, at_ms: int, actor: str,
                       token_id: str | None, role: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO resident_erasures (at_ms, actor, token_id, role, resident, counts)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
                       (at_ms, actor, token_id, role, resident, json.dumps(counts)))

    def erasures(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT at_ms, actor, token_id, role, resident, counts FROM resident_erasures"
                                " ORDER BY id DESC LIMIT ?", (limit,))
        return [{"at_ms": at, "actor": actor, "token_id": token, "role": role, "resident": resident,
                 "counts": json.loads(counts)} for at, actor, token, role, resident, counts in rows]

    # --- read audit ----------------------------------------------------------------------------

    def record_read(self, read: ResidentRead) -> None:
        """One read of residents' data: who, when, what (a list, an activity view, an export), whose."""
        with self._transaction() as db:
            db.execute("INSERT INTO resident_reads (at_ms, actor, token_id, role, what, residents)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
                       (read.at_ms, read.actor, read.token_id, read.role, read.what,
                        json.dumps(read.residents)))

    def reads(self, resident: str | None = None, limit: int = 1000) -> list[ResidentRead]:
        """The read audit, newest first; with `resident`, the reads that showed that resident's data."""
        showed = ("EXISTS (SELECT 1 FROM json_each(residents) WHERE value = ?)" if self._pg is None
                  else "residents @> jsonb_build_array(?::text)")
        where, args = ("", ()) if resident is None else (f" WHERE {showed}", (resident,))
        rows = self._db.execute("SELECT at_ms, actor, token_id, role, what, residents FROM resident_reads"
                                f"{where} ORDER BY id DESC LIMIT ?", (*args, limit))
        return [ResidentRead(at, actor, token, role, what, json.loads(residents))
                for at, actor, token, role, what, residents in rows]

    # --- registry audit ------------------------------------------------------------------------

    def record_registry_edit(self, edit: RegistryEdit) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO registry_audit"
                " (at_ms, actor, token_id, role, tbl, entry_id, action, before, after)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (edit.at_ms, edit.actor, edit.token_id, edit.role, edit.table, edit.entry_id, edit.action,
                 None if edit.before is None else json.dumps(edit.before, ensure_ascii=False),
                 json.dumps(edit.after, ensure_ascii=False)))
            return int(cursor.fetchone()[0])

    def forget_registry_edit(self, audit_id: int) -> None:
        """Undo `record_registry_edit` for an edit that was not made after all (its file write failed)."""
        with self._transaction() as db:
            db.execute("DELETE FROM registry_audit WHERE id = ?", (audit_id,))

    def registry_edits(self, limit: int = 1000) -> list[RegistryEdit]:
        rows = self._db.execute(
            "SELECT at_ms, actor, token_id, role, tbl, entry_id, action, before, after FROM registry_audit"
            " ORDER BY id LIMIT ?", (limit,))
        return [RegistryEdit(at, actor, token, role, table, entry, action,
                             None if before is None else json.loads(before), json.loads(after))
                for at, actor, token, role, table, entry, action, before, after in rows]

    # --- export cursors ------------------------------------------------------------------------

    def export_cursor(self, sink: str) -> int:
        row = self._db.execute("SELECT last_id FROM export_cursors WHERE sink = ?", (sink,)).fetchone()
        return 0 if row is None else int(row[0])

    def set_export_cursor(self, sink: str, last_id: int) -> None:
        self.set_export_cursors({sink: last_id})

    def set_export_cursors(self, cursors: dict[str, int]) -> None:
        """Several cursors in one transaction (the evaluation's, one per community it owns)."""
        with self._transaction() as db:
            self._set_cursors(db, cursors)

    @staticmethod
    def _set_cursors(db: sqlite3.Connection | PgConnection, cursors: dict[str, int]) -> None:
        db.executemany(
            "INSERT INTO export_cursors (sink, last_id) VALUES (?, ?)"
            " ON CONFLICT (sink) DO UPDATE SET last_id = excluded.last_id",
            list(cursors.items()),
        )

    # --- detector checkpoints --------------------------------------------------------------------

    def save_checkpoints(self, checkpoints: Sequence[Checkpoint], cursors: dict[str, int]) -> None:
        """Replace these communities' checkpoints and move the reader's cursors (sink → last id) with
        them, in one transaction: a start never finds a state that has learned past its evaluation cursor,
        nor one cursor moved without the other."""
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO detector_checkpoints"
                " (community, format, fingerprint, last_id, hub_ms, state, last_fields, habits)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (community) DO UPDATE SET format = excluded.format,"
                " fingerprint = excluded.fingerprint, last_id = excluded.last_id, hub_ms = excluded.hub_ms,"
                " state = excluded.state, last_fields = excluded.last_fields, habits = excluded.habits",
                [(c.community, c.format, c.fingerprint, c.last_id, c.hub_ms, c.state, c.last_fields,
                  c.habits) for c in checkpoints])
            self._set_cursors(db, cursors)

    def checkpoint(self, community: str) -> Checkpoint | None:
        """The community's checkpoint as stored (whether it can be restored is for the reader to judge)."""
        row = self._db.execute(
            "SELECT community, format, fingerprint, last_id, hub_ms, state, last_fields, habits"
            " FROM detector_checkpoints WHERE community = ?", (community,)).fetchone()
        if row is None:
            return None
        community, fmt, fingerprint, last_id, hub_ms, state, last_fields, habits = row
        return Checkpoint(community, fmt, fingerprint, last_id, hub_ms, bytes(state), last_fields, habits)

    # --- visits (hub/visits/) --------------------------------------------------------------------

    def visit(self, visit_id: int) -> Visit | None:
        row = self._db.execute(f"SELECT {_VISIT_COLUMNS} FROM visits WHERE id = ?", (visit_id,)).fetchone()
        return None if row is None else _visit(row)

    def visits(self, where: VisitFilter) -> list[Visit]:
        """Soonest due first."""
        clauses: list[str] = []
        args: list[object] = []
        if where.statuses:
            clauses.append(f"status IN ({placeholders(len(where.statuses))})")
            args += where.statuses
        for column, among in (("household", where.households), ("resident", where.residents),
                              ("community", where.communities)):
            if among is not None:
                clauses.append(f"{column} IN ({placeholders(len(among))})")
                args += sorted(among)
        if where.due_after_ms is not None:
            clauses.append("due_ms >= ?")
            args.append(where.due_after_ms)
        if where.due_before_ms is not None:
            clauses.append("due_ms <= ?")
            args.append(where.due_before_ms)
        condition = " AND ".join(clauses) or "TRUE"
        rows = self._db.execute(f"SELECT {_VISIT_COLUMNS} FROM visits WHERE {condition}"
                                " ORDER BY due_ms, id LIMIT ?", (*args, where.limit))
        return [_visit(row) for row in rows]

    def last_visits_done(self) -> dict[str, int]:
        """Resident → when their last visit was done."""
        rows = self._db.execute("SELECT resident, max(done_ms) FROM visits WHERE status = 'done'"
                                " GROUP BY resident")
        return {resident: int(done) for resident, done in rows}

    def schedule_visit(self, visit: Visit) -> None:
        """Insert an open visit (its id is the store's), unless the resident has one already: another hub
        node may have scheduled it a moment ago."""
        with self._transaction() as db:
            self._insert_visit(db, visit)

    @staticmethod
    def _insert_visit(db: sqlite3.Connection | PgConnection, visit: Visit) -> None:
        db.execute("INSERT INTO visits (resident, community, household, grid, from_ms, due_ms, assigned_to,"
                   " status) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                   (visit.resident, visit.community, visit.household, visit.grid, visit.from_ms, visit.due_ms,
                    visit.assigned_to, visit.status))

    def update_visit(self, visit_id: int, **changes: object) -> None:
        """Change an open visit (its plan, place or status); a visit done or cancelled meanwhile stays."""
        columns = ", ".join(f"{column} = ?" for column in changes)
        with self._transaction() as db:
            db.execute(f"UPDATE visits SET {columns} WHERE id = ? AND status IN ('scheduled', 'overdue')",
                       (*changes.values(), visit_id))

    def record_visit(self, done: Visit, then: Visit | None) -> bool:
        """Record the open visit `done.id` as `done` and schedule `then`, in one transaction; False when it
        was not open any more (recorded or cancelled meanwhile)."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE visits SET status = 'done', done_ms = ?, resident_seen = ?, outcome = ?, note = ?,"
                " lat = ?, lon = ?, recorded_by = ?, token_id = ? WHERE id = ? AND status IN ('scheduled',"
                " 'overdue')",
                (done.done_ms, int(bool(done.resident_seen)), done.outcome, done.note, done.lat, done.lon,
                 done.recorded_by, done.token_id, done.id)).rowcount
            if changed and then is not None:
                self._insert_visit(db, then)
            return bool(changed)
