"""The `hub` command line (typer). `hub run` and `hub demo` compose the running hub (`hub.runtime`) with the
HTTP API it serves; this is the only module that imports `hub.runtime`."""

from __future__ import annotations

import gc
import getpass
import logging
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from hub.alerts.directory import unreachable_kinds
from hub.alerts.service import AlertService
from hub.alerts_cli import app as alerts_app
from hub.api import ApiServer, create_app
from hub.api.deps import ApiServices
from hub.api.tokens import ALL_COMMUNITIES, Role, TokenStore
from hub.api.tokens_cli import app as tokens_app
from hub.backtest import backtest_command
from hub.broker.export import export_mosquitto_command
from hub.clock import SystemClock
from hub.deadletter import replay
from hub.embedded_broker import free_loopback_port
from hub.intake import Router, RouterLimits
from hub.intake_pipeline import open_store
from hub.intake_processes import IntakeProcess, IntakeProcessesError
from hub.live_view import LiveView
from hub.local_time import DEFAULT_TIMEZONE, configured_registry, local_time, zone_of
from hub.monitoring_track import EXPECTED, Track, track_of
from hub.mqtt import BrokerAddress, Connector
from hub.node import NodeError, NodeScope
from hub.redact import quiet_third_party_loggers, redact_url
from hub.registry import Registry, RegistryError
from hub.registry_sources import (
    import_registry,
    registry_at_start,
    registry_in_service,
    stored_registry,
    stored_versions,
)
from hub.residents_cli import app as residents_app
from hub.runtime import Hub
from hub.settings import Settings
from hub.simulate_cli import app as simulate_app
from hub.store import Store
from hub.supervision_cli import app as supervision_app
from simulators.community import CommunityParameters
from simulators.publishing import publish_messages
from simulators.scenario import Scenario
from simulators.simulation import Simulation

app = typer.Typer(help="Smart-community IoT hub.", no_args_is_help=True, add_completion=False)
deadletter_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)
registry_app = typer.Typer(help="The community registry: check a file; with PostgreSQL (HUB_STORE_URL), "
                                "import, export and its versions.", no_args_is_help=True)
registry_app.command("export-mosquitto")(export_mosquitto_command)
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(registry_app, name="registry")
app.add_typer(simulate_app, name="simulate")
app.add_typer(alerts_app, name="alerts")
app.add_typer(tokens_app, name="tokens")
app.add_typer(residents_app, name="residents")
app.add_typer(supervision_app, name="supervision")
app.command("backtest")(backtest_command)
console = Console(stderr=True)
log = logging.getLogger(__name__)

RegistryOption = Annotated[Path | None, typer.Option(help="registry file [default: $HUB_REGISTRY_PATH]")]


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_third_party_loggers()  # HUB_LOG_LEVEL=DEBUG must not log apprise's keys


def _load_registry(path: Path) -> Registry:
    try:
        return Registry.load(path)
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _api_server(hub: Hub) -> ApiServer | None:
    """The hub's HTTP API (none with HUB_HTTP_PORT=0), given the parts of the hub its routes use."""
    settings = hub.settings
    if not settings.http_port:
        return None
    services = ApiServices(settings=settings, registry=hub.registry, registry_source=hub.registry_source,
                           alerts=hub.alerts,
                           activity=hub.evaluation.activity,
                           offline_devices=hub.evaluation.rules.offline_devices,
                           clock=hub.clock, intake=hub.intake, metrics=hub.metrics.registry,
                           links=hub.links)
    return ApiServer(create_app(services), settings.http_host, settings.http_port)


def _start(hub: Hub, api: ApiServer | None) -> None:
    hub.start()
    if api is not None:
        api.start()
        log.info("API listening on %s", api.url)
    # Everything built so far (registry, learned state, imports) lives as long as the hub: keep it out of
    # the cyclic garbage collector, whose full passes over it held every thread for 100-250 ms with 5,000
    # devices (the SOS latency's p99).
    gc.freeze()


def _stop(hub: Hub, api: ApiServer | None) -> None:
    """The API first, so that no request reads a hub that is stopping."""
    if api is not None:
        api.stop()
    hub.stop()


