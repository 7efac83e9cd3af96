"""The store's schema, versioned: ordered migration steps, each with its SQL for SQLite and for PostgreSQL.

A store records in `schema_version` every step applied to it. Opening a store for writing applies the
steps it has not had, in order, each in one transaction with its version row, under a lock so that two
processes opening the same store at once apply each step once (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a
transaction-level advisory lock). A store newer than this code (a downgrade) is refused.

Step 1 is the baseline, the schema hubs made before versioning. A SQLite store with tables but no
`schema_version` is detected as that baseline: step 1's SQLite text only creates what is missing
(`IF NOT EXISTS`), so it is applied and recorded, and later steps follow. The alert, token and intake
process tables of the baseline are still created by their own modules (`hub/alerts/store.py`,
`hub/api/tokens.py`, `hub/intake_processes.py`), as they were, the first two from their text here, so
that a step changing them can create them first on a store no such module has opened yet; new tables and
changes of any table come here as new steps, for both backends, never as edits of an applied step.

No migration library: the candidates either need SQLAlchemy (Alembic) or keep their state and locking in
ways that differ between sqlite3 and psycopg (yoyo), while what is needed is a list of steps, a version
table and a lock: docs/operators/postgresql.md says more.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.postgres import PgConnection

# Any fixed number, the same in every hub: the advisory lock that serialises migrations on PostgreSQL.
_PG_MIGRATION_LOCK = 0x5C_4D16


class SchemaError(RuntimeError):
    """The store's schema cannot be brought to what this hub needs (a newer store, a failed step)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sqlite: str      # a script of statements; '' where the step has nothing to do on SQLite
    postgresql: str  # likewise


OBSERVATIONS_TABLE_SQLITE = """(
    id          INTEGER PRIMARY KEY,          -- export order; a changed row gets a new id and is re-sent
    device_id   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    ts          INTEGER NOT NULL,             -- device time, epoch ms
    fields      TEXT    NOT NULL,             -- JSON object of the decoded fields
    received_ms INTEGER NOT NULL,             -- hub time on arrival, epoch ms
    UNIQUE (ts, device_id)                    -- time first: see hub/store.py
)"""

# The alert tables and the API token table on SQLite, as hub/alerts/store.py and hub/api/tokens.py made them
# before versioning; a later step that changes them creates them first when they are not there yet.
ALERT_TABLES_SQLITE = """
CREATE TABLE IF NOT EXISTS alerts (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    state           TEXT    NOT NULL,         -- open, acknowledged, resolved
    subject         TEXT    NOT NULL,         -- resident, device or building id
    community       TEXT    NOT NULL,
    building        TEXT    NOT NULL,
    household       TEXT,
    resident        TEXT,
    device          TEXT,
    evidence        TEXT    NOT NULL,         -- JSON object: the newest request's evidence
    occurrences     TEXT    NOT NULL,         -- JSON array of occurrence ids counted (SOS presses, ...)
    count           INTEGER NOT NULL,
    first_seen_ms   INTEGER NOT NULL,
    last_seen_ms    INTEGER NOT NULL,
    tier            INTEGER NOT NULL,         -- highest caregiver tier notified so far
    deadline_ms     INTEGER,                  -- next escalation unless acknowledged; NULL: none pending
    assigned_to     TEXT,
    acknowledged_by TEXT,
    acknowledged_ms INTEGER,
    resolved_by     TEXT,
    resolved_ms     INTEGER,
    outcome         TEXT,
    note            TEXT    NOT NULL DEFAULT ''
);
-- One unresolved alert per (subject, kind): the database refuses a second, whatever the callers do.
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_unresolved ON alerts (subject, kind) WHERE state != 'resolved';
CREATE INDEX IF NOT EXISTS alerts_subject ON alerts (subject, kind, id);
CREATE INDEX IF NOT EXISTS alerts_deadline ON alerts (deadline_ms) WHERE deadline_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS alerts_last_seen ON alerts (last_seen_ms);
CREATE TABLE IF NOT EXISTS alert_events (
    id          INTEGER PRIMARY KEY,
    alert_id    INTEGER NOT NULL REFERENCES alerts (id),
    at_ms       INTEGER NOT NULL,
    actor       TEXT    NOT NULL,             -- a person's name, or "hub"
    action      TEXT    NOT NULL,
    from_state  TEXT,                         -- NULL when the action created the alert
    to_state    TEXT    NOT NULL,
    detail      TEXT    NOT NULL              -- JSON object
);
CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events (alert_id, id);
CREATE INDEX IF NOT EXISTS alert_events_action ON alert_events (action);  -- escalations, counted per scrape
CREATE TABLE IF NOT EXISTS alert_deliveries (
    id              INTEGER PRIMARY KEY,
    alert_id        INTEGER NOT NULL REFERENCES alerts (id),
    event_id        INTEGER NOT NULL REFERENCES alert_events (id),
    reason          TEXT    NOT NULL,
    tier            INTEGER NOT NULL,
    sink            TEXT    NOT NULL,
    recipient       TEXT,                     -- caregiver id; NULL: the sink's own destination
    status          TEXT    NOT NULL,         -- pending, sent, failed (given up)
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    sent_ms         INTEGER
);
-- Changes made where no sink runs (the CLI), for the running hub to tell the caregivers already notified
-- and to show on the live stream; rows go in the same transaction as the change, out as the hub takes them.
CREATE TABLE IF NOT EXISTS alert_handovers (
    event_id    INTEGER PRIMARY KEY REFERENCES alert_events (id),
    alert_id    INTEGER NOT NULL REFERENCES alerts (id),
    tell        TEXT                          -- reason to tell the notified (acknowledged, ...); NULL: none
);
CREATE INDEX IF NOT EXISTS alert_deliveries_alert ON alert_deliveries (alert_id, id);
CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (sink, next_attempt_ms)
    WHERE status = 'pending';
"""

