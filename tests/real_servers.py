"""Real servers for tests and benchmarks, each started on a free loopback port and stopped afterwards:
Mosquitto, VictoriaMetrics and PostgreSQL from Debian's packages, and the hub itself as a subprocess."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import urlencode

import psycopg

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


# Settings at-least-once intake needs from Mosquitto (see docs/operators/at-least-once.md): persistence,
# and queues that never drop QoS 1 messages for the hub's persistent session while it is down or busy.
# `user root`: started as root (as `make test` runs in CI), Mosquitto would otherwise drop to the
# `mosquitto` user, which cannot write the test's private directory: no persistence file, no log, and a
# restart would silently lose every queued message and session. As any other user the option is ignored.
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
user root
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
    """Mosquitto on `port` (a free one by default) with MOSQUITTO_CONF plus `extra_conf`, or with a whole
    `config` of the caller's (which must log to `workdir`/mosquitto.log and listen on `port` and any
    `other_ports`, all waited for)."""

    def __init__(self, workdir: Path, extra_conf: str = "", *, port: int | None = None,
                 config: str | None = None, other_ports: tuple[int, ...] = ()) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_loopback_port() if port is None else port
        self.other_ports = other_ports
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(MOSQUITTO_CONF.format(port=self.port, dir=self.dir) + extra_conf
                             if config is None else config)
        self._binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress("127.0.0.1", self.port)

    def start(self) -> Self:
        process = self._process = subprocess.Popen([self._binary, "-c", str(self.conf)],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ports = (self.port, *self.other_ports)
        wait_until(lambda: process.poll() is not None or all(_port_open(port) for port in ports), 10,
                   what=f"mosquitto on ports {ports}")
        if process.poll() is not None:
            log = self.dir / "mosquitto.log"
            raise RuntimeError(f"mosquitto exited: {log.read_text() if log.exists() else 'no log'}")
        return self

    def stop(self) -> None:
        _stop(self._process)

    def restart(self) -> None:
        self.stop()
        self.start()

    def reload(self) -> None:
        """What `docker compose kill -s SIGHUP mosquitto` does: reread the password file and the ACL."""
        assert self._process is not None
        self._process.send_signal(signal.SIGHUP)


def postgresql_binary(name: str) -> str:
    """initdb and postgres from Debian's `postgresql`, which keeps them off PATH."""
    bindir = (subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout
              if shutil.which("pg_config") else "").strip()
    directories = [bindir, *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return require_binary(name, *(f"{d}/{name}" for d in directories if d))


class PostgreSQL:
    """A PostgreSQL server of its own: `initdb` into a fresh directory, `postgres` on a free loopback port
    (and its socket in that directory), trusting loopback connections; durability off, as test data needs
    none, unless `durable` (the benchmarks: a commit is on disk before intake acknowledges it, as in
    production). PostgreSQL refuses to run as root: as root (`make test` in CI) both run as the
    `postgres` user the Debian package creates, in a directory of /tmp that user may enter. `database()`
    makes a fresh database per test."""

    def __init__(self, *, durable: bool = False) -> None:
        self.port = free_loopback_port()
        self.durable = durable
        self.dir = Path(tempfile.mkdtemp(prefix="hub-test-pg-"))
        # setpriv execs in place (runuser would stay the parent): the pid we signal is postgres itself.
        self._as = (["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
                    if os.geteuid() == 0 else [])
        if self._as:
            shutil.chown(self.dir, "postgres", "postgres")
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://hub@127.0.0.1:{self.port}/{database}"

    def start(self) -> Self:
        data = self.dir / "data"
        subprocess.run([*self._as, postgresql_binary("initdb"), "-D", str(data), "-U", "hub", "-A", "trust",
                        "-E", "UTF8", "--locale=C", "--no-sync"], check=True, capture_output=True)
        log = (self.dir / "postgres.log").open("ab")
        self._process = subprocess.Popen(
            [*self._as, postgresql_binary("postgres"), "-D", str(data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
             *([] if self.durable else
               ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])],
            stdout=log, stderr=log)
        try:
            wait_until(lambda: self._process is not None and (self._process.poll() is not None
                                                              or self._accepts()), 30, what="postgres")
            if self._process.poll() is not None:
                raise RuntimeError(f"postgres exited: {(self.dir / 'postgres.log').read_text()[-3000:]}")
        except BaseException:
            self.stop()
            raise
        return self

    def _accepts(self) -> bool:
        try:
            psycopg.connect(self.url(), connect_timeout=1).close()
        except psycopg.OperationalError:
            return False
        return True

    def database(self) -> str:
        """A fresh, empty database's URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}".encode())
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop a database `database()` made, ending whatever connection a test left to it."""
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)".encode())

    def stop(self) -> None:
        # SIGINT is PostgreSQL's fast shutdown: sessions are ended, not waited for.
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


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
        return self.launch().wait_online(timeout)

    def launch(self) -> HubProcess:
        """Start the process without waiting for it (several hubs starting at once: launch each, then
        `wait_online` each)."""
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hub", "run", "--registry", str(self.registry), "--no-view"],
            env=self.env, stdout=log, stderr=log)
        return self

    def wait_online(self, timeout: float = 30) -> HubProcess:
        online = wait_for_message(self.broker.address, hub_status_topic(self.client_id),
                                  lambda payload: payload == b"online", timeout)
        if online is None:
            self.stop()
            raise TimeoutError(f"hub did not come online; log:\n{self.log_path.read_text()[-3000:]}")
        # The broker hears of the hub before its HTTP server is up: wait for that too.
        if self.env["HUB_HTTP_PORT"] != "0":
            try:
                wait_until(lambda: _http_ok(f"{self.http_url}/health"), timeout, what="the hub's HTTP server")
            except TimeoutError:
                self.stop()
                raise
        return self

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def kill(self) -> None:
        """kill -9, then wait until the broker has noticed (the hub's last will says offline)."""
        assert self._process is not None
        self._process.kill()
        self._process.wait()
        wait_for_message(self.broker.address, hub_status_topic(self.client_id),
                         lambda payload: payload == b"offline", 15)

    def stop(self) -> None:
        _stop(self._process, timeout=30)

    @property
    def store_url(self) -> str | None:
        """The PostgreSQL store the hub runs on (HUB_STORE_URL), None for its SQLite file."""
        return self.env.get("HUB_STORE_URL")

    def store(self) -> Store:
        return Store(self.store_path, read_only=True, url=self.store_url)

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