def serve(hub: Hub, api: ApiServer | None, *, duration: float | None, view: bool,
          before_stop: Callable[[], None] = lambda: None) -> None:
    """Run a started hub (and its API) until `duration` passes, Ctrl-C or SIGTERM; then `before_stop()`,
    and stop them."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    deadline = None if duration is None else time.monotonic() + duration
    try:
        if view:
            export = None if hub.influx is None else hub.influx.stats
            live_view = LiveView(hub.intake, hub.clock, hub.alerts, export,
                                 broker_url=redact_url(hub.broker_url), registry=hub.registry.current())
            with Live(live_view.render(), console=Console(), refresh_per_second=2) as live:
                while not stop.wait(1.0) and (deadline is None or time.monotonic() < deadline):
                    live.update(live_view.render())
        else:
            stop.wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        before_stop()
        _stop(hub, api)


@app.command()
def run(
    registry: RegistryOption = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    view: Annotated[bool | None, typer.Option(help="live terminal view [default: when a terminal]")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, max=16, help="intake processes sharing the stream [default: $HUB_INTAKE_WORKERS]")] = None,
) -> None:
    """Run the hub: MQTT intake into the embedded store, InfluxDB export if configured."""
    settings = Settings()
    _setup_logging(settings)
    # Without PostgreSQL the hub writes registry edits made through the API back to the file it was started
    # with; with it, the registry is kept in the store, and the file is imported once when the store has
    # none yet.
    settings = settings.model_copy(update={"registry_path": registry or settings.registry_path,
                                           "intake_workers": workers or settings.intake_workers})
    version = None
    if settings.store_url is None:
        reg = _load_registry(settings.registry_path)
    else:
        try:
            version, reg = registry_at_start(settings.store_url, settings.registry_path,
                                             node=settings.node_id, kept=settings.registry_versions_kept)
        except RegistryError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    try:
        hub = Hub(settings, reg, registry_version=version)
    except (IntakeProcessesError, NodeError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    api = _api_server(hub)
    _start(hub, api)
    serve(hub, api, duration=duration, view=sys.stdout.isatty() if view is None else view)


@app.command()
def intake(
    index: Annotated[int, typer.Option(min=1, help="this worker's number, 1..HUB_INTAKE_WORKERS")],
    parent: Annotated[int | None, typer.Option(hidden=True, help="stop when this process is gone")] = None,
) -> None:
    """An intake-only worker beside `hub run --workers N` (which starts these itself): shared MQTT
    subscription, commit into the same store, acknowledge; no evaluation, alerts, export or API."""
    settings = Settings()
    _setup_logging(settings)
    try:
        process = IntakeProcess(settings, _load_registry(settings.registry_path), index)
    except (IntakeProcessesError, NodeError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    process.serve(parent)


def _port_or_free(port: int) -> int:
    """The configured HTTP port when it is free; else any free one, so a demo never fails on a busy 8080."""
    if port == 0:
        return 0
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return free_loopback_port()
    return port


@app.command()
def demo(
    *,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    households: Annotated[int, typer.Option(min=1, max=500)] = 20,
    acceleration: Annotated[float, typer.Option(help="simulated seconds per real second")] = 600.0,
    seed: Annotated[int, typer.Option()] = 1,
    days: Annotated[int, typer.Option(min=1, help="simulated days; one incident of each kind in them")] = 2,
    view: Annotated[bool | None, typer.Option(help="live terminal view [default: when a terminal]")] = None,
) -> None:
    """The hub on its embedded defaults, with a simulated community publishing through it.

    An embedded broker on a free loopback port (unless HUB_MQTT_URL is set), the store under var/demo/,
    and ~20 households with every device kind living their days from now on, 600× faster than real
    time (a day in 2.4 minutes), with one incident of each kind (SOS, fall, falling object, collapse...)
    somewhere in those days; the hub follows the simulated clock.
    """
    workdir = Path("var/demo")
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("hub.sqlite3*"):
        stale.unlink()  # every demo starts from an empty store, so its counts mean this run
    scenario = Scenario(seed=seed, days=days, start=datetime.now(UTC).astimezone(ZoneInfo(DEFAULT_TIMEZONE)),
                        community=CommunityParameters(households=households, buildings=3))
    simulation = Simulation(scenario)
    registry = Registry(simulation.registry)
    registry.dump(workdir / "registry.yaml")
    settings = Settings().model_copy(update={
        # The demo is the embedded hub: its own SQLite store, whatever HUB_STORE_URL says.
        "store_path": workdir / "hub.sqlite3", "store_url": None, "registry_path": workdir / "registry.yaml",
        "clock": "mqtt",
        "mqtt_client_id": "sc-hub-demo", "embedded_broker_port": free_loopback_port(),
        "http_port": _port_or_free(Settings().http_port)})
    _setup_logging(settings.model_copy(update={"log_level": "WARNING"}))
    hub = Hub(settings, registry)
    api = _api_server(hub)
    _start(hub, api)
    subscriber = hub.intake.pipeline.subscriber
    if not subscriber.wait_subscribed(15):
        console.print(f"[red]the hub could not subscribe at {redact_url(hub.broker_url)}[/red]")
        _stop(hub, api)
        raise typer.Exit(1)
    console.print(f"demo: {len(registry.data.households)} households, {len(registry.devices)} devices, "
                  f"broker {redact_url(hub.broker_url)}, store {settings.store_path}, "
                  f"API {api.url if api else 'off'}, {acceleration:g}× real time; "
                  "Ctrl-C stops")
    if api is not None:
        # An operator token for this run's store, so a newcomer can open the caregiver page at once.
        tokens = TokenStore(settings.store_path)
        try:
            _, secret = tokens.create(name="demo operator", role=Role.OPERATOR, communities=[ALL_COMMUNITIES],
                                      caregiver=None, now_ms=int(time.time() * 1000))
        finally:
            tokens.close()
        console.print(f"caregiver page: {api.url}/  (sign in with the token {secret})")
    stop_publishing = threading.Event()
    publisher = threading.Thread(target=publish_messages, name="simulated-community", daemon=True, kwargs={
        "messages": simulation.messages(),
        "connect": Connector(BrokerAddress.from_url(hub.broker_url), subscriber.protocol),
        "acceleration": acceleration, "stop": stop_publishing})
    publisher.start()

    def stop_community() -> None:
        stop_publishing.set()
        publisher.join(30)

    serve(hub, api, duration=duration, view=sys.stdout.isatty() if view is None else view,
          before_stop=stop_community)
    _print_summary(hub)


def _print_summary(hub: Hub) -> None:
    stats = hub.intake.stats()
    table = Table("kind", "received", "stored", title="demo summary")
    for kind in sorted(stats.received):
        table.add_row(kind, f"{stats.received[kind]:,}", f"{stats.stored[kind]:,}")
    Console().print(table)
    dead = ", ".join(f"{reason}: {n}" for reason, n in stats.dead_letters.most_common()) or "none"
    command = f"HUB_STORE_PATH={hub.settings.store_path} {_hub_command()}"
    Console().print(f"dead letters: {dead}  (`{command} deadletter list`)")
    service = AlertService(hub.settings.store_path, hub.registry.current, hub.clock, hub.settings.alerts)
    try:
        raised = Counter(f"{a.kind} ({a.severity})" for a in service.list(limit=100_000))
    finally:
        service.close()
    Console().print("alerts: " + (", ".join(f"{k}: {n}" for k, n in sorted(raised.items())) or "none")
                    + f"  (`{command} alerts list`)")


def _hub_command() -> str:
    """The hub's command as invoked (`.venv/bin/hub` after `make demo`), for the commands to try next."""
    invoked = Path(sys.argv[0])
    return str(invoked) if invoked.name == "hub" else "hub"


