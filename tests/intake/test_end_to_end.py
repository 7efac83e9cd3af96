"""The ingestion spine end to end, against a real Mosquitto and a real server speaking InfluxDB's v2
write API (VictoriaMetrics), with the hub as a subprocess."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from devices import KINDS
from hub.store import Store
from tests.conftest import StartHub
from tests.intake.support import exported_keys, influx_env
from tests.real_servers import Mosquitto, VictoriaMetrics, wait_until
from tests.traffic import BackgroundPublisher, keys, readings


def stored_keys(store: Store) -> set[tuple[str, int]]:
    return set(store.observation_keys())


def test_10000_messages_of_every_kind_reach_sqlite_and_influxdb(
    tmp_path: Path, mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, start_hub: StartHub
) -> None:
    registry = tmp_path / "registry.yaml"
    messages = readings(10_000, registry)
    forms = Counter((m.kind, m.topic.startswith("zigbee2mqtt/")) for m in messages)
    assert {kind for kind, _ in forms} == set(KINDS), "the traffic covers every kind"
    assert sum(n for (_, z2m), n in forms.items() if z2m) > 500, "and the Zigbee2MQTT forms"
    expected = keys(messages)
    assert len(expected) == 10_000

    hub = start_hub(registry, influx_env(victoria_metrics))
    publisher = BackgroundPublisher(mosquitto.address, messages)
    publisher.start()
    publisher.finish()

    hub.wait_for(lambda s: s.count_observations() >= 10_000, 60, "10,000 observations")
    store = hub.store()
    assert stored_keys(store) == expected
    assert store.counts_by_kind() == dict(Counter(m.kind for m in messages))
    assert store.dead_letter_counts() == {}
    wait_until(
        lambda: exported_keys(victoria_metrics) == expected,
        60,
        interval=1,
        what="every observation in VictoriaMetrics",
    )
    # Tags: each point carries community, building and device (household for in-home devices).
    series = victoria_metrics.export('{__name__="door_sensor_open"}')
    assert series and all(
        {"community", "building", "household", "device"} <= s["metric"].keys() for s in series
    )
