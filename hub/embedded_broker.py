"""An embedded MQTT broker (amqtt) for running the hub with nothing else installed: `make demo`, trying
things out. It speaks MQTT 3.1.1 only, keeps sessions in memory and listens on loopback; production and
the tests use Mosquitto (see docs/operators/at-least-once.md).

amqtt is asyncio-native; it gets its own thread and event loop so the rest of the hub stays threaded.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from amqtt.broker import Broker

log = logging.getLogger(__name__)


def free_loopback_port() -> int:
    """A port nothing listens on now (so a demo does not collide with a system broker on 1883)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class EmbeddedBroker:
    def __init__(self, port: int = 1883, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="embedded-broker", daemon=True)
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        config: dict[str, Any] = {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 0}
            },
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        # amqtt logs every connection at INFO; keep the demo's terminal for the hub's own view.
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        self._thread.start()
        self._broker = Broker(config, loop=self._loop)
        asyncio.run_coroutine_threadsafe(self._broker.start(), self._loop).result(timeout)
        log.info("embedded MQTT broker listening on %s", self.url)

    def stop(self, timeout: float = 10.0) -> None:
        # amqtt reports its own broadcast task's cancellation as an error on every shutdown.
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        if self._broker is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(timeout)
            except Exception as exc:  # shutting down anyway; a broker that will not stop must not hang us
                log.warning("embedded broker did not shut down cleanly: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
