"""Worker mode: two intake-only processes sharing the stream through an MQTT 5 shared subscription on a
real Mosquitto, both committing into one SQLite store, and the main hub evaluating what they committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.api.tokens import Role
from hub.clock import SystemClock
from hub.intake_processes import (
    GRACE_S,
    REPORT_S,
    IntakeProcessReport,
    WatermarkBoard,
    held_watermark,
    intake_process_client_id,
)
from hub.mqtt import wait_for_message
from hub.registry import Registry
from hub.store import Batch, Observation, Store
from hub.topics import intake_committed_topic
from tests.api.support import client, make_token, publish, write_registry
from tests.conftest import StartHub
from tests.intake.support import sos_press
from tests.real_servers import HubProcess, Mosquitto, wait_until
from tests.traffic import BackgroundPublisher, keys, readings

WORKERS = {"HUB_INTAKE_WORKERS": "2"}


def reports(hub: HubProcess) -> dict[str, IntakeProcessReport]:
    board = WatermarkBoard(hub.store_path, hub.store_url)
    try:
        return board.reports()
    finally:
        board.close()


def metric_sum(hub: HubProcess, name: str) -> float:
    """A metric from the main hub's `/metrics`, summed over its labels."""
    with urllib.request.urlopen(f"{hub.http_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == name)


def sos_alerts(hub: HubProcess) -> list[tuple[str, int]]:
    registry = Registry.load(hub.registry)
    service = AlertService(hub.store_path, lambda: registry, SystemClock(), AlertSettings(),
                           store_url=hub.store_url)
    try:
        return [(a.subject, a.count) for a in service.list() if a.kind == "sos"]
    finally:
        service.close()


def test_two_workers_store_every_reading_once_and_raise_one_sos_alert(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub
) -> None:
    registry = tmp_path / "registry.yaml"
    messages = readings(20_000, registry, households=30)
    press = sos_press(registry, int(time.time() * 1000))
    # The press twice (a redelivery), far apart in the stream: the broker may hand each to another process.
    stream = [*messages[:5_000], press, *messages[5_000:15_000], press, *messages[15_000:]]
    hub = start_hub(registry, WORKERS)
    workers = {intake_process_client_id(hub.client_id, index) for index in (1, 2)}
    wait_until(lambda: workers <= set(reports(hub)), 20, what="the intake workers' first reports")

    with ThreadPoolExecutor(1) as pool:
        # The worker tells the main hub of each commit, so that its readings are evaluated at once.
        notice = pool.submit(wait_for_message, mosquitto.address, intake_committed_topic(hub.client_id),
                             bytes.isdigit, 60)
        publisher = BackgroundPublisher(mosquitto.address, stream)
        publisher.start()
        publisher.finish()
        assert notice.result() is not None, "no commit notice from the intake worker"

    expected = keys(messages) | keys([press])
    hub.wait_for(lambda s: s.count_observations() >= len(expected), 60, f"{len(expected):,} observations")
    time.sleep(1)  # anything redelivered late must not add rows
    store = hub.store()
    assert store.count_observations() == len(expected) == 20_001
    assert set(store.observation_keys()) == expected
    # Both workers took a share of the stream and committed it; the main hub took none.
    def both_reported() -> dict[str, int] | None:
        # Workers report every half second: wait for the reports that cover the whole stream.
        counts = {name: r.messages for name, r in reports(hub).items() if r.messages}
        return counts if set(counts) == workers and sum(counts.values()) >= len(stream) else None

    committed = wait_until(both_reported, 10, what="both workers' counts covering the stream")
    assert committed is not None
    assert min(committed.values()) > 2_000, f"the broker shares the stream: {committed}"
    # The main hub's metrics add up what the workers report.
    acked = wait_until(lambda: (n := metric_sum(hub, "hub_messages_acked_total")) >= len(stream) and n, 10,
                       what="the workers' counts in the hub's metrics")
    assert acked == sum(committed.values())
    assert metric_sum(hub, "hub_messages_committed_total") >= len(expected)
    assert metric_sum(hub, "hub_intake_batch_size_sum") == acked
    # Only the main hub evaluates: the press, stored once, is one alert counted once.
    alerts = wait_until(lambda: sos_alerts(hub), 20, what="the SOS alert")
    assert len(alerts) == 1 and alerts[0][1] == 1, alerts


def test_kill_9_of_an_intake_worker_mid_stream_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub
) -> None:
    registry = tmp_path / "registry.yaml"
    messages = readings(20_000, registry, households=30)
    hub = start_hub(registry, WORKERS)
    worker = intake_process_client_id(hub.client_id, 1)
    first = wait_until(lambda: reports(hub).get(worker), 20, what="the intake worker's first report")
    assert first is not None
    publisher = BackgroundPublisher(mosquitto.address, messages)
    publisher.start()

    wait_until(lambda: (r := reports(hub).get(worker)) is not None and r.messages >= 2_000, 60,
               interval=0.02, what="the worker under way")
    os.kill(first.pid, signal.SIGKILL)
    publisher.finish()

    # Mosquitto keeps a disconnected member's share in its persistent session (and redelivers what it
    # had not acknowledged) rather than passing it to the others: the hub restarts the worker to take it.
    hub.wait_for(lambda s: s.count_observations() >= 20_000, 90, "all 20,000 observations after the kill")
    time.sleep(1)
    store = hub.store()
    assert store.count_observations() == 20_000
    assert set(store.observation_keys()) == keys(messages)
    restarted = reports(hub)[worker]
    assert restarted.pid != first.pid and restarted.messages > 0, restarted
    assert "intake worker 1 exited with -9; restarting it" in hub.log()
    assert hub.log().count("(session present: True)") == 1, "the restarted worker resumed its session"