def _summary(reg: Registry) -> str:
    d = reg.data
    return (f"{len(d.communities)} communities, {len(d.buildings)} buildings, "
            f"{len(d.households)} households, {len(d.residents)} residents, {len(reg.devices)} devices")


@registry_app.command("check")
def registry_check(path: Annotated[Path, typer.Argument(help="registry YAML or JSON file")]) -> None:
    """Validate a registry file and summarise it."""
    reg = _load_registry(path)
    d = reg.data
    console.print(f"[green]ok[/green]: {_summary(reg)}")
    # What each resident's home lets the inactivity detector see, and what detection to expect there.
    tracks: dict[Track, list[str]] = {}
    for r in d.residents:
        kinds = (dev.kind for dev in reg.devices.values()
                 if dev.household == r.household and dev.resident in (None, r.id))
        tracks.setdefault(track_of(kinds), []).append(r.id)
    table = Table("track", "residents", "median delay", "within 24 h", "false alarms / month", "basis")
    for track, who in sorted(tracks.items()):
        table.add_row(track.value, ", ".join(who), *EXPECTED[track].cells(), EXPECTED[track].basis)
    console.print(table)
    # Loadable is not enough: an alert the registry has no one to tell of would run out unseen.
    for gap in unreachable_kinds(reg):
        console.print(f"[yellow]warning[/yellow]: {gap}", markup=True, highlight=False)


