"""What keeping the whole registry document per version costs at district scale
(`python -m tests.benchmarks.registry_versions`).

A registry of `--residents` people living alone (default 20,000), each in a home of their own with a door
contact, a motion sensor and a wristband, and a family caregiver, spread over 10 communities; on a
PostgreSQL of its own (tests/real_servers.py: initdb, loopback, durability off). Timed: checking and
indexing it (what every load does), its document's size, writing a version, loading the newest, one edit
through the API's editor end to end, and how long after that edit's commit a second node has it in
service. Medians of `--rounds`; docs/operators/postgresql.md has the figures.
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Annotated

import typer

from hub.api.registry_editor import Editor, RegistryEditor
from hub.postgres import PgConnection
from hub.registry import Device, Registry, RegistryFile, RegistryHolder
from hub.registry_sources import PostgresRegistrySource, RegistryFollower, registry_at_start
from hub.store import Store, StoreAt
from tests.real_servers import PostgreSQL, wait_until
from tests.registry_builder import RegistryBuilder


def district(residents: int, communities: int = 10) -> RegistryFile:
    builder = RegistryBuilder()
    per_community = residents // communities
    for c in range(communities):
        builder.community(f"c{c}")
        for i in range(per_community):
            if i % 200 == 0:  # a compound of 200 homes, one building and one grid
                builder.compound(f"c{c}-k{i}").building(f"c{c}-b{i}").grid(f"c{c}-g{i}")
            home = f"c{c}-h{i}"
            builder.household(home, unit=f"{i // 100}-{i % 100:02d}")
            builder.caregiver(f"{home}-cg", f"家属{i}", "family", phone="13800000000")
            builder.resident(f"{home}-r", f"老人{i}", caregivers={f"{home}-cg": 1}, phone="13900000000")
            builder.device(f"{home}-door", "door_sensor").device(f"{home}-pir", "motion_sensor")
            builder.device(f"{home}-band", "wristband", resident=f"{home}-r")
    return builder.build()


def seconds(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def has_device(holder: RegistryHolder, device: str) -> bool:
    return device in holder.current().devices


def allow(_entry: object, _registry: Registry) -> None:
    pass


def main(residents: Annotated[int, typer.Option(min=10)] = 20_000,
         rounds: Annotated[int, typer.Option(min=1)] = 3) -> None:
    file = district(residents)
    raw = file.model_dump(mode="json", exclude_defaults=True)
    document = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
    print(f"{residents:,} residents, {len(file.devices):,} devices: document {len(document) / 1e6:.1f} MB")
    check = seconds(lambda: Registry(RegistryFile.model_validate(raw)), rounds)
    print(f"  check and index (every load): {check:.2f} s")
    server = PostgreSQL().start()
    try:
        url = server.database()
        with TemporaryDirectory() as workdir:
            path = Path(workdir) / "registry.json"
            Registry(file).dump(path)
            version, registry = registry_at_start(url, path, node="bench", kept=rounds + 5)
            Store(Path(workdir) / "unused", url=url).close()  # the audit's tables
            a_holder = RegistryHolder(registry)
            a = PostgresRegistrySource(url, a_holder, version, kept=rounds + 5)
            b_holder = RegistryHolder(registry)
            b = PostgresRegistrySource(url, b_holder, version, kept=rounds + 5)
            # Node b follows only for the edits: in this one process, its loading would hold the GIL while
            # node a's writes and loads are timed.
            follower = RegistryFollower(url, b, poll_s=5)
            try:
                write = seconds(lambda: a.write(lambda r: r, actor="bench", what="same"), rounds)
                print(f"  write a version: {write:.2f} s")
                with closing(PgConnection(url)) as db:
                    stored = db.execute("SELECT pg_column_size(document) FROM registry_versions"
                                        " ORDER BY version DESC LIMIT 1").fetchone()[0]
                print(f"  stored (jsonb, compressed): {stored / 1e6:.1f} MB a version")
                load = seconds(lambda: registry_at_start(url, path, node="bench", kept=9), rounds)
                print(f"  load the newest: {load:.2f} s")
                editor = RegistryEditor(a, a_holder.current, StoreAt(Path(workdir) / "unused", url))
                follower.start()
                wait_until(lambda: b.version == a.version, 60)
                edits, delays = [], []
                for i in range(rounds):
                    started = time.perf_counter()
                    editor.create("devices", Device(id=f"new-{i}", kind="door_sensor", household="c0-h0"),
                                  allow, Editor("bench", "t", "operator"))
                    committed = time.perf_counter()
                    wait_until(functools.partial(has_device, b_holder, f"new-{i}"), 60, interval=0.005)
                    edits.append(committed - started)
                    delays.append(time.perf_counter() - committed)
                print(f"  one edit through the API's editor: {statistics.median(edits):.2f} s")
                print(f"  from its commit to in service on another node: {statistics.median(delays):.2f} s")
            finally:
                if follower.ident is not None:
                    follower.stop()
                a.close()
                b.close()
    finally:
        server.stop()


if __name__ == "__main__":
    typer.run(main)
