"""`hub residents`: one resident's personal data exported or erased, and the read audit (PIPL); what
caregivers' verdicts taught the inactivity detector about them, a missed incident reported, a change
taken back.

These act on the files in settings (store, registry) and on InfluxDB. With the hub running, erase
through its API (`POST /api/v1/residents/{id}/erase`): the running hub holds the registry and writes
it back at its next edit. A sensitivity change is safe beside a running hub: its evaluation reads the
store's changes within seconds. With PostgreSQL (HUB_STORE_URL) the registry is its newest version in the
store, and an erasure here writes a new one, which every running node takes in.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from hub.alerts.directory import timezone_of
from hub.alerts.model import AlertError
from hub.alerts.service import AlertService
from hub.clock import SystemClock
from hub.local_time import configured_registry, local_time, zone_of
from hub.personal_data import (
    ErasureRefusedError,
    ResidentNotFoundError,
    Who,
    erase_resident,
    export_resident,
    influx_points,
)
from hub.registry import Registry, RegistryError, RegistryFile, RegistryHolder
from hub.registry_sources import (
    FileRegistrySource,
    PostgresRegistrySource,
    RegistrySource,
    registry_in_service,
)
from hub.sensitivity import SensitivityChange, by_band
from hub.settings import Settings
from hub.store import Store

app = typer.Typer(help="Residents' personal data: export, erase, who viewed it; their inactivity "
                       "sensitivity: missed incidents, changes taken back.", no_args_is_help=True)
console = Console(stderr=True)

RegistryOption = Annotated[Path | None, typer.Option(help="registry file [default: $HUB_REGISTRY_PATH]")]
ByOption = Annotated[str | None, typer.Option(help="who does it, for the audit [default: the login name]")]


def _registry(settings: Settings, path: Path | None) -> Registry:
    try:
        return registry_in_service(settings, path)
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _source(settings: Settings, path: Path | None, reg: Registry) -> RegistrySource:
    """Where an erasure writes the registry: the file, or (HUB_STORE_URL, no --registry) a new version
    in PostgreSQL, which every running node then takes in."""
    holder = RegistryHolder(reg)
    if path is not None or settings.store_url is None:
        return FileRegistrySource(path or settings.registry_path, holder)
    return PostgresRegistrySource(settings.store_url, holder, 0, kept=settings.registry_versions_kept)


def _when(ms: int) -> str:
    return local_time(ms, zone_of(configured_registry()))


@app.command("export")
def export(
    resident: Annotated[str, typer.Argument(help="the resident's registry id")],
    out: Annotated[Path | None, typer.Option(help="write the JSON here [default: standard output]")] = None,
    registry: RegistryOption = None,
    by: ByOption = None,
) -> None:
    """Everything held about one resident as JSON: registry entry, caregivers, devices, readings, dead
    letters, alerts with history and deliveries, who viewed their data, InfluxDB points."""
    settings = Settings()
    reg = _registry(settings, registry)
    try:
        data = export_resident(resident, reg, store_path=settings.store_path, store_url=settings.store_url,
                               influx=influx_points(settings),
                               who=Who(by or getpass.getuser(), None, "cli"), now_ms=SystemClock().now_ms())
    except ResidentNotFoundError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        out.write_text(text, encoding="utf-8")
        out.chmod(0o600)
        console.print(f"written to {out} (personal data: keep it private, delete it once handed over)")


@app.command("erase")
def erase(
    resident: Annotated[str, typer.Argument(help="the resident's registry id")],
    yes: Annotated[bool, typer.Option("--yes", help="erase without asking")] = False,
    registry: RegistryOption = None,
    by: ByOption = None,
) -> None:
    """Erase one resident everywhere: readings, dead letters and InfluxDB points deleted; alerts, their
    history and the registry entry anonymised (counts kept). Stop the hub first, or use its API."""
    settings = Settings()
    reg = _registry(settings, registry)
    if not yes and not typer.confirm(f"erase resident {resident!r} everywhere? This cannot be undone"):
        raise typer.Exit(1)

    who = Who(by or getpass.getuser(), None, "cli")

    def write(change: Callable[[RegistryFile], RegistryFile]) -> None:
        source = _source(settings, registry, reg)
        try:
            source.write(lambda newest: Registry(change(newest.file)), actor=who.name,
                         what=f"erase residents {resident}", erasing=True)
        finally:
            source.close()

    try:
        counts = erase_resident(resident, reg.file, store_path=settings.store_path,
                                store_url=settings.store_url, influx=influx_points(settings),
                                who=who, now_ms=SystemClock().now_ms(),
                                write_registry=write)
    except (ResidentNotFoundError, ErasureRefusedError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"erased {resident}: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))


@app.command("reads")
def reads(
    resident: Annotated[str | None, typer.Option(help="only reads that showed this resident")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
) -> None:
    """The read audit, newest first: who was shown which residents' data."""
    settings = Settings()
    store = Store(settings.store_path, read_only=True, url=settings.store_url)
    try:
        rows = store.reads(resident, limit)
    finally:
        store.close()
    table = Table("at (UTC)", "who", "role", "what", "residents")
    for r in rows:
        table.add_row(_when(r.at_ms), r.actor, r.role, r.what, ", ".join(r.residents))
    Console().print(table)


