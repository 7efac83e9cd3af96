"""Ingest benchmark (`make bench`): sustained QoS 1 intake, decoded, committed and acknowledged.

Against a real Mosquitto on loopback, with the load generator (`simulators.load`) in separate processes:
1. bare:  a paho subscriber that only runs `json.loads`, consuming the stream while it is published;
2. live:  the hub (a subprocess) consuming the same kind of stream while it is published;
   both rates run from the moment the load generator starts to the last message consumed (stored);
3. drain: the hub consuming a backlog the broker queued for its session while it was stopped, from
          its first commit to its last: its capacity with no publisher competing for the two cores.
Every hub phase checks that exactly the published number of distinct readings is stored (nothing lost).
Results are printed and written as JSON (`--out`, default var/bench/ingest.json).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub.registry import Registry
from simulators.load import LoadPlan, LoadReport, load_community, run_load
from tests.real_servers import HubProcess, Mosquitto, wait_until

console = Console()


def bare(broker: Mosquitto, plan: LoadPlan) -> dict[str, float]:
    assert plan.total is not None
    process = subprocess.Popen([sys.executable, "-m", "tests.benchmarks.bare_subscriber", str(broker.port),
                                str(plan.total)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    load = run_load(plan)
    result = json.loads(process.stdout.readline())
    process.wait(30)
    seconds = result["last_epoch"] - load_started(load)
    return {"received": result["received"], "seconds": seconds, "rate": result["received"] / seconds,
            "published": load.published, "publish_rate": load.achieved_rate}


def load_started(load: LoadReport) -> float:
    return min(worker.started for worker in load.workers)


def consumed(hub: HubProcess, before: int, expected: int, since: float | None = None,
             timeout: float = 900) -> float:
    """Seconds from `since` (epoch; None: the first new observation) to the `expected`-th new
    observation in the store, polled every 20 ms."""
    if since is None:
        wait_until(lambda: hub.count_observations() > before, timeout, interval=0.01,
                   what="the first observation")
        since = time.time()
    wait_until(lambda: hub.count_observations() >= before + expected, timeout, interval=0.02,
               what=f"{expected:,} observations")
    return time.time() - since


def main(
    messages: Annotated[int, typer.Option(help="messages per phase")] = 200_000,
    devices: Annotated[int, typer.Option(help="simulated devices")] = 5_000,
    processes: Annotated[int, typer.Option(help="load generator processes")] = 2,
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
            plan = LoadPlan(broker.url, devices=devices, processes=processes, total=messages)

            console.print(f"[bold]bare paho + json.loads[/bold], {messages:,} messages …")
            results["bare"] = bare(broker, plan)

            console.print("[bold]hub, live[/bold] …")
            hub = HubProcess(work / "hub", registry, broker, {"HUB_LOG_LEVEL": "WARNING"}).start()
            for phase in ("hub_live", "hub_drain"):
                before = hub.count_observations()
                if phase == "hub_drain":
                    console.print("[bold]hub, draining a backlog queued while it was stopped[/bold] …")
                    hub.stop()
                load = run_load(plan)
                if phase == "hub_drain":
                    hub.start()
                since = load_started(load) if phase == "hub_live" else None
                seconds = consumed(hub, before, load.published, since)
                stored = hub.count_observations() - before
                results[phase] = {"received": stored, "seconds": seconds, "rate": stored / seconds,
                                  "published": load.published, "publish_rate": load.achieved_rate}
            hub.stop()
            for phase in ("hub_live", "hub_drain"):
                lost = results[phase]["published"] - results[phase]["received"]
                results[phase]["lost"] = lost
        finally:
            broker.stop()

    table = Table(title=f"QoS 1 ingest, {messages:,} messages per phase, {devices:,} devices, "
                        f"{processes} publisher processes")
    for column in ("phase", "consumed msg/s", "seconds", "published", "publisher msg/s", "lost"):
        table.add_column(column, justify="right")
    for phase, r in results.items():
        table.add_row(phase, f"{r['rate']:,.0f}", f"{r['seconds']:.1f}", f"{r['published']:,.0f}",
                      f"{r['publish_rate']:,.0f}", f"{r.get('lost', 0):,.0f}")
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written to {out}")


if __name__ == "__main__":
    typer.run(main)
