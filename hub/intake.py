"""Intake: route each MQTT message to a decoder, write the batch to the store, then acknowledge it.

`Router` decides what one message is (an observation, an availability change, a dead letter, or a topic
to ignore) and touches nothing. `IntakeThread` is the thread that drains the queue in batches: one SQLite
transaction per batch, and only after the commit are the batch's messages acknowledged to the broker,
so a crash at any instant leaves every uncommitted message with the broker for redelivery.
"""

from __future__ import annotations

import itertools
import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from devices import KINDS
from devices.availability import decode_availability
from devices.kind import MAX_FUTURE_SKEW_MS, DecodeError, Reading, Reason
from hub.mqtt import Message
from hub.registry import PlacedDevice, Registry
from hub.store import Batch, Committed, DeadLetter, Observation, Store
from hub.topics import IgnoredTopic, NativeTopic, Zigbee2mqttTopic, parse_topic

if TYPE_CHECKING:
    from hub.settings import Settings

log = logging.getLogger(__name__)

# Raw bytes that may be an SOS press, a fall or a falling object, of any kind (see `DeviceKind.urgent_marks`):
# a batch holding one is committed without lingering. One regular expression scans a payload once.
_URGENT = re.compile(b"|".join(re.escape(mark) for kind in KINDS.values() for mark in kind.urgent_marks))

# Devices whose liveness one batch carries at most. A second's worth of a district at once (5,000 devices)
# made one commit a second several times as long as the rest, and an SOS press taken in it, or queued
# behind it, waited that much longer; in parts it is spread over the next few batches.
_SEEN_PER_BATCH = 500


@dataclass(frozen=True, slots=True)
class AvailabilityChange:
    device: PlacedDevice
    online: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    """A dead letter, with the device when the topic named a known one (it still counts as seen)."""

    reason: Reason
    detail: str
    device: PlacedDevice | None = None


Routed = Observation | AvailabilityChange | Rejected | IgnoredTopic


@dataclass(frozen=True, slots=True)
class RouterLimits:
    max_payload_bytes: int = 64 * 1024
    max_future_skew_ms: int = MAX_FUTURE_SKEW_MS
    # The default matches the settings' default: the broker's session expiry (7 days) plus a day.
    max_age_ms: int = 8 * 24 * 3600 * 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> RouterLimits:
        return cls(settings.max_payload_bytes, settings.max_future_skew_s * 1000,
                   settings.reading_age_limit_s * 1000)