def _store_url(command: str) -> tuple[Settings, str]:
    settings = Settings()
    if settings.store_url is None:
        console.print(f"[red]`hub registry {command}` works on the registry in PostgreSQL (HUB_STORE_URL "
                      f"is not set); with SQLite the registry file ({settings.registry_path}) is the "
                      "registry[/red]")
        raise typer.Exit(2)
    return settings, settings.store_url


@registry_app.command("import")
def registry_import(path: Annotated[Path, typer.Argument(help="registry YAML or JSON file")]) -> None:
    """Check a registry file as `hub registry check` does and store it in PostgreSQL as the newest
    version: every hub node takes it into service (docs/operators/postgresql.md)."""
    settings, url = _store_url("import")
    reg = _load_registry(path)  # refused with the error a hub starting on the file would give
    version = import_registry(url, reg, actor=f"hub registry import ({getpass.getuser()})",
                              what=f"import {path.name}", kept=settings.registry_versions_kept)
    console.print(f"[green]ok[/green]: {path} stored as registry version {version}: {_summary(reg)}")


@registry_app.command("export")
def registry_export(
        path: Annotated[Path, typer.Argument(help="where to write it: .json for JSON, else YAML")]) -> None:
    """Write the registry in service (the newest version in PostgreSQL) to a file, readable by its owner
    only (it holds residents' personal data)."""
    _, url = _store_url("export")
    stored = stored_registry(url)
    if stored is None:
        console.print("[red]the store holds no registry yet: import one with "
                      "`hub registry import FILE`[/red]")
        raise typer.Exit(1)
    version, reg = stored
    reg.dump(path)
    console.print(f"[green]ok[/green]: registry version {version} written to {path}: {_summary(reg)}")


@registry_app.command("versions")
def registry_versions(limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """The registry's versions in PostgreSQL, newest first: when, who, what changed."""
    _, url = _store_url("versions")
    table = Table("version", "at", "who", "what")
    zone = zone_of(configured_registry())
    for v in stored_versions(url, limit):
        table.add_row(str(v.version), local_time(v.at_ms, zone), v.actor, v.what)
    Console().print(table)


@deadletter_app.command("list")
def deadletter_list(
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    replayed: Annotated[bool, typer.Option(help="include replayed ones")] = False,
) -> None:
    """List dead letters, oldest first."""
    settings = Settings()
    store = Store(settings.store_path, read_only=True, url=settings.store_url)
    table = Table("id", "received", "topic", "reason", "detail", "bytes")
    zone = zone_of(configured_registry())
    for d in store.dead_letters(reason=reason, limit=limit, include_replayed=replayed):
        table.add_row(str(d.id), local_time(d.received_ms, zone), d.topic, d.reason, d.detail,
                      str(d.payload_size))
    Console().print(table)
    counts = store.dead_letter_counts()
    Console().print(", ".join(f"{r}: {n}" for r, n in sorted(counts.items())) or "no dead letters")
    for device, (dropped, last_ms, last_reason) in sorted(store.dead_letters_dropped().items()):
        Console().print(f"{device}: {dropped} more dropped past HUB_DEAD_LETTERS_PER_DEVICE (the newest at "
                        f"{local_time(last_ms, zone)}: {last_reason})")


@deadletter_app.command("replay")
def deadletter_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="dead-letter ids [default: all]")] = None,
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    registry: RegistryOption = None,
    limit: Annotated[int, typer.Option(min=1)] = 10_000,
) -> None:
    """Route dead letters again with the current registry; store those that now decode."""
    settings = Settings()
    try:
        reg = registry_in_service(settings, registry)
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    try:  # a node restricted to communities replays theirs; another's stay dead letters (other_community)
        scope = NodeScope.of(settings, reg)
    except NodeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    router = Router(lambda: reg, settings.zigbee2mqtt_base_topic, RouterLimits.from_settings(settings),
                    scope.communities)
    store = open_store(settings)
    report = replay(store, router, reason=reason, ids=ids or None, limit=limit, now_ms=SystemClock().now_ms())
    console.print(f"replayed: {len(report.stored)} stored, {len(report.still_failing)} still failing, "
                  f"{len(report.truncated)} truncated (not replayable)")
    for dead_id, why in list(report.still_failing.items())[:20]:
        console.print(f"  {dead_id}: {why}")


def main() -> None:  # pragma: no cover - console entry point
    app()