API_TOKENS_TABLE_SQLITE = """(
    id           TEXT PRIMARY KEY,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    caregiver    TEXT,                        -- registry caregiver id, for the caregiver role
    communities  TEXT    NOT NULL,            -- JSON array of community ids; ["*"]: every community
    token_sha256 TEXT    NOT NULL UNIQUE,     -- hex; the token itself is never stored
    created_ms   INTEGER NOT NULL,
    revoked_ms   INTEGER,
    expires_ms   INTEGER                      -- NULL: never expires
)"""

_SQLITE_BASELINE = f"""
CREATE TABLE IF NOT EXISTS observations {OBSERVATIONS_TABLE_SQLITE};
CREATE TABLE IF NOT EXISTS dead_letters (
    id           INTEGER PRIMARY KEY,
    received_ms  INTEGER NOT NULL,
    topic        TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    device_id    TEXT,
    payload      BLOB    NOT NULL,            -- capped at settings.dead_letter_keep_bytes
    payload_size INTEGER NOT NULL,            -- the size as received
    replayed_ms  INTEGER                      -- set once a replay stored it
);
CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason, id);
CREATE INDEX IF NOT EXISTS dead_letters_device ON dead_letters (device_id, replayed_ms);
CREATE TABLE IF NOT EXISTS dead_letters_dropped ( -- past a device's cap: counted, not kept
    device_id    TEXT PRIMARY KEY,
    dropped      INTEGER NOT NULL,
    last_ms      INTEGER NOT NULL,            -- arrival of the newest dropped one
    last_reason  TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS devices_seen (
    device_id       TEXT PRIMARY KEY,
    kind            TEXT,
    last_ts         INTEGER,                  -- newest device time of a valid reading
    last_received_ms INTEGER NOT NULL,        -- newest message of any kind, valid or not
    online          INTEGER,                  -- last availability message: 1, 0, or NULL if none yet
    availability_ms INTEGER,
    last_error      TEXT                      -- reason of the newest message that failed to decode
);
CREATE TABLE IF NOT EXISTS registry_audit (    -- every registry edit made through the API
    id        INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,               -- wall-clock time of the edit, epoch ms
    actor     TEXT    NOT NULL,               -- the token's name
    token_id  TEXT    NOT NULL,
    role      TEXT    NOT NULL,
    tbl       TEXT    NOT NULL,               -- registry table: devices, caregivers, ...
    entry_id  TEXT    NOT NULL,
    action    TEXT    NOT NULL,               -- create, update, deactivate
    before    TEXT,                           -- the entry as JSON; NULL when created
    after     TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS resident_reads (   -- the read audit: who was shown which residents' data
    id        INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,               -- wall-clock time, epoch ms
    actor     TEXT    NOT NULL,               -- the token's name
    token_id  TEXT    NOT NULL,
    role      TEXT    NOT NULL,
    what      TEXT    NOT NULL,               -- residents (a list), activity, export
    residents TEXT    NOT NULL                -- JSON array of the resident ids shown
);
CREATE INDEX IF NOT EXISTS resident_reads_at ON resident_reads (at_ms);
CREATE TABLE IF NOT EXISTS resident_erasures ( -- kept: the proof a resident's data was erased, and what
    id        INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    token_id  TEXT,                           -- NULL: erased with the CLI
    role      TEXT    NOT NULL,
    resident  TEXT    NOT NULL,               -- the registry id (a pseudonym; the entry keeps no name)
    counts    TEXT    NOT NULL                -- JSON: what was removed or anonymised, for statistics
);
CREATE TABLE IF NOT EXISTS export_cursors (
    sink    TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
);
"""

