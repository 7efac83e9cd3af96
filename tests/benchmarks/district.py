"""District sizing (`python -m tests.benchmarks.district`): what a district of `--residents` residents sends
and stores, from a simulated community and a real PostgreSQL (docs/operators/scaling-out.md).

1. A simulated community of `--households` households living `--days` days (simulators/, generated
   offline: no broker) gives the messages per resident and day by device kind, and the busiest hour and
   minute against the mean.
2. Its readings, decoded by the hub's router as intake decodes them, go through `Store.commit` in batches
   of `--batch` into a PostgreSQL of its own (durability on); the observations' daily partitions, heap
   and indexes, are then measured: bytes per stored reading.
3. Scaled to the district: messages per second (mean, busiest hour, busiest minute), rows a day, and
   storage a month and over `--retention-days` (HUB_RETENTION_READINGS_DAYS).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from hub.intake import Router, RouterLimits
from hub.postgres import PgConnection
from hub.registry import Registry
from hub.store import Batch, Observation, Store
from simulators.scenario import Scenario
from simulators.simulation import Simulation
from tests.real_servers import PostgreSQL

DAY_S = 24 * 3600
GIB = 1024**3


def simulated(households: int, days: int) -> tuple[Simulation, list[Observation], dict[str, Any]]:
    """The simulation, its readings as intake stores them, and what it sent: messages per kind, per hour
    and per minute of simulated time."""
    simulation = Simulation(Scenario.model_validate({"seed": 1, "days": days,
                                                     "community": {"households": households}}))
    registry = Registry(simulation.registry)
    # Every reading is taken, however old: the simulated days may lie in the past.
    limits = RouterLimits(max_age_ms=10**13, max_future_skew_ms=10**13)
    router = Router(lambda: registry, "zigbee2mqtt", limits)
    kinds: Counter[str] = Counter()
    hours: Counter[int] = Counter()
    minutes: Counter[int] = Counter()
    readings: list[Observation] = []
    for message in simulation.messages():
        if message.kind is None or message.kind == "clock":
            continue
        kinds[message.kind] += 1
        hours[message.sim_ms // 3_600_000] += 1
        minutes[message.sim_ms // 60_000] += 1
        routed = router.route(message.topic, message.payload, message.sim_ms)
        if isinstance(routed, Observation):
            readings.append(routed)
    built = simulation.registry
    sent = {"kinds": dict(kinds), "messages": sum(kinds.values()),
            "busiest_hour_per_s": max(hours.values()) / 3600,
            "busiest_minute_per_s": max(minutes.values()) / 60,
            "residents": len(built.residents), "households": len(built.households),
            "devices": dict(Counter(device.kind for device in built.devices))}
    return simulation, readings, sent


def bytes_per_reading(readings: list[Observation], batch_size: int) -> dict[str, float]:
    """Store the readings on a PostgreSQL of its own; the observations' size per stored row."""
    server = PostgreSQL(durable=True).start()
    try:
        url = server.database()
        store = Store(Path("unused"), url=url)
        for start in range(0, len(readings), batch_size):
            batch = Batch()
            for reading in readings[start:start + batch_size]:
                batch.add_observation(reading, reading.received_ms)
            store.commit(batch)
        store.close()
        db = PgConnection(url)
        try:
            heap, indexes = db.execute(
                "SELECT sum(pg_table_size(i.inhrelid)), sum(pg_indexes_size(i.inhrelid)) FROM pg_inherits i"
                " WHERE i.inhparent = 'observations'::regclass").fetchone()
            stored = db.execute("SELECT count(*) FROM observations").fetchone()[0]
        finally:
            db.close()
    finally:
        server.stop()
    heap, indexes = int(heap), int(indexes)  # sums of bigints come back as numeric (Decimal)
    return {"stored": stored, "heap_bytes": heap / stored, "index_bytes": indexes / stored,
            "bytes": (heap + indexes) / stored}


def main(
    *,
    residents: Annotated[int, typer.Option(help="residents in the district")] = 30_000,
    households: Annotated[int, typer.Option(help="simulated households")] = 200,
    days: Annotated[int, typer.Option(min=1, help="simulated days")] = 2,
    batch: Annotated[int, typer.Option(help="readings per commit")] = 5000,
    retention_days: Annotated[int, typer.Option(help="HUB_RETENTION_READINGS_DAYS")] = 180,
    out: Annotated[Path, typer.Option(help="results JSON")] = Path("var/bench/district.json"),
) -> None:
    command = shlex.join(["python", "-m", "tests.benchmarks.district", *sys.argv[1:]])
    print(f"command: {command}")
    _, readings, sent = simulated(households, days)
    per_resident_day = sent["messages"] / sent["residents"] / days
    scale = residents / sent["residents"]
    mean_per_s = per_resident_day * residents / DAY_S
    size = bytes_per_reading(readings, batch)
    rows_per_day = len(readings) / days * scale
    district = {
        "residents": residents, "households": round(sent["households"] * scale),
        "devices": {kind: round(n * scale) for kind, n in sent["devices"].items()},
        "messages_per_resident_day": per_resident_day,
        "messages_per_s_mean": mean_per_s,
        "messages_per_s_busiest_hour": sent["busiest_hour_per_s"] * scale,
        "messages_per_s_busiest_minute": sent["busiest_minute_per_s"] * scale,
        "rows_per_day": rows_per_day,
        "gib_per_month": rows_per_day * 30 * size["bytes"] / GIB,
        "gib_retained": rows_per_day * retention_days * size["bytes"] / GIB,
    }
    print(f"simulated: {sent['households']} households, {sent['residents']} residents, {days} days: "
          f"{sent['messages']:,} messages ({json.dumps(sent['kinds'])}), {len(readings):,} readings stored")
    print(f"PostgreSQL: {size['bytes']:.0f} bytes per stored reading ({size['heap_bytes']:.0f} table, "
          f"{size['index_bytes']:.0f} indexes), {size['bytes'] * 1e6 / GIB:.2f} GiB per million")
    print(f"district of {residents:,} residents ({district['households']:,} households): "
          f"{per_resident_day:.0f} messages per resident and day; {mean_per_s:,.0f} msg/s on average, "
          f"{district['messages_per_s_busiest_hour']:,.0f} in the busiest hour, "
          f"{district['messages_per_s_busiest_minute']:,.0f} in the busiest minute; "
          f"{rows_per_day / 1e6:.1f} M rows a day, {district['gib_per_month']:.0f} GiB a month, "
          f"{district['gib_retained']:.0f} GiB over {retention_days} days")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": command, "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                               "simulated": sent, "postgresql": size, "district": district}, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    typer.run(main)
