"""One resident's personal data, everywhere the hub keeps it: exported whole, or erased (PIPL).

What is the resident's: the registry entry, the links to their caregivers, the devices they wear, and the
home's devices when they are the home's only resident (a shared home's door sensor is the household's);
the readings and dead letters of those devices in the store and their points in InfluxDB; the alerts
naming the resident, or about that home without naming anyone, with history and deliveries.

Erasing deletes the readings, dead letters and points, and anonymises the rest so counts stay true for
statistics: alerts keep kind, severity, place and times, lose the resident's id, evidence and notes; the
registry keeps a deactivated entry with no name, flags or caregivers, so the id is never reused and the
registry's references still resolve; the devices they wore are deactivated and unbound. Every erasure is
recorded (who, when, what was removed), every export in the read audit. A resident with an unresolved
alert is not erased: an emergency is dealt with first.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from influxdb_client import InfluxDBClient

from hub.alerts.store import AlertStore
from hub.postgres import PgConnection
from hub.registry import Device, Registry, RegistryFile, Resident
from hub.settings import Settings
from hub.store import ResidentRead, Store, VisitFilter, placeholders

ERASED = "erased"


class ResidentNotFoundError(LookupError):
    pass


class ErasureRefusedError(ValueError):
    """The resident cannot be erased now; the message says why."""


@dataclass(frozen=True, slots=True)
class Who:
    """Who exports or erases, for the audit: a token, or a person at the CLI (token_id None)."""

    name: str
    token_id: str | None
    role: str


def resident_devices(file: RegistryFile, resident_id: str) -> list[Device]:
    """The devices whose data is the resident's (see the module docstring)."""
    resident = next((r for r in file.residents if r.id == resident_id), None)
    if resident is None:
        raise ResidentNotFoundError(f"there is no resident {resident_id!r}")
    alone = not any(r.household == resident.household and r.id != resident_id and r.name != ""
                    for r in file.residents)
    return [d for d in file.devices if d.resident == resident_id
            or (alone and d.household == resident.household and d.resident is None)]


class InfluxPoints:
    """Reads and deletes the exported points of given devices (tag `device`): InfluxDB 2.x through Flux
    and its delete API, VictoriaMetrics through its export and delete_series APIs."""

    def __init__(self, settings: Settings) -> None:
        assert settings.influx_url is not None
        self._s = settings
        self._url = settings.influx_url.rstrip("/")

    def points(self, devices: Sequence[str]) -> list[dict[str, Any]]:
        if not devices:
            return []
        if self._s.influx_server == "victoriametrics":
            query = urllib.parse.urlencode([("match[]", _vm_match(d)) for d in devices] + [("start", "0")])
            with urllib.request.urlopen(f"{self._url}/api/v1/export?{query}", timeout=60) as response:
                lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
            return [{"series": line["metric"], "timestamps_ms": line["timestamps"], "values": line["values"]}
                    for line in lines]
        wanted = ", ".join(json.dumps(d) for d in devices)
        flux = (f"from(bucket: {json.dumps(self._s.influx_bucket)}) |> range(start: 0)"
                f" |> filter(fn: (r) => contains(value: r.device, set: [{wanted}]))")
        with self._client() as client:
            tables = client.query_api().query(flux, org=self._s.influx_org)
        return [{key: (value.isoformat() if isinstance(value, datetime) else value)
                 for key, value in record.values.items() if key not in ("result", "table", "_start", "_stop")}
                for table in tables for record in table.records]

    def delete(self, devices: Sequence[str]) -> None:
        if not devices:
            return
        if self._s.influx_server == "victoriametrics":
            query = urllib.parse.urlencode([("match[]", _vm_match(d)) for d in devices])
            request = urllib.request.Request(f"{self._url}/api/v1/admin/tsdb/delete_series?{query}",
                                             method="POST")
            with urllib.request.urlopen(request, timeout=60):
                return
        with self._client() as client:
            for device in devices:
                client.delete_api().delete(datetime.fromtimestamp(0, UTC), datetime.now(UTC),
                                           f'device="{device}"', bucket=self._s.influx_bucket,
                                           org=self._s.influx_org)

    def _client(self) -> InfluxDBClient:
        return InfluxDBClient(url=self._url, token=self._s.influx_token.get_secret_value(),
                              org=self._s.influx_org, timeout=int(self._s.influx_timeout_s * 1000))


def _vm_match(device: str) -> str:
    return '{device="' + device + '"}'  # registry ids: letters, digits, `_.-` only


def influx_points(settings: Settings) -> InfluxPoints | None:
    return InfluxPoints(settings) if settings.influx_url else None


def _rows(db: sqlite3.Connection | PgConnection, sql: str, args: Sequence[object]) -> list[dict[str, Any]]:
    cursor = db.execute(sql, args)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _in(values: Sequence[object]) -> str:
    return placeholders(len(values))


def _alert_condition(resident: str, households: Sequence[str]) -> tuple[str, list[object]]:
    return (f"(resident = ? OR (resident IS NULL AND household IN ({_in(households)})))",
            [resident, *households])


