"""SOS latency benchmark (`make bench`): an SOS press published → the alert delivered, under load.

A real Mosquitto on loopback; the hub as a subprocess with its MQTT alert sink (`sc/<community>/alerts/sos`
on the same broker) and its webhook sink pointed at an HTTP receiver in this process, on each store of
`--store` in turn in the same run (default: SQLite, then PostgreSQL with durability on, a server of its
own); background device traffic at `--background` msg/s from the load generator in separate processes. Once
the background runs steadily, `--presses` SOS presses are published `--spacing-ms` apart, each by another
wristband worn by another resident (a second press of an open alert only counts on it, it is not delivered
again), each carrying the publish time as its `ts`. Latency is from just before the publish to the alert's
arrival at an MQTT subscriber on the alert topic, and at the webhook receiver. p50/p95/p99/max are printed
and written as JSON (`--out`, default var/bench/sos_latency.json) with the command line; every press must
arrive on both paths.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any

import paho.mqtt.client as paho
import typer
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.table import Table

from hub.embedded_broker import free_loopback_port
from hub.mqtt import BrokerAddress, Connector, Publisher
from hub.postgres import PgConnection
from hub.registry import Registry
from hub.topics import event_topic
from simulators.load import LoadPlan, load_community, run_load
from tests.benchmarks.ingest import wait_for_quiet
from tests.real_servers import HubProcess, Mosquitto, PostgreSQL, wait_until

console = Console()


class Arrivals:
    """Arrival time (epoch s) of each SOS alert, by the wristband that raised it, per delivery path."""

    def __init__(self) -> None:
        self.mqtt: dict[str, float] = {}
        self.webhook: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, path: dict[str, float], body: bytes | bytearray) -> None:
        at = time.time()
        alert = json.loads(body)
        if alert.get("kind") == "sos" and alert.get("device"):
            with self._lock:
                path.setdefault(alert["device"], at)


@contextmanager
def webhook_receiver(arrivals: Arrivals) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            arrivals.record(arrivals.webhook, body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_loopback_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def alert_subscriber(broker: Mosquitto, arrivals: Arrivals) -> Iterator[None]:
    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-alerts", protocol=paho.MQTTv5)
    client.on_connect = lambda c, *_: c.subscribe("sc/+/alerts/sos", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _, __, msg: arrivals.record(arrivals.mqtt, msg.payload)
    client.connect("127.0.0.1", broker.port, keepalive=30)
    client.loop_start()
    try:
        if not subscribed.wait(10):
            raise TimeoutError("the alert subscriber could not subscribe")
        yield
    finally:
        client.disconnect()
        client.loop_stop()


def wristbands(registry: Registry, count: int) -> list[tuple[str, str]]:
    """(community, device) of `count` native wristbands, each worn by a different resident."""
    chosen: dict[str, tuple[str, str]] = {}
    for device in registry.devices.values():
        wearer = device.resident or device.household
        if device.kind == "wristband" and wearer and wearer not in chosen:
            chosen[wearer] = (device.community, device.id)
    if len(chosen) < count:
        raise ValueError(f"only {len(chosen)} residents wear a wristband; use more --devices")
    return list(chosen.values())[:count]


def percentiles(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"n": len(ordered), "p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": ordered[-1]}


def stages(hub: HubProcess, sent: dict[str, float]) -> dict[str, dict[str, float]]:
    """Where the time went, per press, from the hub's own stamps: the press published → its message taken
    off the socket (`received_ms`) → the alert raised (its `raised` event) → each sink's delivery sent."""
    marks: dict[str, list[float]] = {"published→received": [], "received→raised": [],
                                     "raised→mqtt sent": [], "raised→webhook sent": []}
    press_ts = ("(a.evidence ->> 'press_ts')::bigint" if hub.store_url is not None
                else "json_extract(a.evidence, '$.press_ts')")
    db: sqlite3.Connection | PgConnection = (
        PgConnection(hub.store_url) if hub.store_url is not None
        else sqlite3.connect(f"file:{hub.store_path}?mode=ro", uri=True))
    try:
        for device, published in sent.items():
            row = db.execute(
                "SELECT o.received_ms, e.at_ms, a.id FROM alerts a"
                " JOIN alert_events e ON e.alert_id = a.id AND e.action = 'raised'"
                f" JOIN observations o ON o.device_id = a.device AND o.ts = {press_ts}"
                " WHERE a.kind = 'sos' AND a.device = ?", (device,)).fetchone()
            if row is None:
                continue
            received_ms, raised_ms, alert_id = row
            marks["published→received"].append(received_ms - published * 1000)
            marks["received→raised"].append(raised_ms - received_ms)
            for sink, sent_ms in db.execute(
                    "SELECT sink, sent_ms FROM alert_deliveries WHERE alert_id = ? AND sent_ms IS NOT NULL",
                    (alert_id,)):
                if f"raised→{sink} sent" in marks:
                    marks[f"raised→{sink} sent"].append(sent_ms - raised_ms)
    finally:
        db.close()
    return {stage: percentiles(values) for stage, values in marks.items() if len(values) > 1}


