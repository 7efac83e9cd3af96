"""The caregiver/operator API (`/api/v1`), installed on the hub's app: its routes, the live alert stream
fed by the alert service, the registry editor, and the tokens table it authenticates against."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from fastapi import FastAPI

from hub.api.registry_editor import RegistryEditor
from hub.api.routes import alerts, me, registry, residents
from hub.api.stream import AlertStream
from hub.api.tokens import TokenStore
from hub.clock import SystemClock

if TYPE_CHECKING:
    from hub.runtime import Hub


def install(app: FastAPI, hub: Hub) -> None:
    TokenStore(hub.settings.store_path).close()  # the table exists before the first request looks in it
    stream = AlertStream(lambda: hub.registry, _tokens_live(hub),
                         per_token=hub.settings.http_streams_per_token)
    hub.alerts.add_listener(stream.changed)
    app.state.alert_stream = stream
    # One editor per app: its lock serializes edits.
    app.state.registry_editor = RegistryEditor(hub.settings.registry_path, lambda: hub.registry,
                                               hub.replace_registry, hub.settings.store_path)
    for routes in (me, alerts, residents, registry):
        app.include_router(routes.router)


def close_streams(app: FastAPI) -> None:
    """End the open alert streams, so stopping the server does not wait on clients that never leave."""
    stream: AlertStream | None = getattr(app.state, "alert_stream", None)
    if stream is not None:
        stream.close()


def _tokens_live(hub: Hub) -> Callable[[Collection[str]], set[str]]:
    def live(token_ids: Collection[str]) -> set[str]:
        store = TokenStore(hub.settings.store_path, read_only=True)
        try:
            return store.live(token_ids, SystemClock().now_ms())  # expiry is wall-clock time
        finally:
            store.close()

    return live
