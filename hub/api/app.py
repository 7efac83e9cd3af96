"""The FastAPI application for one running hub."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.routing import Route

from hub.api import docs_pages, v1
from hub.api.routes import health, web
from hub.metrics import metrics_app

if TYPE_CHECKING:
    from hub.runtime import Hub


def create_app(hub: Hub) -> FastAPI:
    app = FastAPI(title="Smart-community hub", version="1", docs_url=None, redoc_url=None)
    docs_pages.install(app)  # /docs from installed files, no CDN
    app.state.hub = hub
    app.include_router(health.router)
    v1.install(app, hub)
    app.router.routes.append(Route("/metrics", metrics_app(hub)))  # exactly /metrics, no redirect
    app.include_router(web.router)
    return app