# Intake's part of the schema on PostgreSQL: the same tables and keys as SQLite's, with PostgreSQL's
# types. Observations are partitioned by device time (one partition per UTC day, created by the writer as
# data for it arrives: hub/postgres.py), so retention drops whole days. Their ids come from one sequence;
# writers take turns (an advisory lock, as SQLite's write lock does) so ids grow in commit order and a
# reader's cursor never skips a row committed later with a lower id.
_POSTGRESQL_INTAKE = """
CREATE SEQUENCE observations_id_seq AS bigint;
CREATE TABLE observations (
    id          bigint NOT NULL DEFAULT nextval('observations_id_seq'),
    device_id   text   NOT NULL,
    kind        text   NOT NULL,
    ts          bigint NOT NULL,
    fields      jsonb  NOT NULL,
    received_ms bigint NOT NULL,
    UNIQUE (ts, device_id)
) PARTITION BY RANGE (ts);
ALTER SEQUENCE observations_id_seq OWNED BY observations.id;
CREATE INDEX observations_id ON observations (id);
CREATE TABLE dead_letters (
    id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    received_ms  bigint  NOT NULL,
    topic        text    NOT NULL,
    reason       text    NOT NULL,
    detail       text    NOT NULL,
    device_id    text,
    payload      bytea   NOT NULL,
    payload_size integer NOT NULL,
    replayed_ms  bigint
);
CREATE INDEX dead_letters_reason ON dead_letters (reason, id);
CREATE INDEX dead_letters_device ON dead_letters (device_id, replayed_ms);
CREATE TABLE dead_letters_dropped (
    device_id    text PRIMARY KEY,
    dropped      bigint NOT NULL,
    last_ms      bigint NOT NULL,
    last_reason  text   NOT NULL
);
CREATE TABLE devices_seen (
    device_id        text PRIMARY KEY,
    kind             text,
    last_ts          bigint,
    last_received_ms bigint NOT NULL,
    online           smallint,
    availability_ms  bigint,
    last_error       text
);
CREATE TABLE export_cursors (
    sink    text PRIMARY KEY,
    last_id bigint NOT NULL
);
CREATE TABLE intake_workers (
    name         text PRIMARY KEY,
    pid          integer NOT NULL,
    settled_ms   bigint  NOT NULL,
    messages     bigint  NOT NULL,
    reported_ms  bigint  NOT NULL,
    stats        text    NOT NULL DEFAULT '{}'
);
"""

# The alert loop's tables on PostgreSQL, as hub/alerts/store.py makes them on SQLite (where they are part
# of the baseline: nothing to do there).
_POSTGRESQL_ALERTS = """
CREATE TABLE alerts (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind            text    NOT NULL,
    severity        text    NOT NULL,
    state           text    NOT NULL,
    subject         text    NOT NULL,
    community       text    NOT NULL,
    building        text    NOT NULL,
    household       text,
    resident        text,
    device          text,
    evidence        jsonb   NOT NULL,
    occurrences     jsonb   NOT NULL,
    count           integer NOT NULL,
    first_seen_ms   bigint  NOT NULL,
    last_seen_ms    bigint  NOT NULL,
    tier            integer NOT NULL,
    deadline_ms     bigint,
    assigned_to     text,
    acknowledged_by text,
    acknowledged_ms bigint,
    resolved_by     text,
    resolved_ms     bigint,
    outcome         text,
    note            text    NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX alerts_one_unresolved ON alerts (subject, kind) WHERE state != 'resolved';
CREATE INDEX alerts_subject ON alerts (subject, kind, id);
CREATE INDEX alerts_deadline ON alerts (deadline_ms) WHERE deadline_ms IS NOT NULL;
CREATE INDEX alerts_last_seen ON alerts (last_seen_ms);
CREATE TABLE alert_events (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts (id),
    at_ms       bigint NOT NULL,
    actor       text   NOT NULL,
    action      text   NOT NULL,
    from_state  text,
    to_state    text   NOT NULL,
    detail      jsonb  NOT NULL
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);
CREATE INDEX alert_events_action ON alert_events (action);
CREATE TABLE alert_deliveries (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    alert_id        bigint  NOT NULL REFERENCES alerts (id),
    event_id        bigint  NOT NULL REFERENCES alert_events (id),
    reason          text    NOT NULL,
    tier            integer NOT NULL,
    sink            text    NOT NULL,
    recipient       text,
    status          text    NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_ms bigint  NOT NULL,
    last_error      text,
    sent_ms         bigint
);
CREATE TABLE alert_handovers (
    event_id    bigint PRIMARY KEY REFERENCES alert_events (id),
    alert_id    bigint NOT NULL REFERENCES alerts (id),
    tell        text
);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id, id);
CREATE INDEX alert_deliveries_due ON alert_deliveries (sink, next_attempt_ms) WHERE status = 'pending';
"""

