"""The running hub wired from `Settings`: the composition root, imported by the CLI only.

`Hub` builds every part once and hands each one the narrow things it reads (the registry's `current`, a
store opener, the clock, intake's `IntakeStatus`), never itself: no part reaches through the hub for
another. The CLI builds the API from the parts the hub exposes and serves it beside the hub.

Start order matters for at-least-once: the store and the intake thread exist before the subscriber
connects, because the broker starts redelivering the moment the persistent session resumes.
"""

from __future__ import annotations

import functools
import logging

from hub.alerts.links import Links, link_key
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.alerts.sinks import build_sinks
from hub.alerts.sinks.dispatch import DispatchSink
from hub.clock import FollowedClock
from hub.embedded_broker import EmbeddedBroker
from hub.evaluation import Evaluator, thresholds
from hub.export.influxdb import InfluxExporter
from hub.export.state import StateSnapshots
from hub.intake_pipeline import open_store
from hub.intake_processes import MainIntake, SubscriptionsFollowRegistry, check_intake_processes
from hub.leases import CommunityLeases
from hub.metrics import HubMetrics
from hub.mqtt import BrokerAddress, Protocol
from hub.node import NodeScope
from hub.postgres import PgConnection
from hub.redact import redact_url
from hub.registry import Registry, RegistryHolder
from hub.registry_sources import FileRegistrySource, PostgresRegistrySource, RegistryFollower, RegistrySource
from hub.retention import RetentionPolicy, RetentionThread
from hub.settings import Settings
from hub.supervision.metrics import SupervisionCollector
from hub.supervision.sources import StoredVisits
from hub.visits.patrol import PatrolThread

log = logging.getLogger(__name__)


