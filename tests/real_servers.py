"""Real servers for tests and benchmarks, each started on a free loopback port and stopped afterwards:
Mosquitto and VictoriaMetrics from Debian's packages, and the hub itself as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from hub.embedded_broker import free_loopback_port
from hub.mqtt import BrokerAddress, wait_for_message
from hub.store import Store
from hub.topics import hub_status_topic

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, interval: float = 0.1, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; raise TimeoutError with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def require_binary(name: str, *candidates: str) -> str:
    found = shutil.which(name) or next((c for c in candidates if Path(c).exists()), None)
    if found is None:
        raise RuntimeError(f"{name} is not installed; `make test` installs it (Debian package)")
    return found


# Settings at-least-once intake needs from Mosquitto (see README): persistence, and queues that never
# drop QoS 1 messages for the hub's persistent session while it is down or busy.
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {dir}/
autosave_interval 10
max_queued_messages 10000000
max_queued_bytes 0
max_inflight_messages 0
max_packet_size 2000000
set_tcp_nodelay true
log_dest file {dir}/mosquitto.log
log_type error
log_type warning
"""


class Mosquitto:
    def __init__(self, workdir: Path, extra_conf: str = "") -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_loopback_port()
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(MOSQUITTO_CONF.format(port=self.port, dir=self.dir) + extra_conf)
        self._binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress("127.0.0.1", self.port)

    def start(self) -> Mosquitto:
        self._process = subprocess.Popen([self._binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        wait_until(lambda: _port_open(self.port), 10, what=f"mosquitto on port {self.port}")
        return self

    def stop(self) -> None:
        _stop(self._process)

    def restart(self) -> None:
        self.stop()
        self.start()


class VictoriaMetrics:
    """Speaks InfluxDB's v2 write API (`/api/v2/write`); points are read back through its export API."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.port = free_loopback_port()
        self._binary = require_binary("victoria-metrics", "/usr/bin/victoria-metrics")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VictoriaMetrics:
        self._process = subprocess.Popen(
            [self._binary, f"-storageDataPath={self.dir}", f"-httpListenAddr=127.0.0.1:{self.port}",
             "-retentionPeriod=100y", "-search.disableCache", "-loggerLevel=ERROR",
             "-influxMeasurementFieldSeparator=_"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._healthy, 20, what="victoria-metrics /health")
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        _stop(self._process)

    def export(self, match: str = '{__name__!=""}') -> list[dict[str, Any]]:
        """Every stored series with its samples (JSON lines from /api/v1/export)."""
        query = urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=60) as response:
            return [json.loads(line) for line in response.read().splitlines() if line.strip()]


class HubProcess:
    """`python -m hub run` as a subprocess against a real broker, with its own store and client id."""

    def __init__(self, workdir: Path, registry: Path, broker: Mosquitto,
                 env: dict[str, str] | None = None) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.broker = broker
        self.client_id = f"hub-test-{uuid.uuid4().hex[:8]}"
        self.store_path = self.dir / "hub.sqlite3"
        self.log_path = self.dir / "hub.log"
        self.http_url = f"http://127.0.0.1:{free_loopback_port()}"
        self.env = {
            **os.environ,
            "HUB_MQTT_URL": broker.url,
            "HUB_MQTT_CLIENT_ID": self.client_id,
            "HUB_STORE_PATH": str(self.store_path),
            "HUB_LOG_LEVEL": "INFO",
            "HUB_HTTP_PORT": self.http_url.rsplit(":", 1)[1],
            **(env or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> HubProcess:
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hub", "run", "--registry", str(self.registry), "--no-view"],
            env=self.env, stdout=log, stderr=log)
        online = wait_for_message(self.broker.address, hub_status_topic(self.client_id),
                                  lambda payload: payload == b"online", timeout)
        if online is None:
            self.stop()
            raise TimeoutError(f"hub did not come online; log:\n{self.log_path.read_text()[-3000:]}")
        return self

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """kill -9, then wait until the broker has noticed (the hub's last will says offline)."""
        assert self._process is not None
        self._process.kill()
        self._process.wait()
        wait_for_message(self.broker.address, hub_status_topic(self.client_id),
                         lambda payload: payload == b"offline", 15)

    def stop(self) -> None:
        _stop(self._process, timeout=30)

    def store(self) -> Store:
        return Store(self.store_path, read_only=True)

    def count_observations(self) -> int:
        store = self.store()
        try:
            return store.count_observations()
        finally:
            store.close()

    def wait_for(self, check: Callable[[Store], T], timeout: float, what: str = "the hub's store") -> T:
        store = self.store()
        try:
            return wait_until(lambda: check(store), timeout, interval=0.25, what=what)
        finally:
            store.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