def export_resident(resident_id: str, registry: Registry, *, store_path: Path, influx: InfluxPoints | None,
                    who: Who, now_ms: int, store_url: str | None = None) -> dict[str, Any]:
    """Everything held about the resident, as JSON-ready data; the export is recorded in the read audit."""
    file = registry.file
    devices = resident_devices(file, resident_id)
    resident = next(r for r in file.residents if r.id == resident_id)
    caregivers = {c.id: c for c in file.caregivers}
    ids = [d.id for d in devices]
    sole_home = [resident.household] if any(d.household == resident.household and d.resident is None
                                             for d in devices) else []
    AlertStore(store_path, url=store_url).close()  # the alert tables exist, even where no alert loop ran
    store = Store(store_path, url=store_url)
    try:
        db = store._db
        readings = _rows(db, f"SELECT device_id AS device, kind, ts, fields, received_ms FROM observations"
                             f" WHERE device_id IN ({_in(ids)}) ORDER BY ts", ids)
        for row in readings:
            row["fields"] = json.loads(row["fields"])
        dead = _rows(db, f"SELECT received_ms, topic, reason, detail, device_id AS device, payload_size,"
                         f" payload FROM dead_letters WHERE device_id IN ({_in(ids)}) ORDER BY id", ids)
        for row in dead:
            row["payload_hex"] = bytes(row.pop("payload")).hex().upper()
        condition, args = _alert_condition(resident_id, sole_home)
        alerts = _rows(db, f"SELECT * FROM alerts WHERE {condition} ORDER BY id", args)
        for alert in alerts:
            alert["evidence"] = json.loads(alert["evidence"])
            alert["occurrences"] = json.loads(alert["occurrences"])
            alert["history"] = _rows(db, "SELECT at_ms, actor, action, from_state, to_state, detail"
                                         " FROM alert_events WHERE alert_id = ? ORDER BY id", (alert["id"],))
            for event in alert["history"]:
                event["detail"] = json.loads(event["detail"])
            alert["deliveries"] = _rows(
                db, "SELECT reason, tier, sink, recipient, status, attempts, sent_ms, last_error"
                    " FROM alert_deliveries WHERE alert_id = ? ORDER BY id", (alert["id"],))
        taught = [dataclasses.asdict(c) for c in store.sensitivity_changes(resident_id)]
        visits = [dataclasses.asdict(v) for v in store.visits(VisitFilter(residents=frozenset({resident_id}),
                                                                          limit=1_000_000))]
        reads = [{"at_ms": r.at_ms, "actor": r.actor, "role": r.role, "what": r.what}
                 for r in reversed(store.reads(resident_id, limit=1_000_000))]  # oldest first
        store.record_read(ResidentRead(now_ms, who.name, who.token_id or "", who.role, "export",
                                       [resident_id]))
    finally:
        store.close()
    return {
        "exported_at_ms": now_ms,
        "resident": resident.model_dump(mode="json"),
        "household": next((h.model_dump(mode="json") for h in file.households if h.id == resident.household),
                          None),
        "caregivers": [{"id": link.caregiver, "tier": link.tier, "name": caregivers[link.caregiver].name,
                        "role": caregivers[link.caregiver].role} for link in resident.caregivers],
        "devices": [d.model_dump(mode="json") for d in devices],
        "readings": readings,
        "dead_letters": dead,
        "alerts": alerts,
        "sensitivity_changes": taught,
        "visits": visits,
        "viewed_by": reads,
        "influxdb_points": None if influx is None else influx.points(ids),
    }


def erase_resident(resident_id: str, file: RegistryFile, *, store_path: Path, influx: InfluxPoints | None,
                   who: Who, now_ms: int,
                   write_registry: Callable[[Callable[[RegistryFile], RegistryFile]], object],
                   store_url: str | None = None) -> dict[str, int]:
    """Erase the resident everywhere (module docstring); returns the counts recorded for statistics.
    `write_registry(change)` persists (and, in a running hub, swaps in) what `change` makes of the newest
    registry: the entry anonymised (a hub node may have changed the registry since `file` was read).
    Safe to run again: what was erased stays erased, the rest is erased then."""
    devices = resident_devices(file, resident_id)
    resident = next(r for r in file.residents if r.id == resident_id)
    ids = [d.id for d in devices]
    sole_home = [resident.household] if any(d.household == resident.household and d.resident is None
                                             for d in devices) else []
    AlertStore(store_path, url=store_url).close()
    store = Store(store_path, url=store_url)
    try:
        condition, args = _alert_condition(resident_id, sole_home)
        open_alerts = store._db.execute(
            f"SELECT id FROM alerts WHERE {condition} AND state != 'resolved'", args).fetchall()
        if open_alerts:
            raise ErasureRefusedError(
                f"resident {resident_id!r} has unresolved alerts"
                f" ({', '.join(str(a) for (a,) in open_alerts)}): resolve them first")
        if influx is not None:
            influx.delete(ids)  # first: a server that refuses leaves everything as it was, to try again
        counts = store.erase(ids, condition, args, resident_id, _tombstone(resident).model_dump(mode="json"))
        counts["devices"] = len(ids)
        store.record_erasure(resident_id, counts, at_ms=now_ms, actor=who.name, token_id=who.token_id,
                             role=who.role)
    finally:
        store.close()
    write_registry(lambda newest: anonymised(newest, resident_id))
    return counts


def _tombstone(resident: Resident) -> Resident:
    return Resident(id=resident.id, household=resident.household, name="", active=False)


def anonymised(file: RegistryFile, resident_id: str) -> RegistryFile:
    """The registry with the resident's entry emptied and deactivated, and the devices they wore unbound
    and deactivated."""
    residents = [_tombstone(r) if r.id == resident_id else r for r in file.residents]
    devices = [d.model_copy(update={"resident": None, "active": False}) if d.resident == resident_id else d
               for d in file.devices]
    return RegistryFile.model_validate({**file.model_dump(), "residents": [r.model_dump() for r in residents],
                                        "devices": [d.model_dump() for d in devices]})