def test_zigbee2mqtt_press_and_reset_merge_to_the_press_in_either_order(tmp_path: Path) -> None:
    """Two processes may commit the press and its reset (same last_seen) in either order."""
    press = Observation("band-z", "wristband", 1_000, {"sos": True, "battery": 80}, 1_000)
    reset = Observation("band-z", "wristband", 1_000, {"battery": 80}, 1_001)
    merged = []
    for order in ((press, reset), (reset, press)):
        store = Store(tmp_path / f"{order[0].received_ms}.sqlite3")
        ids = []
        for observation in order:
            batch = Batch()
            batch.add_observation(observation, observation.received_ms)
            ids.append(store.commit(batch).after_id)
        (row,) = store.observations_after(0, 10)
        merged.append(row.fields)
        if order[0] is reset:
            # The row changed under the press: it takes a new id, so evaluation (which follows ids)
            # reads it again and sees the press.
            assert ids[1] > ids[0] and row.id == ids[1]
        store.close()
    assert merged == [{"sos": True, "battery": 80}] * 2


@pytest.mark.integration
def test_workers_need_an_external_broker(tmp_path: Path, one_of_each_registry: Path) -> None:
    env = {**os.environ, "HUB_STORE_PATH": str(tmp_path / "hub.sqlite3"), "HUB_HTTP_PORT": "0"}
    env.pop("HUB_MQTT_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "hub", "run", "--registry", str(one_of_each_registry), "--workers", "2",
         "--no-view", "--duration", "5"],
        check=False, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "needs an external MQTT broker" in result.stderr


