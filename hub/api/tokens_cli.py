"""`hub tokens …`: create, list and revoke API tokens in the hub's store (HUB_STORE_PATH).

A running hub on the same store sees a new or revoked token at its next request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub.api.tokens import Role, Token, TokenError, TokenStore
from hub.clock import SystemClock
from hub.settings import Settings

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True, add_completion=False)
err = Console(stderr=True)


def _store() -> TokenStore:
    return TokenStore(Settings().store_path)


def _when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _describe(token: Token) -> str:
    if token.caregiver:
        scope = f"caregiver {token.caregiver}"
    else:
        scope = "communities " + ", ".join(token.communities)
    return f"token {token.id} ({token.name}): {token.role.value}, {scope}"


@app.command("create")
def create(
    *,
    name: Annotated[str, typer.Option(help="who uses it; recorded as the actor of their alert actions")],
    role: Annotated[Role, typer.Option(help="what the token may do")],
    community: Annotated[list[str] | None, typer.Option(
        help="a community it may see (repeatable; '*' for every community); not for caregivers")] = None,
    caregiver: Annotated[str | None, typer.Option(help="registry caregiver id (caregiver role)")] = None,
) -> None:
    """Create a token and print it, once, alone on stdout (its hash is all the hub keeps)."""
    store = _store()
    try:
        token, secret = store.create(name=name, role=role, communities=community or [], caregiver=caregiver,
                                     now_ms=SystemClock().now_ms())
    except TokenError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        store.close()
    err.print(f"created {_describe(token)}; the token is shown only now:")
    print(secret)


@app.command("list")
def list_tokens(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Every token ever created, revoked ones included (never the tokens themselves)."""
    store = _store()
    try:
        tokens = store.tokens()
    finally:
        store.close()
    if as_json:
        for t in tokens:
            print(json.dumps({"id": t.id, "name": t.name, "role": t.role.value, "caregiver": t.caregiver,
                              "communities": list(t.communities), "created_ms": t.created_ms,
                              "revoked_ms": t.revoked_ms}, ensure_ascii=False))
        return
    table = Table("id", "name", "role", "caregiver", "communities", "created (UTC)", "revoked (UTC)")
    for t in tokens:
        table.add_row(t.id, t.name, t.role.value, t.caregiver or "-", ", ".join(t.communities) or "-",
                      _when(t.created_ms), _when(t.revoked_ms))
    Console().print(table)


@app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="the token's id (`hub tokens list`)")]) -> None:
    """Revoke a token: the hub refuses it (401) from its next request on."""
    store = _store()
    try:
        token = store.revoke(token_id, SystemClock().now_ms())
    except TokenError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        store.close()
    err.print(f"revoked {_describe(token)}")
