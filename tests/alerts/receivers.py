"""Where alerts end up, for the tests to look: the alerts in a store, an HTTP server's record of the
webhook's requests, a subscriber to a community's alert topics on a real broker, and a mailbox (the
messages a real SMTP server on loopback took, `mailbox` in tests/conftest.py)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hub.alerts.model import Alert
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.clock import SystemClock
from hub.mqtt import Publisher, wait_for_message
from hub.registry import Registry
from hub.topics import alert_topic
from tests.real_servers import Mosquitto, wait_until


def alerts_in(store_path: Path, registry: Path) -> list[Alert]:
    reg = Registry.load(registry)
    service = AlertService(store_path, lambda: reg, SystemClock(), AlertSettings())
    try:
        return service.list()
    finally:
        service.close()


@dataclass
class WebhookReceiver:
    """An HTTP server that answers each POST with the next status of `statuses` (then 200)."""

    statuses: list[int]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # the receiver's clock, per request
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"


class AlertSubscriber:
    """`wait_for_message` in a thread on `sc/<community>/alerts/#`, proven subscribed (a probe message
    came back) before the test raises anything: alerts are not retained, so a late subscriber misses them."""

    def __init__(self, broker: Mosquitto, community: str, want: Any) -> None:
        self.ready = threading.Event()
        self.received: list[tuple[float, bytes]] = []
        probe_topic = alert_topic(community, "probe")

        def predicate(payload: bytes) -> bool:
            if payload == b"probe":
                self.ready.set()
                return False
            self.received.append((time.monotonic(), payload))
            return bool(want(json.loads(payload)))

        self._thread = threading.Thread(
            target=lambda: wait_for_message(broker.address, f"sc/{community}/alerts/#", predicate, 30),
            daemon=True)
        self._thread.start()
        prober = Publisher(broker.address)
        prober.start()
        try:
            wait_until(lambda: self.ready.is_set() or not prober.publish(probe_topic, b"probe").wait(1), 10,
                       interval=0.1, what="the alert subscriber")
        finally:
            prober.stop()

    def wait(self, timeout: float = 15) -> None:
        self._thread.join(timeout)


@dataclass
class Mailbox:
    port: int
    messages: list[tuple[list[str], bytes]] = field(default_factory=list)

    def url(self, to: str) -> str:
        # Plain SMTP on loopback: no TLS (mode=insecure), no login.
        return f"mailto://127.0.0.1:{self.port}?from=hub@example.com&to={to}&mode=insecure"

    def subjects_for(self, address: str) -> list[str]:
        return [str(make_header(decode_header(message_from_bytes(content)["Subject"])))
                for recipients, content in self.messages if address in recipients]

    def bodies_for(self, address: str, content_type: str) -> list[str]:
        """The decoded `content_type` part (text/plain, text/html) of each message to `address`."""
        found = []
        for recipients, content in self.messages:
            if address not in recipients:
                continue
            for part in message_from_bytes(content).walk():
                payload = part.get_payload(decode=True)
                if part.get_content_type() == content_type and isinstance(payload, bytes):
                    found.append(payload.decode(part.get_content_charset() or "utf-8"))
        return found
