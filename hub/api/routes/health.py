"""Liveness and readiness: `/health` answers while the process serves; `/ready` says whether the hub can
take messages now (broker connected, store writable) and is keeping up with them (ingestion lag), so a
load balancer or compose healthcheck can tell."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from hub.api.deps import ClockDep, IntakeDep

router = APIRouter(tags=["health"])

# Behind by more than this, alerts are no longer about now: not ready (a backlog after a restart, a disk
# too slow for the message rate).
READY_MAX_INGESTION_LAG_MS = 60_000


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    broker_connected: bool
    store_writable: bool
    store_error: str | None = Field(
        None, description="why the last commit failed while the store is not writable (disk full, read-only)"
    )
    ingestion_lag_ms: int = Field(
        description="how far (hub time) the newest committed message is behind the messages waiting; 0: none"
    )
    intake_queue: int = Field(description="messages received and not yet taken into a batch")
    intake_queue_bytes: int = Field(description="their payload bytes (at most HUB_INTAKE_QUEUE_MAX_BYTES)")


@router.get("/health")
def health() -> Health:
    return Health(status="ok")


@router.get("/ready", responses={503: {"model": Readiness}})
def ready(intake: IntakeDep, clock: ClockDep, response: Response) -> Readiness:
    connected, store_error = intake.connected, intake.store_error()
    now = clock.now_ms()
    lag = now - intake.settled_ms(now)
    readiness = Readiness(
        ready=connected and store_error is None and lag <= READY_MAX_INGESTION_LAG_MS,
        broker_connected=connected,
        store_writable=store_error is None,
        store_error=store_error,
        ingestion_lag_ms=lag,
        intake_queue=intake.queued_messages,
        intake_queue_bytes=intake.queued_bytes,
    )
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness
