"""Ingest benchmark (`make bench`): sustained QoS 1 intake, decoded, committed and acknowledged.

Against a real Mosquitto on loopback, with the load generator (`simulators.load`) in separate processes:
1. bare:  a paho subscriber that only runs `json.loads`, draining a backlog the broker queued in its
          persistent session while it was away, as the hub's drain phase does (first message to last);
2. SQLite, for each worker count (`--workers`, default 1 and 2: the hub alone, then two `hub intake`
   processes sharing the stream through an MQTT 5 shared subscription beside the main hub, which then
   evaluates what they commit);
3. PostgreSQL, for each node count (`--nodes`, default 1, 2 and 3): that many `hub run` processes
   (`HUB_NODE_ID` node-1…, `HUB_MQTT_SHARED`: one shared subscription split between them) on one
   PostgreSQL with durability on (fsync, synchronous commits: a batch is on disk before it is
   acknowledged, as in production), a fresh database per node count.
Each configuration runs two phases:
   live:  consuming the stream while it is published, from the moment the load generator starts to the
          last message stored;
   drain: consuming a backlog the broker queued for the sessions while the hubs were stopped, from the
          arrival of the first message at any intake process (as stamped in the store) to the last message
          stored: the capacity with no publisher competing for the CPUs.
Every phase counts the distinct readings stored against those published; the benchmark exits 1 if any
was lost (or stored twice). Results are printed with the command line and written as JSON (`--out`,
default var/bench/ingest.json). `--protocol 3.1.1` runs the hub on MQTT 3.1.1 (Mosquitto 2 accepts
`$share` from 3.1.1 clients too).
"""

from __future__ import annotations

import json
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import paho.mqtt.client as paho
import typer
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.table import Table

from hub.intake_processes import intake_process_client_id
from hub.mqtt import BrokerAddress, Connector
from hub.postgres import PgConnection
from hub.registry import Registry
from simulators.load import LoadPlan, LoadReport, load_community, run_load
from tests.real_servers import HubProcess, Mosquitto, PostgreSQL, wait_until

console = Console(width=120)


def bare(broker: Mosquitto, plan: LoadPlan) -> dict[str, float]:
    """The bare subscriber draining a backlog: its session is opened, the load published while it is
    away, then it takes the queue (a process of its own, like the hub)."""
    command = [sys.executable, "-m", "tests.benchmarks.bare_subscriber"]
    subprocess.run([*command, "subscribe", str(broker.port)], check=True, timeout=60)
    load = run_load(plan)
    result = json.loads(subprocess.run([*command, "drain", str(broker.port), str(load.published)],
                                       check=True, timeout=900, stdout=subprocess.PIPE, text=True).stdout)
    return {"received": result["received"], "seconds": result["seconds"],
            "rate": result["received"] / result["seconds"], "published": load.published,
            "publish_rate": load.achieved_rate, "lost": load.published - result["received"]}


def load_started(load: LoadReport) -> float:
    return min(worker.started for worker in load.workers)


def first_arrival_ms(hub: HubProcess, count: int) -> int:
    """When the first of the newest `count` observations arrived at any intake process (its stamp)."""
    sql = ("SELECT min(received_ms) FROM (SELECT received_ms FROM observations ORDER BY id DESC LIMIT ?)"
           " AS newest")
    if hub.store_url is not None:
        pg = PgConnection(hub.store_url)
        try:
            return int(pg.execute(sql, (count,)).fetchone()[0])
        finally:
            pg.close()
    with sqlite3.connect(f"file:{hub.store_path}?mode=ro", uri=True) as db:
        return int(db.execute(sql, (count,)).fetchone()[0])


def consumed(hub: HubProcess, before: int, expected: int, since: float | None = None,
             timeout: float = 900) -> float:
    """Seconds from `since` (epoch; None: the arrival of the first new message at any intake process, as
    stamped in the store) to the `expected`-th new observation in the store, polled every 50 ms."""
    wait_until(lambda: hub.count_observations() >= before + expected, timeout, interval=0.05,
               what=f"{expected:,} observations")
    done = time.time()
    # Not when the poll first saw a row: a restarted hub is well into its backlog before it answers.
    return done - (first_arrival_ms(hub, expected) / 1000 if since is None else since)


