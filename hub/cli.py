"""The `hub` command line (typer)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from hub.clock import SystemClock
from hub.deadletter import replay
from hub.intake import Router, RouterLimits
from hub.live_view import LiveView
from hub.registry import Registry, RegistryError
from hub.runtime import Hub
from hub.settings import Settings
from hub.store import Store

app = typer.Typer(help="Smart-community IoT hub.", no_args_is_help=True, add_completion=False)
deadletter_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)
registry_app = typer.Typer(help="Check the community registry.", no_args_is_help=True)
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(registry_app, name="registry")
console = Console(stderr=True)

RegistryOption = Annotated[Path | None, typer.Option(help="registry file [default: $HUB_REGISTRY_PATH]")]


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _load_registry(path: Path) -> Registry:
    try:
        return Registry.load(path)
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def run_hub(settings: Settings, registry: Registry, *, duration: float | None, view: bool,
            ready: threading.Event | None = None) -> Hub:
    """Run a hub until `duration` passes, Ctrl-C, or SIGTERM; then stop it cleanly."""
    hub = Hub(settings, registry)
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    hub.start()
    if ready is not None:
        ready.set()
    try:
        if view:
            live_view = LiveView(hub)
            with Live(live_view.render(), console=Console(), refresh_per_second=2) as live:
                deadline = None if duration is None else datetime.now(UTC).timestamp() + duration
                while not stop.wait(1.0):
                    live.update(live_view.render())
                    if deadline is not None and datetime.now(UTC).timestamp() >= deadline:
                        break
        else:
            stop.wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        hub.stop()
    return hub


@app.command()
def run(
    registry: RegistryOption = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    view: Annotated[bool | None, typer.Option(help="live terminal view [default: when a terminal]")] = None,
) -> None:
    """Run the hub: MQTT intake into the embedded store, InfluxDB export if configured."""
    settings = Settings()
    _setup_logging(settings)
    reg = _load_registry(registry or settings.registry_path)
    run_hub(settings, reg, duration=duration, view=sys.stdout.isatty() if view is None else view)


@registry_app.command("check")
def registry_check(path: Annotated[Path, typer.Argument(help="registry YAML or JSON file")]) -> None:
    """Validate a registry file and summarise it."""
    reg = _load_registry(path)
    d = reg.data
    console.print(f"[green]ok[/green]: {len(d.communities)} communities, {len(d.buildings)} buildings, "
                  f"{len(d.households)} households, {len(d.residents)} residents, {len(reg.devices)} devices")


@deadletter_app.command("list")
def deadletter_list(
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    replayed: Annotated[bool, typer.Option(help="include replayed ones")] = False,
) -> None:
    """List dead letters, oldest first."""
    store = Store(Settings().store_path, read_only=True)
    table = Table("id", "received (UTC)", "topic", "reason", "detail", "bytes")
    for d in store.dead_letters(reason=reason, limit=limit, include_replayed=replayed):
        when = datetime.fromtimestamp(d.received_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(d.id), when, d.topic, d.reason, d.detail, str(d.payload_size))
    Console().print(table)
    counts = store.dead_letter_counts()
    Console().print(", ".join(f"{r}: {n}" for r, n in sorted(counts.items())) or "no dead letters")


@deadletter_app.command("replay")
def deadletter_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="dead-letter ids [default: all]")] = None,
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    registry: RegistryOption = None,
    limit: Annotated[int, typer.Option(min=1)] = 10_000,
) -> None:
    """Route dead letters again with the current registry; store those that now decode."""
    settings = Settings()
    reg = _load_registry(registry or settings.registry_path)
    router = Router(reg, settings.zigbee2mqtt_base_topic,
                    RouterLimits(settings.max_payload_bytes, settings.max_future_skew_s * 1000))
    store = Store(settings.store_path, synchronous=settings.store_synchronous)
    report = replay(store, router, reason=reason, ids=ids or None, limit=limit, now_ms=SystemClock().now_ms())
    console.print(f"replayed: {len(report.stored)} stored, {len(report.still_failing)} still failing, "
                  f"{len(report.truncated)} truncated (not replayable)")
    for dead_id, why in list(report.still_failing.items())[:20]:
        console.print(f"  {dead_id}: {why}")


def main() -> None:  # pragma: no cover - console entry point
    app()
