"""Liveness and readiness: `/health` answers while the process serves; `/ready` says whether the hub can
take messages now (broker connected, store writable), so a load balancer or compose healthcheck can tell."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from hub.api.deps import HubDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    broker_connected: bool
    store_writable: bool


@router.get("/health")
def health() -> Health:
    return Health(status="ok")


@router.get("/ready", responses={503: {"model": Readiness}})
def ready(hub: HubDep, response: Response) -> Readiness:
    current = hub.status()
    readiness = Readiness(
        ready=current.connected and current.store_healthy,
        broker_connected=current.connected,
        store_writable=current.store_healthy,
    )
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness
