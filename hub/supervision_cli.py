"""`hub supervision report`: a subdistrict's (街道) monthly supervision summary as CSV and printable HTML,
from the store (HUB_STORE_PATH or HUB_STORE_URL) and the registry, beside a running hub or without one."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hub.clock import SystemClock
from hub.local_time import zone_of
from hub.registry import Registry, RegistryError
from hub.settings import Settings
from hub.supervision.figures import Supervision
from hub.supervision.report import MonthlyReport, to_csv, to_html
from hub.supervision.sources import StoredVisits, read_history

app = typer.Typer(help="Supervision (督查): figures per grid, worker and level.", no_args_is_help=True,
                  add_completion=False)
err = Console(stderr=True)


@app.callback()
def supervision() -> None:
    """Supervision (督查): figures per grid, worker and level (docs/operators/supervision.md)."""
    # A callback keeps `report` a sub-command while it is the only one.


def _month(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a month written YYYY-MM", param_hint="--month") from None


@app.command()
def report(
    subdistrict: Annotated[str, typer.Option(help="the subdistrict's (街道) registry id")],
    month: Annotated[str, typer.Option(help="YYYY-MM, in the subdistrict's time zone")],
    csv_path: Annotated[Path | None, typer.Option("--csv", help="write the CSV here")] = None,
    html_path: Annotated[Path | None, typer.Option("--html", help="write the printable HTML here")] = None,
    registry_path: Annotated[Path | None, typer.Option(
        "--registry", help="registry file [default: $HUB_REGISTRY_PATH]")] = None,
) -> None:
    """The month's figures of a subdistrict, its communities, grids and workers. Print the HTML from a
    browser (A4 landscape) to paper or PDF."""
    first = _month(month)
    if csv_path is None and html_path is None:
        raise typer.BadParameter("say where to write the report: --csv, --html or both")
    settings = Settings()
    try:
        registry = Registry.load(registry_path or settings.registry_path)
    except RegistryError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    hierarchy = registry.hierarchy
    if not hierarchy.has("subdistrict", subdistrict):
        raise typer.BadParameter(f"the registry has no subdistrict {subdistrict!r}",
                                 param_hint="--subdistrict")
    if settings.store_url is None and not settings.store_path.exists():
        err.print(f"[red]no hub store at {settings.store_path} (set HUB_STORE_PATH or HUB_STORE_URL)[/red]")
        raise typer.Exit(1)
    zone = zone_of(registry, min(hierarchy.communities_under("subdistrict", subdistrict), default=None))
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    from_ms, to_ms = (int(datetime(d.year, d.month, 1, tzinfo=zone).timestamp() * 1000)
                      for d in (first, following))
    now_ms = SystemClock().now_ms()
    history = read_history(settings.store_at, StoredVisits(settings.store_at), from_ms, to_ms, now_ms)
    summary = MonthlyReport.of(Supervision(registry, history), subdistrict, first, zone, now_ms)
    if csv_path is not None:
        # With a byte-order mark: a spreadsheet then reads the Chinese names as UTF-8.
        csv_path.write_text(to_csv(summary), encoding="utf-8-sig")
    if html_path is not None:
        html_path.write_text(to_html(summary), encoding="utf-8")
