"""Worker mode: several intake processes sharing the device stream through an MQTT 5 shared subscription.

One Python process tops out below the ingest goal (paho's network thread and the SQLite commit share one
interpreter lock), so `hub run --workers N` (or `HUB_INTAKE_WORKERS=N`) scales intake out the way a
production deployment would: N intake-only processes (`hub intake --index i`, i = 1..N) all subscribe to
`$share/<HUB_MQTT_SHARE_GROUP>/<filter>`, and the broker hands each message to one of them. Every process
(`IntakeProcess`, started and restarted by the main hub's `IntakeProcessPool`) has its own fixed client id
and persistent session, commits into the same SQLite store (WAL: one writer at a time, so batches of
thousands keep the hand-offs of the write lock rare) and acknowledges only what it committed, exactly as
a single hub does.

The main hub takes no device messages then: it evaluates, raises and delivers alerts, exports and serves
the API, so no commit runs under its busy interpreter and an SOS is never stuck behind a batch there. It
reads what the intake processes committed from the store by id: SQLite serialises writers, and a
transaction's ids are allocated while it holds the write lock, so ids grow in commit order and a reader's
cursor never skips a row committed later with a lower id.

The intake watermark (the hub time through which everything received is committed; time-driven checks
never run ahead of it) spans processes through the `intake_workers` table: each intake process reports its
watermark, its pid, its counters and intake histograms every `REPORT_S`, and the main hub serves their
sums as its metrics (a restarted process carries on from its last report, so no counter goes backwards).
The main hub takes the minimum watermark over the processes it started. One that stopped reporting
holds the watermark back for `GRACE_S` (long enough to be restarted and take up its session again), then
is left out, so that one dead intake process cannot stop door and silence checks for the whole community;
it is logged.

What shared subscriptions do not keep is order between processes: the broker distributes per message, not
per topic, so two readings of one device may be committed by different processes in either order. The
store's upsert on (device, ts) makes storage order-independent, and a Zigbee2MQTT SOS press and its reset
(same `last_seen`) merge to the same row whichever lands first; see docs/operators/scaling-out.md for the
rules that still read arrival order.

"Worker mode" and "intake workers" are the names users see (`--workers`, `HUB_INTAKE_WORKERS`, the log
lines, and the `intake_workers` table, kept as it is for existing stores); in code each is an intake
process.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.clock import CLOCK_TOPIC
from hub.histograms import IntakeHistograms
from hub.intake import IntakeStats, IntakeThread
from hub.intake_pipeline import IntakePipeline
from hub.migrations import migrate_postgresql
from hub.mqtt import BrokerAddress, Protocol, Subscriber
from hub.node import NodeError, NodeScope, every_device_topic
from hub.postgres import PgConnection
from hub.registry import Registry, RegistryError, RegistryHolder
from hub.settings import Settings
from hub.threads import BackgroundThread
from hub.topics import intake_committed_topic

log = logging.getLogger(__name__)

REPORT_S = 0.5   # how often each process writes its watermark and counts
GRACE_S = 30.0   # an intake process silent this long no longer holds back the main hub's watermark
RESTART_DELAY_S = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS intake_workers (
    name         TEXT PRIMARY KEY,   -- the process's MQTT client id
    pid          INTEGER NOT NULL,
    settled_ms   INTEGER NOT NULL,   -- hub time through which everything it received is committed
    messages     INTEGER NOT NULL,   -- messages it committed and acknowledged
    reported_ms  INTEGER NOT NULL,   -- wall clock of this report (epoch ms), for staleness
    stats        TEXT NOT NULL DEFAULT '{}'  -- JSON: counters, histograms, store health (IntakeProcessReport)
)
"""

# Settings an intake process needs, passed to the intake processes a hub starts as HUB_* variables: the hub
# may run on settings changed in code (the demo), which its environment would not show. The client id
# is passed as the hub resolved it (`Settings.client_id`).
_INTAKE_SETTINGS = (
    "node_id", "communities", "mqtt_url", "mqtt_protocol", "mqtt_session_expiry_s", "mqtt_receive_maximum",
    "mqtt_share_group", "intake_workers", "zigbee2mqtt_base_topic", "clock", "store_path", "store_url",
    "store_synchronous", "batch_max", "batch_linger_ms", "max_payload_bytes",
    "max_future_skew_s", "max_reading_age_s", "dead_letter_keep_bytes", "dead_letters_per_device",
    "intake_queue_max_bytes", "log_level",
)


class IntakeProcessesError(ValueError):
    """Intake processes (worker mode) asked for where they cannot work."""