def presses_through(work: Path, broker: Mosquitto, registry_path: Path, bands: list[tuple[str, str]],
                    store_env: dict[str, str], *, background: float, devices: int, warmup_s: float,
                    spacing_ms: int, workers: int) -> dict[str, Any]:
    """One hub (on the store `store_env` names) under background load, the presses, their latencies."""
    arrivals = Arrivals()
    sent: dict[str, float] = {}
    load_result: list[Any] = []
    with webhook_receiver(arrivals) as webhook_url, alert_subscriber(broker, arrivals):
        hub = HubProcess(work, registry_path, broker, {
            "HUB_LOG_LEVEL": "WARNING", "HUB_ALERTS_WEBHOOK_URL": webhook_url,
            "HUB_ALERTS_WEBHOOK_ALLOW_HTTP": "true",
            "HUB_ALERTS_WEBHOOK_SECRET": "bench", "HUB_ALERTS_APPRISE_ENABLED": "false",
            "HUB_INTAKE_WORKERS": str(workers), **store_env}).start()
        try:
            duration = warmup_s + len(bands) * spacing_ms / 1000 + 5
            plan = LoadPlan(Connector(BrokerAddress.from_url(broker.url)), rate=background,
                            devices=devices, duration_s=duration)
            load = threading.Thread(target=lambda: load_result.append(run_load(plan)), daemon=True)
            load.start()
            time.sleep(warmup_s)
            publisher = Publisher(broker.address, "bench-sos")
            publisher.start()
            try:
                for community, device in bands:
                    now = time.time()
                    payload = json.dumps({"ts": int(now * 1000), "sos": True})
                    sent[device] = now
                    publisher.publish(event_topic(community, "wristband", device), payload)
                    time.sleep(max(0.0, now + spacing_ms / 1000 - time.time()))
                wait_until(lambda: len(arrivals.mqtt) >= len(bands) and len(arrivals.webhook) >= len(bands),
                           30, what=f"{len(bands)} alerts on both paths")
            finally:
                publisher.stop()
            load.join(duration + 60)
        finally:
            hub.stop()
    results: dict[str, Any] = {
        "background_achieved": load_result[0].achieved_rate if load_result else 0.0,
        "stages": stages(hub, sent)}
    for path, arrived in (("mqtt", arrivals.mqtt), ("webhook", arrivals.webhook)):
        results[path] = percentiles([(arrived[device] - sent[device]) * 1000 for device in sent])
    return results


def main(
    *,
    presses: Annotated[int, typer.Option(help="SOS presses, each by another resident")] = 200,
    spacing_ms: Annotated[int, typer.Option(help="between presses")] = 100,
    background: Annotated[float, typer.Option(help="background device messages per second")] = 5_000,
    devices: Annotated[int, typer.Option(help="simulated devices")] = 5_000,
    warmup_s: Annotated[float, typer.Option(help="background alone before the first press")] = 5.0,
    workers: Annotated[int, typer.Option(help="hub intake processes (HUB_INTAKE_WORKERS)")] = 1,
    store: Annotated[list[str] | None, typer.Option(
        help="sqlite and/or postgresql, each in turn [default: sqlite postgresql]")] = None,
    max_busy: Annotated[float, typer.Option(
        help="first wait until other work keeps the CPUs at most this busy (0: don't)")] = 0.15,
    out: Annotated[Path, typer.Option(help="results JSON")] = Path("var/bench/sos_latency.json"),
) -> None:
    command = shlex.join(["python", "-m", "tests.benchmarks.sos_latency", *sys.argv[1:]])
    console.print(f"command: {command}")
    stores = store or ["sqlite", "postgresql"]
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sos-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        postgresql = PostgreSQL(durable=True).start() if "postgresql" in stores else None
        try:
            registry_path = work / "registry.yaml"
            registry = Registry(load_community(devices, 1, 0.3).registry)
            registry.dump(registry_path)
            bands = wristbands(registry, presses)
            for name in stores:
                env = {"HUB_STORE_URL": postgresql.database()} if name == "postgresql" and postgresql else {}
                busy = wait_for_quiet(max_busy)
                console.print(f"{name}: background {background:,.0f} msg/s, then {presses} presses …")
                runs[name] = presses_through(work / name, broker, registry_path, bands, env,
                                             background=background, devices=devices, warmup_s=warmup_s,
                                             spacing_ms=spacing_ms, workers=workers) | {"busy_before": busy}
        finally:
            if postgresql is not None:
                postgresql.stop()
            broker.stop()

    for name, run in runs.items():
        table = Table(title=f"{name}: SOS published → alert delivered, {presses} presses, background "
                            f"{run['background_achieved']:,.0f} msg/s, {workers} intake process(es)")
        for column in ("path", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"):
            table.add_column(column, justify="right")
        for path in ("mqtt", "webhook"):
            stats = run[path]
            table.add_row(path, f"{stats['n']:.0f}",
                          *(f"{stats[k]:.1f}" for k in ("p50", "p95", "p99", "max")))
        console.print(table)
        table = Table(title=f"{name}: where the time goes (the hub's own timestamps)")
        for column in ("stage", "p50 ms", "p99 ms", "max ms"):
            table.add_column(column, justify="right")
        for stage, stats in run["stages"].items():
            table.add_row(stage, *(f"{stats[k]:.1f}" for k in ("p50", "p99", "max")))
        console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": command, "presses": presses, "workers": workers,
                               "background_target": background,
                               "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "stores": runs},
                              indent=2) + "\n")
    console.print(f"written to {out}")


if __name__ == "__main__":
    typer.run(main)
