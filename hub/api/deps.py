"""What the routes use of the running hub, as FastAPI dependencies: each route takes the few it needs
(the registry in service, the alert service, the store's path...), never the hub.

Whoever builds the app (the CLI) hands `create_app` an `ApiServices` with the hub's parts; the
dependencies below read it from the app's state. FastAPI resolves a dependency once per request, so a
request that reads the registry in its token check and in its route sees one registry throughout, even
while an edit replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry

from hub.alerts.links import Links
from hub.alerts.service import AlertService
from hub.clock import Clock
from hub.intake import IntakeStatus
from hub.registry import Registry, RegistryHolder
from hub.registry_sources import RegistrySource
from hub.resident_activity import ResidentActivity
from hub.settings import Settings
from hub.store import StoreAt


@dataclass(frozen=True, slots=True)
class ApiServices:
    """The parts of a running hub the API reads or changes."""

    settings: Settings
    registry: RegistryHolder  # read per request; replaced by registry edits
    registry_source: RegistrySource  # where edits are written: the registry file, or PostgreSQL
    alerts: AlertService
    activity: ResidentActivity  # the inactivity detector's state, owned by the evaluation thread
    offline_devices: Callable[[], set[str]]  # the rules' offline devices (a set the evaluation changes)
    clock: Clock  # hub time
    intake: IntakeStatus
    metrics: CollectorRegistry
    links: Links  # the acknowledge links' key, to check the links notifications carry


def _services(request: Request) -> ApiServices:
    found: ApiServices = request.app.state.services
    return found


def _settings(request: Request) -> Settings:
    return _services(request).settings


def _store_at(request: Request) -> StoreAt:
    return _services(request).settings.store_at


def _registry(request: Request) -> Registry:
    return _services(request).registry.current()


def _alerts(request: Request) -> AlertService:
    return _services(request).alerts


def _activity(request: Request) -> ResidentActivity:
    return _services(request).activity


def _offline_devices(request: Request) -> set[str]:
    read = _services(request).offline_devices
    # The evaluation thread adds to and removes from this set while we copy it; retry a torn copy.
    for _ in range(5):
        try:
            return read()
        except RuntimeError:  # "Set changed size during iteration"
            continue
    return set()


def _links(request: Request) -> Links:
    return _services(request).links


def _clock(request: Request) -> Clock:
    return _services(request).clock


def _intake(request: Request) -> IntakeStatus:
    return _services(request).intake


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[StoreAt, Depends(_store_at)]
RegistryDep = Annotated[Registry, Depends(_registry)]
AlertsDep = Annotated[AlertService, Depends(_alerts)]
ActivityDep = Annotated[ResidentActivity, Depends(_activity)]
OfflineDevicesDep = Annotated[set[str], Depends(_offline_devices)]
ClockDep = Annotated[Clock, Depends(_clock)]
LinksDep = Annotated[Links, Depends(_links)]
IntakeDep = Annotated[IntakeStatus, Depends(_intake)]
