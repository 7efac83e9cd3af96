"""PostgreSQL as the store (`HUB_STORE_URL=postgresql://…`): the connection the store's SQL runs on, the
writers' turn, the daily partitions of observations and the batch write through COPY.

`hub.store.Store` keeps one text of each statement for both backends, written with `?` placeholders as
sqlite3 takes them; `PgConnection` turns them into psycopg's `%s`. Where the dialects differ (the
observation upsert, partitions, retention by partition) the store asks this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import psycopg
from psycopg.types.string import TextLoader

# Every writer of one store takes this transaction-level advisory lock before it writes, as SQLite's
# writers take its write lock: ids then grow in commit order (readers follow observations by id), and
# partitions are created by one writer at a time. Any fixed number, the same in every hub.
WRITER_LOCK = 0x5C_1417

DAY_MS = 24 * 3600 * 1000
_PARTITION = re.compile(r"^observations_(\d{8})$")


class Rows(Protocol):
    """What the store reads from a statement's cursor, as sqlite3's cursor gives it (rows as tuples)."""

    description: Any
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class PgConnection:
    """A psycopg connection in autocommit mode (transactions are explicit, as with sqlite3's
    isolation_level=None) that takes the store's `?` placeholders."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.raw = psycopg.connect(url, autocommit=True)
        # jsonb comes back as its text, as SQLite's JSON columns do: one decoding for both backends.
        self.raw.adapters.register_loader("jsonb", TextLoader)
        if read_only:
            self.raw.execute("SET default_transaction_read_only = on")

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        # The statements are the store's constants (never data), hence not psycopg's literal-string type.
        return cast(Rows, self.raw.execute(self._sql(sql).encode(), args))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:  # psycopg pipelines these: one round trip, not one per row
            with self.raw.cursor() as cursor:
                cursor.executemany(self._sql(sql).encode(), rows)

    def execute_script(self, script: str) -> None:
        """Statements separated by `;` at line ends, run as written (no placeholders)."""
        for statement in re.split(r";\s*$", script, flags=re.MULTILINE):
            if statement.strip():
                self.raw.execute(statement.encode())

    @contextmanager
    def transaction(self, *, lock: int | None = WRITER_LOCK) -> Iterator[PgConnection]:
        with self.raw.transaction():
            if lock is not None:
                self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            yield self

    def close(self) -> None:
        self.raw.close()


def partition_name(day_start_ms: int) -> str:
    return f"observations_{datetime.fromtimestamp(day_start_ms / 1000, UTC):%Y%m%d}"


def partition_day(name: str) -> int | None:
    """The first ms of the day a partition (named by `partition_name`) holds; None for another table."""
    match = _PARTITION.match(name)
    if match is None:
        return None
    return int(datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC).timestamp() * 1000)


class Partitions:
    """The daily partitions of observations one connection knows to exist. A batch's days, and the day
    after each, are created before its rows go in (inside the writer's turn, so two writers never race
    to create one): the next day's partition is there before midnight."""

    def __init__(self) -> None:
        self._known: set[int] = set()

    def ensure(self, db: PgConnection, timestamps: Sequence[int]) -> list[int]:
        """Create the partitions these readings need that this connection has not seen; returns their
        days, to `committed()` once the transaction is (a rolled-back one takes its partitions with it)."""
        days = {ts - ts % DAY_MS for ts in timestamps}
        wanted = sorted((days | {day + DAY_MS for day in days}) - self._known)
        for day in wanted:
            db.execute(f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF observations"
                       f" FOR VALUES FROM ({day}) TO ({day + DAY_MS})")
        return wanted

    def committed(self, days: Sequence[int]) -> None:
        self._known.update(days)

    def forget(self, days: Sequence[int]) -> None:
        self._known.difference_update(days)


def existing_partitions(db: PgConnection) -> dict[str, int]:
    """Every daily partition of observations: name → first ms of its day."""
    rows = db.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                      " WHERE i.inhparent = 'observations'::regclass")
    return {name: day for (name,) in rows if (day := partition_day(name)) is not None}


def drop_partitions_before(db: PgConnection, cutoff_ms: int) -> tuple[int, list[int]]:
    """Drop the partitions wholly before `cutoff_ms`, in the writer's turn; returns how many rows they
    held and their days."""
    with db.transaction():
        rows = 0
        days: list[int] = []
        for name, day in sorted(existing_partitions(db).items(), key=lambda item: item[1]):
            if day + DAY_MS > cutoff_ms:
                continue
            rows += db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            db.execute(f"DROP TABLE {name}")
            days.append(day)
    return rows, days


# Batches go in through COPY into a per-connection staging table, then one INSERT … SELECT … ON CONFLICT:
# a round trip for the rows instead of one statement per row. ON CONFLICT DO UPDATE may touch a row once
# per statement, so the caller merges repeats of one (ts, device) within the batch first.
_STAGING = """CREATE TEMPORARY TABLE IF NOT EXISTS observations_staging (
    device_id text, kind text, ts bigint, fields jsonb, received_ms bigint
) ON COMMIT DELETE ROWS"""

# As on SQLite (hub/store.py): a second message for the same (ts, device) merges its fields in, and a
# changed row takes a new id so the exporters send it again. Fields are flat objects of scalars, where
# jsonb's `||` is what SQLite's json_patch does.
_UPSERT_STAGED = """INSERT INTO observations AS o (device_id, kind, ts, fields, received_ms)
SELECT device_id, kind, ts, fields, received_ms FROM observations_staging
ON CONFLICT (ts, device_id) DO UPDATE SET
    fields = o.fields || excluded.fields,
    id = nextval('observations_id_seq')
WHERE o.fields || excluded.fields IS DISTINCT FROM o.fields"""


def upsert_observations(db: PgConnection, rows: Sequence[tuple[str, str, int, str, int]]) -> None:
    """(device_id, kind, ts, fields as JSON text, received_ms), unique on (ts, device_id), inside the
    writer's transaction."""
    db.raw.execute(_STAGING)
    with db.raw.cursor() as cursor, cursor.copy(
            "COPY observations_staging (device_id, kind, ts, fields, received_ms) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    db.raw.execute(_UPSERT_STAGED)