def cpu_busy(seconds: float = 3.0) -> float:
    """The share of this machine's CPU time spent busy over the next `seconds` (Linux /proc/stat)."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait
    total_before, idle_before = sample()
    time.sleep(seconds)
    total_after, idle_after = sample()
    return 1 - (idle_after - idle_before) / max(1, total_after - total_before)


def wait_for_quiet(max_busy: float, timeout: float = 1800) -> float:
    """Wait until other work leaves the machine nearly idle (a shared machine measures nothing else), or
    `timeout` passes; returns the busy share seen last. 0 disables the wait."""
    deadline = time.monotonic() + timeout
    busy = cpu_busy()
    while max_busy and busy > max_busy and time.monotonic() < deadline:
        busy = cpu_busy()
    return busy


def forget_session(broker: Mosquitto, client_id: str) -> None:
    """End a stopped hub's persistent session, so the broker stops queueing the next phases for it."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", broker.port, keepalive=30, clean_start=True)  # session expiry 0
    client.loop_start()
    client.disconnect()
    client.loop_stop()


def phases(label: str, hubs: list[HubProcess], plan: LoadPlan, *, max_busy: float,
           sessions: list[str]) -> dict[str, dict[str, float]]:
    """Live, then drain, with these hubs (one configuration); they are stopped at the end and their MQTT
    `sessions` ended. Several hubs start at once, so that none drains alone while the others start."""
    results: dict[str, dict[str, float]] = {}
    broker = hubs[0].broker
    try:
        for hub in hubs:
            hub.launch()
        for hub in hubs:
            hub.wait_online(60)
        for phase in ("live", "drain"):
            before = hubs[0].count_observations()
            busy = wait_for_quiet(max_busy)
            console.print(f"[bold]{label}, {phase}[/bold] …")
            if phase == "drain":
                for hub in hubs:
                    hub.stop()
            load = run_load(plan)
            if phase == "drain":
                for hub in hubs:
                    hub.launch()
                for hub in hubs:
                    hub.wait_online(60)
            since = load_started(load) if phase == "live" else None
            seconds = consumed(hubs[0], before, load.published, since)
            time.sleep(1)  # a late redelivery must not add rows: the count is compared exactly below
            stored = hubs[0].count_observations() - before
            results[f"{label}_{phase}"] = {
                "received": stored, "seconds": seconds, "rate": load.published / seconds,
                "published": load.published, "publish_rate": load.achieved_rate,
                "lost": load.published - stored, "busy_before": busy}
    finally:
        for hub in hubs:
            hub.stop()
        for client_id in sessions:
            forget_session(broker, client_id)
    return results


def sqlite_hub(work: Path, broker: Mosquitto, registry: Path, plan: LoadPlan, *, workers: int,
               protocol: str, max_busy: float) -> dict[str, dict[str, float]]:
    """The hub on SQLite with `workers` intake processes (1: the hub alone; more: that many `hub intake`
    processes beside the main hub, which then evaluates only)."""
    env = {"HUB_LOG_LEVEL": "WARNING", "HUB_INTAKE_WORKERS": str(workers), "HUB_MQTT_PROTOCOL": protocol}
    hub = HubProcess(work / f"hub{workers}", registry, broker, env)
    sessions = [hub.client_id]
    if workers > 1:
        sessions += [intake_process_client_id(hub.client_id, i) for i in range(1, workers + 1)]
    return phases(f"sqlite_workers{workers}", [hub], plan, max_busy=max_busy, sessions=sessions)


