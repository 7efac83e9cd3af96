"""Take-over benchmark (`make bench`): a hub node killed with kill -9, and how long until the others
evaluate its communities.

A real Mosquitto and a real PostgreSQL (durability on) on loopback; `--nodes` `hub run` processes on
default settings but `HUB_NODE_ID` (so `HUB_LEASE_S` is the default unless set in the environment), a
registry of `--communities` communities of `--bands` wristbands each, streaming a reading per band and
second at about `--rate` msg/s. Each of `--runs` runs kills the node that owns the run's community with
kill -9 and measures, from just before the kill:

- leases: until the survivors hold every lease the dead node held (`community_leases`, polled every
  20 ms): the lease running out, and the survivor's heartbeat taking it;
- evaluating: until the survivors' `hub_evaluation_communities` add up to every community (their
  `/metrics`, polled every 50 ms): the evaluation having restored the checkpoints and relearned the
  readings since, up to the dead node's cursors.

The dead node is then started again and the communities spread back before the next run. Each run is
printed, and all of them written as JSON (`--out`, default var/bench/takeover.json) with the command line.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Annotated

import typer
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from hub.leases import assignment
from hub.mqtt import Publisher
from hub.postgres import PgConnection
from hub.settings import Settings
from hub.topics import event_topic
from tests.real_servers import HubProcess, Mosquitto, PostgreSQL, wait_until
from tests.registry_builder import RegistryBuilder

console = Console(width=120)


def write_registry(path: Path, communities: list[str], bands: int) -> Path:
    builder = RegistryBuilder()
    for community in communities:
        builder.community(community).compound(f"{community}-k").building(f"{community}-b").grid(f"{community}-g")
        for j in range(bands):
            builder.household(f"{community}-h{j}").resident(f"{community}-r{j}", f"R{j}")
            builder.device(f"{community}-band{j}", "wristband", resident=f"{community}-r{j}")
    return builder.dump(path)


class Readings(threading.Thread):
    """A reading from every band each second of device time (from an hour ago on), about `rate` messages
    a second, until stopped."""

    def __init__(self, broker: Mosquitto, communities: list[str], bands: int, rate: float) -> None:
        super().__init__(name="readings", daemon=True)
        self._broker = broker
        self._devices = [(community, f"{community}-band{j}")
                         for community in communities for j in range(bands)]
        self._rate = rate
        self.stopping = threading.Event()

    def run(self) -> None:
        publisher = Publisher(self._broker.address, "bench-takeover-readings")
        publisher.start()
        try:
            ts = int(time.time() * 1000) - 3_600_000
            while not self.stopping.is_set():
                for community, device in self._devices:
                    publisher.publish(event_topic(community, "wristband", device),
                                      json.dumps({"ts": ts, "steps": 10, "worn": True}))
                    self.stopping.wait(1 / self._rate)
                ts += 1000
        finally:
            publisher.stop()


def leases(db: PgConnection) -> dict[str, str]:
    return dict(db.execute("SELECT community, owner FROM community_leases"
                           " WHERE expires_at > clock_timestamp()"))


def evaluated(hub: HubProcess) -> float:
    try:
        with urllib.request.urlopen(f"{hub.http_url}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0
    return next((sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                 if sample.name == "hub_evaluation_communities"), 0)


def kill(db: PgConnection, hubs: dict[str, HubProcess], victim: str,
         owners: dict[str, str]) -> dict[str, float]:
    """Kill -9 `victim`; seconds from just before until its leases are taken, and until the survivors
    evaluate every community."""
    orphans = {c for c, node in owners.items() if node == victim}
    survivors = [hub for node, hub in hubs.items() if node != victim]
    killed = time.monotonic()
    hubs[victim].kill()
    wait_until(lambda: all(leases(db).get(c) not in (None, victim) for c in orphans), 60, interval=0.02,
               what="the dead node's leases taken")
    leases_s = time.monotonic() - killed
    wait_until(lambda: sum(evaluated(hub) for hub in survivors) == len(owners), 60, interval=0.05,
               what="every community evaluated")
    return {"communities": len(orphans), "leases_s": leases_s, "evaluating_s": time.monotonic() - killed}


def main(
    *,
    runs: Annotated[int, typer.Option(min=1, help="kills, each of the node owning another community")] = 5,
    nodes: Annotated[int, typer.Option(min=2)] = 2,
    communities: Annotated[int, typer.Option("--communities", min=1)] = 6,
    bands: Annotated[int, typer.Option(min=1, help="wristbands per community")] = 20,
    rate: Annotated[float, typer.Option(help="background readings per second")] = 200,
    out: Annotated[Path, typer.Option(help="results JSON")] = Path("var/bench/takeover.json"),
) -> None:
    command = shlex.join(["python", "-m", "tests.benchmarks.takeover", *sys.argv[1:]])
    lease_s = Settings().lease_s
    console.print(f"command: {command}\nHUB_LEASE_S {lease_s} s, {nodes} nodes, {communities} communities")
    names = [f"c{i}" for i in range(communities)]
    node_ids = [f"node-{i}" for i in range(1, nodes + 1)]
    expected = assignment(names, dict.fromkeys(node_ids))
    results: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-takeover-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        postgresql = PostgreSQL(durable=True).start()
        hubs: dict[str, HubProcess] = {}
        readings = Readings(broker, names, bands, rate)
        url = postgresql.database()
        db = PgConnection(url)
        try:
            registry = write_registry(work / "registry.yaml", names, bands)
            hubs = {node: HubProcess(work / node, registry, broker, {
                "HUB_LOG_LEVEL": "WARNING", "HUB_STORE_URL": url, "HUB_NODE_ID": node}) for node in node_ids}
            for hub in hubs.values():
                hub.launch()
            for hub in hubs.values():
                hub.wait_online(60)
            readings.start()
            for run in range(runs):
                wait_until(lambda: leases(db) == expected, 60, what="the communities spread over the nodes")
                time.sleep(1 + run * lease_s / (4 * runs))  # kills at several points of a heartbeat
                victim = expected[names[run % communities]]
                results.append(kill(db, hubs, victim, expected))
                last = results[-1]
                console.print(f"run {run + 1}: {victim} killed owning {last['communities']:.0f} of "
                              f"{communities} communities; leases taken after {last['leases_s']:.2f} s, "
                              f"evaluated after {last['evaluating_s']:.2f} s")
                hubs[victim].start(60)
        finally:
            readings.stopping.set()
            for hub in hubs.values():
                hub.stop()
            db.close()
            postgresql.stop()
            broker.stop()
    worst = max(r["evaluating_s"] for r in results)
    console.print(f"take-over after kill -9, {runs} runs: evaluated within {worst:.2f} s at worst "
                  f"(HUB_LEASE_S {lease_s} s; goal < 10 s)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": command, "lease_s": lease_s, "nodes": nodes, "runs": results,
                               "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z")}, indent=2) + "\n")
    console.print(f"written to {out}")


if __name__ == "__main__":
    typer.run(main)
