"""Fault injection against the real parts (Mosquitto, VictoriaMetrics, the hub subprocess): each test
counts the exact (device, ts) keys published against those stored — none missing; a key stored twice is
impossible (the store is unique on it, and a redelivery lands on its own row).

The default variants are short enough for `make test`; the `slow` ones (`make test-slow`) run the full
figures: 100,000 messages, a 60 s outage, 60 s of overload, 100,000 fuzzed messages, a 1-hour soak
(`FAULTS_SOAK_S` shortens it)."""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from statistics import mean
from typing import Any

import pytest

from hub.mqtt import BrokerAddress, Publisher
from hub.registry import Registry
from hub.store import Store
from hub.topics import event_topic
from simulators.message import SimMessage
from simulators.publishing import AckWindow
from tests.alerts.receivers import AlertSubscriber, WebhookReceiver
from tests.conftest import StartHub
from tests.intake.support import exported_keys, influx_env
from tests.real_servers import HubProcess, Mosquitto, VictoriaMetrics, wait_until
from tests.reliability.faults import (
    ProcessSample,
    Sampler,
    fill,
    fuzzed_message,
    loop_ext4,
    publish_through_mosquitto_pub,
    sample_process,
    small_tmpfs,
    start_publishing,
    synthetic_traffic,
)
from tests.traffic import BackgroundPublisher, keys, readings

SOAK_S = float(os.environ.get("FAULTS_SOAK_S", "3600"))
NOMINAL_RATE = 1_000  # msg/s: 5,000 devices reporting every 5 s


def report(test: str, **figures: object) -> None:
    """The figures docs/operators/reliability.md quotes (`make test-slow` shows them)."""
    print(f"\n[{test}] " + ", ".join(f"{name}={value}" for name, value in figures.items()))


def thirds(samples: list[ProcessSample]) -> tuple[list[ProcessSample], list[ProcessSample]]:
    third = max(1, len(samples) // 3)
    return samples[:third], samples[-third:]


# --- soak ----------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(SOAK_S + 900)
def test_soak_at_nominal_load_keeps_memory_files_and_threads_flat(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub
) -> None:
    registry = tmp_path / "registry.yaml"
    traffic = synthetic_traffic(registry, households=500)
    hub = start_hub(registry)
    sampler = Sampler(hub.pid, interval_s=30 if SOAK_S >= 600 else 2)
    sampler.start()
    run = start_publishing(mosquitto.address, traffic, start=0, processes=1, rate=NOMINAL_RATE,
                           duration_s=SOAK_S)
    try:
        published = run.wait(timeout=SOAK_S + 300)
    finally:
        run.stop()
        samples = sampler.stop()
    hub.wait_for(lambda s: s.count_observations() >= len(published), 300, "every soak message stored")
    store = hub.store()
    assert set(store.observation_keys()) == {traffic.key(i) for i in published}
    assert store.count_observations() == len(published)
    assert store.dead_letter_counts() == {}

    # Warm-up (caches, SQLite's page cache, the detector's per-resident state) is the first sixth; after
    # it, the last third of the samples must not sit above the first third beyond a tolerance: RSS 10 %
    # + 16 MB (allocator noise), no more than 2 more open files (a transient HTTP or SQLite handle), and
    # no more threads.
    steady = samples[len(samples) // 6:]
    first, last = thirds(steady)
    rss_first, rss_last = max(s.rss_kb for s in first), max(s.rss_kb for s in last)
    files_first, files_last = max(s.open_files for s in first), max(s.open_files for s in last)
    threads_first, threads_last = max(s.threads for s in first), max(s.threads for s in last)
    report("soak", seconds=SOAK_S, messages=len(published), lost=0, samples=len(samples),
           rss_mb_first_third=round(rss_first / 1024, 1), rss_mb_last_third=round(rss_last / 1024, 1),
           rss_mb_mean=round(mean(s.rss_kb for s in steady) / 1024, 1),
           open_files=f"{files_first}->{files_last}", threads=f"{threads_first}->{threads_last}")
    assert rss_last <= rss_first * 1.10 + 16 * 1024, f"memory grew: {rss_first} kB -> {rss_last} kB"
    assert files_last <= files_first + 2, f"open files grew: {files_first} -> {files_last}"
    assert threads_last <= threads_first, f"threads grew: {threads_first} -> {threads_last}"
    assert hub.alive


# --- helpers -------------------------------------------------------------------------------------------

def readiness(hub: HubProcess) -> tuple[int, dict[str, Any]]:
    """`/ready`'s status code and body (a 503 carries the body too)."""
    try:
        with urllib.request.urlopen(f"{hub.http_url}/ready", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def health_ok(hub: HubProcess) -> bool:
    with urllib.request.urlopen(f"{hub.http_url}/health", timeout=5) as response:
        return bool(response.status == 200)


def publish_all(address: BrokerAddress, messages: list[SimMessage]) -> None:
    publisher = BackgroundPublisher(address, messages)
    publisher.start()
    publisher.finish()


def timeout_for(count: int) -> float:
    """Seconds to allow for `count` messages to flow end to end on a slow, shared 2-core machine."""
    return 60 + count / 500


def assert_every_message_stored_once(hub: HubProcess, messages: list[SimMessage]) -> None:
    """Every published (device, ts) is stored, and a redelivery arriving late adds no row."""
    count = len(messages)
    hub.wait_for(lambda s: s.count_observations() >= count, timeout_for(count), "every observation")
    time.sleep(1)  # anything redelivered late must not add rows
    store = hub.store()
    assert set(store.observation_keys()) == keys(messages)
    assert store.count_observations() == count


# --- kill -9 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("count", [20_000, pytest.param(100_000, marks=[pytest.mark.slow,
                                                                        pytest.mark.timeout(1200)])])