@app.command("erasures")
def erasures(limit: Annotated[int, typer.Option(min=1)] = 100) -> None:
    """Erasures done, newest first: who, when, which resident id, what was removed."""
    settings = Settings()
    store = Store(settings.store_path, read_only=True, url=settings.store_url)
    try:
        rows = store.erasures(limit)
    finally:
        store.close()
    table = Table("at (UTC)", "who", "role", "resident", "removed or anonymised")
    for e in rows:
        table.add_row(_when(e["at_ms"]), e["actor"], e["role"], e["resident"],
                      ", ".join(f"{k}: {v}" for k, v in e["counts"].items()))
    Console().print(table)


@contextmanager
def _verdicts(registry: Path | None, resident: str) -> Iterator[tuple[AlertService, ZoneInfo]]:
    """The alert service (which records sensitivity changes) and the resident's community's zone."""
    settings = Settings()
    reg = _registry(settings, registry)
    if not any(r.id == resident for r in reg.data.residents):
        console.print(f"[red]there is no resident {resident!r} in the registry[/red]")
        raise typer.Exit(1)
    service = AlertService(settings.store_path, lambda: reg, SystemClock(), settings.alerts,
                           store_url=settings.store_url)
    try:
        yield service, ZoneInfo(timezone_of(reg, resident=resident))
    except AlertError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        service.close()


def _change_line(change: SensitivityChange, zone: ZoneInfo) -> str:
    return (f"change {change.id}: {change.resident} {change.band} {change.old:.2f} → {change.new:.2f} "
            f"({change.cause} by {change.actor} at {local_time(change.at_ms, zone)})")


@app.command("sensitivity")
def sensitivity_changes(
    resident: Annotated[str, typer.Argument(help="the resident's registry id")],
    registry: RegistryOption = None,
) -> None:
    """What caregivers' verdicts taught the inactivity detector about one resident: the factor per time
    of day now, and every change (its id is what `revert` takes)."""
    with _verdicts(registry, resident) as (service, zone):
        changes = service.sensitivity_changes(resident)
    out = Console()
    out.print("factor by time of day: " + ", ".join(f"{band} {factor:.2f}"
                                                    for band, factor in by_band(changes).items()))
    table = Table("id", "at", "who", "cause", "band", "old → new", "alert / incident / reverts", "note")
    for c in changes:
        about = (f"alert {c.alert_id}" if c.alert_id is not None
                 else f"change {c.reverts}" if c.reverts is not None else local_time(c.incident_ms, zone))
        table.add_row(str(c.id), local_time(c.at_ms, zone), c.actor, c.cause, c.band,
                      f"{c.old:.2f} → {c.new:.2f}", about, c.note)
    out.print(table)


@app.command("missed")
def report_missed(
    resident: Annotated[str, typer.Argument(help="the resident's registry id")],
    at: Annotated[datetime, typer.Option(
        "--at", formats=["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M%z"],
        help="when it happened, in the resident's community's time zone unless an offset is given")],
    note: Annotated[str, typer.Option(help="what happened")] = "",
    registry: RegistryOption = None,
    by: ByOption = None,
) -> None:
    """An incident no alert told of ("found on the floor at 10:00"): the resident's sensitivity at that
    time of day moves one step toward more alerts."""
    with _verdicts(registry, resident) as (service, zone):
        when = at if at.tzinfo is not None else at.replace(tzinfo=zone)
        change = service.report_missed(resident, int(when.timestamp() * 1000), by or getpass.getuser(), note)
    Console().print(_change_line(change, zone))


@app.command("revert")
def revert(
    resident: Annotated[str, typer.Argument(help="the resident's registry id")],
    change_id: Annotated[int, typer.Argument(help="the change's id (`hub residents sensitivity`)")],
    note: Annotated[str, typer.Option(help="why")] = "",
    registry: RegistryOption = None,
    by: ByOption = None,
) -> None:
    """Take a sensitivity change back: its time of day returns to the value before it (recorded as a change
    of its own, which can be reverted in turn)."""
    with _verdicts(registry, resident) as (service, zone):
        if not any(c.id == change_id for c in service.sensitivity_changes(resident)):
            raise AlertError(f"there is no sensitivity change {change_id} of resident {resident!r}")
        change = service.revert_sensitivity(change_id, by or getpass.getuser(), note)
    Console().print(_change_line(change, zone))
