"""`hub tokens …`: create, list and revoke API tokens in the hub's store (HUB_STORE_PATH).

A running hub on the same store sees a new or revoked token at its next request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub.api.tokens import ALL_COMMUNITIES, Role, Token, TokenError, TokenStore, parse_duration_ms
from hub.clock import SystemClock
from hub.local_time import configured_registry, local_time, zone_of
from hub.registry import Hierarchy, Level, Registry, RegistryError
from hub.settings import Settings

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True, add_completion=False)
err = Console(stderr=True)


def _store() -> TokenStore:
    settings = Settings()
    return TokenStore(settings.store_path, url=settings.store_url)


def _when(ms: int | None) -> str:
    return local_time(ms, zone_of(configured_registry()))


def _places(token: Token) -> str:
    named = [f"{level} " + ", ".join(ids) for level, ids in (("communities", token.communities),
                                                            *token.places().items()) if ids]
    return "; ".join(named) or "-"


def _describe(token: Token) -> str:
    scope = ", ".join(part for part in (f"caregiver {token.caregiver}" if token.caregiver else "",
                                        "" if token.role is Role.CAREGIVER else _places(token)) if part)
    return f"token {token.id} ({token.name}): {token.role.value}, {scope}"


@app.command("create")
def create(
    *,
    name: Annotated[str, typer.Option(help="who uses it; recorded as the actor of their alert actions")],
    role: Annotated[Role, typer.Option(help="what the token may do")],
    community: Annotated[list[str] | None, typer.Option(
        help="a community it may see (repeatable; '*' for every community); not for caregivers")] = None,
    subdistrict: Annotated[list[str] | None, typer.Option(
        help="a subdistrict (街道) whose communities it may see (repeatable)")] = None,
    district: Annotated[list[str] | None, typer.Option(
        help="a district (区) whose communities it may see (repeatable)")] = None,
    city: Annotated[list[str] | None, typer.Option(
        help="a city (市) whose communities it may see (repeatable)")] = None,
    grid: Annotated[list[str] | None, typer.Option(
        help="a grid it works (repeatable; grid_worker role)")] = None,
    caregiver: Annotated[str | None, typer.Option(
        help="registry caregiver id (caregiver role; for a grid_worker, the caregiver who works its grids)",
    )] = None,
    registry: Annotated[Path | None, typer.Option(
        envvar="HUB_REGISTRY_PATH", dir_okay=False, show_default=False,
        help="the hub's registry, which the ids must be in [default: HUB_REGISTRY_PATH's default]")] = None,
    expires: Annotated[str | None, typer.Option(
        help="refused from this long after now on: 90d, 12h, 30m, 2w [default: never]")] = None,
) -> None:
    """Create a token and print it, once, alone on stdout (its hash is all the hub keeps)."""
    now_ms = SystemClock().now_ms()
    try:
        expires_ms = None if expires is None else now_ms + parse_duration_ms(expires)
    except ValueError as exc:
        err.print(f"[red]--expires: {exc}[/red]")
        raise typer.Exit(2) from None
    places = {"cities": city or [], "districts": district or [], "subdistricts": subdistrict or [],
              "grids": grid or []}
    problem = _unknown_ids(registry or Settings().registry_path, community or [], places, caregiver)
    if problem is not None:
        # A typo would make a token that silently sees nothing.
        err.print(f"[red]{problem}[/red]")
        raise typer.Exit(2)
    store = _store()
    try:
        token, secret = store.create(name=name, role=role, communities=community or [], caregiver=caregiver,
                                     now_ms=now_ms, expires_ms=expires_ms, places=places)
    except TokenError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        store.close()
    until = "" if token.expires_ms is None else f", expires {_when(token.expires_ms)}"
    err.print(f"created {_describe(token)}{until}; the token is shown only now:")
    print(secret)


_PLURALS: tuple[tuple[Level, str], ...] = (
    ("city", "cities"), ("district", "districts"), ("subdistrict", "subdistricts"), ("grid", "grids"))


def _unknown_ids(path: Path, communities: list[str], places: dict[str, list[str]],
                 caregiver: str | None) -> str | None:
    """Why the token's ids are not all in service in the registry at `path`; None when they are."""
    try:
        registry = Registry.load(path)
    except RegistryError as exc:
        return f"cannot check the token's ids against the registry (--registry): {exc}"
    in_service = Hierarchy(registry.data)
    named: list[tuple[Level, str]] = [("community", c) for c in communities if c != ALL_COMMUNITIES] + [
        (level, place) for level, plural in _PLURALS for place in places.get(plural, [])]
    for level, place in named:
        if not in_service.has(level, place):
            return f"{level} {place!r} is not in the registry {path} (or is deactivated)"
    if caregiver is not None and caregiver not in {c.id for c in registry.data.caregivers}:
        return f"caregiver {caregiver!r} is not in the registry {path} (or is deactivated)"
    return None


@app.command("list")
def list_tokens(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Every token ever created, revoked and expired ones included (never the tokens themselves)."""
    store = _store()
    try:
        tokens = store.tokens()
    finally:
        store.close()
    now_ms = SystemClock().now_ms()
    if as_json:
        for t in tokens:
            print(json.dumps({"id": t.id, "name": t.name, "role": t.role.value, "caregiver": t.caregiver,
                              "communities": list(t.communities),
                              **{level: list(ids) for level, ids in t.places().items()},
                              "created_ms": t.created_ms,
                              "revoked_ms": t.revoked_ms, "expires_ms": t.expires_ms,
                              "state": t.state(now_ms)}, ensure_ascii=False))
        return
    table = Table("id", "name", "role", "caregiver", "places", "created (UTC)", "expires (UTC)",
                  "revoked (UTC)", "state")
    for t in tokens:
        table.add_row(t.id, t.name, t.role.value, t.caregiver or "-", _places(t),
                      _when(t.created_ms), _when(t.expires_ms), _when(t.revoked_ms), t.state(now_ms))
    Console().print(table)


@app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="the token's id (`hub tokens list`)")]) -> None:
    """Revoke a token: the hub refuses it (401) from its next request on, and ends its live streams
    within a second or two."""
    store = _store()
    try:
        token = store.revoke(token_id, SystemClock().now_ms())
    except TokenError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        store.close()
    err.print(f"revoked {_describe(token)}")
