"""The FastAPI application for one running hub."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.routing import Route

from hub.api import docs_pages, v1
from hub.api.deps import ApiServices
from hub.api.routes import ack_link, health, web
from hub.metrics import MetricsApp


def create_app(services: ApiServices) -> FastAPI:
    app = FastAPI(title="Smart-community hub", version="1", docs_url=None, redoc_url=None)
    docs_pages.install(app)  # /docs from installed files, no CDN
    app.state.services = services
    app.middleware("http")(_refuse_nul)
    app.include_router(health.router)
    v1.install(app, services)
    app.router.routes.append(Route("/metrics", MetricsApp(services.metrics)))  # exactly /metrics, no redirect
    app.include_router(web.router)
    app.include_router(ack_link.router)
    return app


async def _refuse_nul(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """A NUL character in a path or query parameter is refused as invalid input (422, FastAPI's
    validation error shape): no id holds one, and PostgreSQL cannot compare text holding one, so it would
    otherwise fail the query there instead of finding nothing."""
    for part, raw in (("path", request.url.path), ("query", request.url.query)):
        if "\x00" in unquote(raw):
            return JSONResponse(status_code=422, content={"detail": [
                {"loc": [part], "msg": "NUL characters are not allowed", "type": "value_error"}]})
    return await call_next(request)
