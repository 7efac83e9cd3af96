"""The running hub: broker connection, intake worker, exporters, wired from `Settings`.

Start order matters for at-least-once: the store and the intake worker exist before the subscriber
connects, because the broker starts redelivering the moment the persistent session resumes.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass

from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.alerts.sinks import build_sinks
from hub.api import ApiServer, create_app
from hub.clock import CLOCK_TOPIC, Clock, FollowedClock, SystemClock
from hub.embedded_broker import EmbeddedBroker
from hub.evaluation import Evaluator, thresholds
from hub.export.influxdb import InfluxExporter
from hub.export.state import StateSnapshots
from hub.intake import IntakeStats, IntakeWorker, Router, RouterLimits
from hub.metrics import HubMetrics
from hub.mqtt import BrokerAddress, Message, Protocol, Subscriber
from hub.redact import redact_url
from hub.registry import Registry
from hub.retention import RetentionPolicy, RetentionWorker
from hub.settings import Settings
from hub.store import Store
from hub.topics import hub_status_topic
from hub.workers import WorkerPool, check_worker_mode, dropped_topics, intake_topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubStatus:
    connected: bool
    store_healthy: bool
    broker_url: str  # its password masked: shown in the live view


class Hub:
    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        check_worker_mode(settings)
        self.clock: Clock = FollowedClock() if settings.clock == "mqtt" else SystemClock()
        self.embedded_broker: EmbeddedBroker | None = None
        if settings.mqtt_url is None:
            self.embedded_broker = EmbeddedBroker(settings.embedded_broker_port)
            self.broker_url = self.embedded_broker.url
            protocol: Protocol = "3.1.1"  # amqtt speaks MQTT 3.1.1 only
        else:
            self.broker_url = settings.mqtt_url
            protocol = settings.mqtt_protocol
        Store(settings.store_path, synchronous=settings.store_synchronous).close()  # create schema once
        limits = RouterLimits.from_settings(settings)
        self.router = Router(registry, settings.zigbee2mqtt_base_topic, limits)
        self.subscriber = Subscriber(
            BrokerAddress.from_url(self.broker_url),
            settings.mqtt_client_id,
            intake_topics(settings),
            self._received,
            protocol=protocol,
            session_expiry_s=settings.mqtt_session_expiry_s,
            receive_maximum=settings.mqtt_receive_maximum,
            status_topic=hub_status_topic(settings.mqtt_client_id),
            clock=self.clock,
            unsubscribe=dropped_topics(settings),
        )
        self.intake = IntakeWorker(
            self._open_store,
            self.router,
            self.subscriber.ack,
            batch_max=settings.batch_max,
            linger_s=settings.batch_linger_ms / 1000,
            keep_bytes=settings.dead_letter_keep_bytes,
            ack_all=self.subscriber.ack_all,
            queue_max=settings.mqtt_receive_maximum,
            queue_max_bytes=settings.intake_queue_max_bytes,
        )
        self.influx: InfluxExporter | None = None
        if settings.influx_url:
            state = StateSnapshots(self.clock, lambda: self.router.registry, lambda: self.evaluation,
                                   settings.store_path)
            self.influx = InfluxExporter(settings, self._open_store, lambda: self.router.registry,
                                         state=state)
        alert_settings = settings.alerts
        if alert_settings.mqtt_client_id == AlertSettings.model_fields["mqtt_client_id"].default:
            # Derived from the hub's own id, so two hubs on one broker never take each other's session.
            alert_settings = alert_settings.model_copy(
                update={"mqtt_client_id": f"{settings.mqtt_client_id}-alerts"}
            )
        self.alerts = AlertService(
            settings.store_path,
            lambda: self.router.registry,
            self.clock,
            alert_settings,
            build_sinks(alert_settings, BrokerAddress.from_url(self.broker_url), protocol),
        )
        self.evaluation = Evaluator(
            self._open_store,
            lambda: self.router.registry,
            self.clock,
            self.alerts.raise_alert,
            settled_ms=self._settled_ms,
            rules=thresholds(settings.rules),
            late_after_s=settings.late_after_s,
        )
        self.intake.on_committed = self.evaluation.committed
        # Worker mode: the intake processes (this one then takes no device messages), their watermark
        # and their counters.
        self.workers = (WorkerPool(settings, lambda: self.router.registry)
                        if settings.intake_workers > 1 else None)
        self.retention = RetentionWorker(self._open_store, RetentionPolicy.from_settings(settings),
                                         self.clock, settings.retention_interval_s)
        self.metrics = HubMetrics(self)
        self.intake.on_batch = self.metrics.intake.batch_committed
        self.evaluation.on_tick = self.metrics.ticked
        self.api: ApiServer | None = None
        if settings.http_port:
            self.api = ApiServer(create_app(self), settings.http_host, settings.http_port)

    def _settled_ms(self, now_ms: int) -> int:
        """The hub time through which everything received is committed. A simulation's clock that has not
        ticked yet is no time at all: time-driven checks wait for it."""
        if isinstance(self.clock, FollowedClock) and not self.clock.following:
            return 0
        return self.intake_settled_ms(now_ms)

    def intake_settled_ms(self, now_ms: int) -> int:
        """The hub time through which every process taking device messages has committed what it got."""
        settled = self.intake.settled_ms(now_ms)
        return settled if self.workers is None else self.workers.settled_ms(settled)

    def _open_store(self) -> Store:
        return Store(self.settings.store_path, synchronous=self.settings.store_synchronous,
                     dead_letters_per_device=self.settings.dead_letters_per_device)

    def _received(self, message: Message) -> None:
        # Runs on the MQTT network thread: advance a followed clock in order with the device messages
        # around it, then hand over. Nothing here may block.
        if message.topic == CLOCK_TOPIC and isinstance(self.clock, FollowedClock):
            self.clock.advance_from_payload(message.payload)
        if self.workers is not None and message.topic == self.workers.committed_topic:
            self.evaluation.wake()  # an intake process committed: evaluate it now, not at the next poll
            return
        # Alone, every device message; in worker mode only what the session queued for the device filters
        # of a run without workers, before they were dropped: committed here like any other.
        self.intake.submit(message)

    def start(self) -> None:
        if self.embedded_broker is not None:
            self.embedded_broker.start()
        self.intake.start()
        if self.influx is not None:
            self.influx.start()
        self.alerts.start()
        self.evaluation.start()
        self.retention.start()
        if self.workers is not None:
            self.workers.start()
        self.subscriber.start()
        if self.api is not None:
            self.api.start()
        # Everything built so far (registry, learned state, imports) lives as long as the hub: keep it out
        # of the cyclic garbage collector, whose full passes over it held every thread for 100-250 ms
        # with 5,000 devices (the SOS latency's p99).
        gc.freeze()
        log.info(
            "hub started: broker %s, store %s, %d devices registered",
            redact_url(self.broker_url),
            self.settings.store_path,
            len(self.registry.devices),
        )

    def replace_registry(self, registry: Registry) -> None:
        """Swap in an edited registry while running: intake routes the next message with it; evaluation,
        alerts and exporters read it through `self.router.registry` at their next lookup."""
        self.registry = registry
        self.router.registry = registry

    def status(self) -> HubStatus:
        return HubStatus(self.subscriber.connected, self.store_error() is None, redact_url(self.broker_url))

    def store_error(self) -> str | None:
        """Why commits are failing (here or in an intake worker), None while they succeed."""
        if not self.intake.healthy.is_set():
            return self.intake.stats.last_commit_error or "store commits are failing"
        return None if self.workers is None else self.workers.store_error()

    def intake_stats(self) -> IntakeStats:
        """Intake counters of every process taking device messages (a copy)."""
        stats = IntakeStats()
        stats.add(self.intake.stats.report())
        if self.workers is not None:
            self.workers.add_stats(stats)
        return stats

    def stop(self) -> None:
        """Stop taking messages, commit and acknowledge what was taken, then stop the rest."""
        if self.api is not None:
            self.api.stop()
        self.subscriber.pause()
        if self.workers is not None:
            self.workers.stop()
        self.intake.stop()
        self.subscriber.stop()
        self.evaluation.stop()
        self.retention.stop()
        self.alerts.close()
        if self.influx is not None:
            self.influx.stop()
        if self.embedded_broker is not None:
            self.embedded_broker.stop()
        log.info("hub stopped")