class Hub:
    def __init__(self, settings: Settings, registry: Registry, *,
                 registry_version: int | None = None) -> None:
        """`registry_version`: with PostgreSQL (HUB_STORE_URL), the version `registry` is in the store."""
        self.settings = settings
        check_intake_processes(settings)
        self.scope = NodeScope.of(settings, registry)
        # The one registry in service: edits through the API replace it, every part reads it. With
        # PostgreSQL, so does each new version another node (or `hub registry import`) writes.
        self.registry = RegistryHolder(registry)
        self.registry_source: RegistrySource
        self.registry_follower: RegistryFollower | None = None
        if settings.store_url is None:
            self.registry_source = FileRegistrySource(settings.registry_path, self.registry)
        else:
            if registry_version is None:
                raise ValueError("a hub on PostgreSQL starts with the registry's version in the store")
            self.registry_source = versions = PostgresRegistrySource(
                settings.store_url, self.registry, registry_version, kept=settings.registry_versions_kept)
            self.registry_follower = RegistryFollower(settings.store_url, versions, settings.registry_poll_s)
        self.embedded_broker: EmbeddedBroker | None = None
        if settings.mqtt_url is None:
            self.embedded_broker = EmbeddedBroker(settings.embedded_broker_port)
            self.broker_url = self.embedded_broker.url
            protocol: Protocol = "3.1.1"  # amqtt speaks MQTT 3.1.1 only
        else:
            self.broker_url = settings.mqtt_url
            protocol = settings.mqtt_protocol
        open_store(settings).close()  # create or migrate the schema once
        opener = functools.partial(open_store, settings)
        self.intake = MainIntake(settings, self.registry.current, BrokerAddress.from_url(self.broker_url),
                                 protocol, self.scope)
        self.clock = self.intake.pipeline.clock
        self.registry.add_listener(SubscriptionsFollowRegistry(settings, self.scope,
                                                               self.intake.pipeline.subscriber))
        alert_settings = settings.alerts
        if alert_settings.mqtt_client_id == AlertSettings.model_fields["mqtt_client_id"].default:
            # Derived from the hub's own id, so two hubs on one broker never take each other's session.
            alert_settings = alert_settings.model_copy(
                update={"mqtt_client_id": f"{settings.client_id}-alerts"}
            )
        # What notifications link to; the API checks the acknowledge links with the same key.
        self.links = Links(settings.public_url, link_key(settings.link_secret.get_secret_value(),
                                                         settings.store_path),
                           settings.ack_link_ttl_s, settings.map_url)
        sinks = build_sinks(alert_settings, BrokerAddress.from_url(self.broker_url), protocol, self.links)
        if settings.dispatch_url:
            sinks.append(DispatchSink(settings.dispatch_url, settings.dispatch_secret.get_secret_value(),
                                      settings.dispatch_timeout_s, settings.dispatch_kinds, self.links,
                                      allow_http=settings.dispatch_allow_http))
        self.alerts = AlertService(
            settings.store_path,
            self.registry.current,
            self.clock,
            alert_settings,
            sinks,
            store_url=settings.store_url,
        )
        # Nodes sharing PostgreSQL share its observations: each evaluates the communities it holds a lease
        # on. Alone on SQLite the hub owns everything, without leases.
        self.leases: CommunityLeases | None = None
        if settings.store_url is not None:
            self.leases = CommunityLeases(functools.partial(PgConnection, settings.store_url),
                                          settings.node_id, self.scope.communities, self.registry.current,
                                          settings.lease_s)
        self.evaluation = Evaluator(
            opener,
            self.registry.current,
            self.clock,
            self.alerts.raise_alert,
            settled_ms=self._settled_ms,
            clear_alerts=self.alerts.clear_all,
            rules=thresholds(settings.rules),
            late_after_s=settings.late_after_s,
            ownership=self.leases,
            checkpoint_every_s=settings.detector_checkpoint_minutes * 60 or None,
        )
        if self.leases is not None:
            self.leases.on_change = self.evaluation.wake
        self.intake.pipeline.thread.on_committed = self.evaluation.committed
        # An intake process committed (worker mode): evaluate it now, not at the evaluation's next poll.
        self.intake.pipeline.on_notice = self.evaluation.wake
        self.influx: InfluxExporter | None = None
        if settings.influx_url:
            state = StateSnapshots(self.clock, self.registry.current, self.evaluation, settings.store_at)
            self.influx = InfluxExporter(settings, opener, self.registry.current, state=state)
        self.retention = RetentionThread(opener, RetentionPolicy.from_settings(settings), self.clock,
                                         settings.retention_interval_s)
        self.patrol = PatrolThread(opener, self.registry.current, self.clock, self.alerts.raise_alert,
                                   settings.visits_interval_s)
        self.metrics = HubMetrics(self.clock, self.intake, self.evaluation.stats,
                                  None if self.influx is None else self.influx.stats, settings.store_at,
                                  node={"node_id": settings.node_id, "client_id": settings.client_id,
                                        "communities": ",".join(settings.communities)})
        self.metrics.registry.register(SupervisionCollector(self.registry.current, settings.store_at,
                                                            self.clock, StoredVisits(settings.store_at)))
        self.intake.pipeline.thread.on_batch = self.metrics.intake.batch_committed
        self.evaluation.on_tick = self.metrics.ticked

    def _settled_ms(self, now_ms: int) -> int:
        """The hub time through which everything received is committed. A simulation's clock that has not
        ticked yet is no time at all: time-driven checks wait for it."""
        if isinstance(self.clock, FollowedClock) and not self.clock.following:
            return 0
        return self.intake.settled_ms(now_ms)

    def start(self) -> None:
        if self.embedded_broker is not None:
            self.embedded_broker.start()
        self.intake.start_committing()
        if self.influx is not None:
            self.influx.start()
        self.alerts.start()
        if self.leases is not None:
            self.leases.start()
        if self.registry_follower is not None:
            self.registry_follower.start()
        self.evaluation.start()
        self.retention.start()
        self.patrol.start()
        self.intake.start_receiving()
        log.info(
            "hub started: node %s (MQTT client id %s) taking %s, broker %s, store %s, %d devices registered",
            self.settings.node_id,
            self.settings.client_id,
            self.scope.describe(),
            redact_url(self.broker_url),
            redact_url(self.settings.store_url) if self.settings.store_url else self.settings.store_path,
            len(self.registry.current().devices),
        )

    def stop(self) -> None:
        """Stop taking messages, commit and acknowledge what was taken, then stop the rest."""
        self.intake.stop()
        self.evaluation.stop()
        if self.leases is not None:  # after the evaluation saved its cursors: released for the others at once
            self.leases.stop()
        self.retention.stop()
        if self.registry_follower is not None:
            self.registry_follower.stop()
        self.registry_source.close()
        self.patrol.stop()
        self.alerts.close()
        if self.influx is not None:
            self.influx.stop()
        if self.embedded_broker is not None:
            self.embedded_broker.stop()
        log.info("hub stopped")
