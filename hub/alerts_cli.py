"""`hub alerts …`: list, show, acknowledge, assign, resolve and reopen alerts in the hub's store, and file
reports by hand. What is done here is recorded in the history in the role `cli`.

It works on the store file directly (HUB_STORE_PATH), next to a running hub: SQLite WAL lets both write,
and the hub's next tick sees an acknowledgement and stops escalating. It never sends notifications.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from detectors.severity import SEVERITIES
from hub.alerts.directory import Labels, alert_labels, person_name
from hub.alerts.model import ALERT_STATES, OUTCOMES, Alert, AlertError, AlertState
from hub.alerts.reports import NOTE_MAX, PLACES, REPORT_CATEGORIES, report_request
from hub.alerts.service import AlertService
from hub.api.scope import PlaceFilter
from hub.clock import SystemClock
from hub.local_time import configured_registry, local_time, zone_of
from hub.registry import LEVELS, Registry, RegistryError
from hub.registry_sources import registry_in_service
from hub.settings import Settings

app = typer.Typer(help="Inspect and act on alerts.", no_args_is_help=True, add_completion=False)
out = Console()
err = Console(stderr=True)

CLI_ROLE = "cli"  # the history's role of what is done at the command line
ByOption = Annotated[str, typer.Option("--by", help="who is acting (name or caregiver id)")]


def _named(name: str | None, id_: str | None) -> str:
    """`王奶奶 (r-wang)`: the name people know, and the id the commands take."""
    if id_ is None:
        return "-"
    return id_ if not name or name == id_ else f"{name} ({id_})"


def _labels(a: Alert) -> Labels:
    """The alert's names from the registry at HUB_REGISTRY_PATH; ids alone when it cannot be read."""
    return alert_labels(configured_registry() or Registry.empty(), a)


def _person(who: str | None) -> str:
    return _named(person_name(configured_registry() or Registry.empty(), who), who)


def _when(ms: int | None, community: str) -> str:
    """In the alert's community's zone (not this machine's, often UTC on a server), saying which."""
    return local_time(ms, zone_of(configured_registry(), community))


@contextmanager
def _service() -> Iterator[AlertService]:
    settings = Settings()
    if settings.store_url is None and not settings.store_path.exists():
        err.print(f"[red]no hub store at {settings.store_path} (set HUB_STORE_PATH or HUB_STORE_URL)[/red]")
        raise typer.Exit(1)
    # Loaded only if an action needs it (assign checks the caregiver exists).
    registry = functools.cache(lambda: registry_in_service(settings))  # the file's, or PostgreSQL's
    service = AlertService(settings.store_path, registry, SystemClock(), settings.alerts, hands_over=True,
                           store_url=settings.store_url)
    try:
        yield service
    except (AlertError, RegistryError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        service.close()


def _choice(value: str | None, allowed: tuple[str, ...], option: str) -> None:
    if value is not None and value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=option)


def _print_alert(alert: Alert) -> None:
    out.print(
        f"alert {alert.id}: {alert.kind} {alert.severity} {alert.state}"
        + (f" (assigned to {alert.assigned_to})" if alert.assigned_to else "")
    )


@app.command("list")
def list_alerts(
    *,
    state: Annotated[str | None, typer.Option(help=f"one of {', '.join(ALERT_STATES)}")] = None,
    kind: Annotated[str | None, typer.Option()] = None,
    severity: Annotated[str | None, typer.Option(help="this severity and higher")] = None,
    city: Annotated[str | None, typer.Option(help="in this city (市)")] = None,
    district: Annotated[str | None, typer.Option(help="in this district (区)")] = None,
    subdistrict: Annotated[str | None, typer.Option(help="in this subdistrict (街道)")] = None,
    community: Annotated[str | None, typer.Option(help="in this community (社区)")] = None,
    compound: Annotated[str | None, typer.Option(help="in this compound (小区)")] = None,
    building: Annotated[str | None, typer.Option(help="in this building (楼栋)")] = None,
    grid: Annotated[str | None, typer.Option(help="in this grid (网格)")] = None,
    since_hours: Annotated[float | None, typer.Option(help="last seen within this many hours")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON object per line (for `hub simulate score`)")
    ] = False,
) -> None:
    """Alerts, newest first; the place options (any of the registry's levels) together keep what lies in
    all of them."""
    _choice(state, ALERT_STATES, "--state")
    _choice(severity, SEVERITIES, "--severity")
    since_ms = None if since_hours is None else SystemClock().now_ms() - int(since_hours * 3_600_000)
    given = (city, district, subdistrict, community, compound, building, grid)
    named = tuple((level, place) for level, place in zip(LEVELS, given, strict=True) if place is not None)
    with _service() as service:
        among: tuple[tuple[str, tuple[str, ...]], ...] = ()
        if named:
            hierarchy = registry_in_service(Settings()).hierarchy
            for level, place in named:
                if not hierarchy.has(level, place):
                    raise RegistryError(f"there is no {level} {place!r} in the registry")
            among = PlaceFilter(named).alert_columns(hierarchy)
        alerts = service.list(
            state=cast(AlertState | None, state),
            kind=kind,
            min_severity=severity,
            among=among,
            since_ms=since_ms,
            limit=limit,
        )
    if as_json:
        for a in alerts:
            print(json.dumps({**dataclasses.asdict(a), "raised_at_ms": a.first_seen_ms}, ensure_ascii=False))
        return
    table = Table(
        "id",
        "kind",
        "severity",
        "state",
        "about",
        "building",
        "count",
        "last seen",
        "tier",
        "assigned",
        title=f"{len(alerts)} alert(s)",
    )
    for a in alerts:
        words = _labels(a)
        table.add_row(
            str(a.id),
            a.kind,
            a.severity,
            a.state,
            _named(words.people or words.building_name, a.subject),
            _named(words.building_name, a.building),
            str(a.count),
            _when(a.last_seen_ms, a.community),
            str(a.tier),
            _person(a.assigned_to) if a.assigned_to else "",
        )
    out.print(table)


