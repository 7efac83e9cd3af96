"""One process's intake, wired in one place for the main hub and for each intake process (worker mode):
the clock it stamps arrivals with, the router, the MQTT subscriber and the intake thread.

Messages go from the subscriber (on paho's network thread) to the intake thread's queue; the intake thread
commits them in batches and only then acknowledges them (see `hub.intake`). Start the intake thread
before the subscriber: the broker starts redelivering the moment the persistent session resumes.
"""

from __future__ import annotations

from collections.abc import Callable

from hub.clock import CLOCK_TOPIC, Clock, FollowedClock, SystemClock
from hub.intake import IntakeThread, Router, RouterLimits
from hub.mqtt import BrokerAddress, Message, Protocol, Subscriber
from hub.registry import Registry
from hub.settings import Settings
from hub.store import Store
from hub.topics import hub_status_topic


def open_store(settings: Settings) -> Store:
    """A connection to the hub's store, as every thread of a hub process opens its own."""
    return Store(settings.store_path, synchronous=settings.store_synchronous,
                 dead_letters_per_device=settings.dead_letters_per_device, url=settings.store_url)


class IntakePipeline:
    """Subscriber → queue → intake thread → store, for the client id `client_id` on `broker`.

    `topics` are what this process subscribes to; `unsubscribe` what an earlier run under the same client
    id may have left in its session and must be dropped; `communities` those this node takes (None: all).
    A message on `notice_topic` is no device message: it calls `on_notice` instead of going to the store
    (the main hub hears its intake processes' commits that way)."""

    def __init__(self, settings: Settings, registry: Callable[[], Registry], *, broker: BrokerAddress,
                 protocol: Protocol, client_id: str, topics: list[str], unsubscribe: list[str] | None = None,
                 notice_topic: str | None = None, communities: frozenset[str] | None = None) -> None:
        self.clock: Clock = FollowedClock() if settings.clock == "mqtt" else SystemClock()
        self.router = Router(registry, settings.zigbee2mqtt_base_topic, RouterLimits.from_settings(settings),
                             communities)
        self.subscriber = Subscriber(
            broker,
            client_id,
            topics,
            self._received,
            protocol=protocol,
            session_expiry_s=settings.mqtt_session_expiry_s,
            receive_maximum=settings.mqtt_receive_maximum,
            status_topic=hub_status_topic(client_id),
            clock=self.clock,
            unsubscribe=unsubscribe,
        )
        self.thread = IntakeThread(
            lambda: open_store(settings),
            self.router,
            self.subscriber.ack,
            batch_max=settings.batch_max,
            linger_s=settings.batch_linger_ms / 1000,
            keep_bytes=settings.dead_letter_keep_bytes,
            ack_all=self.subscriber.ack_all,
            queue_max=settings.mqtt_receive_maximum,
            queue_max_bytes=settings.intake_queue_max_bytes,
        )
        self._notice_topic = notice_topic
        self.on_notice: Callable[[], None] = lambda: None

    def _received(self, message: Message) -> None:
        # Runs on the MQTT network thread: advance a followed clock in order with the device messages
        # around it, then hand over. Nothing here may block.
        if message.topic == CLOCK_TOPIC and isinstance(self.clock, FollowedClock):
            self.clock.advance_from_payload(message.payload)
        if message.topic == self._notice_topic:
            self.on_notice()
            return
        # Alone, every device message; in the main hub in worker mode only what the session queued for the
        # device filters of a run without intake processes, before they were dropped: committed here like
        # any other.
        self.thread.submit(message)

    def store_error(self) -> str | None:
        """Why this process's commits are failing, None while they succeed."""
        if not self.thread.healthy.is_set():
            return self.thread.stats.last_commit_error or "store commits are failing"
        return None

    def pause(self) -> None:
        """Take no more messages, but stay connected so acknowledgements still reach the broker."""
        self.subscriber.pause()

    def stop(self) -> None:
        """Take nothing more, commit and acknowledge what was taken, then disconnect."""
        self.subscriber.pause()
        self.thread.stop()
        self.subscriber.stop()
