"""The FastAPI application for one running hub."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from hub.api.routes import health

if TYPE_CHECKING:
    from hub.runtime import Hub


def create_app(hub: Hub) -> FastAPI:
    app = FastAPI(title="Smart-community hub", version="1")
    app.state.hub = hub
    app.include_router(health.router)
    return app