class Prometheus:
    """Scrapes `targets` (host:port) every second; queried through its HTTP API."""

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_loopback_port()
        self.config = self.dir / "prometheus.yml"
        self.config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "hub", "static_configs": [{"targets": targets}]}],
        }))
        self._binary = require_binary("prometheus", "/usr/bin/prometheus")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        self._process = subprocess.Popen(
            [self._binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=(self.dir / "prometheus.log").open("ab"))
        _started_or_stopped(self, f"{self.url}/-/ready")
        return self

    def stop(self) -> None:
        _stop(self._process)

    def query(self, promql: str) -> dict[str, Any]:
        """An instant query's `data` ({"resultType": ..., "result": [...]}); raises on a query error."""
        url = f"{self.url}/api/v1/query?{urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 400/422: the query is wrong; say how
            raise AssertionError(f"{promql!r}: {exc.read().decode(errors='replace')}") from exc
        assert body["status"] == "success", body
        data: dict[str, Any] = body["data"]
        return data

    def targets_up(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5) as response:
            active = json.loads(response.read())["data"]["activeTargets"]
        return bool(active) and all(target["health"] == "up" for target in active)


INFLUXDB_CONF = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[logging]
  level = "error"
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""


class InfluxDB1:
    """InfluxDB 1.x (Debian's `influxdb`): every listener on loopback, its own data, no reporting home.
    Written through `/write` (line protocol) and read through `/query` (InfluxQL)."""

    def __init__(self, workdir: Path, database: str = "smart_community") -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_loopback_port()
        self.database = database
        self.config = self.dir / "influxdb.conf"
        self.config.write_text(
            INFLUXDB_CONF.format(port=self.port, rpc_port=free_loopback_port(), dir=self.dir))
        self._binary = require_binary("influxd", "/usr/bin/influxd")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InfluxDB1:
        log = (self.dir / "influxd.log").open("ab")
        self._process = subprocess.Popen([self._binary, "-config", str(self.config)],
                                         stdout=subprocess.DEVNULL, stderr=log)
        _started_or_stopped(self, f"{self.url}/ping")
        self.query(f'CREATE DATABASE "{self.database}"', method="POST")
        return self

    def stop(self) -> None:
        _stop(self._process)

    def write(self, lines: list[str], precision: str = "ms") -> None:
        url = f"{self.url}/write?{urlencode({'db': self.database, 'precision': precision})}"
        request = urllib.request.Request(url, data="\n".join(lines).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.status == 204, response.status
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"influxd refused the write: {exc.read().decode(errors='replace')}") from exc

    def query(self, influxql: str, method: str = "GET") -> list[dict[str, Any]]:
        """The statement's results (`results[0]`'s series); raises with influxd's message on an error."""
        params = urlencode({"db": self.database, "q": influxql, "epoch": "ms"})
        request = urllib.request.Request(f"{self.url}/query?{params}", method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{influxql!r}: {exc.read().decode(errors='replace')}") from exc
        results = body.get("results", [])
        errors = [r["error"] for r in results if "error" in r] + ([body["error"]] if "error" in body else [])
        if errors:
            raise AssertionError(f"{influxql!r}: {'; '.join(errors)}")
        series: list[dict[str, Any]] = results[0].get("series", []) if results else []
        return series


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(200 <= response.status < 300)
    except OSError:
        return False


def _started_or_stopped(server: Prometheus | InfluxDB1, ready_url: str) -> None:
    """Wait for the server to answer; if it never does, stop it rather than leave it running."""
    try:
        wait_until(lambda: _http_ok(ready_url), 30, what=ready_url)
    except BaseException:
        server.stop()
        raise