def check_intake_processes(settings: Settings) -> None:
    if (settings.intake_workers > 1 or settings.mqtt_shared) and settings.mqtt_url is None:
        asked = (f"HUB_INTAKE_WORKERS={settings.intake_workers}" if settings.intake_workers > 1
                 else "HUB_MQTT_SHARED=true")
        raise IntakeProcessesError(
            f"{asked} needs an external MQTT broker with shared "
            "subscriptions (Mosquitto 2, EMQX...): set HUB_MQTT_URL; the embedded broker cannot share a "
            "subscription between processes"
        )


def intake_process_client_id(hub_client_id: str, index: int) -> str:
    """Each intake process (1..N) has its own fixed id, hence its own session."""
    return f"{hub_client_id}-intake-{index}"


def _shared(settings: Settings, topics: list[str]) -> list[str]:
    return [f"$share/{settings.mqtt_share_group}/{topic}" for topic in topics]


def intake_topics(settings: Settings, scope: NodeScope, *, main: bool = True) -> list[str]:
    """What a process subscribes to: this node's device filters (`scope`). Alone, the hub takes them
    (through the shared subscription with `HUB_MQTT_SHARED`, splitting them with other nodes). In
    worker mode the intake processes share them, and the main hub hears only the intake processes' commit
    notices, so that an SOS committed by one is evaluated at once rather than at the evaluation's next
    poll of the store (up to a second later on a quiet night). The simulation clock (when followed) is
    never shared: every process stamps arrivals with it, so every process must see every tick."""
    topics = scope.device_topics(settings.zigbee2mqtt_base_topic)
    if settings.intake_workers > 1:
        topics = [intake_committed_topic(settings.client_id)] if main else _shared(settings, topics)
    elif settings.mqtt_shared:  # alone, but sharing the stream with other nodes
        topics = _shared(settings, topics)
    if settings.clock == "mqtt":
        topics.append(CLOCK_TOPIC)
    return topics


def dropped_topics(settings: Settings, scope: NodeScope, registry: Registry, *,
                   main: bool = True) -> list[str]:
    """What a process's persistent session may still hold from a run with another number of intake
    processes or other communities, and must drop: device filters it took alone before it had intake
    processes (the broker would go on sending it every message besides sharing them), the shared ones and
    the notices of an earlier worker mode, and the filters of communities the node no longer takes."""
    plain = every_device_topic(settings.zigbee2mqtt_base_topic, registry)
    every = [*plain, *_shared(settings, plain), intake_committed_topic(settings.client_id)]
    wanted = set(intake_topics(settings, scope, main=main))
    return [topic for topic in every if topic not in wanted]


class SubscriptionsFollowRegistry:
    """A registry listener: a node restricted to some communities (`HUB_COMMUNITIES`) subscribes to the
    Zigbee2MQTT gateway of a compound its communities gain (an edit through the API, a new version from
    PostgreSQL, an intake process's reloaded registry) at once, not at its next start. A filter is never
    dropped here: compounds are deactivated, not removed, and a node's communities change only at a start."""

    def __init__(self, settings: Settings, scope: NodeScope, subscriber: Subscriber, *,
                 main: bool = True) -> None:
        self._settings = settings
        self._subscribed = set(intake_topics(settings, scope, main=main))
        self._subscriber = subscriber
        self._main = main

    def __call__(self, registry: Registry) -> None:
        if not self._settings.communities:
            return  # every community: its filters do not depend on the registry
        try:
            scope = NodeScope.of(self._settings, registry)
        except NodeError as exc:  # an imported registry without one of this node's communities
            log.error("subscriptions left as they are: %s", exc)
            return
        more = [topic for topic in intake_topics(self._settings, scope, main=self._main)
                if topic not in self._subscribed]
        if more:
            self._subscribed.update(more)
            self._subscriber.subscribe(more)
            log.info("subscribed to %s: %s", ", ".join(more), scope.describe())


@dataclass(frozen=True, slots=True)
class IntakeProcessReport:
    name: str
    pid: int
    settled_ms: int
    messages: int
    reported_ms: int
    # {"intake": IntakeStats.report(), "histograms": IntakeHistograms.report(), "store_error": str | None}
    stats: dict[str, Any] = field(default_factory=dict)