def test_the_watermark_waits_for_every_live_worker_and_not_for_a_dead_one() -> None:
    started = 1_000_000
    names = ["hub-intake-1", "hub-intake-2"]

    def report(name: str, settled_ms: int, reported_ms: int) -> IntakeProcessReport:
        return IntakeProcessReport(name, 1, settled_ms, 0, reported_ms)

    # Not reported since the hub started (a stale row of an earlier run counts as none): it may be draining
    # a backlog, so nothing is settled yet.
    stale = {"hub-intake-1": report("hub-intake-1", 900_000, started - 1)}
    assert held_watermark(stale, names, started, started + 1_000) == 0
    # Both reporting: the lower of the two.
    both = {"hub-intake-1": report("hub-intake-1", 5_000, started + 500),
            "hub-intake-2": report("hub-intake-2", 7_000, started + 600)}
    assert held_watermark(both, names, started, started + 1_000) == 5_000
    # One silent past the grace period is left out; all silent: nothing holds the hub back.
    later = started + 600 + int(GRACE_S * 1000)
    one_left = {**both, "hub-intake-2": report("hub-intake-2", 7_000, later - 100)}
    assert held_watermark(one_left, names, started, later) == 7_000
    assert held_watermark(both, names, started, later + 1_000) is None


def test_a_device_added_through_the_api_is_stored_by_every_worker(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub
) -> None:
    hub = start_hub(write_registry(tmp_path / "registry.yaml"), WORKERS)
    workers = [intake_process_client_id(hub.client_id, index) for index in (1, 2)]
    wait_until(lambda: set(workers) <= set(reports(hub)), 20, what="the intake workers' first reports")
    admin = make_token(hub, "installer", Role.DEVICE_ADMIN, communities=("sunshine",))
    with client(hub, admin) as api:
        created = api.post("/api/v1/registry/devices",
                           json={"id": "motion-new", "kind": "motion_sensor", "household": "h2"})
        assert created.status_code == 201, created.text
    # The workers take the edit from the registry snapshot the main hub rewrites (until then a worker
    # would dead-letter the new device's messages, replayable with `hub deadletter replay`).
    wait_until(lambda: all(f"{worker}: registry reloaded" in hub.log() for worker in workers), 15,
               what="both intake workers' registry reloads")
    now = int(time.time() * 1000)
    readings_of_new = [("sc/sunshine/motion_sensor/motion-new/event",
                        {"ts": now - 60_000 + i, "occupancy": i % 2 == 0, "battery": 90}) for i in range(40)]
    publish(mosquitto, readings_of_new)
    hub.wait_for(lambda s: len(s.recent_observations(["motion-new"], 100, 0)) >= 40, 20, "40 readings stored")
    store = hub.store()
    assert store.dead_letter_counts() == {}
    # Both processes took a share of the new device's readings (round-robin), and stored it.
    wait_until(lambda: all(r.messages for r in reports(hub).values()), 10, what="both processes' counts")


def test_a_hub_given_workers_drops_the_device_filters_its_session_kept_and_loses_nothing_queued(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub
) -> None:
    registry = tmp_path / "registry.yaml"
    messages = readings(3_000, registry, households=10)
    hub = start_hub(registry)  # alone: its persistent session subscribes to the device filters
    hub.stop()
    # Queued for the stopped hub's own session, before it has workers: it must still commit these.
    publisher = BackgroundPublisher(mosquitto.address, messages[:500])
    publisher.start()
    publisher.finish()
    hub.env.update(WORKERS)
    hub.start()
    workers = {intake_process_client_id(hub.client_id, index) for index in (1, 2)}
    wait_until(lambda: workers <= set(reports(hub)), 20, what="the intake workers' first reports")
    publisher = BackgroundPublisher(mosquitto.address, messages[500:])
    publisher.start()
    publisher.finish()
    hub.wait_for(lambda s: s.count_observations() >= 3_000, 60, "all 3,000 observations")
    # Every message taken once: none also through the device filters the main hub's session had kept.
    acked = wait_until(lambda: (n := metric_sum(hub, "hub_messages_acked_total")) >= 3_000 and n, 10,
                       what="3,000 messages acknowledged")
    time.sleep(2 * REPORT_S)
    assert metric_sum(hub, "hub_messages_acked_total") == acked == 3_000
    assert set(hub.store().observation_keys()) == keys(messages)
    assert sum(r.messages for r in reports(hub).values()) == 2_500, "the workers took what came live"