def postgresql_nodes(work: Path, broker: Mosquitto, postgresql: PostgreSQL, registry: Path, plan: LoadPlan, *,
                     nodes: int, protocol: str, max_busy: float) -> dict[str, dict[str, float]]:
    """`nodes` hub nodes splitting the stream through one shared subscription, on a fresh database."""
    url = postgresql.database()
    hubs = [HubProcess(work / f"pg{nodes}-{i}", registry, broker, {
        "HUB_LOG_LEVEL": "WARNING", "HUB_MQTT_PROTOCOL": protocol, "HUB_STORE_URL": url,
        "HUB_NODE_ID": f"node-{i}", "HUB_MQTT_SHARED": "true"}) for i in range(1, nodes + 1)]
    try:
        return phases(f"postgresql_nodes{nodes}", hubs, plan, max_busy=max_busy,
                      sessions=[hub.client_id for hub in hubs])
    finally:
        postgresql.drop(url)


def main(
    *,
    messages: Annotated[int, typer.Option(help="messages per phase")] = 200_000,
    devices: Annotated[int, typer.Option(help="simulated devices")] = 5_000,
    processes: Annotated[int, typer.Option(help="load generator processes")] = 2,
    workers: Annotated[list[int] | None, typer.Option(
        help="SQLite: hub intake processes, per run [default: 1 2]")] = None,
    nodes: Annotated[list[int] | None, typer.Option(
        help="PostgreSQL: hub nodes, per run (0: none) [default: 1 2 3]")] = None,
    protocol: Annotated[str, typer.Option(help="the hub's MQTT protocol: 5 or 3.1.1")] = "5",
    max_busy: Annotated[float, typer.Option(
        help="before each phase, wait until other work keeps the CPUs at most this busy (0: don't)")] = 0.15,
    out: Annotated[Path, typer.Option(help="results JSON")] = Path("var/bench/ingest.json"),
) -> None:
    command = shlex.join(["python", "-m", "tests.benchmarks.ingest", *sys.argv[1:]])
    console.print(f"command: {command}")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        postgresql = PostgreSQL(durable=True).start()
        try:
            registry = work / "registry.yaml"
            Registry(load_community(devices, 1, 0.3).registry).dump(registry)

            # Each run's readings carry the wall clock as ts, so every phase adds distinct readings.
            plan = LoadPlan(Connector(BrokerAddress.from_url(broker.url)), devices=devices,
                            processes=processes, total=messages)

            console.print(f"[bold]bare paho + json.loads, draining a backlog[/bold], {messages:,} messages …")
            busy = wait_for_quiet(max_busy)
            results["bare"] = bare(broker, plan) | {"busy_before": busy}
            for count in workers or [1, 2]:
                results |= sqlite_hub(work, broker, registry, plan, workers=count, protocol=protocol,
                                      max_busy=max_busy)
            for count in [n for n in nodes or [1, 2, 3] if n > 0]:
                results |= postgresql_nodes(work, broker, postgresql, registry, plan, nodes=count,
                                            protocol=protocol, max_busy=max_busy)
        finally:
            postgresql.stop()
            broker.stop()

    table = Table(title=f"QoS 1 ingest, {messages:,} messages per phase, {devices:,} devices, "
                        f"{processes} publisher processes, hub on MQTT {protocol}")
    for column in ("phase", "consumed msg/s", "seconds", "published", "publisher msg/s", "lost",
                   "CPU busy before"):
        table.add_column(column, justify="right")
    for phase, r in results.items():
        table.add_row(phase, f"{r['rate']:,.0f}", f"{r['seconds']:.1f}", f"{r['published']:,.0f}",
                      f"{r['publish_rate']:,.0f}", f"{r.get('lost', 0):,.0f}", f"{r['busy_before']:.0%}")
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": command, "protocol": protocol,
                               "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "phases": results},
                              indent=2) + "\n")
    console.print(f"written to {out}")
    lost = {phase: r["lost"] for phase, r in results.items() if r.get("lost")}
    if lost:
        console.print(f"[red]readings lost (negative: stored twice): {lost}[/red]")
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
