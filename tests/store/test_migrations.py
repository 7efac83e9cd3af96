"""The store's schema is versioned on both backends: a SQLite store made before versioning is the baseline
and upgrades in place, a fresh PostgreSQL database migrates, a second run does nothing, later steps apply
in order and atomically, and a store newer than the code is refused."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from hub.migrations import (
    MIGRATIONS,
    Migration,
    SchemaError,
    latest_version,
    migrate_postgresql,
    migrate_sqlite,
    sqlite_statements,
    sqlite_version,
)
from hub.postgres import PgConnection
from hub.store import Batch, Observation, Store

TS = 1_763_856_000_000
# A later step as the next real one will look: a new table on both backends.
NEXT = Migration(latest_version() + 1, "a later step", sqlite="CREATE TABLE later (id INTEGER PRIMARY KEY);",
                 postgresql="CREATE TABLE later (id bigint PRIMARY KEY);")


def test_an_unversioned_sqlite_store_is_the_baseline_and_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    old = sqlite3.connect(path)  # what hubs made before versioning: the baseline tables, no version
    for statement in sqlite_statements(MIGRATIONS[0].sqlite):
        old.execute(statement)
    old.execute("INSERT INTO observations VALUES (7, 'door-1', 'door_sensor', ?, ?, 1)",
                (TS, '{"open":true}'))
    old.commit()
    old.close()

    store = Store(path)
    assert [(o.id, o.fields) for o in store.observations_after(0, 10)] == [(7, {"open": True})], "kept"
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    assert sqlite_version(db) == latest_version()
    assert migrate_sqlite(db) == [], "a second run does nothing"
    assert migrate_sqlite(db, [*MIGRATIONS, NEXT]) == [NEXT.version], "later steps follow"
    assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'later'").fetchone() is not None
    assert migrate_sqlite(db, [*MIGRATIONS, NEXT]) == []
    db.close()


def test_a_sqlite_store_newer_than_the_hub_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    migrate_sqlite(db, [*MIGRATIONS, NEXT])
    db.close()
    with pytest.raises(SchemaError, match="newer than this hub knows"):
        Store(path)


def test_a_failed_sqlite_step_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    Store(path).close()
    broken = Migration(NEXT.version, "broken", sqlite="CREATE TABLE half (id INTEGER);\nNOT SQL;",
                       postgresql="")
    db = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        migrate_sqlite(db, [*MIGRATIONS, broken])
    assert sqlite_version(db) == latest_version()
    assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'half'").fetchone() is None
    db.close()


def test_a_fresh_postgresql_database_migrates_once(pg_url: str) -> None:
    store = Store(Path("unused"), url=pg_url)
    batch = Batch()
    batch.add_observation(Observation("door-1", "door_sensor", TS, {"open": True}, TS), TS)
    store.commit(batch)
    store.close()
    db = PgConnection(pg_url)
    try:
        assert [v for (v,) in db.execute("SELECT version FROM schema_version ORDER BY version")] == [
            m.version for m in MIGRATIONS]
        assert migrate_postgresql(db) == [], "a second run does nothing"
        assert migrate_postgresql(db, [*MIGRATIONS, NEXT]) == [NEXT.version]
        assert migrate_postgresql(db, [*MIGRATIONS, NEXT]) == []
    finally:
        db.close()
    with pytest.raises(SchemaError, match="newer than this hub knows"):
        Store(Path("unused"), url=pg_url)


def test_postgresql_migrations_run_once_when_two_hubs_start_together(pg_url: str) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        db = PgConnection(pg_url)
        try:
            results.append(migrate_postgresql(db, [*MIGRATIONS, NEXT]))
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(v for applied in results for v in applied) == [m.version for m in [*MIGRATIONS, NEXT]]


def test_a_failed_postgresql_step_leaves_the_database_as_it_was(pg_url: str) -> None:
    Store(Path("unused"), url=pg_url).close()
    broken = Migration(NEXT.version, "broken", sqlite="",
                       postgresql="CREATE TABLE half (id bigint);\nNOT SQL;")
    db = PgConnection(pg_url)
    try:
        with pytest.raises(psycopg.errors.SyntaxError):
            migrate_postgresql(db, [*MIGRATIONS, broken])
        assert db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == latest_version()
        assert db.execute("SELECT to_regclass('half')").fetchone()[0] is None
    finally:
        db.close()