class Router:
    """Pure routing: topic + payload + arrival time → what the message is. Reads the registry only: the
    one `registry()` returns when the message comes (an edited registry routes the next message).

    `communities`: the communities this node takes (`HUB_COMMUNITIES`), None for all. A message for
    another community can still reach a restricted node (its session queued it under the filters of an
    earlier, wider run; a broad subscription). It is kept as a dead letter (`other_community`), not
    acknowledged away: the node that takes that community may never get its own copy (its session did
    not exist yet, or it shares the subscription with this node), and a dead letter can be replayed there."""

    def __init__(self, registry: Callable[[], Registry], zigbee2mqtt_base: str, limits: RouterLimits,
                 communities: frozenset[str] | None = None) -> None:
        self.registry = registry
        self._z2m_base = zigbee2mqtt_base
        self._limits = limits
        self._communities = communities

    def route(self, topic: str, payload: bytes, received_ms: int) -> Routed:
        parsed = parse_topic(topic, self._z2m_base)
        if parsed is None:
            return Rejected(
                Reason.UNKNOWN_TOPIC,
                f"topic {topic!r} fits neither sc/<community>/<kind>/"
                f"<device>/event|availability nor {self._z2m_base}/<compound>/<friendly_name>",
            )
        if isinstance(parsed, IgnoredTopic):
            return parsed
        registry = self.registry()
        if self._communities is not None:
            elsewhere = self._elsewhere(parsed, registry, self._communities)
            if elsewhere is not None:
                return elsewhere
        device, problem = self._device(parsed, registry)
        if device is None:
            assert problem is not None
            return problem
        if len(payload) > self._limits.max_payload_bytes:
            return Rejected(
                Reason.TOO_LARGE,
                f"payload is {len(payload)} bytes, limit {self._limits.max_payload_bytes}",
                device,
            )
        try:
            if parsed.channel == "availability":
                online, _ = decode_availability(payload)
                return AvailabilityChange(device, online)
            reading = self._decode(device, parsed, payload, received_ms)
        except DecodeError as exc:
            return Rejected(exc.reason, exc.detail, device)
        except Exception as exc:  # a broken decoder must not stop intake for every other kind
            log.exception("decoder for %s crashed", device.kind)
            return Rejected(Reason.DECODER_ERROR, f"{type(exc).__name__}: {exc}", device)
        if reading.ts > received_ms + self._limits.max_future_skew_ms:
            return Rejected(
                Reason.TS_IN_FUTURE,
                f"ts is {(reading.ts - received_ms) / 1000:.0f} s ahead of "
                "the hub clock (device clock wrong?)",
                device,
            )
        if received_ms - reading.ts > self._limits.max_age_ms:
            # Longer than the broker keeps messages for a stopped hub: not a reading held back by an
            # outage but a replay (or a device clock years wrong). Alerting on it would call caregivers
            # out for a fall that is long over; it is kept here, with its bytes, not stored.
            return Rejected(
                Reason.TOO_OLD,
                f"ts is {_age(received_ms - reading.ts)} before the hub received it, limit "
                f"{_age(self._limits.max_age_ms)} (a replayed message, or a device clock wrong?)",
                device,
            )
        return Observation(device.id, device.kind, reading.ts, reading.fields, received_ms)

    @staticmethod
    def _elsewhere(parsed: NativeTopic | Zigbee2mqttTopic, registry: Registry,
                   communities: frozenset[str]) -> Rejected | None:
        """A dead letter for a message of a community this node does not take; None for its own, and for a
        gateway of a compound nobody has (the usual dead letter says so). Never attributed to a device:
        this node does not follow another community's devices."""
        if isinstance(parsed, NativeTopic):
            community: str | None = parsed.community
        else:
            community = registry.compound_communities.get(parsed.compound)
        if community is None or community in communities:
            return None
        return Rejected(Reason.OTHER_COMMUNITY,
                        f"community {community!r} is not taken by this node (HUB_COMMUNITIES="
                        f"{','.join(sorted(communities))}); kept for the node that takes it")

    @staticmethod
    def _device(parsed: NativeTopic | Zigbee2mqttTopic,
                registry: Registry) -> tuple[PlacedDevice | None, Rejected | None]:
        if isinstance(parsed, Zigbee2mqttTopic):
            key = (parsed.compound, parsed.friendly_name)
            device = registry.by_zigbee2mqtt_name.get(key)
            if device is not None:
                return device, None
            owners = registry.zigbee2mqtt_name_compounds.get(parsed.friendly_name)
            if owners:
                # Another compound's gateway speaks for that name: a forged reading (or a gateway with the
                # wrong base topic). Not attributed to the device, so it cannot keep it looking alive.
                return None, Rejected(
                    Reason.TOPIC_MISMATCH,
                    f"zigbee2mqtt name {parsed.friendly_name!r} belongs to the gateway of compound "
                    f"{', '.join(sorted(owners))}, topic is under compound {parsed.compound!r}'s base topic",
                )
            if key in registry.deactivated_zigbee2mqtt_names:
                why = (f"the device with zigbee2mqtt name {parsed.friendly_name!r} in compound "
                       f"{parsed.compound!r} is deactivated")
            else:
                why = (f"no device in compound {parsed.compound!r} has zigbee2mqtt name "
                       f"{parsed.friendly_name!r}")
            return None, Rejected(Reason.UNKNOWN_DEVICE, why)
        device = registry.devices.get(parsed.device_id)
        if device is None:
            known = parsed.device_id in registry.deactivated_devices
            state = "deactivated" if known else "not registered"
            return None, Rejected(Reason.UNKNOWN_DEVICE, f"device {parsed.device_id!r} is {state}")
        if (parsed.community, parsed.kind) != (device.community, device.kind):
            return None, Rejected(
                Reason.TOPIC_MISMATCH,
                f"device {device.id!r} is a {device.kind} in {device.community}, topic says "
                f"{parsed.kind} in {parsed.community}",
                device,
            )
        return device, None

    @staticmethod
    def _decode(
        device: PlacedDevice, parsed: NativeTopic | Zigbee2mqttTopic, payload: bytes, received_ms: int
    ) -> Reading:
        kind = KINDS[device.kind]
        if isinstance(parsed, NativeTopic):
            return kind.decode(payload)
        if kind.decode_zigbee2mqtt is None:
            raise DecodeError(Reason.INVALID_PAYLOAD, f"{kind.name} has no Zigbee2MQTT form")
        return kind.decode_zigbee2mqtt(payload, received_ms)


