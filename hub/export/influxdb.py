"""InfluxDB export sink: observations as line protocol through influxdb-client's v2 write API.

One measurement per device kind, tagged community/building/household/device; fields as decoded; the
point's time is the device's `ts` in milliseconds, so re-sending a point overwrites it. Works with
InfluxDB 2.x/3.x, InfluxDB 1.8+ (token `user:password`, bucket `db/rp`) and servers that speak the same
API (VictoriaMetrics in the tests). Sample configuration:

    HUB_INFLUX_URL=http://influxdb:8086
    HUB_INFLUX_TOKEN=<write token>
    HUB_INFLUX_ORG=smart-community
    HUB_INFLUX_BUCKET=smart-community
    HUB_INFLUX_BATCH=5000              # points per write request (gzip-compressed)
    HUB_INFLUX_RETRY_MAX_S=30          # longest back-off while the server is down
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS, WriteApi
from influxdb_client.rest import ApiException

from hub.registry import PlacedDevice, Registry
from hub.settings import Settings
from hub.store import Store, StoredObservation
from hub.threads import BackgroundThread

log = logging.getLogger(__name__)

SINK = "influxdb"
# Statuses where sending the same batch again can succeed (server busy or down, or misconfigured
# credentials an operator will fix). Any other 4xx means the server refuses these points for good.
_RETRYABLE = {401, 403, 404, 408, 429}


def to_line(observation: StoredObservation, device: PlacedDevice | None) -> str:
    point = Point(observation.kind).tag("device", observation.device_id)
    if device is not None:
        point.tag("community", device.community).tag("building", device.building)
        if device.household is not None:
            point.tag("household", device.household)
    for name, value in observation.fields.items():
        point.field(name, value)
    line: str = point.time(observation.ts, WritePrecision.MS).to_line_protocol()
    return line


def to_lines(rows: list[StoredObservation], registry: Registry) -> list[str]:
    """What the exporter writes for these stored readings."""
    devices = registry.devices
    # A reading with no fields (a Zigbee2MQTT action reset alone) is no point in line protocol.
    return [to_line(row, devices.get(row.device_id)) for row in rows if row.fields]


@dataclass
class ExportStats:
    exported: int = 0
    failures: int = 0
    rejected: int = 0
    backlog: int = 0
    last_error: str | None = None


class InfluxExporter(BackgroundThread):
    def __init__(self, settings: Settings, store_factory: Callable[[], Store],
                 registry: Callable[[], Registry], *, poll_s: float = 0.2,
                 state: Callable[[], list[str]] | None = None) -> None:
        super().__init__("export-influxdb")
        assert settings.influx_url is not None
        self.stats = ExportStats()
        self._settings = settings
        self._store_factory = store_factory
        self._registry = registry
        self._poll_s = poll_s
        # The hub's state snapshot (hub.export.state) when one is due, else []: sent on this same path so
        # it shares the retries and back-off, and waits with the readings while the server is down.
        self._state = state

    def run(self) -> None:
        s = self._settings
        store = self._store_factory()
        client = InfluxDBClient(url=s.influx_url or "", token=s.influx_token.get_secret_value(),
                                org=s.influx_org, timeout=int(s.influx_timeout_s * 1000), enable_gzip=True)
        write_api = client.write_api(write_options=SYNCHRONOUS)
        cursor = store.export_cursor(SINK)
        delay = 0.5
        state_lines: list[str] = []
        try:
            while not self._stopping.is_set():
                if not state_lines and self._state is not None:
                    state_lines = self._state()
                if state_lines:
                    error = self._send(write_api, state_lines, "of the hub's state")
                    if error is not None:
                        delay = self._failed(error, delay)
                        continue
                    state_lines = []
                rows = store.observations_after(cursor, s.influx_batch)
                self.stats.backlog = store.last_observation_id() - cursor
                if not rows:
                    self._stopping.wait(self._poll_s)
                    continue
                error = self._write(write_api, rows)
                if error is not None:
                    delay = self._failed(error, delay)
                    continue
                delay = 0.5
                cursor = rows[-1].id
                store.set_export_cursor(SINK, cursor)
        finally:
            client.close()
            store.close()

    def _write(self, write_api: WriteApi, rows: list[StoredObservation]) -> str | None:
        """Send one batch; None when the cursor may move past it, else why the same batch must be retried."""
        lines = to_lines(rows, self._registry())
        if not lines:
            return None
        return self._send(write_api, lines, f"(ids {rows[0].id}..{rows[-1].id})")

    def _send(self, write_api: WriteApi, lines: list[str], what: str) -> str | None:
        """None when the server took the points or refused them for good; else why to send them again."""
        try:
            write_api.write(self._settings.influx_bucket, self._settings.influx_org, record=lines,
                            write_precision=WritePrecision.MS)
        except ApiException as exc:
            if exc.status in _RETRYABLE or exc.status is None or exc.status >= 500:
                return f"HTTP {exc.status}: {exc.reason}"
            # The server will never take these points; readings stay in the store, the system of record.
            self.stats.rejected += len(lines)
            log.error("InfluxDB refused %d points %s for good: HTTP %s %s", len(lines), what, exc.status,
                      exc.body)
            return None
        except Exception as exc:  # connection refused, timeouts, DNS: wait and send the same batch
            return f"{type(exc).__name__}: {exc}"
        self.stats.exported += len(lines)
        return None

    def _failed(self, error: str, delay: float) -> float:
        self.stats.failures += 1
        self.stats.last_error = error
        log.warning("InfluxDB export failed, retrying in %.1f s: %s", delay, error)
        self._stopping.wait(delay)
        return min(delay * 2, self._settings.influx_retry_max_s)