# API tokens and the audits on PostgreSQL, as hub/api/tokens.py and the baseline make them on SQLite.
_POSTGRESQL_TOKENS_AND_AUDITS = """
CREATE TABLE api_tokens (
    id           text   PRIMARY KEY,
    name         text   NOT NULL,
    role         text   NOT NULL,
    caregiver    text,
    communities  text   NOT NULL,
    token_sha256 text   NOT NULL UNIQUE,
    created_ms   bigint NOT NULL,
    revoked_ms   bigint,
    expires_ms   bigint
);
CREATE TABLE registry_audit (
    id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at_ms     bigint NOT NULL,
    actor     text   NOT NULL,
    token_id  text   NOT NULL,
    role      text   NOT NULL,
    tbl       text   NOT NULL,
    entry_id  text   NOT NULL,
    action    text   NOT NULL,
    before    text,
    after     text   NOT NULL
);
CREATE TABLE resident_reads (
    id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at_ms     bigint NOT NULL,
    actor     text   NOT NULL,
    token_id  text   NOT NULL,
    role      text   NOT NULL,
    what      text   NOT NULL,
    residents jsonb  NOT NULL
);
CREATE INDEX resident_reads_at ON resident_reads (at_ms);
CREATE INDEX resident_reads_residents ON resident_reads USING gin (residents);
CREATE TABLE resident_erasures (
    id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at_ms     bigint NOT NULL,
    actor     text   NOT NULL,
    token_id  text,
    role      text   NOT NULL,
    resident  text   NOT NULL,
    counts    text   NOT NULL
);
"""

# Each community's learned detector state (hub/checkpoints.py): a start restores it and relearns only the
# observations after `last_id`. One row per community, replaced whole by each checkpoint.
_CHECKPOINTS = """
CREATE TABLE IF NOT EXISTS detector_checkpoints (
    community   TEXT    PRIMARY KEY,
    format      INTEGER NOT NULL,             -- detectors.STATE_FORMAT when taken
    fingerprint TEXT    NOT NULL,             -- InactivityDetector.fingerprint(): parameters and layout
    last_id     BIGINT  NOT NULL,             -- observations up to this id are learned in `state`
    hub_ms      BIGINT  NOT NULL,             -- hub time through which time-driven checks had run
    state       {blob}  NOT NULL,             -- detectors.state_to_bytes: one row per resident
    last_fields TEXT    NOT NULL,             -- JSON: each device's last fields (what a change is)
    habits      TEXT    NOT NULL DEFAULT '{{}}' -- JSON: the safety rules' habits (the days a band was worn)
);
"""

# Caregivers' verdicts on inactivity alerts, per resident and time-of-day band (hub/sensitivity.py): the
# audit of each change and, by its newest row per (resident, band), the current factor.
_SENSITIVITY_CHANGES = """
CREATE TABLE IF NOT EXISTS sensitivity_changes (
    id          {id},
    resident    TEXT    NOT NULL,
    band        INTEGER NOT NULL,             -- hub.sensitivity.BANDS index
    at_ms       BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    cause       TEXT    NOT NULL,             -- false_alarm, missed, reverted
    alert_id    BIGINT,                       -- the false alarm
    incident_ms BIGINT,                       -- the missed incident: when it happened
    reverts     BIGINT,                       -- the change this one reverses
    old_value   {real}  NOT NULL,
    new_value   {real}  NOT NULL,
    note        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sensitivity_changes_resident ON sensitivity_changes (resident, band, id);
"""