@app.command()
def show(alert_id: Annotated[int, typer.Argument(help="alert id")]) -> None:
    """One alert with its history and deliveries."""
    with _service() as service:
        detail = service.get(alert_id)
    a = detail.alert
    words = _labels(a)

    def at(ms: int | None) -> str:
        return _when(ms, a.community)

    out.print(f"[bold]alert {a.id}[/bold]  {a.kind}  {a.severity}  {a.state}")
    for label, value in (
        ("about", _named(words.people or words.building_name, a.subject)),
        ("place", " / ".join(_named(name, id_) for name, id_ in ((words.community_name, a.community),
                                                               (words.building_name, a.building),
                                                               (words.unit, a.household)))),
        ("resident", _named(words.resident_name, a.resident)),
        ("device", a.device or "-"),
        ("count", str(a.count)),
        ("first seen", at(a.first_seen_ms)),
        ("last seen", at(a.last_seen_ms)),
        ("tier notified", str(a.tier)),
        ("next escalation", at(a.deadline_ms)),
        ("assigned to", _person(a.assigned_to)),
        ("acknowledged",
         f"{_person(a.acknowledged_by)} at {at(a.acknowledged_ms)}" if a.acknowledged_by else "-"),
        ("resolved",
         f"{a.outcome} by {_person(a.resolved_by)} at {at(a.resolved_ms)}" if a.resolved_by else "-"),
        ("note", a.note or "-"),
        ("evidence", json.dumps(a.evidence, ensure_ascii=False)),
    ):
        out.print(f"  {label:<16} {value}")
    history = Table("when", "who", "role", "action", "from", "to", "detail", title="history")
    for e in detail.history:
        history.add_row(
            at(e.at_ms),
            _person(e.actor),
            str(e.detail.get("role", "hub" if e.actor == "hub" else "")),
            e.action,
            e.from_state or "",
            e.to_state,
            json.dumps(e.detail, ensure_ascii=False),
        )
    out.print(history)
    deliveries = Table(
        "sink", "tier", "recipient", "reason", "status", "attempts", "last error", title="deliveries"
    )
    for d in detail.deliveries:
        deliveries.add_row(
            d.sink, str(d.tier), d.recipient or "", d.reason, d.status, str(d.attempts), d.last_error or ""
        )
    out.print(deliveries)


@app.command()
def ack(alert_id: Annotated[int, typer.Argument(help="alert id")], by: ByOption) -> None:
    """Acknowledge an alert: escalation stops."""
    with _service() as service:
        _print_alert(service.acknowledge(alert_id, by, role=CLI_ROLE))


@app.command()
def assign(
    alert_id: Annotated[int, typer.Argument(help="alert id")],
    to: Annotated[str, typer.Option("--to", help="caregiver id from the registry")],
    by: ByOption,
) -> None:
    """Make a caregiver responsible for an alert."""
    with _service() as service:
        _print_alert(service.assign(alert_id, to, by, role=CLI_ROLE))


@app.command()
def resolve(
    alert_id: Annotated[int, typer.Argument(help="alert id")],
    outcome: Annotated[str, typer.Option("--outcome", help=f"one of {', '.join(OUTCOMES)}")],
    by: ByOption,
    note: Annotated[str, typer.Option(help="what happened")] = "",
) -> None:
    """Resolve an alert with its outcome."""
    with _service() as service:
        _print_alert(service.resolve(alert_id, outcome, by, note, role=CLI_ROLE))


@app.command()
def reopen(
    alert_id: Annotated[int, typer.Argument(help="alert id")],
    note: Annotated[str, typer.Option("--note", help="why it goes round the loop again (required)")],
    by: ByOption,
) -> None:
    """Reopen a resolved alert: it needs a new acknowledgement and resolution, and whoever handled it is
    told (by the running hub)."""
    with _service() as service:
        _print_alert(service.reopen(alert_id, by, note, role=CLI_ROLE))


@app.command()
def report(
    *,
    category: Annotated[str, typer.Option("--category", help=f"one of {', '.join(REPORT_CATEGORIES)}")],
    note: Annotated[str, typer.Option("--note", help=f"what was seen (at most {NOTE_MAX} characters)")],
    by: ByOption,
    resident: Annotated[str | None, typer.Option(help="resident id")] = None,
    household: Annotated[str | None, typer.Option(help="household id")] = None,
    device: Annotated[str | None, typer.Option(help="device id")] = None,
    building: Annotated[str | None, typer.Option(help="building id")] = None,
) -> None:
    """File a report by hand (a resident unwell, a hazard, a broken device): it is raised as an alert and
    the running hub tells whom its kind goes to. Name exactly one place."""
    _choice(category, REPORT_CATEGORIES, "--category")
    places = [(place, value) for place, value in zip(PLACES, (resident, household, device, building),
                                                         strict=True) if value is not None]
    if len(places) != 1:
        raise typer.BadParameter("name exactly one of --resident, --household, --device, --building")
    if not note.strip() or len(note) > NOTE_MAX:
        raise typer.BadParameter(f"a note of 1 to {NOTE_MAX} characters", param_hint="--note")
    ((place, place_id),) = places
    with _service() as service:
        request = report_request(registry_in_service(Settings()), category=category, place=place,
                                 place_id=place_id, note=note, by=by, at_ms=SystemClock().now_ms())
        _print_alert(service.raise_alert(request, by=by, role=CLI_ROLE))


if __name__ == "__main__":
    app()