def _age(ms: int) -> str:
    """A duration for an operator: days past two days, hours past two hours, else minutes."""
    for unit_ms, unit in ((86_400_000, "days"), (3_600_000, "hours")):
        if ms >= 2 * unit_ms:
            return f"{ms / unit_ms:.1f} {unit}"
    return f"{ms / 60_000:.1f} min"


@dataclass
class IntakeStats:
    """Counters owned by the intake thread (single writer); the live view and metrics read them."""

    received: Counter[str] = field(default_factory=Counter)  # per kind ("?" when unknown)
    stored: Counter[str] = field(default_factory=Counter)  # per kind
    dead_letters: Counter[str] = field(default_factory=Counter)  # per reason
    ignored: int = 0
    batches: int = 0
    commit_failures: int = 0
    last_commit_error: str | None = None
    last_batch_size: int = 0
    last_commit_s: float = 0.0
    acked: Counter[str] = field(default_factory=Counter)  # per kind, as `received`, once committed

    _COUNTERS: ClassVar = ("received", "stored", "dead_letters", "acked")
    _TOTALS: ClassVar = ("ignored", "batches", "commit_failures")

    def report(self) -> dict[str, Any]:
        """The counters as JSON-ready data, for the main hub to add up (worker mode)."""
        return ({name: dict(getattr(self, name)) for name in self._COUNTERS}
                | {name: getattr(self, name) for name in self._TOTALS})

    def add(self, report: Mapping[str, Any]) -> None:
        """Add counters from `report` (one of another process's, or this process's before a restart)."""
        for name in self._COUNTERS:
            getattr(self, name).update(report.get(name, {}))
        for name in self._TOTALS:
            setattr(self, name, getattr(self, name) + report.get(name, 0))


class IntakeStatus(Protocol):
    """Intake as health checks, metrics and the live view read it: over every process taking device
    messages (the hub alone, or the intake processes beside it in worker mode)."""

    @property
    def connected(self) -> bool:
        """Connected and subscribed to the broker."""
        ...

    @property
    def queued_messages(self) -> int:
        """Messages received and not yet taken into a batch (in this process)."""
        ...

    @property
    def queued_bytes(self) -> int:
        """Their payload bytes."""
        ...

    def settled_ms(self, now_ms: int) -> int:
        """The hub time through which everything received is committed."""
        ...

    def store_error(self) -> str | None:
        """Why commits are failing, None while they succeed."""
        ...

    def stats(self) -> IntakeStats:
        """The intake counters, summed over the processes (a copy)."""
        ...

    def process_histograms(self) -> list[dict[str, list[float]]]:
        """The intake histograms the intake processes reported (`IntakeHistograms.report`); none alone."""
        ...


def route_all(router: Router, messages: list[Message], stats: IntakeStats) -> list[Routed]:
    """Route each message once (a batch the store refuses is split without routing it again)."""
    routed = [router.route(message.topic, message.payload, message.received_ms) for message in messages]
    for what in routed:
        kind = _kind_of(what)
        if kind is None:
            stats.ignored += 1
        else:
            stats.received[kind] += 1
    return routed


