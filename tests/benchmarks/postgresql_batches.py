"""How intake's batches go into PostgreSQL fastest (`python -m tests.benchmarks.postgresql_batches`).

On a PostgreSQL of its own (tests/real_servers.py: initdb, loopback; durable, fsync and synchronous
commits on, unless `--no-durable`), the same batches of readings from many devices, written three ways:
COPY into a staging table then one INSERT … SELECT … ON CONFLICT (hub/postgres.py, what the store does)
and the same upsert row by row through psycopg's pipelined `executemany`, both inside the writer's
transaction; and the whole `Store.commit` of each batch (the readings, and each device's liveness row in
`devices_seen`). Each way gets a fresh database and `--rounds` alternating rounds; readings per second
are printed (docs/operators/postgresql.md).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Annotated

import typer

from hub.migrations import migrate_postgresql
from hub.postgres import Partitions, PgConnection, upsert_observations
from hub.store import Batch, Observation, Store
from tests.real_servers import PostgreSQL

ROW_BY_ROW = """INSERT INTO observations AS o (device_id, kind, ts, fields, received_ms)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (ts, device_id) DO UPDATE SET fields = o.fields || excluded.fields,
    id = nextval('observations_id_seq')
WHERE o.fields || excluded.fields IS DISTINCT FROM o.fields"""

T0 = 1_763_856_000_000


def batches(count: int, size: int, devices: int) -> list[list[tuple[str, str, int, str, int]]]:
    rnd = random.Random(1)
    return [[(f"band-{i % devices}", "wristband", T0 + b * 1000 + i // devices,
              json.dumps({"heart_rate": rnd.randint(50, 120), "steps": rnd.randint(0, 50), "worn": True}),
              T0 + b * 1000) for i in range(size)] for b in range(count)]


def as_batch(rows: list[tuple[str, str, int, str, int]]) -> Batch:
    batch = Batch()
    for device, kind, ts, fields, received_ms in rows:
        batch.add_observation(Observation(device, kind, ts, json.loads(fields), received_ms), received_ms)
    return batch


def readings_per_s(server: PostgreSQL, way: str, data: list[list[tuple[str, str, int, str, int]]]) -> float:
    url = server.database()
    db = PgConnection(url)
    try:
        migrate_postgresql(db)
        if way == "store":
            store = Store(Path("unused"), url=url)
            prepared = [as_batch(rows) for rows in data]
            started = time.perf_counter()
            for batch in prepared:
                store.commit(batch)
            elapsed = time.perf_counter() - started
            store.close()
        else:
            partitions = Partitions()
            started = time.perf_counter()
            for rows in data:
                with db.transaction():
                    partitions.committed(partitions.ensure(db, [row[2] for row in rows]))
                    if way == "copy":
                        upsert_observations(db, rows)
                    else:
                        db.executemany(ROW_BY_ROW, rows)
            elapsed = time.perf_counter() - started
        stored = db.execute("SELECT count(*) FROM observations").fetchone()[0]
        assert stored == sum(len(rows) for rows in data), "every reading stored once"
    finally:
        db.close()
        server.drop(url)
    return sum(len(rows) for rows in data) / elapsed


def main(
    rounds: Annotated[int, typer.Option(min=1)] = 2,
    durable: Annotated[bool, typer.Option(help="fsync and synchronous commits, as in production")] = True,
    batches_per_round: Annotated[int, typer.Option("--batches", min=1)] = 40,
    size: Annotated[int, typer.Option(min=1, help="readings per batch")] = 5000,
    devices: Annotated[int, typer.Option(min=1)] = 5000,
) -> None:
    data = batches(batches_per_round, size, devices)
    server = PostgreSQL(durable=durable).start()
    try:
        for n in range(1, rounds + 1):
            for way, label in (("copy", "COPY + INSERT … SELECT ON CONFLICT"),
                               ("rows", "row-by-row upserts, pipelined executemany"),
                               ("store", "Store.commit, readings and devices' liveness")):
                print(f"round {n}: {label}: {readings_per_s(server, way, data):,.0f} readings/s")
    finally:
        server.stop()


if __name__ == "__main__":
    typer.run(main)