# Hub nodes sharing one PostgreSQL (hub/leases.py): the live nodes, each heartbeating its row, and which
# node owns each community's evaluation until when. Times are the database's clock, the one clock every
# node reads. Nothing on SQLite: one node, owning everything, without leases.
_POSTGRESQL_NODES = """
CREATE TABLE hub_nodes (
    node_id      text        PRIMARY KEY,
    communities  text        NOT NULL,    -- HUB_COMMUNITIES, comma-separated; '' = every community
    heartbeat_at timestamptz NOT NULL
);
CREATE TABLE community_leases (
    community   text        PRIMARY KEY,
    owner       text        NOT NULL,
    expires_at  timestamptz NOT NULL
);
"""

# The registry on PostgreSQL (hub/registry_sources.py): each version of the whole registry document, the
# newest in service on every node; who made it and what it was, for the operator reading the history.
# Nothing on SQLite: there the registry file is the registry.
_POSTGRESQL_REGISTRY_VERSIONS = """
CREATE TABLE registry_versions (
    version  integer PRIMARY KEY,
    at_ms    bigint  NOT NULL,
    actor    text    NOT NULL,    -- a token's name, `hub registry import`, a node importing its file
    what     text    NOT NULL,    -- the edit: `create devices band-9`, `import registry.yaml`
    document jsonb   NOT NULL     -- the registry file's model, as `hub registry export` writes it
);
"""

# The registry's levels (devices/registry.py): each alert's grid, filled at raise time from the registry
# (NULL for a building's alerts and those raised before), and each API token's places besides its
# communities (JSON: {"districts": [...], "grids": [...], ...}; NULL: none). On SQLite the two tables are
# made by their modules; whichever opens a store first, the step finds them.
_HIERARCHY_SQLITE = f"""
{ALERT_TABLES_SQLITE}
ALTER TABLE alerts ADD COLUMN grid TEXT;
CREATE INDEX IF NOT EXISTS alerts_grid ON alerts (grid);
CREATE TABLE IF NOT EXISTS api_tokens {API_TOKENS_TABLE_SQLITE};
ALTER TABLE api_tokens ADD COLUMN places TEXT;
"""
_HIERARCHY_POSTGRESQL = """
ALTER TABLE alerts ADD COLUMN grid text;
CREATE INDEX alerts_grid ON alerts (grid);
ALTER TABLE api_tokens ADD COLUMN places text;
"""

# Planned visits of grid workers (hub/visits/): at most one open (scheduled or overdue) per resident, done
# ones kept as the record of the visit until retention removes them.
_VISITS = """
CREATE TABLE IF NOT EXISTS visits (
    id            {id},
    resident      TEXT    NOT NULL,
    community     TEXT    NOT NULL,
    household     TEXT    NOT NULL,
    grid          TEXT    NOT NULL,
    from_ms       BIGINT  NOT NULL,             -- what `due_ms` counts from: the last visit done, or the plan
    due_ms        BIGINT  NOT NULL,
    assigned_to   TEXT,                         -- the grid's first worker when scheduled
    status        TEXT    NOT NULL,             -- scheduled, overdue, done, cancelled
    alert_id      BIGINT,                       -- the visit_overdue alert, once raised
    done_ms       BIGINT,
    resident_seen INTEGER,                      -- 1: the worker saw the resident
    outcome       TEXT,                         -- ok, concern, not_home, referred
    note          TEXT    NOT NULL DEFAULT '',
    lat           {real},                       -- the worker's phone, when it allowed it
    lon           {real},
    recorded_by   TEXT,
    token_id      TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS visits_one_open ON visits (resident)
    WHERE status IN ('scheduled', 'overdue');
CREATE INDEX IF NOT EXISTS visits_due ON visits (status, due_ms);
"""