def _kind_of(routed: Routed) -> str | None:
    """The kind a routed message counts under in `IntakeStats` ("?": no known device), None if ignored."""
    if isinstance(routed, Observation):
        return routed.kind
    if isinstance(routed, AvailabilityChange | Rejected):
        return routed.device.kind if routed.device else "?"
    return None


def batch_of(messages: list[Message], routed: list[Routed], keep_bytes: int) -> Batch:
    batch = Batch()
    for message, what in zip(messages, routed, strict=True):
        if isinstance(what, Observation):
            batch.add_observation(what, message.received_ms)
        elif isinstance(what, AvailabilityChange):
            batch.set_availability(what.device.id, what.online, message.received_ms)
        elif isinstance(what, Rejected):
            add_dead_letter(batch, message, what, keep_bytes)
    return batch


def add_dead_letter(batch: Batch, message: Message, rejected: Rejected, keep_bytes: int) -> None:
    device = rejected.device
    batch.dead_letters.append(
        DeadLetter(
            message.topic,
            rejected.reason,
            rejected.detail,
            message.payload[:keep_bytes],
            len(message.payload),
            message.received_ms,
            device.id if device else None,
        )
    )
    if device is not None:
        batch.mark_seen(device.id, device.kind, None, message.received_ms, rejected.reason)


def build_batch(router: Router, messages: list[Message], keep_bytes: int, stats: IntakeStats) -> Batch:
    return batch_of(messages, route_all(router, messages, stats), keep_bytes)


_Part = list[tuple[Message, Routed]]


