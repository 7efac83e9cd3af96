"""The hub's `/metrics` against what really happened: a hub subprocess on a real Mosquitto, following a
simulated clock the test moves, exporting to a real server speaking InfluxDB's write API
(VictoriaMetrics), its webhook sink pointed at a port where nothing listens; and the state snapshot's
counting on a real registry."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from detectors.severity import SEVERITIES
from devices import KINDS
from devices.kind import Reason
from hub.alerts.model import ALERT_KINDS
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.alerts.store import AlertFilter, AlertStore
from hub.clock import CLOCK_TOPIC, SystemClock
from hub.embedded_broker import free_loopback_port
from hub.export.state import STATE_FIELDS, take_snapshot
from hub.metrics import ACK_SECONDS_BUCKETS
from hub.mqtt import Publisher
from hub.registry import Registry
from tests.conftest import StartHub
from tests.observability.support import PUBLISHED, scrape, with_caregivers
from tests.real_servers import HubProcess, Mosquitto, VictoriaMetrics, wait_until

METRICS_DOC = Path(__file__).parents[2] / "docs/operators/metrics.md"
MINUTE_MS = 60_000
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

def samples(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in found, f"no sample {name}{labels}"
    return found[key]


def metric(hub: HubProcess, name: str, **labels: str) -> float:
    return value(samples(scrape(hub)), name, **labels)


def documented_metrics() -> dict[str, tuple[str, set[str]]]:
    """name -> (type, label names) from the table of docs/operators/metrics.md."""
    section = METRICS_DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(hub_\w+)` \| (\w+) \| ([^|]*) \|", section, re.MULTILINE)
    return {name: (kind, set(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows}


def readings(now_ms: int) -> list[tuple[str, bytes, int]]:
    """(topic, payload, ts) of the valid readings, the i-th of each device i seconds before `now_ms`."""
    messages = []
    for kind, (device, count) in PUBLISHED.items():
        for i in range(count):
            payload: dict[str, Any] = {**KINDS[kind].example, "ts": now_ms - i * 1000}
            if kind == "wristband" and i == 0:
                payload["sos"] = True
            if kind == "high_altitude_camera":
                payload["event_id"] = f"hac-{i}"
            topic = f"sc/sunshine/{kind}/{device}/event"
            messages.append((topic, json.dumps(payload).encode(), now_ms - i * 1000))
    return messages


def test_metrics_count_what_was_published(
    tmp_path: Path, mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, start_hub: StartHub,
    one_of_each_registry: Path,
) -> None:
    with_caregivers(one_of_each_registry)
    hub = start_hub(one_of_each_registry, {
        "HUB_CLOCK": "mqtt", "HUB_INFLUX_URL": victoria_metrics.url, "HUB_INFLUX_RETRY_MAX_S": "1",
        "HUB_ALERTS_WEBHOOK_URL": f"http://127.0.0.1:{free_loopback_port()}/hook",  # nothing listens
        "HUB_ALERTS_WEBHOOK_ALLOW_HTTP": "true",
        "HUB_ALERTS_WEBHOOK_TIMEOUT_S": "1", "HUB_ALERTS_DELIVERY_BACKOFF_INITIAL_S": "0.2",
        "HUB_ALERTS_TICK_INTERVAL_S": "0.2", "HUB_ALERTS_APPRISE_ENABLED": "false",
    })
    # Simulated time an hour back: the hub's snapshots are stamped with it, and the server hides the future.
    t0 = SystemClock().now_ms() - 60 * MINUTE_MS
    valid = readings(t0)
    publisher = Publisher(mosquitto.address)
    publisher.start()
    try:
        publisher.publish(CLOCK_TOPIC, str(t0), retain=True)
        for topic, payload, _ in valid:
            publisher.publish(topic, payload)
        publisher.publish("sc/sunshine/door_sensor/door-1/event", b"{not json")  # invalid_json, a known door
        publisher.publish("sc/sunshine/door_sensor/ghost-9/event", b'{"contact": "open"}')  # unknown_device
        publisher.publish("zigbee2mqtt/c1/bridge/state", b'{"state": "online"}').wait(10)  # ignored

        received = Counter({kind: count for kind, (_, count) in PUBLISHED.items()})
        received["door_sensor"] += 1
        messages = sum(received.values()) + 1 + 2  # and the unknown device, the bridge state, the clock

        def all_batched() -> Samples | None:
            # The last messages may come in a later batch than the unknown device's, and a batch's
            # histograms are fed just after its acknowledgement counters: wait for all of it.
            found = samples(scrape(hub))
            batches = value(found, "hub_intake_batches_total")
            done = (value(found, "hub_messages_acked_total", kind="unknown") == 1
                    and value(found, "hub_intake_batch_size_sum") == messages
                    and value(found, "hub_intake_batch_size_count") == batches
                    and value(found, "hub_store_commit_seconds_count") == batches)
            return found if done else None

        found = wait_until(all_batched, 30, what="every message acknowledged and counted in its batch")
        assert found is not None
        for kind in KINDS:
            assert value(found, "hub_messages_received_total", kind=kind) == received[kind]
            assert value(found, "hub_messages_acked_total", kind=kind) == received[kind]
            assert value(found, "hub_messages_committed_total", kind=kind) == PUBLISHED[kind][1]
        assert value(found, "hub_messages_received_total", kind="unknown") == 1
        assert value(found, "hub_messages_ignored_total") == 2  # the bridge state and the clock tick
        for reason in Reason:
            expected = 1 if reason in (Reason.INVALID_JSON, Reason.UNKNOWN_DEVICE) else 0
            assert value(found, "hub_dead_letters_total", reason=reason.value) == expected
        # Every message went through a batch; every reading's lag is its age on the hub clock at commit
        # (the clock stood at t0 throughout).
        assert value(found, "hub_ingestion_lag_seconds_count") == len(valid)
        assert value(found, "hub_ingestion_lag_seconds_sum") == pytest.approx(
            sum((t0 - ts) / 1000 for _, _, ts in valid))
        assert value(found, "hub_broker_connected") == 1
        assert value(found, "hub_store_writable") == 1

        # The SOS press and the falling objects are alerts; six minutes later nobody has acknowledged the
        # SOS: the grid worker (tier 2) is told too. The webhook never answers.
        wait_until(lambda: metric(hub, "hub_alerts_open", kind="sos", severity="critical") == 1, 30,
                   what="the SOS alert")
        publisher.publish(CLOCK_TOPIC, str(t0 + 6 * MINUTE_MS), retain=True).wait(10)
        wait_until(lambda: metric(hub, "hub_alert_escalations_total", kind="sos") == 1, 30,
                   what="the SOS alert escalated")
        wait_until(lambda: metric(hub, "hub_alert_delivery_failures_total", sink="webhook") >= 2, 30,
                   what="failed webhook attempts")

        def ticked_since_t0() -> Samples | None:
            # The evaluation ticks at t0 and again once the clock message is committed; its two counters
            # are updated one after the other.
            found = samples(scrape(hub))
            ticks = value(found, "hub_evaluation_tick_seconds_count")
            evaluated = value(found, "hub_detector_residents_evaluated_total")
            return found if ticks >= 2 and evaluated == ticks else None

        found = wait_until(ticked_since_t0, 30, what="the evaluation ticked after the clock moved")
        assert found is not None
        assert value(found, "hub_alert_deliveries", sink="mqtt", status="sent") >= 2  # raised, escalated
        assert value(found, "hub_alert_delivery_failures_total", sink="mqtt") == 0
        assert value(found, "hub_alerts_open", kind="falling_object", severity="critical") == 1
        assert value(found, "hub_alerts_acknowledged", kind="sos", severity="critical") == 0
        assert value(found, "hub_detector_residents") == 1

        # The snapshot taken when the clock moved on, stamped with hub time, counts the SOS alert open.
        # Waited for before the acknowledgement below: a snapshot taken after it, at the same hub time,
        # rightly counts the alert acknowledged.
        sos_series = '{__name__="hub_alerts_open", community="sunshine", kind="sos", severity="critical"}'
        at = t0 + 6 * MINUTE_MS
        wait_until(lambda: any(at in s["timestamps"] for s in victoria_metrics.export(sos_series)), 30,
                   what="the snapshot at the clock's last tick")
        [series] = victoria_metrics.export(sos_series)
        assert series["values"][series["timestamps"].index(at)] == 1

        # Acknowledged from another process on the same store (as `hub alerts ack` does): the next scrape
        # reads it from the alert tables.
        sos = acknowledge_sos(hub, one_of_each_registry, at_ms=t0 + 7 * MINUTE_MS)
        found = samples(scrape(hub))
        assert value(found, "hub_alerts_open", kind="sos", severity="critical") == 0
        assert value(found, "hub_alerts_acknowledged", kind="sos", severity="critical") == 1
        assert value(found, "hub_alert_acknowledgement_seconds_count", severity="critical") == 1
        took_s = 7 * 60  # from the press (at t0) to the acknowledgement, in hub time
        assert (sos.acknowledged_ms - sos.first_seen_ms) / 1000 == took_s
        assert value(found, "hub_alert_acknowledgement_seconds_sum", severity="critical") == took_s
        within = [value(found, "hub_alert_acknowledgement_seconds_bucket", severity="critical",
                        le=str(float(bound))) for bound in ACK_SECONDS_BUCKETS]
        assert within == [1 if took_s <= b else 0 for b in ACK_SECONDS_BUCKETS]
        assert value(found, "hub_alert_acknowledgement_seconds_count", severity="warning") == 0

        # The InfluxDB export took every reading, and the hub's state snapshots went the same way.
        wait_until(lambda: metric(hub, "hub_influx_export_backlog") == 0, 30,
                   what="the export caught up")
        found = samples(scrape(hub))
        assert value(found, "hub_influx_exported_points_total") > len(valid)  # readings and snapshots
        assert value(found, "hub_influx_rejected_points_total") == 0
        state = victoria_metrics.export('{__name__="hub_state_devices_offline"}')
        assert {s["metric"]["building"] for s in state} == {"b1"}
    finally:
        publisher.stop()

    # No label names a device, resident or household, nor takes one's id as its value.
    text = scrape(hub)
    ids = set(Registry.load(one_of_each_registry).devices) | {"ghost-9", "r1", "h101"}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert not {"device", "resident", "household", "subject"} & set(sample.labels), sample
            assert not ids & set(sample.labels.values()), sample


def acknowledge_sos(hub: HubProcess, registry_path: Path, at_ms: int) -> Any:
    registry = Registry.load(registry_path)
    service = AlertService(hub.store_path, lambda: registry, SystemClock(), AlertSettings())
    try:
        [sos] = service.list(kind="sos")
        return service.acknowledge(sos.id, by="李女士", at_ms=at_ms)
    finally:
        service.close()


def test_metrics_are_the_documented_ones(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub, one_of_each_registry: Path
) -> None:
    """Every family the hub serves is in docs/operators/metrics.md's table with its type and labels, and
    the other way round (the export families appear when InfluxDB is configured: a closed port will do)."""
    hub = start_hub(one_of_each_registry, {"HUB_INFLUX_URL": f"http://127.0.0.1:{free_loopback_port()}"})
    served = {family.name: family for family in text_string_to_metric_families(scrape(hub))
              if family.name.startswith("hub_")}
    documented = documented_metrics()
    exposed_names = {name + ("_total" if family.type == "counter" else "") for name, family in served.items()}
    assert exposed_names == set(documented)
    for name, family in served.items():
        exposed = name + ("_total" if family.type == "counter" else "")
        kind, labels = documented[exposed]
        assert family.type == kind, name
        label_names = {label for s in family.samples for label in s.labels} - {"le"}
        assert label_names == labels, name


def test_state_snapshot_counts_per_place_and_alert_kind(one_of_each_registry: Path, tmp_path: Path) -> None:
    registry = Registry.load(one_of_each_registry)
    alerts = AlertStore(tmp_path / "alerts.sqlite3")
    alerts.close()
    unresolved = [("sunshine", "b1", "sos", "critical", "open", 1),
                  ("sunshine", "b1", "battery_low", "info", "acknowledged", 2),
                  ("elsewhere", "x9", "fall", "critical", "open", 1)]  # a community no longer registered
    snapshot = take_snapshot(registry, 123, inactive_residents=["r1", "nobody"],
                             offline_devices=["door-1", "camera-1", "ghost"], unresolved_alerts=unresolved)
    assert snapshot.places[("sunshine", "b1")] == {"residents_inactive_longer_than_usual": 1,
                                                    "devices_offline": 2, "devices_low_battery": 2}
    assert set(snapshot.places[("sunshine", "b1")]) == set(STATE_FIELDS)
    assert len([key for key in snapshot.alerts if key[0] == "sunshine"]) == len(ALERT_KINDS) * len(SEVERITIES)
    assert snapshot.alerts[("sunshine", "sos", "critical")] == (1, 0)
    assert snapshot.alerts[("sunshine", "battery_low", "info")] == (0, 2)
    assert snapshot.alerts[("sunshine", "fall", "critical")] == (0, 0)  # written as zero, not left out
    assert snapshot.alerts[("elsewhere", "fall", "critical")] == (1, 0)
    with pytest.raises(KeyError):
        snapshot.places[("elsewhere", "x9")]  # nowhere in the registry to put it


def test_alert_store_read_only_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    AlertStore(path).close()
    reader = AlertStore(path, read_only=True)
    try:
        assert reader.alerts(AlertFilter()) == []
        with pytest.raises(Exception, match="readonly"):
            reader.add_event(1, at_ms=0, actor="x", action="raised", from_state=None, to_state="open")
    finally:
        reader.close()
