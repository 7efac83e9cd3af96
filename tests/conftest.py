"""Fixtures shared by every area, and the `integration` marker.

A test is `integration` when it starts a real server or a subprocess: Mosquitto, VictoriaMetrics,
Prometheus, InfluxDB, Chromium, an HTTP/SMTP/MQTT server of its own on loopback, the hub or its CLI as a
subprocess. Tests that take one of the real-server fixtures below are marked by
`pytest_collection_modifyitems`; tests that start servers themselves are marked in their module. So that
the mark cannot be forgotten, every test *without* it runs with process creation and listening sockets
refused (`_no_servers_outside_integration`): `pytest -m "not integration"` (`make test-fast`) starts no
broker and no subprocess, by construction."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from hub.embedded_broker import free_loopback_port
from tests.alerts.receivers import Mailbox, WebhookReceiver
from tests.real_servers import HubProcess, InfluxDB1, Mosquitto, Prometheus, VictoriaMetrics
from tests.registry_builder import RegistryBuilder

# Fixtures that start real servers or subprocesses (here, and in the areas' test modules): a test taking
# any of them, directly or through another fixture, is an integration test.
REAL_SERVER_FIXTURES = frozenset({
    "mosquitto", "victoria_metrics", "start_prometheus", "influxdb1", "start_hub", "webhook_receiver",  # here
    "mailbox",  # here
    "black_hole",  # tests/alerts/test_sinks.py
    "chromium",  # tests/api/test_web_page.py
    "broker", "brokers",  # tests/broker/test_config.py
    "password_broker",  # tests/privacy/test_secrets_redacted.py
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


class ServerOutsideIntegrationError(RuntimeError):
    """Raised when a test not marked `integration` starts a process or listens on a socket."""


@pytest.fixture(autouse=True)
def _no_servers_outside_integration(request: pytest.FixtureRequest,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("integration") is not None:
        return
    where = request.node.nodeid

    def refuse_process(*args: Any, **kwargs: Any) -> None:
        raise ServerOutsideIntegrationError(f"{where} starts a subprocess: mark it `integration`")

    def refuse_listen(*args: Any, **kwargs: Any) -> None:
        raise ServerOutsideIntegrationError(f"{where} listens on a socket: mark it `integration`")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse_process)
    monkeypatch.setattr(socket.socket, "listen", refuse_listen)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path / "victoria-metrics").start()
    yield server
    server.stop()


StartHub = Callable[..., HubProcess]
StartPrometheus = Callable[[list[str]], Prometheus]


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[StartPrometheus]:
    """Start Prometheus servers scraping the given host:port targets every second; all stopped at the end."""
    started: list[Prometheus] = []

    def start(targets: list[str]) -> Prometheus:
        server = Prometheus(tmp_path / f"prometheus{len(started)}", targets)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """A real InfluxDB 1.x on loopback, shared by a module's tests (they load it once and query it)."""
    server = InfluxDB1(tmp_path_factory.mktemp("influxdb1")).start()
    yield server
    server.stop()


@pytest.fixture
def start_hub(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[StartHub]:
    """Start hub subprocesses against the test's broker; all are stopped (and logs kept) at the end."""
    started: list[HubProcess] = []

    def start(registry: Path, env: dict[str, str] | None = None) -> HubProcess:
        hub = HubProcess(tmp_path / f"hub{len(started)}", registry, mosquitto, env).start()
        started.append(hub)
        return hub

    yield start
    for hub in started:
        hub.stop()


ONE_OF_EACH: dict[str, str | None] = {
    # device id -> Zigbee2MQTT friendly name (None: native only)
    "door-1": None, "door-z": "101/front door", "peephole-1": None, "band-1": None,
    "band-z": "101/sos button", "camera-1": None, "motion-1": None, "motion-z": "101/hall pir",
}


@pytest.fixture
def one_of_each_registry(tmp_path: Path) -> Path:
    """A one-household registry with a device of every kind, some also in Zigbee2MQTT form."""
    kinds = {"door": "door_sensor", "peephole": "smart_peephole", "band": "wristband",
             "camera": "high_altitude_camera", "motion": "motion_sensor"}
    builder = (RegistryBuilder().community("sunshine", "阳光社区").compound("c1").building("b1", floors=18)
               .grid("g1").household("h101", unit="1-101").resident("r1", "王奶奶"))
    for device_id, z2m in ONE_OF_EACH.items():
        kind = kinds[device_id.split("-")[0]]
        placement = {"building": "b1"} if kind == "high_altitude_camera" else {"household": "h101"}
        builder.device(device_id, kind, zigbee2mqtt=z2m, **placement)
    return builder.dump(tmp_path / "registry.yaml")


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """An HTTP server on loopback answering each POST with the next of its `statuses` (then 200)."""
    receiver = WebhookReceiver(statuses=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.requests.append((dict(self.headers.items()), body))
            receiver.arrived.append(time.time())
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
            pass

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on loopback that keeps every message it takes."""
    box = Mailbox(free_loopback_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook)
            box.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()