class WatermarkBoard:
    """The `intake_workers` table: one row per intake process, rewritten every `REPORT_S`. In the SQLite
    store at `store_path`, or the PostgreSQL one at `url` (its migrations create the table)."""

    def __init__(self, store_path: Path, url: str | None = None) -> None:
        self._db: sqlite3.Connection | PgConnection
        if url is not None:
            self._db = PgConnection(url)
            migrate_postgresql(self._db)
            return
        self._db = sqlite3.connect(store_path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._db.execute(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(intake_workers)")}
        if "stats" not in columns:  # a store from before intake processes reported their counters
            self._db.execute("ALTER TABLE intake_workers ADD COLUMN stats TEXT NOT NULL DEFAULT '{}'")

    def report(self, name: str, settled_ms: int, messages: int, stats: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO intake_workers (name, pid, settled_ms, messages, reported_ms, stats)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET pid = excluded.pid,"
            " settled_ms = excluded.settled_ms, messages = excluded.messages,"
            " reported_ms = excluded.reported_ms, stats = excluded.stats",
            (name, os.getpid(), settled_ms, messages, int(time.time() * 1000), json.dumps(stats)),
        )

    def reports(self) -> dict[str, IntakeProcessReport]:
        rows = self._db.execute(
            "SELECT name, pid, settled_ms, messages, reported_ms, stats FROM intake_workers")
        return {name: IntakeProcessReport(name, pid, settled_ms, messages, reported_ms, json.loads(stats))
                for name, pid, settled_ms, messages, reported_ms, stats in rows}

    def close(self) -> None:
        self._db.close()


def registry_snapshot_path(settings: Settings) -> Path:
    """Where the main hub leaves the registry for its intake processes, as JSON: loading a registry of
    thousands of devices from YAML takes seconds, from JSON a tenth of one, and a restarted process's share
    of the stream waits at the broker until it is up."""
    store = settings.store_path
    return store.with_name(f"{store.name}.{settings.client_id}.registry.json")


def held_watermark(reports: dict[str, IntakeProcessReport], names: list[str], started_wall_ms: int,
                   wall_ms: int) -> int | None:
    """The lowest watermark among the intake processes `names` that may still be working through
    messages; None when none may. One that has not reported since the hub started (`started_wall_ms`) may
    be draining a backlog: it holds the watermark at 0. One silent for `GRACE_S` is left out."""
    held: list[int] = []
    for name in names:
        report = reports.get(name)
        if report is not None and report.reported_ms >= started_wall_ms:
            if wall_ms - report.reported_ms <= GRACE_S * 1000:
                held.append(report.settled_ms)
        elif wall_ms - started_wall_ms <= GRACE_S * 1000:
            held.append(0)
    return min(held) if held else None


def committed_messages(intake: IntakeThread) -> int:
    return sum(intake.stats.acked.values())


class HousekeepingThread(BackgroundThread):
    """Runs `chore` every `REPORT_S` (an intake process's report and registry reload, the main hub's
    supervision of its intake processes): one such thread per process."""

    def __init__(self, name: str, chore: Callable[[], None]) -> None:
        super().__init__(name)
        self._chore = chore

    def run(self) -> None:
        while True:
            try:
                self._chore()
            except Exception:  # the store busy past its timeout: again next time
                log.exception("%s failed", self.name)
            if self._sleep(REPORT_S):
                return


class IntakeProcessPool:
    """The main hub's side of worker mode: starts the intake processes, restarts one that dies (its
    session, with whatever it had not acknowledged, is waiting at the broker), stops them, and folds their
    watermarks into the hub's."""

    def __init__(self, settings: Settings, registry: Callable[[], Registry]) -> None:
        self._settings = settings
        self._registry = registry
        self._snapshot = registry_snapshot_path(settings)
        self._snapshot_of: Registry | None = None
        self._indices = range(1, settings.intake_workers + 1)
        self._names = [intake_process_client_id(settings.client_id, index) for index in self._indices]
        self._reports: dict[str, IntakeProcessReport] = {}
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._restart_due: dict[int, float] = {}
        self._started_wall_ms = 0
        self._others_settled_ms: int | None = 0  # None: no intake process holds the watermark back
        self._stopping = False
        self._lock = threading.Lock()
        self._board = WatermarkBoard(settings.store_path, settings.store_url)
        self._housekeeping = HousekeepingThread("intake-processes", self._supervise)
        self.committed_topic = intake_committed_topic(settings.client_id)

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def start(self) -> None:
        self._started_wall_ms = int(time.time() * 1000)
        self._write_snapshot()
        for index in self._indices:
            self._spawn(index)
        self._housekeeping.start()

    def settled_ms(self, own_settled_ms: int) -> int:
        others = self._others_settled_ms
        return own_settled_ms if others is None else min(own_settled_ms, others)

    def _own_reports(self) -> list[IntakeProcessReport]:
        reports = self._reports
        return [reports[name] for name in self._names if name in reports]

    def add_stats(self, stats: IntakeStats) -> None:
        """Add the intake processes' counters (as last reported) to `stats`."""
        for report in self._own_reports():
            stats.add(report.stats.get("intake", {}))

    def histograms(self) -> list[dict[str, list[float]]]:
        return [report.stats.get("histograms", {}) for report in self._own_reports()]

    def store_error(self) -> str | None:
        """The commit error of an intake process whose store commits are failing, as it last reported."""
        wall_ms = int(time.time() * 1000)
        return next((report.stats["store_error"] for report in self._own_reports()
                     if report.stats.get("store_error") and wall_ms - report.reported_ms <= GRACE_S * 1000),
                    None)

    def stop(self) -> None:
        """SIGTERM every intake process: each stops taking messages, commits and acknowledges what it
        holds."""
        with self._lock:
            self._stopping = True
            processes = list(self._processes.values())
        self._housekeeping.stop()
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._board.close()

    def _write_snapshot(self) -> None:
        """(Re)write the intake processes' registry when the hub's changed (an edit through the API); they
        reload it when the file changes. `dump` replaces the file atomically, so no process reads half of
        it."""
        registry = self._registry()
        if registry is not self._snapshot_of:
            registry.dump(self._snapshot)
            self._snapshot_of = registry

    def _spawn(self, index: int) -> None:
        env = {**os.environ, **_settings_env(self._settings), "HUB_MQTT_CLIENT_ID": self._settings.client_id,
               "HUB_REGISTRY_PATH": str(self._snapshot)}
        command = [sys.executable, "-m", "hub", "intake", "--index", str(index), "--parent", str(os.getpid())]
        with self._lock:
            if self._stopping:
                return
            self._processes[index] = subprocess.Popen(command, env=env)
        log.info("intake worker %d started (pid %d)", index, self._processes[index].pid)

    def _supervise(self) -> None:
        self._write_snapshot()
        now = time.monotonic()
        for index, process in list(self._processes.items()):
            code = process.poll()
            if code is None or self._stopping:
                continue
            due = self._restart_due.setdefault(index, now + RESTART_DELAY_S)
            if now >= due:
                log.warning("intake worker %d exited with %s; restarting it", index, code)
                del self._restart_due[index]
                self._spawn(index)
        self._reports = self._board.reports()
        self._others_settled_ms = held_watermark(self._reports, self._names, self._started_wall_ms,
                                                 int(time.time() * 1000))


class MainIntake:
    """The main hub's intake: its own pipeline and, in worker mode, the intake processes that take the
    device messages in its stead (the pipeline then hears only their commit notices and the clock). Read
    as one `IntakeStatus` over all of them."""

    def __init__(self, settings: Settings, registry: Callable[[], Registry], broker: BrokerAddress,
                 protocol: Protocol, scope: NodeScope) -> None:
        # Worker mode: the intake processes (this one then takes no device messages), their watermark and
        # their counters.
        self.processes = (IntakeProcessPool(settings, registry)
                          if settings.intake_workers > 1 else None)
        self.pipeline = IntakePipeline(
            settings, registry, broker=broker, protocol=protocol, client_id=settings.client_id,
            topics=intake_topics(settings, scope), unsubscribe=dropped_topics(settings, scope, registry()),
            notice_topic=None if self.processes is None else self.processes.committed_topic,
            communities=scope.communities)

    @property
    def connected(self) -> bool:
        return self.pipeline.subscriber.connected

    @property
    def queued_messages(self) -> int:
        return self.pipeline.thread.queue.qsize()

    @property
    def queued_bytes(self) -> int:
        return self.pipeline.thread.queued_bytes

    def settled_ms(self, now_ms: int) -> int:
        """The hub time through which every process taking device messages has committed what it got."""
        settled = self.pipeline.thread.settled_ms(now_ms)
        return settled if self.processes is None else self.processes.settled_ms(settled)

    def store_error(self) -> str | None:
        """Why commits are failing (here or in an intake process), None while they succeed."""
        return self.pipeline.store_error() or (None if self.processes is None
                                               else self.processes.store_error())

    def stats(self) -> IntakeStats:
        """Intake counters of every process taking device messages (a copy)."""
        stats = IntakeStats()
        stats.add(self.pipeline.thread.stats.report())
        if self.processes is not None:
            self.processes.add_stats(stats)
        return stats

    def process_histograms(self) -> list[dict[str, list[float]]]:
        return [] if self.processes is None else self.processes.histograms()

    def start_committing(self) -> None:
        self.pipeline.thread.start()

    def start_receiving(self) -> None:
        """Start the intake processes, then take messages (after everything that handles them started)."""
        if self.processes is not None:
            self.processes.start()
        self.pipeline.subscriber.start()

    def stop(self) -> None:
        """Stop taking messages; every process commits and acknowledges what it took, then disconnects."""
        self.pipeline.pause()
        if self.processes is not None:
            self.processes.stop()
        self.pipeline.stop()


class IntakeProcess:
    """An intake-only process (`hub intake --index i`): its intake pipeline and reporter, nothing else.
    Registry edits made through the main hub's API reach it through the registry file."""

    def __init__(self, settings: Settings, registry: Registry, index: int) -> None:
        check_intake_processes(settings)
        if not 1 <= index <= settings.intake_workers:
            raise IntakeProcessesError(
                f"intake worker index {index} is outside 1..{settings.intake_workers} "
                f"(HUB_INTAKE_WORKERS={settings.intake_workers})")
        assert settings.mqtt_url is not None
        self.settings = settings
        self.scope = NodeScope.of(settings, registry)
        self.name = intake_process_client_id(settings.client_id, index)
        self.registry = RegistryHolder(registry)
        self._registry_mtime = _mtime(settings.registry_path)
        self.pipeline = IntakePipeline(settings, self.registry.current,
                                       broker=BrokerAddress.from_url(settings.mqtt_url),
                                       protocol=settings.mqtt_protocol, client_id=self.name,
                                       topics=intake_topics(settings, self.scope, main=False),
                                       unsubscribe=dropped_topics(settings, self.scope, registry, main=False),
                                       communities=self.scope.communities)
        intake, subscriber = self.pipeline.thread, self.pipeline.subscriber
        notice_topic = intake_committed_topic(settings.client_id)
        intake.on_committed = lambda committed: subscriber.notify(notice_topic,
                                                                  str(committed.after_id).encode())
        self.histograms = IntakeHistograms(self.pipeline.clock)
        intake.on_batch = self.histograms.batch_committed
        self._board = WatermarkBoard(settings.store_path, settings.store_url)
        # Counters carry on from this process's last report (before a restart), so none goes backwards.
        before = self._board.reports().get(self.name)
        if before is not None:
            intake.stats.add(before.stats.get("intake", {}))
            self.histograms.add(before.stats.get("histograms", {}))
        self._housekeeping = HousekeepingThread(f"intake-report-{self.name}", self._chores)
        self.registry.add_listener(SubscriptionsFollowRegistry(settings, self.scope, self.pipeline.subscriber,
                                                               main=False))

    def _report(self) -> None:
        intake = self.pipeline.thread
        self._board.report(self.name, intake.settled_ms(self.pipeline.clock.now_ms()),
                           committed_messages(intake), {
                               "intake": intake.stats.report(), "histograms": self.histograms.report(),
                               "store_error": self.pipeline.store_error()})

    def _chores(self) -> None:
        self._report()
        self._follow_registry()

    def _follow_registry(self) -> None:
        mtime = _mtime(self.settings.registry_path)
        if mtime == self._registry_mtime:
            return
        self._registry_mtime = mtime
        try:
            self.registry.replace(Registry.load(self.settings.registry_path))
            log.info("%s: registry reloaded", self.name)
        except RegistryError as exc:  # a half-written file: the next change brings the finished one
            log.warning("%s: registry not reloaded: %s", self.name, exc)

    def start(self) -> None:
        self.pipeline.thread.start()
        self._housekeeping.start()
        self.pipeline.subscriber.start()
        gc.freeze()  # as the main hub does (hub/cli.py): long-lived state out of the collector's passes
        log.info("%s started: node %s, %s, store %s", self.name, self.settings.node_id, self.scope.describe(),
                 self.settings.store_path)

    def stop(self) -> None:
        """As the hub stops: take nothing more, commit and acknowledge what was taken, then disconnect."""
        self.pipeline.stop()
        self._housekeeping.stop()
        self._report()
        self._board.close()
        log.info("%s stopped: %d messages committed", self.name, committed_messages(self.pipeline.thread))

    def serve(self, parent_pid: int | None) -> None:
        """Run until SIGTERM/SIGINT, or until the hub that started it is gone (it was killed: nobody would
        stop this process otherwise)."""
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
        self.start()
        try:
            while not stop.wait(1.0):
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.warning("%s: the hub that started it is gone; stopping", self.name)
                    break
        finally:
            self.stop()


def _settings_env(settings: Settings) -> dict[str, str]:
    """`_INTAKE_SETTINGS` as the HUB_* variables they are read from (lists comma-separated)."""
    env = {}
    for name in _INTAKE_SETTINGS:
        value = getattr(settings, name)
        if value is not None:
            env[f"HUB_{name.upper()}"] = ",".join(value) if isinstance(value, list) else str(value)
    return env


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
