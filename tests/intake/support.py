"""Shared pieces of the ingestion tests: what a server speaking InfluxDB's write API holds, an SOS press."""

from __future__ import annotations

import json
from pathlib import Path

from hub.registry import Registry
from hub.topics import event_topic
from simulators.message import SimMessage
from tests.real_servers import VictoriaMetrics


def exported_keys(server: VictoriaMetrics) -> set[tuple[str, int]]:
    """(device, ts) of every device reading the server holds, over all measurements and fields (the hub's
    own state snapshots, tagged by community rather than device, are not readings)."""
    return {(series["metric"]["device"], ts) for series in server.export() if "device" in series["metric"]
            for ts in series["timestamps"]}


def influx_env(server: VictoriaMetrics) -> dict[str, str]:
    return {"HUB_INFLUX_URL": server.url, "HUB_INFLUX_BATCH": "2000", "HUB_INFLUX_RETRY_MAX_S": "2"}


def sos_press(registry_path: Path, ts: int) -> SimMessage:
    """A native SOS press of the registry's first wristband."""
    band = next(d for d in Registry.load(registry_path).devices.values() if d.kind == "wristband")
    payload = json.dumps({"ts": ts, "sos": True}).encode()
    return SimMessage(sim_ms=ts, topic=event_topic(band.community, "wristband", band.id), payload=payload,
                      qos=1, retain=False, kind="wristband", device_id=band.id, reading_ts=ts)
