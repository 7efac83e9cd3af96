"""Ingest benchmark (`make bench`): sustained QoS 1 intake, decoded, committed and acknowledged.

Against a real Mosquitto on loopback, with the load generator (`simulators.load`) in separate processes:
1. bare:  a paho subscriber that only runs `json.loads`, draining a backlog the broker queued in its
          persistent session while it was away, as the hub's drain phase does (first message to last);
2. then, for each worker count (`--workers`, default 1 and 2: the hub alone, then two `hub intake`
   processes sharing the stream through an MQTT 5 shared subscription beside the main hub, which then
   evaluates what they commit):
   live:  the hub (a subprocess) consuming the stream while it is published, from the moment the load
          generator starts to the last message stored;
   drain: the hub consuming a backlog the broker queued for its sessions while it was stopped, from the
          arrival of the first message at any of its processes (as stamped in the store) to the last
          message stored: its capacity with no publisher competing for the two cores.
Every hub phase asserts that exactly the published number of distinct readings is stored (nothing lost,
nothing twice). Results are printed and written as JSON (`--out`, default var/bench/ingest.json).
`--protocol 3.1.1` runs the hub on MQTT 3.1.1 (Mosquitto 2 accepts `$share` from 3.1.1 clients too).
"""

from __future__ import annotations

import json
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
from hub.registry import Registry
from simulators.load import LoadPlan, LoadReport, load_community, run_load
from tests.real_servers import HubProcess, Mosquitto, wait_until

console = Console()


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


def consumed(hub: HubProcess, before: int, expected: int, since: float | None = None,
             timeout: float = 900) -> float:
    """Seconds from `since` (epoch; None: the arrival of the first new message at any intake process, as
    stamped in the store) to the `expected`-th new observation in the store, polled every 20 ms."""
    wait_until(lambda: hub.count_observations() >= before + expected, timeout, interval=0.02,
               what=f"{expected:,} observations")
    done = time.time()
    if since is None:
        # Not when the poll first saw a row: a restarted hub is well into its backlog before it answers.
        with sqlite3.connect(f"file:{hub.store_path}?mode=ro", uri=True) as db:
            first_ms = db.execute("SELECT min(received_ms) FROM (SELECT received_ms FROM observations"
                                  " ORDER BY id DESC LIMIT ?)", (expected,)).fetchone()[0]
        since = first_ms / 1000
    return done - since


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


def hub_phases(work: Path, broker: Mosquitto, registry: Path, plan: LoadPlan, *, workers: int,
               protocol: str, max_busy: float) -> dict[str, dict[str, float]]:
    """Live and drain with `workers` intake processes (1: the hub alone; more: that many `hub intake`
    processes beside the main hub, which then evaluates only)."""
    results: dict[str, dict[str, float]] = {}
    env = {"HUB_LOG_LEVEL": "WARNING", "HUB_INTAKE_WORKERS": str(workers), "HUB_MQTT_PROTOCOL": protocol}
    hub = HubProcess(work / f"hub{workers}", registry, broker, env).start()
    try:
        for phase in ("live", "drain"):
            before = hub.count_observations()
            busy = wait_for_quiet(max_busy)
            if phase == "drain":
                console.print(f"[bold]hub, {workers} worker(s), draining a backlog queued while it was "
                              "stopped[/bold] …")
                hub.stop()
            else:
                console.print(f"[bold]hub, {workers} worker(s), live[/bold] …")
            load = run_load(plan)
            if phase == "drain":
                hub.start()
            since = load_started(load) if phase == "live" else None
            seconds = consumed(hub, before, load.published, since)
            time.sleep(1)  # a late redelivery must not add rows: the count is checked exactly below
            stored = hub.count_observations() - before
            results[f"hub{workers}_{phase}"] = {
                "workers": workers, "received": stored, "seconds": seconds, "rate": load.published / seconds,
                "published": load.published, "publish_rate": load.achieved_rate,
                "lost": load.published - stored, "busy_before": busy}
            assert stored == load.published, f"{workers} worker(s), {phase}: stored {stored:,} of " \
                                             f"{load.published:,} published"
    finally:
        hub.stop()
    intake = ([intake_process_client_id(hub.client_id, i) for i in range(1, workers + 1)]
              if workers > 1 else [])
    for client_id in [hub.client_id, *intake]:
        forget_session(broker, client_id)
    return results


def main(
    *,
    messages: Annotated[int, typer.Option(help="messages per phase")] = 200_000,
    devices: Annotated[int, typer.Option(help="simulated devices")] = 5_000,
    processes: Annotated[int, typer.Option(help="load generator processes")] = 2,
    workers: Annotated[list[int] | None, typer.Option(help="hub intake processes, per run [default: 1 2]")]
    = None,
    protocol: Annotated[str, typer.Option(help="the hub's MQTT protocol: 5 or 3.1.1")] = "5",
    max_busy: Annotated[float, typer.Option(
        help="before each phase, wait until other work keeps the CPUs at most this busy (0: don't)")] = 0.15,
    out: Annotated[Path, typer.Option(help="results JSON")] = Path("var/bench/ingest.json"),
) -> None:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
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
                results |= hub_phases(work, broker, registry, plan, workers=count, protocol=protocol,
                                      max_busy=max_busy)
        finally:
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
    out.write_text(json.dumps({"protocol": protocol, "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                               "phases": results}, indent=2) + "\n")
    console.print(f"written to {out}")


if __name__ == "__main__":
    typer.run(main)
