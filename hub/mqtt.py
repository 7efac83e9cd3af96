"""The one module that talks to paho-mqtt. Everything else sees `Subscriber`, `Publisher` and `Message`.

At-least-once intake rests on four settings here (see docs/operators/at-least-once.md):
- a fixed client id and a persistent session (MQTT 5: clean_start=False with a session expiry > 0;
  MQTT 3.1.1: clean_session=False), so the broker queues messages while the hub is down;
- `manual_ack=True`: a message is acknowledged only when the caller says it is committed;
- a Receive Maximum large enough for a batch, so the broker keeps the pipeline full;
- acknowledgements are tied to the connection they arrived on: after a reconnect the broker reuses
  packet ids, so acking an old id on the new connection could acknowledge a *different*, uncommitted
  message. Stale acks are dropped; the broker redelivers those messages, and storage is idempotent.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from hub.clock import Clock, SystemClock
from hub.redact import redact_url

log = logging.getLogger(__name__)

Protocol = Literal["5", "3.1.1"]


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        """`mqtt://[user[:password]@]host[:port]` or `mqtts://...` (TLS, default port 8883)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ValueError(f"broker URL {redact_url(url)!r} must look like mqtt://host:1883 or "
                             "mqtts://host:8883")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )


@dataclass(frozen=True, slots=True)
class Message:
    """One received message, stamped with the hub's clock on arrival and the connection it came on."""

    topic: str
    payload: bytes
    received_ms: int
    mid: int
    qos: int
    connection: int


_PUBACK = struct.Struct("!BBH")  # fixed header, remaining length 2, packet id: success in 3.1.1 and 5
# Topic filters per SUBSCRIBE or UNSUBSCRIBE packet: a node restricted to communities may have a filter per
# compound, and a broker with a `max_packet_size` disconnects a client whose packet exceeds it.
_FILTERS_PER_PACKET = 100


def _in_packets(topics: list[str]) -> list[list[str]]:
    return [topics[i:i + _FILTERS_PER_PACKET] for i in range(0, len(topics), _FILTERS_PER_PACKET)]


class _ReadAheadClient(paho.Client):
    """paho reads every packet with three or more recv() calls (type byte, length bytes, body) and a
    select() before each packet: at thousands of messages a second those system calls cost more than
    decoding the messages (see docs/developers/performance.md). This client reads the socket 64 KiB at a
    time, hands paho its bytes from that buffer, and goes on reading while whole packets wait there
    (select() would not wake up for bytes already taken off the socket)."""

    _READ_AHEAD = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ahead = b""
        self._ahead_pos = 0
        self._ahead_sock: object = None
        # Called with (topic, payload, packet id, QoS) for each PUBLISH decoded by `_handle_publish`.
        self.on_publish_received: Callable[[str, bytes, int, int], None] | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._ahead_sock is not self._sock:  # a new connection: nothing buffered belongs to it
            self._ahead, self._ahead_pos, self._ahead_sock = b"", 0, self._sock
        if self._ahead_pos >= len(self._ahead):
            data = super()._sock_recv(self._READ_AHEAD)
            if len(data) <= bufsize:
                return data
            self._ahead, self._ahead_pos = data, 0
        end = self._ahead_pos + bufsize
        chunk = self._ahead[self._ahead_pos:end]
        self._ahead_pos = end
        return chunk

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while (rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None
               and self._ahead_sock is self._sock and self._ahead_pos < len(self._ahead)):
            rc = super().loop_read(max_packets)
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        """paho decodes every MQTT 5 PUBLISH into a `Properties` object (walking its 27 property names twice,
        even when there are none) and an `MQTTMessage`: a quarter of an intake process's time at thousands
        of messages a second. A PUBLISH at QoS 0 or 1 without properties (devices send none) is decoded
        here and handed to `on_publish_received`, unacknowledged (manual ack); anything else (properties
        such as a topic alias, QoS 2, a packet to refuse) goes through paho as before."""
        handler = self.on_publish_received
        header, packet = self._in_packet["command"], self._in_packet["packet"]
        qos = (header & 0x06) >> 1
        if (handler is None or qos == 2 or not self._manual_ack or self._protocol != paho.MQTTv5
                or len(packet) < 3):
            return super()._handle_publish()
        topic_end = 2 + int.from_bytes(packet[:2], "big")
        properties_at, mid = topic_end, 0
        if qos:
            mid = int.from_bytes(packet[topic_end:topic_end + 2], "big")
            properties_at += 2
        if properties_at >= len(packet) or packet[properties_at] != 0 or (qos and not mid):
            return super()._handle_publish()
        try:
            topic = packet[2:topic_end].decode()
        except UnicodeDecodeError:
            return super()._handle_publish()
        with self._in_callback_mutex:
            handler(topic, bytes(packet[properties_at + 1:]), mid, qos)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        # The hub adds no per-topic callbacks (message_callback_add), so paho's topic matching, a walk of its
        # filter tree for every message, would find none: go straight to on_message.
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                on_message(self, self._userdata, message)


