"""The caregiver/operator API (`/api/v1`), installed on the hub's app: its routes, the live alert stream
fed by the alert service, the registry editor, and the tokens table it authenticates against."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI

from hub.api.registry_editor import RegistryEditor
from hub.api.routes import alerts, me, registry, residents
from hub.api.stream import AlertStream
from hub.api.tokens import TokenStore

if TYPE_CHECKING:
    from hub.runtime import Hub


def install(app: FastAPI, hub: Hub) -> None:
    TokenStore(hub.settings.store_path).close()  # the table exists before the first request looks in it
    stream = AlertStream(lambda: hub.registry, _token_live(hub))
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


def _token_live(hub: Hub) -> Callable[[str], bool]:
    def live(token_id: str) -> bool:
        store = TokenStore(hub.settings.store_path, read_only=True)
        try:
            return store.live(token_id)
        finally:
            store.close()

    return live
