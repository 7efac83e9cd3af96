"""The caregiver/operator API (`/api/v1`), installed on the hub's app: its routes, the live alert stream
fed by the alert service, the registry editor, and the tokens table it authenticates against."""

from __future__ import annotations

from collections.abc import Callable, Collection

from fastapi import FastAPI

from hub.api.audit import record_token_read
from hub.api.deps import ApiServices
from hub.api.registry_editor import RegistryEditor
from hub.api.routes import alerts, me, registry, reports, residents, supervision, visits
from hub.api.stream import AlertStream
from hub.api.tokens import TokenStore
from hub.clock import SystemClock
from hub.store import StoreAt


def install(app: FastAPI, services: ApiServices) -> None:
    settings = services.settings
    # The table exists before the first request looks in it.
    TokenStore(settings.store_path, url=settings.store_url).close()
    stream = AlertStream(services.registry.current, _tokens_live(settings.store_at),
                         per_token=settings.http_streams_per_token,
                         record_read=lambda token, residents: record_token_read(
                             settings.store_at, token, "alert_stream", residents))
    services.alerts.add_listener(stream.changed)
    app.state.alert_stream = stream
    # One editor per app: its lock serializes edits.
    app.state.registry_editor = RegistryEditor(services.registry_source, services.registry.current,
                                               settings.store_at)
    for routes in (me, alerts, reports, residents, registry, supervision, visits):
        app.include_router(routes.router)


def close_streams(app: FastAPI) -> None:
    """End the open alert streams, so stopping the server does not wait on clients that never leave."""
    stream: AlertStream | None = getattr(app.state, "alert_stream", None)
    if stream is not None:
        stream.close()


def _tokens_live(store_at: StoreAt) -> Callable[[Collection[str]], set[str]]:
    def live(token_ids: Collection[str]) -> set[str]:
        store = TokenStore(store_at.path, read_only=True, url=store_at.url)
        try:
            return store.live(token_ids, SystemClock().now_ms())  # expiry is wall-clock time
        finally:
            store.close()

    return live