def _client(client_id: str, address: BrokerAddress, protocol: Protocol, *, persistent: bool) -> paho.Client:
    client = (_ReadAheadClient if persistent else paho.Client)(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if protocol == "5" else paho.MQTTv311,
        # MQTT 3.1.1 takes the persistent session here; MQTT 5 takes clean_start at connect().
        clean_session=None if protocol == "5" else not persistent,
        # A persistent subscriber acknowledges only what it committed (see the module docstring).
        manual_ack=persistent,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set()
    # paho queues without limit by default; a bounded queue would drop messages on the floor.
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


class Subscriber:
    """A persistent-session, manually acknowledging subscriber.

    `on_message` runs on paho's network thread and must only hand the message over (e.g. to a queue).
    """

    def __init__(
        self,
        address: BrokerAddress,
        client_id: str,
        topics: list[str],
        on_message: Callable[[Message], None],
        *,
        protocol: Protocol = "5",
        session_expiry_s: int = 7 * 24 * 3600,
        receive_maximum: int = 10_000,
        status_topic: str | None = None,
        clock: Clock | None = None,
        unsubscribe: list[str] | None = None,
    ) -> None:
        self._address = address
        self._topics = topics
        # Filters an earlier run under this client id may have left in the persistent session, which this
        # run must not receive through: dropped whenever the broker says the session was kept.
        self._unsubscribe = unsubscribe or []
        self._on_message = on_message
        self.protocol = protocol
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self._status_topic = status_topic
        self._clock = clock or SystemClock()
        self._connection = 0
        self._paused = False
        self._subscribed = threading.Event()
        self._subacks_due: set[int] = set()  # SUBSCRIBE packets of this connection not acknowledged yet
        self._client = _client(client_id, address, protocol, persistent=True)
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_subscribe = self._handle_subscribe
        self._client.on_message = self._handle_message
        if isinstance(self._client, _ReadAheadClient):
            self._client.on_publish_received = self._handle_publish_received
        if status_topic:
            self._client.will_set(status_topic, b"offline", qos=1, retain=True)

    @property
    def connected(self) -> bool:
        return self._subscribed.is_set()

    def start(self) -> None:
        properties = None
        if self.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._session_expiry_s
            properties.ReceiveMaximum = self._receive_maximum
        # connect_async + loop_start: the first connection is retried like any reconnect, so a hub
        # started before its broker simply waits for it.
        self._client.connect_async(
            self._address.host,
            self._address.port,
            keepalive=30,
            clean_start=False if self.protocol == "5" else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    def subscribe(self, topics: list[str]) -> None:
        """Subscribe to more filters, now when connected, and at every connection from now on (a filter
        subscribed twice, by a reconnection meanwhile, is one subscription)."""
        self._topics = [*self._topics, *topics]
        if self._subscribed.is_set():
            self._send_subscribe(self._client, topics)

    def _send_subscribe(self, client: paho.Client, topics: list[str]) -> set[int]:
        """SUBSCRIBE packets for `topics`, at QoS 1; returns their message ids."""
        mids = set()
        for packet in _in_packets(topics):
            if self.protocol == "5":
                # retainHandling=1: retained messages only for a new subscription, not on every reconnect.
                options = SubscribeOptions(qos=1, retainHandling=1)
                _, mid = client.subscribe([(topic, options) for topic in packet])
            else:
                _, mid = client.subscribe([(topic, 1) for topic in packet])
            if mid is not None:
                mids.add(mid)
        return mids

    def ack(self, message: Message) -> None:
        """Acknowledge a committed message, unless it arrived on an earlier connection (see module doc)."""
        if message.qos == 0 or message.connection != self._connection:
            return
        self._client.ack(message.mid, message.qos)

    def ack_all(self, messages: list[Message]) -> None:
        """`ack` for a committed batch, written as one packet of PUBACKs: paho queues each `ack` on its own
        and wakes its network thread and writes the socket once per message, which costs as much as
        storing the message."""
        mids = [m.mid for m in messages if m.qos == 1 and m.connection == self._connection]
        for message in messages:
            if message.qos == 2:  # never subscribed to, but would need PUBREC/PUBCOMP: leave it to paho
                self.ack(message)
        if mids:
            pubacks = b"".join([_PUBACK.pack(paho.PUBACK, 2, mid) for mid in mids])
            self._client._packet_queue(paho.PUBACK, pubacks, 0, 0)

    def notify(self, topic: str, payload: bytes) -> None:
        """Publish a QoS 0 notice on this connection without waiting (nothing is lost if it is: the
        receiver reads the store anyway, the notice only saves it waiting for its next poll)."""
        self._client.publish(topic, payload, qos=0)

    def pause(self) -> None:
        """Stop handing over messages, but stay connected so acknowledgements still reach the broker.
        Whatever arrives from now on is left unacknowledged, and the broker redelivers it next session."""
        self._paused = True

    def stop(self) -> None:
        if self._status_topic and self._subscribed.is_set():
            self._client.publish(self._status_topic, b"offline", qos=1, retain=True).wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()

    def _handle_connect(self, client: paho.Client, _: Any, flags: Any, reason: Any, __: Any) -> None:
        if reason.is_failure:
            log.error("broker refused connection: %s", reason)
            return
        self._connection += 1
        log.info("connected to %s:%s (session present: %s)", self._address.host, self._address.port,
                 flags.session_present)
        if flags.session_present and self._unsubscribe:
            for topics in _in_packets(self._unsubscribe):
                client.unsubscribe(topics)
        self._subacks_due = self._send_subscribe(client, self._topics)

    def _handle_subscribe(self, client: paho.Client, _: Any, mid: int, reasons: Any, __: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("subscription refused: %s", reasons)
            return
        self._subacks_due.discard(mid)
        if self._subacks_due:  # subscribed once every filter is
            return
        if self._status_topic:
            client.publish(self._status_topic, b"online", qos=1, retain=True)
        self._subscribed.set()

    def _handle_disconnect(self, _: paho.Client, __: Any, flags: Any, reason: Any, ___: Any) -> None:
        self._subscribed.clear()
        if reason.is_failure:
            log.warning("disconnected from broker: %s", reason)
        else:
            log.info("disconnected from broker")

    def _handle_message(self, _: paho.Client, __: Any, msg: paho.MQTTMessage) -> None:
        self._handle_publish_received(msg.topic, bytes(msg.payload), msg.mid, msg.qos)

    def _handle_publish_received(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        if self._paused:
            return
        self._on_message(Message(topic, payload, self._clock.now_ms(), mid, qos, self._connection))


class Publisher:
    """A plain publisher (simulators, alert sinks, tests).

    `publish` returns at once while fewer than `max_outstanding` messages await their acknowledgement,
    and blocks beyond that: paho numbers messages with 16-bit ids, so an unbounded backlog would collide.
    """

    def __init__(self, address: BrokerAddress, client_id: str = "", *, protocol: Protocol = "5",
                 max_inflight: int = 20, max_outstanding: int = 20_000) -> None:
        self._address = address
        self._client = _client(client_id, address, protocol, persistent=False)
        self._client.max_inflight_messages_set(max_inflight)
        self._outstanding = threading.BoundedSemaphore(max_outstanding)
        self._connected = threading.Event()
        self._client.on_connect = lambda *args: self._connected.set()
        self._client.on_publish = lambda *args: self._outstanding.release()

    def start(self, timeout: float = 10.0) -> None:
        self._client.connect(self._address.host, self._address.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            raise ConnectionError(f"no CONNACK from {self._address.host}:{self._address.port}")

    def publish(self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False) -> Published:
        self._outstanding.acquire()
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self._outstanding.release()
            raise ConnectionError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        return Published(info)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@dataclass(frozen=True, slots=True)
class Connector:
    """Opens publishers on one broker: how the CLI hands a broker to the simulators, which know no MQTT
    client (plain data, so load-test worker processes can be given one).

    No in-flight limit in paho: on every PUBACK it rescans all in-flight messages to release queued ones,
    which halves throughput at a limit of 1000. The simulators bound the messages awaiting their
    acknowledgement themselves (`simulators.publishing.AckWindow`)."""

    address: BrokerAddress
    protocol: Protocol = "5"

    def __call__(self, client_id: str) -> Publisher:
        return Publisher(self.address, client_id, max_inflight=0, protocol=self.protocol)


class Published:
    """A handle on one publish: `wait()` returns once the broker acknowledged it (QoS 1)."""

    __slots__ = ("_info",)

    def __init__(self, info: paho.MQTTMessageInfo) -> None:
        self._info = info

    def wait(self, timeout: float | None = None) -> bool:
        self._info.wait_for_publish(timeout)
        return self._info.is_published()


def wait_for_message(address: BrokerAddress, topic: str, predicate: Callable[[bytes], bool],
                     timeout: float) -> bytes | None:
    """Subscribe with a throwaway session until a message on `topic` satisfies `predicate` (retained ones
    included); return its payload, or None on timeout. For status checks and tests, not for intake."""
    found: list[bytes] = []
    done = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311, clean_session=True)
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set()

    def on_message(_: paho.Client, __: Any, msg: paho.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        if predicate(payload):
            found.append(payload)
            done.set()

    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_message = on_message
    try:
        client.connect(address.host, address.port, keepalive=30)
    except OSError:
        return None
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return found[0] if found else None