# Every batch updates the liveness row of each device it holds (`devices_seen`): thousands of updates a
# second of the same few thousand rows. Room left on each page lets PostgreSQL update a row in place on
# its page (a HOT update: no new index entry, the old version pruned with the page), where full pages move
# every new version to another page and add an index entry for it. Pages written from now on; VACUUM FULL
# rewrites the others. Nothing on SQLite, which updates rows in place.
_POSTGRESQL_DEVICES_SEEN_ROOM = """
ALTER TABLE devices_seen SET (fillfactor = 50);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline: intake (observations, dead letters, devices seen, cursors)",
              sqlite=_SQLITE_BASELINE, postgresql=_POSTGRESQL_INTAKE),
    Migration(2, "alerts, their history, deliveries and hand-overs on PostgreSQL",
              sqlite="", postgresql=_POSTGRESQL_ALERTS),
    Migration(3, "API tokens and the registry, read and erasure audits on PostgreSQL",
              sqlite="", postgresql=_POSTGRESQL_TOKENS_AND_AUDITS),
    Migration(4, "each community's detector checkpoint",
              sqlite=_CHECKPOINTS.format(blob="BLOB"), postgresql=_CHECKPOINTS.format(blob="bytea")),
    Migration(5, "inactivity sensitivity per resident and time of day, learned from caregivers' verdicts",
              sqlite=_SENSITIVITY_CHANGES.format(id="INTEGER PRIMARY KEY", real="REAL"),
              postgresql=_SENSITIVITY_CHANGES.format(id="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                                                     real="DOUBLE PRECISION")),
    Migration(6, "hub nodes and the leases of community evaluation on PostgreSQL",
              sqlite="", postgresql=_POSTGRESQL_NODES),
    Migration(7, "the registry's versions on PostgreSQL",
              sqlite="", postgresql=_POSTGRESQL_REGISTRY_VERSIONS),
    Migration(8, "the registry's levels: each alert's grid, each API token's places",
              sqlite=_HIERARCHY_SQLITE, postgresql=_HIERARCHY_POSTGRESQL),
    Migration(9, "grid workers' planned visits to residents",
              sqlite=_VISITS.format(id="INTEGER PRIMARY KEY", real="REAL"),
              postgresql=_VISITS.format(id="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                                        real="DOUBLE PRECISION")),
    Migration(10, "room on the pages of devices' liveness rows for their updates on PostgreSQL",
              sqlite="", postgresql=_POSTGRESQL_DEVICES_SEEN_ROOM),
)

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version    integer PRIMARY KEY,
    name       text    NOT NULL,
    applied_ms bigint  NOT NULL
)"""


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return migrations[-1].version


def _check_order(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise SchemaError(f"migration versions must be 1, 2, 3 … in order, not {versions}")


def _refuse_newer(current: int, migrations: Sequence[Migration]) -> None:
    if current > latest_version(migrations):
        raise SchemaError(f"the store's schema is version {current}, newer than this hub knows "
                          f"({latest_version(migrations)}): run the hub version that made it, or a newer one")


def _record(migration: Migration) -> tuple[int, str, int]:
    return migration.version, migration.name, int(time.time() * 1000)


def sqlite_statements(script: str) -> list[str]:
    """A script's statements one by one (executescript() would commit the transaction they belong in)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise SchemaError(f"an incomplete statement ends a migration: {pending.strip()[:80]!r}")
    return statements


def migrate_sqlite(db: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the steps `db` has not had; returns their versions. `db` is in autocommit mode
    (isolation_level=None)."""
    _check_order(migrations)
    db.execute(_VERSION_TABLE)
    applied: list[int] = []
    for migration in migrations:
        db.execute("BEGIN IMMEDIATE")  # the check and the step under one write lock: applied once
        try:
            current = db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            _refuse_newer(current, migrations)
            if current >= migration.version:
                db.execute("ROLLBACK")
                continue
            for statement in sqlite_statements(migration.sqlite):
                db.execute(statement)
            db.execute("INSERT INTO schema_version (version, name, applied_ms) VALUES (?, ?, ?)",
                       _record(migration))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied


def migrate_postgresql(db: PgConnection, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the steps the database has not had, each in its own transaction; returns their versions."""
    _check_order(migrations)
    applied: list[int] = []
    for migration in migrations:
        with db.transaction(lock=_PG_MIGRATION_LOCK):
            db.execute(_VERSION_TABLE)
            current = db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            _refuse_newer(current, migrations)
            if current >= migration.version:
                continue
            if migration.postgresql.strip():
                db.execute_script(migration.postgresql)
            db.execute("INSERT INTO schema_version (version, name, applied_ms) VALUES (?, ?, ?)",
                       _record(migration))
        applied.append(migration.version)
    return applied


def sqlite_version(db: sqlite3.Connection) -> int:
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone() is None:
        return 0
    return int(db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])
