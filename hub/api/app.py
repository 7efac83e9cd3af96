"""The FastAPI application for one running hub."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route

from hub.api import docs_pages, v1
from hub.api.deps import ApiServices
from hub.api.routes import ack_link, health, web
from hub.metrics import MetricsApp


def create_app(services: ApiServices) -> FastAPI:
    app = FastAPI(title="Smart-community hub", version="1", docs_url=None, redoc_url=None)
    docs_pages.install(app)  # /docs from installed files, no CDN
    app.state.services = services
    app.include_router(health.router)
    v1.install(app, services)
    app.router.routes.append(Route("/metrics", MetricsApp(services.metrics)))  # exactly /metrics, no redirect
    app.include_router(web.router)
    app.include_router(ack_link.router)
    return app
