"""Shared pieces of the ingestion tests: what a server speaking InfluxDB's write API holds."""

from __future__ import annotations

from tests.real_servers import VictoriaMetrics


def exported_keys(server: VictoriaMetrics) -> set[tuple[str, int]]:
    """(device, ts) of every device reading the server holds, over all measurements and fields (the hub's
    own state snapshots, tagged by community rather than device, are not readings)."""
    return {(series["metric"]["device"], ts) for series in server.export() if "device" in series["metric"]
            for ts in series["timestamps"]}


def influx_env(server: VictoriaMetrics) -> dict[str, str]:
    return {"HUB_INFLUX_URL": server.url, "HUB_INFLUX_BATCH": "2000", "HUB_INFLUX_RETRY_MAX_S": "2"}
