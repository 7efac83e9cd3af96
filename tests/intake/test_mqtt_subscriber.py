"""The intake subscriber on a real Mosquitto: messages with and without MQTT 5 properties, at QoS 0 and 1,
arrive whole, and only what was acknowledged is gone from the persistent session."""

from __future__ import annotations

import queue

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.mqtt import Message, Subscriber
from tests.real_servers import Mosquitto


def properties(**values: object) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(props, name, value)
    return props


def receive(received: queue.Queue[Message], count: int) -> list[Message]:
    return [received.get(timeout=10) for _ in range(count)]


def test_messages_arrive_whole_and_only_acknowledged_ones_leave_the_session(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Which PUBLISH packets paho decoded itself: only those with properties (see `_handle_publish`).
    through_paho: list[str] = []
    paho_handle_publish = paho.Client._handle_publish

    def counted(client: paho.Client) -> MQTTErrorCode:
        through_paho.append(bytes(client._in_packet["packet"][2:40]).decode(errors="replace"))
        return paho_handle_publish(client)

    monkeypatch.setattr(paho.Client, "_handle_publish", counted)
    sent = [  # topic, payload, QoS, properties
        ("sc/sunshine/motion_sensor/m-1/event", b'{"ts": 1, "occupancy": true}', 1, None),
        ("sc/sunshine/wristband/b-1/event", b'{"sos": true}', 1,
         properties(UserProperty=[("firmware", "2.1")], MessageExpiryInterval=3600, ContentType="json")),
        ("sc/sunshine/door_sensor/d-1/event", b"", 1, None),
        ("sc/sunshine/door_sensor/d-1/availability", "在线 online".encode(), 0, None),
        ("sc/sunshine/motion_sensor/m-2/event", b"x" * 70_000, 1, properties(PayloadFormatIndicator=0)),
    ]
    received: queue.Queue[Message] = queue.Queue()
    subscriber = Subscriber(mosquitto.address, "intake-under-test", ["sc/#"], received.put)
    subscriber.start()
    assert subscriber.wait_subscribed(10)
    publisher = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    try:
        for topic, payload, qos, props in sent:
            publisher.publish(topic, payload, qos=qos, properties=props).wait_for_publish(10)
        messages = receive(received, len(sent))
        by_topic = {m.topic: m for m in messages}
        assert {t: (by_topic[t].payload, by_topic[t].qos) for t, *_ in sent} == {
            t: (p, q) for t, p, q, _ in sent}
        assert all(m.mid > 0 for m in messages if m.qos == 1)
        assert len(through_paho) == 2 and all(t.startswith(("sc/sunshine/wristband/b-1/event",
                                                            "sc/sunshine/motion_sensor/m-2/event"))
                                              for t in through_paho), through_paho
        # Acknowledge all but the SOS; the broker must hand that one back to the same session.
        unacked = by_topic["sc/sunshine/wristband/b-1/event"]
        subscriber.ack_all([m for m in messages if m is not unacked])
    finally:
        subscriber.stop()

    again: queue.Queue[Message] = queue.Queue()
    resumed = Subscriber(mosquitto.address, "intake-under-test", ["sc/#"], again.put)
    resumed.start()
    try:
        assert resumed.wait_subscribed(10)
        (redelivered,) = receive(again, 1)
        assert (redelivered.topic, redelivered.payload) == (unacked.topic, unacked.payload)
        resumed.ack(redelivered)
        try:
            extra = again.get(timeout=1.0)
        except queue.Empty:
            extra = None
        assert extra is None, f"acknowledged before the restart, yet redelivered: {extra}"
    finally:
        resumed.stop()
        publisher.disconnect()
        publisher.loop_stop()
