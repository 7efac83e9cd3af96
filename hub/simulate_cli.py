"""Command line `hub simulate`: the wiring of the simulators (which know nothing of the hub) to a broker
and to the hub's registry file.

    community   write a community's registry
    run         simulate a scenario: registry, ground truth, publish (or --dry-run), summary
    load        publish valid readings from many devices at a target rate, report the rate achieved

A scenario run against a hub: write the registry first (`community` or `run --dry-run` with the same
options), start the hub on it with `HUB_CLOCK=mqtt` so that it follows the simulated clock, then `run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from hub.mqtt import BrokerAddress, Connector
from hub.redact import redact_url
from hub.registry import Registry
from simulators.incidents import read_ground_truth, write_ground_truth
from simulators.load import LoadPlan, load_community, run_load
from simulators.publishing import publish_simulation, summarize_simulation
from simulators.scenario import Scenario
from simulators.scoring import read_alerts, render, score
from simulators.simulation import Simulation

app = typer.Typer(help="Simulate a smart community's devices and residents.", no_args_is_help=True)
console = Console()

ScenarioFile = Annotated[Path | None, typer.Option("--scenario", help="scenario YAML; options override it",
                                                   exists=True, dir_okay=False)]
Seed = Annotated[int | None, typer.Option(help="same seed, same messages and ground truth")]
Households = Annotated[int | None, typer.Option(help="households per community")]
Zigbee2mqttShare = Annotated[float | None, typer.Option(
    help="share of Zigbee-capable devices registered through Zigbee2MQTT")]
Broker = Annotated[str, typer.Option(help="mqtt://host:port, or mqtt://user:password@host:port")]


@app.command()
def community(
    *,
    out: Annotated[Path, typer.Option("--out", "--registry", help="registry YAML to write")],
    scenario: ScenarioFile = None,
    seed: Seed = None,
    households: Households = None,
    buildings: Annotated[int | None, typer.Option(help="buildings per community")] = None,
    communities: Annotated[int | None, typer.Option()] = None,
    living_alone_share: Annotated[float | None, typer.Option()] = None,
    wandering_risk_share: Annotated[float | None, typer.Option()] = None,
    zigbee2mqtt_share: Zigbee2mqttShare = None,
) -> None:
    """Build a community and write its registry."""
    chosen = _scenario(scenario, seed=seed, community={
        "households": households, "buildings": buildings, "communities": communities,
        "living_alone_share": living_alone_share, "wandering_risk_share": wandering_risk_share,
        "zigbee2mqtt_share": zigbee2mqtt_share})
    registry = Simulation(chosen).registry
    Registry(registry).dump(out)
    console.print(f"wrote {out}: {len(registry.households)} households, {len(registry.residents)} residents, "
                  f"{len(registry.devices)} devices")


@app.command()
def run(
    *,
    broker: Broker = "mqtt://localhost:1883",
    scenario: ScenarioFile = None,
    seed: Seed = None,
    days: Annotated[int | None, typer.Option(help="simulated days")] = None,
    households: Households = None,
    acceleration: Annotated[float, typer.Option(
        help="simulated seconds per wall-clock second; 0: as fast as possible")] = 0.0,
    start: Annotated[str | None, typer.Option(
        help="ISO 8601 with offset, e.g. 2026-11-16T00:00:00+08:00; default: midnight DAYS days ago")] = None,
    registry: Annotated[Path | None, typer.Option(help="write the registry here")] = None,
    truth: Annotated[Path | None, typer.Option(help="write the ground truth here (JSON Lines)")] = None,
    summary: Annotated[Path | None, typer.Option(help="write the run summary here (JSON)")] = None,
    malformed_rate: Annotated[float | None, typer.Option()] = None,
    duplicate_rate: Annotated[float | None, typer.Option()] = None,
    zigbee2mqtt_share: Zigbee2mqttShare = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="generate and summarize only")] = False,
) -> None:
    """Simulate a scenario and publish it to the broker."""
    chosen = _scenario(scenario, seed=seed, days=days, start=start,
                       community={"households": households, "zigbee2mqtt_share": zigbee2mqtt_share},
                       faults={"malformed_rate": malformed_rate, "duplicate_rate": duplicate_rate})
    simulation = Simulation(chosen)
    if registry is not None:
        Registry(simulation.registry).dump(registry)
    if truth is not None:
        write_ground_truth(simulation.incidents, truth)
    if dry_run:
        result = summarize_simulation(simulation)
    else:
        try:
            result = publish_simulation(simulation, Connector(_address(broker)), acceleration=acceleration,
                                        console=console)
        except (ConnectionError, OSError, TimeoutError) as exc:
            console.print(f"[red]cannot publish to {redact_url(broker)}: {exc}[/red]")
            raise typer.Exit(1) from exc
    result.render(console)
    if summary is not None:
        result.write(summary)


@app.command()
def load(
    *,
    broker: Broker = "mqtt://localhost:1883",
    rate: Annotated[float, typer.Option(help="target msg/s in total; 0: as fast as possible")] = 0.0,
    devices: Annotated[int, typer.Option(help="simulated devices")] = 5_000,
    processes: Annotated[int, typer.Option(help="publishing processes, one connection each")] = 2,
    total: Annotated[int | None, typer.Option(help="stop after this many messages")] = None,
    duration: Annotated[float | None, typer.Option(help="or stop after this many seconds")] = None,
    registry: Annotated[Path | None, typer.Option(help="write the matching registry here")] = None,
    report: Annotated[Path | None, typer.Option(help="write the report here (JSON)")] = None,
    seed: Annotated[int, typer.Option()] = 1,
    zigbee2mqtt_share: Annotated[float, typer.Option()] = 0.3,
) -> None:
    """Publish valid readings from many devices and report the publish rate achieved."""
    try:
        plan = LoadPlan(Connector(_address(broker)), rate=rate, devices=devices, processes=processes,
                        total=total, duration_s=duration, seed=seed, zigbee2mqtt_share=zigbee2mqtt_share)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if registry is not None:
        Registry(load_community(devices, seed, zigbee2mqtt_share).registry).dump(registry)
        console.print(f"wrote {registry}")
    with console.status(f"publishing from {devices:,} devices in {processes} processes"):
        result = run_load(plan)
    result.render(console)
    if report is not None:
        result.write(report)


def _scenario(path: Path | None, **overrides: Any) -> Scenario:
    """The scenario file (or the defaults) with the options that were given laid over it."""
    base = Scenario.load(path) if path is not None else Scenario()
    data = base.model_dump(exclude_unset=True)
    for key, value in overrides.items():
        if isinstance(value, dict):
            section = {name: v for name, v in value.items() if v is not None}
            if section:
                data[key] = {**data.get(key, {}), **section}
        elif value is not None:
            data[key] = value
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _address(url: str) -> BrokerAddress:
    try:
        return BrokerAddress.from_url(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--broker") from exc


@app.command("score")
def score_command(
    *,
    truth: Annotated[Path, typer.Option(help="ground truth JSON Lines from `run --truth`", exists=True)],
    alerts: Annotated[Path, typer.Option(help="alerts as JSON Lines (`hub backtest`, the alerts export)",
                                         exists=True)],
    window_h: Annotated[float, typer.Option(help="alerts later than this after the incident miss it")] = 24,
    out: Annotated[Path | None, typer.Option(help="write the report here (JSON)")] = None,
) -> None:
    """Compare the alerts a hub raised with the simulation's ground truth."""
    try:
        report = score(read_ground_truth(truth), read_alerts(alerts), window_ms=int(window_h * 3_600_000))
    except (ValueError, KeyError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    render(report, console)
    if out is not None:
        out.write_text(report.to_json() + "\n", encoding="utf-8")