def test_kill_9_twice_mid_stream_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub, count: int
) -> None:
    registry = tmp_path / "registry.yaml"
    messages = readings(count, registry, households=max(30, count // 600))
    hub = start_hub(registry)
    # Paced so that both kills fall inside the stream, not in the drain after it.
    publisher = BackgroundPublisher(mosquitto.address, messages, per_second=2_000)
    publisher.start()
    at_kills = []
    for share in (0.2, 0.6):
        def stored_past_share(store: Store, share: float = share) -> int:
            return n if (n := store.count_observations()) >= count * share else 0

        at_kills.append(hub.wait_for(stored_past_share, timeout_for(count), f"{share:.0%} of the stream"))
        hub.kill()
        time.sleep(1)  # the stream goes on into the broker's queue for the hub's session
        hub.start()
    publisher.finish(timeout_for(count))

    assert_every_message_stored_once(hub, messages)
    assert max(at_kills) < count, "both kills came mid-stream"
    assert hub.log().count("session present: True") >= 2, "each restart resumed the persistent session"
    report("kill-9", messages=count, kills=len(at_kills), stored_at_kills=at_kills, lost=0)


# --- broker restart ------------------------------------------------------------------------------------

@pytest.mark.parametrize("count", [20_000, pytest.param(100_000, marks=[pytest.mark.slow,
                                                                        pytest.mark.timeout(1200)])])
def test_broker_restart_mid_stream_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub, count: int
) -> None:
    registry = tmp_path / "registry.yaml"
    messages = readings(count, registry, households=max(30, count // 600))
    hub = start_hub(registry)
    # The publisher reconnects by itself (paho's loop) and sends again every QoS 1 message the broker had
    # not acknowledged; the hub resumes its persistent session, which the broker kept on disk.
    publisher = BackgroundPublisher(mosquitto.address, messages)
    publisher.start()
    at_restart = hub.wait_for(lambda s: (n := s.count_observations()) >= count // 4 and n,
                              timeout_for(count), "a stream under way")
    mosquitto.restart()
    publisher.finish(timeout_for(count))

    assert_every_message_stored_once(hub, messages)
    assert at_restart < count, "the broker restarted mid-stream"
    assert "session present: True" in hub.log(), "the hub resumed its session on the restarted broker"
    assert publisher.published == count
    report("broker-restart", messages=count, stored_at_restart=at_restart, lost=0)


# --- InfluxDB-API server down, SOS still delivered -------------------------------------------------------

def sos_wristbands(registry: Path, count: int) -> list[tuple[str, str]]:
    """(event topic, device id) of `count` wristbands of different residents."""
    reg = Registry.load(registry)
    bands = sorted((d for d in reg.devices.values() if d.kind == "wristband"), key=lambda d: d.id)
    chosen: list[tuple[str, str]] = []
    wearers: set[str] = set()
    for device in bands:
        if device.resident is not None and device.resident not in wearers:
            wearers.add(device.resident)
            chosen.append((event_topic(device.community, device.kind, device.id), device.id))
    assert len(chosen) >= count, "the community has enough wristband wearers"
    return chosen[:count]


@pytest.mark.parametrize("outage_s", [15, pytest.param(60, marks=[pytest.mark.slow,
                                                                    pytest.mark.timeout(900)])])
def test_influxdb_down_sos_still_delivered_and_everything_exported_after(
    tmp_path: Path, mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, start_hub: StartHub,
    request: pytest.FixtureRequest, *, outage_s: int
) -> None:
    webhook: WebhookReceiver = request.getfixturevalue("webhook_receiver")  # tests/conftest.py
    rate = 300
    registry = tmp_path / "registry.yaml"
    messages = readings(rate * (outage_s + 15), registry, households=40)
    hub = start_hub(registry, {**influx_env(victoria_metrics),
                               "HUB_ALERTS_WEBHOOK_URL": webhook.url, "HUB_ALERTS_WEBHOOK_ALLOW_HTTP": "true",
                               "HUB_ALERTS_WEBHOOK_SECRET": "fault-injection-secret"})
    publisher = BackgroundPublisher(mosquitto.address, messages, per_second=rate)
    publisher.start()
    hub.wait_for(lambda s: s.count_observations() >= rate, 30, "the stream to start")

    victoria_metrics.stop()
    outage_started = time.monotonic()
    stored_at_outage = hub.count_observations()
    bands = sos_wristbands(registry, 2)
    community = Registry.load(registry).devices[bands[0][1]].community
    sos_subjects: set[str] = set()

    def both_sos_alerts(body: dict[str, Any]) -> bool:
        if body.get("kind") == "sos":
            sos_subjects.add(body["subject"])
        return len(sos_subjects) >= 2

    alerts = AlertSubscriber(mosquitto, community, both_sos_alerts)
    press = Publisher(mosquitto.address)
    press.start()
    now = int(time.time() * 1000)
    sos_keys = set()
    for topic, device in bands:
        assert press.publish(topic, json.dumps({"ts": now, "sos": True})).wait(10)
        sos_keys.add((device, now))
    press.stop()
    alerts.wait(outage_s)
    mqtt_subjects = {b["subject"] for b in sos_bodies(alerts.received)}
    wait_until(lambda: len(webhook_sos_subjects(webhook)) >= 2, outage_s, interval=0.2,
               what="both SOS alerts at the webhook")
    delivered_within = time.monotonic() - outage_started
    assert delivered_within < outage_s, "the SOS alerts were delivered during the outage"
    assert len(mqtt_subjects) == 2, f"both SOS alerts on the MQTT alert topic: {mqtt_subjects}"
    assert webhook_sos_subjects(webhook) == mqtt_subjects
    time.sleep(max(0.0, outage_s - (time.monotonic() - outage_started)))
    assert "InfluxDB export failed" in hub.log(), "the outage was noticed and retried"
    stored_in_outage = hub.count_observations() - stored_at_outage
    assert stored_in_outage > rate * outage_s // 2, f"intake went on during the outage: {stored_in_outage}"
    victoria_metrics.start()
    publisher.finish(timeout_for(len(messages)))

    expected = keys(messages) | sos_keys
    hub.wait_for(lambda s: s.count_observations() >= len(expected), 60, "every observation stored")
    assert set(hub.store().observation_keys()) == expected
    wait_until(lambda: exported_keys(victoria_metrics) == expected, 120, interval=1,
               what="the export backlog to drain into VictoriaMetrics")
    report("influxdb-outage", outage_s=outage_s, messages=len(expected), sos_alerts=len(mqtt_subjects),
           sos_delivered_after_s=round(delivered_within, 1), lost=0)


def sos_bodies(received: list[tuple[float, bytes]]) -> list[dict[str, Any]]:
    bodies = [json.loads(payload) for _, payload in received if payload != b"probe"]
    return [b for b in bodies if b.get("kind") == "sos"]


def webhook_sos_subjects(receiver: WebhookReceiver) -> set[str]:
    bodies = [json.loads(body) for _, body in list(receiver.requests)]
    return {b["subject"] for b in bodies if b.get("kind") == "sos"}


# --- overload ------------------------------------------------------------------------------------------

# The overloaded hub commits at most this many messages per transaction, which keeps it to about
# SUSTAINABLE_RATE on the reference 2-core machine (unhindered it takes 11,000-17,000 msg/s:
# docs/developers/performance.md); the overload offers three times that.
OVERLOAD_HUB_BATCH = 10
SUSTAINABLE_RATE = 4_000
RECEIVE_MAXIMUM = 20_000  # the hub's default: the broker sends no more until the hub acknowledges
# Memory the hub may add while the broker holds a backlog, from its configured windows, not the backlog:
# - the intake queue: about Receive Maximum messages (Mosquitto 2.0 overshoots it a little: up to 1.27x
#   measured), 1-2 kB each as paho's copy, our `Message` and the routed observation: <= 80 MB;
# - the evaluation hand-over: up to 200 committed batches of up to 5,000 observations (hub/evaluation.py
#   `_HANDOVER_MAX`), which it fills while it lags behind a draining intake: about 400 MB at worst.
# A hub whose memory followed the backlog instead (over a million messages in the full variant) would
# pass 1 GB.
OVERLOAD_QUEUE_BOUND = 2 * RECEIVE_MAXIMUM
OVERLOAD_RSS_BOUND_MB = 512


# The short variant runs 8 s: the hub takes about 7,000 msg/s while offered 12,000, so 4 s left about
# 19,000 messages over, on the edge of its window of 20,000 (the check below then failed by chance); 8 s
# leaves about twice the window.
@pytest.mark.parametrize("overload_s", [8, pytest.param(60, marks=[pytest.mark.slow,
                                                                     pytest.mark.timeout(1800)])])
def test_overload_then_normal_memory_bounded_backlog_drains_nothing_lost(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub, overload_s: int
) -> None:
    registry = tmp_path / "registry.yaml"
    traffic = synthetic_traffic(registry, households=2_500)
    # Small batches cap this hub well below its usual rate: Python publishers sharing two cores with an
    # unhindered hub cannot offer it more than it takes.
    hub = start_hub(registry, {"HUB_BATCH_MAX": str(OVERLOAD_HUB_BATCH)})
    normal_s = 4 if overload_s < 60 else 15
    published: list[int] = []  # indices of the synthetic messages published and acknowledged
    samples: list[tuple[float, int, int, int]] = []  # (at, rss kB, stored, intake queue)
    store = hub.store()

    def take_sample() -> None:
        if samples and time.monotonic() - samples[-1][0] < 0.5:
            return
        _, ready = readiness(hub)
        samples.append((time.monotonic(), sample_process(hub.pid).rss_kb, store.count_observations(),
                        ready["intake_queue"]))

    def normal_phase() -> None:
        run = start_publishing(mosquitto.address, traffic, start=max(published, default=-1) + 1,
                               processes=1, rate=NOMINAL_RATE, duration_s=normal_s)
        try:
            while run.running():
                take_sample()
                time.sleep(0.1)
            published.extend(run.wait())
        finally:
            run.stop()

    normal_phase()
    baseline_kb = max(rss for _, rss, _, _ in samples)
    overload_at = time.monotonic()
    stored_before = store.count_observations()
    overload = publish_through_mosquitto_pub(
        mosquitto.port, traffic, start=max(published) + 1, devices=8, rate=3 * SUSTAINABLE_RATE,
        duration_s=overload_s, meanwhile=take_sample)
    published.extend(overload)
    # The hub's own rate while offered three times the sustainable one: samples taken during the feed.
    at, _, stored_at, _ = [sample for sample in samples if sample[0] <= overload_at + overload_s][-1]
    hub_rate = (stored_at - stored_before) / (at - overload_at)
    take_sample()
    backlog = len(published) - samples[-1][2]
    normal_phase()
    drain_started = time.monotonic()

    def drained() -> bool:
        take_sample()
        return samples[-1][2] >= len(published)

    wait_until(drained, timeout_for(len(published)), interval=0.25, what="the backlog to drain")
    drained_s = time.monotonic() - drain_started
    after = sample_process(hub.pid)

    assert set(store.observation_keys()) == {traffic.key(i) for i in published}
    assert store.count_observations() == len(published)
    assert store.dead_letter_counts() == {}
    store.close()
    peak_kb = max(rss for _, rss, _, _ in samples)
    peak_queue = max(queue for _, _, _, queue in samples)
    report("overload", overload_s=overload_s, messages=len(published), overload_messages=len(overload),
           offered_rate=round(len(overload) / overload_s), hub_rate_in_overload=round(hub_rate),
           backlog_at_end_of_overload=backlog,
           rss_mb_baseline=round(baseline_kb / 1024), rss_mb_peak=round(peak_kb / 1024),
           rss_mb_after=round(after.rss_kb / 1024), peak_intake_queue=peak_queue,
           drain_after_normal_s=round(drained_s, 1), lost=0)
    # Overloaded: the broker held messages back, either as a backlog left when the publishers stopped or,
    # when the publishers share the cores with a hub as fast as they are, as the hub's full window.
    assert backlog > RECEIVE_MAXIMUM or peak_queue >= RECEIVE_MAXIMUM, \
        f"the overload neither left a backlog ({backlog}) nor filled the hub's window ({peak_queue})"
    assert peak_queue <= OVERLOAD_QUEUE_BOUND, f"the hub held {peak_queue} messages: Receive Maximum failed"
    assert peak_kb - baseline_kb <= OVERLOAD_RSS_BOUND_MB * 1024, (
        f"memory followed the backlog: {baseline_kb} kB -> {peak_kb} kB")
    assert hub.alive


# --- fuzz ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("bad", "megabytes"), [
    (5_000, 5), pytest.param(100_000, 50, marks=[pytest.mark.slow, pytest.mark.timeout(1800)])])
def test_fuzzed_messages_all_dead_letters_hub_up_valid_traffic_unaffected(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub, bad: int, megabytes: int
) -> None:
    registry = tmp_path / "registry.yaml"
    valid = readings(bad // 2, registry, households=max(30, bad // 1200))
    device_topics = sorted({(m.topic, m.kind, m.device_id) for m in valid if m.device_id})
    hub = start_hub(registry)
    rng = random.Random(bad)
    now = int(time.time() * 1000)
    megabyte_at = set(rng.sample(range(bad), megabytes))
    fuzzed = [fuzzed_message(rng, device_topics, now, "one_megabyte" if i in megabyte_at else None)
              for i in range(bad)]
    # Mixed: valid and bad messages interleaved in one stream, in a seeded random order.
    stream = [(m.topic, m.payload) for m in valid] + [(f.topic, f.payload) for f in fuzzed]
    rng.shuffle(stream)
    publisher = Publisher(mosquitto.address)
    publisher.start()
    window = AckWindow(2_000, timeout_s=120)
    try:
        for topic, payload in stream:
            window.add(publisher.publish(topic, payload))
        window.drain()
    finally:
        publisher.stop()

    def settled(store: Store) -> bool:
        return store.count_observations() >= len(valid) and sum(store.dead_letter_counts().values()) >= bad

    hub.wait_for(settled, timeout_for(len(stream)), "every valid observation and every dead letter")
    time.sleep(1)
    store = hub.store()
    reasons = store.dead_letter_counts()
    assert set(store.observation_keys()) == keys(valid), "valid traffic unaffected"
    assert sum(reasons.values()) == bad, f"every bad message is one dead letter: {reasons}"
    assert reasons.get("too_large") == megabytes
    assert "decoder_error" not in reasons, "no decoder crashed on fuzzed input"
    assert hub.alive and health_ok(hub)
    kinds = Counter(f.kind for f in fuzzed)
    report("fuzz", bad=bad, by_kind=dict(kinds), valid=len(valid), dead_letters=dict(reasons), lost=0)


# --- the store's disk full / read-only ------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root")


def wait_store_failing(hub: HubProcess, error: str) -> dict[str, Any]:
    def failing() -> dict[str, Any]:
        code, body = readiness(hub)
        return body if code == 503 and not body["store_writable"] else {}

    body: dict[str, Any] = wait_until(failing, 60, interval=0.2, what="/ready to report the store failing")
    assert error in body["store_error"], body
    # /ready reports the failure a moment before the log line is written.
    wait_until(lambda: body["store_error"] in hub.log(), 10, what="the log to say what /ready says")
    assert "store commit failed, nothing acknowledged, retrying in" in hub.log()
    stuck_at = hub.count_observations()
    time.sleep(3)
    assert hub.count_observations() == stuck_at, "nothing is stored while the store fails"
    assert hub.alive and health_ok(hub), "the hub stays up"
    return body


@needs_root
def test_disk_full_stops_acknowledging_and_intake_resumes_when_space_returns(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub
) -> None:
    registry = tmp_path / "registry.yaml"
    messages = readings(6_000, registry, households=30)
    with small_tmpfs(tmp_path / "small-disk", size_mb=24) as disk:
        hub = start_hub(registry, {"HUB_STORE_PATH": str(disk / "hub.sqlite3")})
        hub.store_path = disk / "hub.sqlite3"
        first, rest = messages[:1_000], messages[1_000:]
        publish_all(mosquitto.address, first)
        hub.wait_for(lambda s: s.count_observations() >= len(first), 30, "the first messages")
        ballast = fill(disk)
        publisher = BackgroundPublisher(mosquitto.address, rest)
        publisher.start()
        publisher.finish()  # the broker took them all; the hub cannot store them
        body = wait_store_failing(
            hub, "database or disk is full (SQLITE_FULL); the store's file system has no space left")
        stuck_at = hub.count_observations()
        assert stuck_at < len(messages)

        ballast.unlink()  # space returns: intake resumes by itself
        hub.wait_for(lambda s: s.count_observations() >= len(messages), 90, "intake to resume")
        wait_until(lambda: readiness(hub)[0] == 200, 30, what="/ready to recover")
        assert set(hub.store().observation_keys()) == keys(messages)
        hub.stop()
    report("disk-full", messages=len(messages), stored_when_full=stuck_at, ready_error=body["store_error"],
           lost=0)


@needs_root
@pytest.mark.skipif(not Path("/dev/loop-control").exists(), reason="no loop devices on this machine")
def test_read_only_store_stops_acknowledging_and_the_broker_keeps_every_message(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub
) -> None:
    registry = tmp_path / "registry.yaml"
    messages = readings(6_000, registry, households=30)
    with loop_ext4(tmp_path / "disk.img", tmp_path / "disk", size_mb=64) as disk:
        store_path = disk.mountpoint / "hub.sqlite3"
        hub = start_hub(registry, {"HUB_STORE_PATH": str(store_path)})
        hub.store_path = store_path
        first, rest = messages[:1_000], messages[1_000:]
        publish_all(mosquitto.address, first)
        hub.wait_for(lambda s: s.count_observations() >= len(first), 30, "the first messages")
        disk.trigger_error()
        assert disk.read_only()
        publisher = BackgroundPublisher(mosquitto.address, rest)
        publisher.start()
        publisher.finish()
        body = wait_store_failing(hub, "disk I/O error (SQLITE_IOERR")
        stuck_at = hub.count_observations()
        assert stuck_at < len(messages)

        # A kernel read-only remount is final for that mount: the operator stops the hub, repairs and
        # remounts the disk, and starts the hub again, which gets every unacknowledged message back.
        hub.stop()
        disk.repair_and_remount()
        hub.start()
        hub.wait_for(lambda s: s.count_observations() >= len(messages), 90, "the broker's backlog")
        assert set(hub.store().observation_keys()) == keys(messages)
        hub.stop()
    report("read-only", messages=len(messages), stored_when_read_only=stuck_at,
           ready_error=body["store_error"], lost=0)
