"""`hub residents`: one resident's personal data exported or erased, and the read audit (PIPL).

These act on the files in settings (store, registry) and on InfluxDB. With the hub running, erase
through its API (`POST /api/v1/residents/{id}/erase`): the running hub holds the registry and writes
it back at its next edit. With PostgreSQL (HUB_STORE_URL) the registry is its newest version in the
store, and an erasure here writes a new one, which every running node takes in.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

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
from hub.settings import Settings
from hub.store import Store

app = typer.Typer(help="Residents' personal data: export, erase, who viewed it.", no_args_is_help=True)
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