class IntakeThread(threading.Thread):
    """Drains received messages in batches: route, commit, then acknowledge.

    A failed commit (disk full, read-only file system) acknowledges nothing and is retried with the same
    batch; meanwhile the broker stops sending once Receive Maximum messages are unacknowledged, so the
    backlog waits at the broker, not in our memory.

    What the hub last heard from each device (`devices_seen`) is written at most once per
    `seen_flush_s`, not with every batch: with thousands of devices that upsert cost as much as storing
    the observations. Once due it goes with the next batches, `_SEEN_PER_BATCH` devices each, never with
    a batch holding an urgent message. A crash loses at most that much liveness detail, never a reading
    or a dead letter (both name their device and time, and are committed before their acknowledgement).
    """

    def __init__(
        self,
        store_factory: Callable[[], Store],
        router: Router,
        ack: Callable[[Message], None],
        *,
        batch_max: int,
        linger_s: float,
        keep_bytes: int,
        seen_flush_s: float = 1.0,
        ack_all: Callable[[list[Message]], None] | None = None,
        queue_max: int = 20_000,
        queue_max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        super().__init__(name="intake", daemon=True)
        self.queue: queue.SimpleQueue[Message] = queue.SimpleQueue()
        # Room in the queue. Receive Maximum should keep the broker from sending more than that many
        # unacknowledged messages, but Mosquitto 2.0 overshoots it while acknowledgements stream back
        # (600,000 queued here in a minute of overload): `submit` waits for room, which holds paho's
        # network thread and leaves the backlog at the broker, not in our memory.
        self._room = threading.Semaphore(queue_max)
        # ... and in bytes: 20,000 messages of 64 KiB would be 1.3 GB. A message larger than the whole budget
        # still goes in, alone, once the queue is empty.
        self._queue_max_bytes = queue_max_bytes
        self._queued_bytes = 0
        self._bytes_freed = threading.Condition()
        self.stats = IntakeStats()
        self.router = router
        self._store_factory = store_factory
        self._ack = ack
        # One call per batch when the subscriber can (one write to the broker instead of one per message).
        self._ack_all = ack_all or self._ack_each
        self._batch_max = batch_max
        self._linger_s = linger_s
        self._keep_bytes = keep_bytes
        self._seen_flush_s = seen_flush_s
        self._in_hand = False  # messages taken from the queue and not yet committed
        self._urgent = False  # those messages include an SOS press, a fall or a falling object
        self._committed_through_ms = 0
        self._unflushed_seen = Batch()
        self._seen_due = 0.0
        self._stopping = threading.Event()
        self.on_committed: Callable[[Committed], None] = lambda committed: None
        # Metrics: messages in the batch, seconds its commit took, the readings it stored.
        self.on_batch: Callable[[int, float, list[Observation]], None] = lambda size, commit_s, stored: None
        self.healthy = threading.Event()
        self.healthy.set()

    def submit(self, message: Message) -> None:
        self._room.acquire()
        size = len(message.payload)
        with self._bytes_freed:
            while self._queued_bytes and self._queued_bytes + size > self._queue_max_bytes:
                self._bytes_freed.wait()
            self._queued_bytes += size
        self.queue.put(message)

    @property
    def queued_bytes(self) -> int:
        """Payload bytes received and not yet taken into a batch."""
        return self._queued_bytes

    def settled_ms(self, now_ms: int) -> int:
        """The hub time through which every message received is committed: `now_ms` when nothing waits,
        else the arrival time of the newest committed message. Time-driven checks use it, so that a
        backlog still in the queue never looks like silence."""
        if self.queue.empty() and not self._in_hand:
            return now_ms
        return min(now_ms, self._committed_through_ms)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.join(timeout)

    def run(self) -> None:
        store = self._store_factory()
        try:
            while not (self._stopping.is_set() and self.queue.empty()):
                messages = self._next_messages()
                if messages:
                    self._commit_and_ack(store, messages)
                elif self._unflushed_seen.seen and time.monotonic() >= self._seen_due:
                    self._flush_seen(store)
            if self._unflushed_seen.seen:
                self._flush_seen(store)
        finally:
            store.close()

    def _flush_seen(self, store: Store) -> None:
        """When traffic pauses (or intake stops), write what was last heard now rather than with the next
        message, which in a quiet community may be an hour away (and a restart reads liveness from the
        store)."""
        self._seen_due = time.monotonic() + self._seen_flush_s  # also after a failure: one try per interval
        try:
            store.commit(self._unflushed_seen)
        except Exception as exc:  # kept in memory; the next pause or batch tries again
            log.warning("could not write device liveness: %s", store.describe_failure(exc))
            return
        self._unflushed_seen = Batch()

    def _next_messages(self) -> list[Message]:
        try:
            first = self.queue.get(timeout=0.2)
        except queue.Empty:
            return []
        self._in_hand = True
        messages = [first]
        urgent = _URGENT.search(first.payload) is not None
        deadline = time.monotonic() + self._linger_s
        while len(messages) < self._batch_max:
            try:
                message = self.queue.get_nowait()
            except queue.Empty:
                # What is queued is taken; with an SOS, a fall or a falling object among it, every
                # millisecond spent waiting for more is a millisecond before the caregivers hear of it.
                remaining = deadline - time.monotonic()
                if urgent or remaining <= 0:
                    break
                try:
                    message = self.queue.get(timeout=remaining)
                except queue.Empty:
                    break
            messages.append(message)
            urgent = urgent or _URGENT.search(message.payload) is not None
        self._urgent = urgent
        self._room.release(len(messages))
        taken = sum(len(message.payload) for message in messages)
        with self._bytes_freed:
            self._queued_bytes -= taken
            self._bytes_freed.notify_all()
        return messages

    def _carry_seen(self, batch: Batch) -> None:
        """Move what was last heard from the devices into `batch`: all of it, or the `_SEEN_PER_BATCH`
        devices waiting longest, leaving the rest due for the next batch."""
        unflushed = self._unflushed_seen.seen
        if len(unflushed) <= _SEEN_PER_BATCH:
            batch.absorb_seen(self._unflushed_seen)
            self._seen_due = time.monotonic() + self._seen_flush_s
            return
        part = Batch()
        for device_id in list(itertools.islice(unflushed, _SEEN_PER_BATCH)):
            part.seen[device_id] = unflushed.pop(device_id)
        batch.absorb_seen(part)

    def _ack_each(self, messages: list[Message]) -> None:
        for message in messages:
            self._ack(message)

    def _commit_and_ack(self, store: Store, messages: list[Message]) -> None:
        """Commit and acknowledge `messages`, splitting a batch the store refuses.

        One message can make a whole batch fail (the store refused fields its JSON functions cannot read,
        once every redelivery of it): retrying that batch forever would acknowledge nothing and stop every
        community's alerts. So a refused batch is halved, and each half committed on its own, until the
        one message the store refuses is alone; it becomes a dead letter (`store_refused`) and the rest
        is committed and acknowledged. Only when the store refuses even that dead letter is the store
        itself failing (disk full, read-only): then everything not yet committed is retried as one batch,
        with back-off, and nothing of it is acknowledged.
        """
        routed = route_all(self.router, messages, self.stats)
        pending: list[_Part] = [list(zip(messages, routed, strict=True))]
        with_seen = not self._urgent and time.monotonic() >= self._seen_due
        delay = 0.5
        while pending:
            part = pending.pop()
            failure = self._commit_part(store, part, with_seen=with_seen)
            if failure is None:
                delay = 0.5
                continue
            with_seen = False  # liveness waits for the next batch or pause, not in every piece
            if len(part) > 1:
                middle = len(part) // 2
                pending += [part[middle:], part[:middle]]  # the first half is popped first: in order
                continue
            message, alone = part[0]
            log.error("the store refused a message on %s, keeping it as a dead letter: %s", message.topic,
                      failure)
            refused = Rejected(Reason.STORE_REFUSED, f"the store refused it: {failure}",
                               self._device_of(alone))
            if self._commit_part(store, [(message, refused)], with_seen=False) is None:
                continue
            # The store refuses a dead letter too: the store is failing, not the message.
            pending = [[pair for rest in (part, *reversed(pending)) for pair in rest]]
            self.healthy.clear()
            log.error("store commit failed, nothing acknowledged, retrying in %.1f s: %s", delay,
                      self.stats.last_commit_error)
            if self._stopping.wait(delay):
                return  # shutting down: the broker redelivers what is left next time
            delay = min(delay * 2, 30.0)
        self._committed_through_ms = max(self._committed_through_ms, messages[-1].received_ms)  # in order
        self._in_hand = False

    def _device_of(self, routed: Routed) -> PlacedDevice | None:
        if isinstance(routed, Observation):
            return self.router.registry().devices.get(routed.device_id)
        if isinstance(routed, AvailabilityChange | Rejected):
            return routed.device
        return None

    def _commit_part(self, store: Store, part: _Part, *, with_seen: bool) -> str | None:
        """Commit one part of a batch and acknowledge it; None, or why the store refused it."""
        stats = self.stats
        messages = [message for message, _ in part]
        batch = batch_of(messages, [routed for _, routed in part], self._keep_bytes)
        self._unflushed_seen.absorb_seen(batch)
        if with_seen:  # what was heard from each device is written with a batch at most once per interval
            self._carry_seen(batch)
        started = time.perf_counter()
        try:
            committed = store.commit(batch)
        except Exception as exc:  # sqlite3 errors (disk full, read-only, I/O) or fields it cannot encode
            self._unflushed_seen.absorb_seen(batch)  # kept for the next commit
            stats.commit_failures += 1
            stats.last_commit_error = store.describe_failure(exc)
            return stats.last_commit_error
        self.healthy.set()
        stats.last_commit_s = time.perf_counter() - started
        stats.last_batch_size = len(messages)
        stats.batches += 1
        for observation in batch.observations:
            stats.stored[observation.kind] += 1
        for dead in batch.dead_letters:
            stats.dead_letters[dead.reason] += 1
        self._ack_all(messages)
        stats.acked.update(kind for _, routed in part if (kind := _kind_of(routed)) is not None)
        self.on_batch(len(messages), stats.last_commit_s, batch.observations)
        self.on_committed(committed)
        return None
