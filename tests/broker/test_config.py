"""The production broker's configuration on a real Mosquitto: what `hub registry export-mosquitto` writes
(password file, ACL) with the packaged mosquitto.conf template rendered onto temporary paths and free
loopback ports, with a plain and a TLS listener whose CA and certificate `openssl` makes here."""

from __future__ import annotations

import base64
import json
import os
import pwd
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions
from typer.testing import CliRunner, Result

from detectors.severity import Severity
from hub.alerts.model import Alert
from hub.alerts.notification import Notification
from hub.alerts.sinks import MqttSink
from hub.broker.acl import HEALTHCHECK_TOPIC, HEALTHCHECK_USER, HUB_USER, alert_consumer_user, gateway_user
from hub.broker.config import MosquittoLayout, max_packet_size, render_config
from hub.broker.export import ExportError, export_mosquitto
from hub.broker.passwd import hash_password, parse_passwd, verify_password
from hub.cli import app
from hub.embedded_broker import free_loopback_port
from hub.mqtt import BrokerAddress
from hub.registry import (
    Caregiver,
    Device,
    Registry,
)
from hub.settings import Settings
from hub.store import Store
from hub.topics import alert_topic, availability_topic, event_topic, hub_status_topic, subscriptions
from tests.real_servers import Mosquitto, require_binary, wait_until
from tests.registry_builder import RegistryBuilder

NOT_AUTHORIZED = 0x87
BAD_CREDENTIALS = 0x86  # newer Mosquittos say this for a wrong password; 2.0 says NOT_AUTHORIZED
REFUSED_CREDENTIALS = (BAD_CREDENTIALS, NOT_AUTHORIZED)
ACCEPTED = (0x00, 0x10)  # success, or "no matching subscribers", which is a success too
DOOR = event_topic("sunshine", "door_sensor", "door-1")
MOTION = event_topic("sunshine", "motion_sensor", "motion-1")
HUB_PASSWORD = "hub-test-password-0123456789"


def community(devices: list[Device]) -> Registry:
    """Two compounds (c1, c2) of one community, a home in each; and a second community (moonlight) with a
    home of its own, for what one community may not see of another."""
    return (RegistryBuilder()
            .community("sunshine", "阳光社区").compound("c1").building("b1").grid("g1").household("h101")
            .compound("c2").building("b2").grid("g2").household("h201")
            .community("moonlight", "月光社区").compound("m1").building("mb1").grid("mg1").household("m301")
            .devices(devices)
            .registry())


DEVICES = [
    Device(id="door-1", kind="door_sensor", household="h101"),
    Device(id="motion-1", kind="motion_sensor", household="h101"),
    Device(id="band-z", kind="wristband", household="h101", zigbee2mqtt="101/sos button"),
    Device(id="band-z2", kind="wristband", household="h201", zigbee2mqtt="201/sos button"),
]
# Each compound's Zigbee2MQTT gateway under its own base topic.
SOS_BUTTON_C1 = "zigbee2mqtt/c1/101/sos button"
SOS_BUTTON_C2 = "zigbee2mqtt/c2/201/sos button"


def export_with_cli(registry: Registry, out: Path, secrets: Path, **env: str) -> Result:
    """`hub registry export-mosquitto` on `registry` (written beside `out`), with `env` set."""
    registry_path = out.parent / "registry.yaml"
    registry.dump(registry_path)
    return CliRunner().invoke(app, ["registry", "export-mosquitto", "--registry", str(registry_path),
                                    "--out", str(out), "--secrets", str(secrets)], env=env)


def make_certificates(directory: Path) -> None:
    """A CA, and a server certificate it signed for 127.0.0.1/localhost (EC keys: quick to make)."""
    openssl = require_binary("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (directory / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "server.ext")


class Broker(Mosquitto):
    """Mosquitto on the exported files, with the packaged template rendered onto test paths and ports."""

    def __init__(self, workdir: Path, config_dir: Path, passwords: dict[str, str]) -> None:
        self.config_dir = config_dir
        self.passwords = passwords
        self.tls_port = free_loopback_port()
        plain_port = free_loopback_port()
        layout = MosquittoLayout(
            config_dir=str(config_dir), data_dir=str(workdir), plain_port=plain_port,
            tls_port=self.tls_port, bind_address="127.0.0.1", log_dest=f"file {workdir}/mosquitto.log",
            # As root Mosquitto would drop to its own user, who cannot read the 0600 files root made here.
            run_as=pwd.getpwuid(os.getuid()).pw_name,
        )
        super().__init__(workdir, port=plain_port, config=render_config(layout), other_ports=(self.tls_port,))

    @property
    def plain_port(self) -> int:
        return self.port

    @property
    def ca(self) -> Path:
        return self.config_dir / "certs" / "ca.crt"


@pytest.fixture
def brokers() -> Iterator[Callable[[Path, Path, dict[str, str]], Broker]]:
    """Start brokers for one test; all stopped at its end (after its MQTT sessions, if asked for first)."""
    started: list[Broker] = []

    def start(workdir: Path, config_dir: Path, passwords: dict[str, str]) -> Broker:
        started.append(Broker(workdir, config_dir, passwords))
        return started[-1].start()

    yield start
    for broker in started:
        broker.stop()


@dataclass
class Session:
    """One MQTT 5 client connection, recording the broker's answers and what it delivers."""

    client: paho.Client
    connack: Any = None
    connected: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)
    acks: dict[int, Any] = field(default_factory=dict)
    acked: threading.Condition = field(default_factory=threading.Condition)
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    subacks: list[list[int]] = field(default_factory=list)  # the reason code per topic, per SUBACK

    def publish(self, topic: str, payload: bytes = b"{}", *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK's reason code (MQTT 5: a refusal says why)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.acks, 5), f"no PUBACK for {topic}"
            return int(self.acks.pop(info.mid).value)

    def subscribe(self, *topics: str, retained: bool = False) -> None:
        """Subscribe at QoS 1; retained messages only if asked (they outlive the test that left them)."""
        self.subscribed.clear()
        options = SubscribeOptions(qos=1, retainHandling=0 if retained else 2)
        self.client.subscribe([(topic, options) for topic in topics])
        assert self.subscribed.wait(5), "no SUBACK"

    def next_message(self, timeout: float = 5) -> tuple[str, bytes]:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


Connect = Callable[..., Session]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """connect(port, user, password, ca=..., will=...) -> Session; every session is closed afterwards."""
    sessions: list[Session] = []

    def open_session(port: int, username: str | None = None, password: str | None = None, *,
                     ca: Path | None = None, will: tuple[str, bytes] | None = None) -> Session:
        client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        session = Session(client)
        sessions.append(session)
        if username is not None:
            client.username_pw_set(username, password)
        if ca is not None:
            client.tls_set(ca_certs=str(ca))
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)

        def on_connect(_: paho.Client, __: Any, ___: Any, reason: Any, ____: Any) -> None:
            session.connack = reason
            session.connected.set()

        def on_publish(_: paho.Client, __: Any, mid: int, reason: Any, ___: Any) -> None:
            with session.acked:
                session.acks[mid] = reason
                session.acked.notify_all()

        client.on_connect = on_connect
        client.on_publish = on_publish

        def on_subscribe(_: paho.Client, __: Any, ___: int, reasons: list[Any], ____: Any) -> None:
            session.subacks.append([int(reason.value) for reason in reasons])
            session.subscribed.set()

        client.on_subscribe = on_subscribe
        client.on_disconnect = lambda *args: session.disconnected.set()
        client.on_message = lambda _, __, msg: session.messages.put((msg.topic, bytes(msg.payload)))
        client.connect("127.0.0.1", port, keepalive=30)
        client.loop_start()
        assert session.connected.wait(5), "no CONNACK"
        if session.connack.is_failure:
            client.loop_stop()  # or paho keeps trying again
        return session

    yield open_session
    for session in sessions:
        session.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The exported configuration of a one-household community on a real Mosquitto."""
    workdir = tmp_path_factory.mktemp("broker")
    config_dir, secrets = workdir / "mosquitto", workdir / "mqtt-secrets.yaml"
    result = export_with_cli(community(DEVICES), config_dir, secrets, MQTT_HUB_PASSWORD=HUB_PASSWORD,
                             HUB_ENVIRONMENT="production")
    assert result.exit_code == 0, result.output
    make_certificates(config_dir / "certs")
    server = Broker(workdir / "data", config_dir, yaml.safe_load(secrets.read_text()))
    try:
        yield server.start()
    finally:
        server.stop()


def hub_session(connect: Connect, broker: Broker) -> Session:
    """The hub's user, subscribed to exactly what the hub subscribes to."""
    hub = connect(broker.plain_port, HUB_USER, broker.passwords[HUB_USER])
    assert not hub.connack.is_failure, hub.connack
    hub.subscribe(*subscriptions("zigbee2mqtt"))
    return hub


def test_a_device_publishes_its_own_topics_and_the_hub_receives_them(connect: Connect,
                                                                      broker: Broker) -> None:
    hub = hub_session(connect, broker)
    door = connect(broker.plain_port, "door-1", broker.passwords["door-1"])
    assert not door.connack.is_failure, door.connack
    assert door.publish(DOOR, b'{"contact": "open"}') in ACCEPTED
    assert hub.next_message() == (DOOR, b'{"contact": "open"}')
    availability = availability_topic("sunshine", "door_sensor", "door-1")
    assert door.publish(availability, b"online", retain=True) in ACCEPTED
    assert hub.next_message() == (availability, b"online")


def test_the_hub_user_may_subscribe_to_one_communitys_filters(connect: Connect, broker: Broker) -> None:
    """A node restricted to sunshine (HUB_COMMUNITIES, docs/operators/nodes.md): the ACL's wide read grants
    cover its narrower filters, plain and shared, and it hears its own community's devices."""
    narrow = subscriptions("zigbee2mqtt", {"sunshine"}, {"c1", "c2"})
    hub = connect(broker.plain_port, HUB_USER, broker.passwords[HUB_USER])
    assert not hub.connack.is_failure, hub.connack
    hub.subscribe(*narrow, *(f"$share/sc-hub/{topic}" for topic in narrow))
    assert all(reason == 1 for reason in hub.subacks[-1]), hub.subacks  # granted QoS 1, none refused
    door = connect(broker.plain_port, "door-1", broker.passwords["door-1"])
    assert door.publish(DOOR, b'{"contact": "open"}') in ACCEPTED
    received = {hub.next_message(), hub.next_message()}  # one through each subscription
    assert received == {(DOOR, b'{"contact": "open"}')}


def test_a_device_is_refused_on_another_devices_topic_and_on_alerts(connect: Connect, broker: Broker) -> None:
    hub = hub_session(connect, broker)
    door = connect(broker.plain_port, "door-1", broker.passwords["door-1"])
    assert door.publish(MOTION, b"spoofed") == NOT_AUTHORIZED
    assert door.publish(MOTION.replace("/event", "/availability"), b"offline") == NOT_AUTHORIZED
    assert door.publish(alert_topic("sunshine", "sos"), b"spoofed") == NOT_AUTHORIZED
    assert door.publish("sim/clock", b"0") == NOT_AUTHORIZED
    assert door.publish(SOS_BUTTON_C1, b"spoofed") == NOT_AUTHORIZED
    # Messages on one connection are delivered in order: had anything refused reached the hub, it would
    # arrive before this one.
    assert door.publish(DOOR, b"fence") in ACCEPTED
    assert hub.next_message() == (DOOR, b"fence")


def test_anonymous_and_wrong_passwords_are_refused(connect: Connect, broker: Broker) -> None:
    anonymous = connect(broker.plain_port)
    assert anonymous.connack.is_failure
    assert anonymous.connack.value == NOT_AUTHORIZED
    wrong = connect(broker.plain_port, "door-1", broker.passwords["motion-1"])
    assert wrong.connack.value in REFUSED_CREDENTIALS
    unknown = connect(broker.plain_port, "door-99", "whatever")
    assert unknown.connack.value in REFUSED_CREDENTIALS
    anonymous_tls = connect(broker.tls_port, ca=broker.ca)
    assert anonymous_tls.connack.value == NOT_AUTHORIZED


def test_devices_connect_over_tls_with_the_ca(connect: Connect, broker: Broker) -> None:
    hub = hub_session(connect, broker)
    door = connect(broker.tls_port, "door-1", broker.passwords["door-1"], ca=broker.ca)
    assert not door.connack.is_failure, door.connack
    assert door.publish(DOOR, b"over tls") in ACCEPTED
    assert hub.next_message() == (DOOR, b"over tls")
    assert door.publish(MOTION, b"spoofed over tls") == NOT_AUTHORIZED


def test_a_client_that_does_not_trust_the_ca_cannot_connect(broker: Broker) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.tls_set()  # the system's CAs, which never signed the broker's certificate
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        client.connect("127.0.0.1", broker.tls_port, keepalive=30)


def test_a_devices_last_will_reaches_the_hub(connect: Connect, broker: Broker) -> None:
    hub = hub_session(connect, broker)
    availability = availability_topic("sunshine", "motion_sensor", "motion-1")
    motion = connect(broker.plain_port, "motion-1", broker.passwords["motion-1"],
                     will=(availability, b"offline"))
    assert not motion.connack.is_failure
    motion.client.loop_stop()
    connection = motion.client.socket()
    assert connection is not None
    connection.close()  # the connection drops without a DISCONNECT: the broker sends the will
    assert hub.next_message() == (availability, b"offline")


def test_the_zigbee2mqtt_gateway_publishes_under_its_base_topic(connect: Connect, broker: Broker) -> None:
    hub = hub_session(connect, broker)
    gateway = connect(broker.tls_port, gateway_user("c1"), broker.passwords[gateway_user("c1")], ca=broker.ca)
    assert not gateway.connack.is_failure
    gateway.subscribe(SOS_BUTTON_C1 + "/set")  # a command for one of its devices
    assert gateway.publish(SOS_BUTTON_C1, b'{"action": "emergency"}') in ACCEPTED
    assert hub.next_message() == (SOS_BUTTON_C1, b'{"action": "emergency"}')
    assert gateway.publish(DOOR, b"spoofed") == NOT_AUTHORIZED
    assert gateway.publish(SOS_BUTTON_C1 + "/set", b'{"state": "ON"}') in ACCEPTED
    assert gateway.next_message() == (SOS_BUTTON_C1 + "/set", b'{"state": "ON"}')


def test_a_gateway_neither_reads_nor_writes_another_compounds_topics(connect: Connect,
                                                                     broker: Broker) -> None:
    """Gateway B (compound c2) cannot read gateway A's readings or commands, forge A's devices' readings,
    or command A's devices or bridge; each keeps to its own base topic (issue 12)."""
    hub = hub_session(connect, broker)
    gateway_a, gateway_b = (connect(broker.tls_port, gateway_user(c), broker.passwords[gateway_user(c)],
                                    ca=broker.ca) for c in ("c1", "c2"))
    assert not gateway_a.connack.is_failure and not gateway_b.connack.is_failure
    # Everything each might ask for: whatever the broker grants, only its own compound's topics may arrive.
    for gateway in (gateway_a, gateway_b):
        gateway.subscribe("zigbee2mqtt/#", "zigbee2mqtt/c1/#", "zigbee2mqtt/c2/#")
    a_traffic = [(SOS_BUTTON_C1, b'{"action": "emergency"}'), (SOS_BUTTON_C1 + "/set", b'{"state": "ON"}'),
                 ("zigbee2mqtt/c1/bridge/request/permit_join", b'{"value": true}')]
    for topic, payload in a_traffic:
        assert gateway_a.publish(topic, payload) in ACCEPTED
        assert hub.next_message() == (topic, payload)
    assert hub.publish(SOS_BUTTON_C1 + "/set", b'{"state": "OFF"}') == NOT_AUTHORIZED  # the hub commands none

    # B forging A's SOS button, commanding it or A's bridge, or writing outside any base topic: refused.
    for topic, payload in a_traffic:
        assert gateway_b.publish(topic, b"forged " + payload) == NOT_AUTHORIZED, topic
    assert gateway_b.publish("zigbee2mqtt/101/sos button", b'{"action": "emergency"}') == NOT_AUTHORIZED
    # B's own topic passes. Messages reach a subscriber in the order the broker routed them, and each was
    # routed before its PUBACK: had anything of A's (or B's refused ones) been delivered, it would come
    # first, to B and to the hub.
    assert gateway_b.publish(SOS_BUTTON_C2, b'{"action": "emergency"}') in ACCEPTED
    assert hub.next_message() == (SOS_BUTTON_C2, b'{"action": "emergency"}')
    assert gateway_b.next_message() == (SOS_BUTTON_C2, b'{"action": "emergency"}')
    assert gateway_a.publish(SOS_BUTTON_C1, b"after") in ACCEPTED
    heard_by_a = []  # its own traffic (a copy per matching subscription), up to "after"
    while (message := gateway_a.next_message())[1] != b"after":
        heard_by_a.append(message[0])
    assert {topic for topic, _ in a_traffic} == set(heard_by_a), heard_by_a
    while not gateway_b.messages.empty():
        assert gateway_b.next_message()[0] == SOS_BUTTON_C2


def test_the_alert_consumer_reads_alerts_and_publishes_nothing(connect: Connect, broker: Broker) -> None:
    hub = hub_session(connect, broker)
    consumer = connect(broker.plain_port, alert_consumer_user("sunshine"),
                       broker.passwords[alert_consumer_user("sunshine")])
    consumer.subscribe("sc/#")  # device topics too: the ACL must filter them out
    door = connect(broker.plain_port, "door-1", broker.passwords["door-1"])
    assert door.publish(DOOR, b"private reading") in ACCEPTED
    assert hub.next_message() == (DOOR, b"private reading")
    assert hub.publish(alert_topic("sunshine", "sos"), b'{"alert_id": 1}') in ACCEPTED
    # The broker routes a message before it acknowledges it, and delivers to a subscriber in order: had
    # the reading (acknowledged before the alert was sent) reached the consumer, it would come first.
    assert consumer.next_message() == (alert_topic("sunshine", "sos"), b'{"alert_id": 1}')
    assert consumer.publish(DOOR, b"spoofed") == NOT_AUTHORIZED
    assert consumer.publish(alert_topic("sunshine", "sos"), b"spoofed") == NOT_AUTHORIZED


def alert_notification(alert_id: int, community_id: str, household: str, resident: str) -> Notification:
    """A notification about an SOS of `resident`, with everything people-facing sinks tell people: the
    resident's name and flat, the caregiver's name and phone."""
    daughter = Caregiver(id=f"cg-{resident}", community=community_id, name="李女士", role="family",
                         phone="13800000000", notify=["mailto://li@example.com"])
    alert = Alert(
        id=alert_id, kind="sos", severity=Severity.CRITICAL, state="open", subject=resident,
        community=community_id,
        building="b1", household=household, resident=resident, device="band-z",
        evidence={"press_ts": 1795400000000, "occurrence": "1795400000000", "note": "王奶奶 7-2-1402"},
        count=1, first_seen_ms=1795400000000, last_seen_ms=1795400000000, tier=1,
        deadline_ms=1795400300000, assigned_to="张师傅", acknowledged_by=None, acknowledged_ms=None,
        resolved_by=None, resolved_ms=None, outcome=None, note="王奶奶说她没事")
    return Notification(alert=alert, event_id=alert_id, reason="raised", tier=1, recipients=(daughter,),
                        recipient=None, resident_name="王奶奶", unit="7-2-1402", timezone="Asia/Shanghai")


def test_each_communitys_alert_consumer_reads_only_its_communitys_alerts(connect: Connect,
                                                                         broker: Broker) -> None:
    """The hub's MQTT sink, as the `hub` user, publishes an SOS in each of two communities: each
    community's consumer gets its own and may neither subscribe to nor receive the other's, and what it
    gets names nobody (issue 12, item 6)."""
    consumers = {}
    for name in ("sunshine", "moonlight"):
        user = alert_consumer_user(name)
        consumer = connect(broker.plain_port, user, broker.passwords[user])
        assert not consumer.connack.is_failure, consumer.connack
        consumers[name] = consumer
    sunshine, moonlight = consumers["sunshine"], consumers["moonlight"]
    sunshine.subscribe(alert_topic("sunshine", "#"))
    moonlight.subscribe(alert_topic("moonlight", "#"))
    assert sunshine.subacks[-1] == [1] and moonlight.subacks[-1] == [1], "granted QoS 1 on their own alerts"
    # Asking for the other community's alerts, or everyone's: Mosquitto 2.0's ACL file grants the
    # subscription and checks each message against the reader's grants before delivering it.
    sunshine.subscribe(alert_topic("moonlight", "#"), alert_topic("moonlight", "sos"), "sc/+/alerts/#", "#")
    moonlight.subscribe("sc/+/alerts/#", "#")

    sink = MqttSink(BrokerAddress("127.0.0.1", broker.plain_port, HUB_USER, broker.passwords[HUB_USER]),
                    "hub-alerts-test", 5)
    try:  # each send returns once the broker acknowledged, that is routed, the message
        sink.send(alert_notification(2, "moonlight", "m301", "r-zhao"))
        sink.send(alert_notification(1, "sunshine", "h101", "r-wang"))
        sink.send(alert_notification(3, "moonlight", "m301", "r-zhao"))
    finally:
        sink.close()
    # A subscriber gets a copy per matching subscription, in the order the broker routed the messages: had
    # an alert of the other community reached a consumer, it would come before that consumer's next own.
    heard: dict[str, list[tuple[str, int]]] = {"sunshine": [], "moonlight": []}
    last: dict[str, bytes] = {}
    for name, consumer, until in (("sunshine", sunshine, 1), ("moonlight", moonlight, 3)):
        while not heard[name] or heard[name][-1][1] != until:
            topic, last[name] = consumer.next_message()
            heard[name].append((topic, json.loads(last[name])["alert_id"]))
    assert set(heard["sunshine"]) == {(alert_topic("sunshine", "sos"), 1)}, heard
    assert set(heard["moonlight"]) == {(alert_topic("moonlight", "sos"), 2),
                                       (alert_topic("moonlight", "sos"), 3)}
    payload = last["sunshine"]

    text = payload.decode("utf-8")
    for personal in ("王奶奶", "李女士", "张师傅", "7-2-1402", "13800000000", "mailto", "没事"):
        assert personal not in text, (personal, text)
    body = json.loads(payload)
    assert {key: body[key] for key in ("community", "household", "resident", "device", "kind", "severity",
                                       "state")} == {"community": "sunshine", "household": "h101",
                                                      "resident": "r-wang", "device": "band-z", "kind": "sos",
                                                      "severity": "critical", "state": "open"}
    assert body["evidence"] == {"press_ts": 1795400000000, "occurrence": "1795400000000"}
    assert body["recipients"] == [{"id": "cg-r-wang", "role": "family"}]
    assert sunshine.publish(alert_topic("sunshine", "sos"), b"spoofed") == NOT_AUTHORIZED


def test_there_is_no_consumer_of_every_communitys_alerts(broker: Broker) -> None:
    """Who may read alerts, from the exported ACL: each community's consumer its own, nobody all of them."""
    readers: dict[str, list[str]] = {}
    user = ""
    for line in (broker.config_dir / "acl").read_text().splitlines():
        if line.startswith("user "):
            user = line.removeprefix("user ")
        elif line.startswith(("topic read ", "topic readwrite ")) and ("/alerts/" in line
                                                                     or line.endswith(" #")):
            readers.setdefault(user, []).append(line.split()[-1])
    assert readers == {alert_consumer_user("moonlight"): ["sc/moonlight/alerts/#"],
                       alert_consumer_user("sunshine"): ["sc/sunshine/alerts/#"]}
    assert "alert-consumer" not in broker.passwords


def test_the_hub_writes_its_status_and_the_healthcheck_only_reads_uptime(connect: Connect,
                                                                         broker: Broker) -> None:
    hub = hub_session(connect, broker)
    assert hub.publish(hub_status_topic("sc-hub"), b"online", retain=True) in ACCEPTED
    assert hub.publish(DOOR, b"spoofed") == NOT_AUTHORIZED
    health = connect(broker.plain_port, HEALTHCHECK_USER, broker.passwords[HEALTHCHECK_USER])
    assert not health.connack.is_failure
    health.subscribe(HEALTHCHECK_TOPIC, retained=True)
    topic, payload = health.next_message(timeout=15)
    assert topic == HEALTHCHECK_TOPIC
    assert payload.endswith(b"seconds")
    assert health.publish(DOOR, b"spoofed") == NOT_AUTHORIZED


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def hub_on_acl(tmp_path: Path, broker: Broker) -> Iterator[Store]:
    """The real hub, in production mode, as the `hub` user on the exported broker; yields its store."""
    http_port = free_loopback_port()
    env = {**os.environ, "HUB_ENVIRONMENT": "production", "HUB_MQTT_CLIENT_ID": "hub-on-acl",
           "HUB_MQTT_URL": f"mqtt://{HUB_USER}:{broker.passwords[HUB_USER]}@127.0.0.1:{broker.plain_port}",
           "HUB_STORE_PATH": str(tmp_path / "hub.sqlite3"), "HUB_HTTP_PORT": str(http_port)}
    with (tmp_path / "hub.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "hub", "run", "--registry",
                                    str(broker.config_dir.parent / "registry.yaml"), "--no-view"],
                                   env=env, stdout=log, stderr=log)
    try:
        wait_until(lambda: process.poll() is not None or _ready(http_port), 30, what="the hub to be ready")
        assert process.poll() is None, (tmp_path / "hub.log").read_text()
        store = Store(tmp_path / "hub.sqlite3", read_only=True)
        try:
            yield store
        finally:
            store.close()
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert "not authorised" not in (tmp_path / "hub.log").read_text().lower()


def test_the_hub_runs_on_the_exported_broker_as_its_user(tmp_path: Path, connect: Connect,
                                                         broker: Broker) -> None:
    """The real hub, in production mode, with the `hub` user's credentials: its subscriptions, status and
    last will pass the ACL, and a device's reading is stored."""
    with hub_on_acl(tmp_path, broker) as store:
        door = connect(broker.plain_port, "door-1", broker.passwords["door-1"])
        reading = {"ts": int(time.time() * 1000), "contact": "open", "battery": 87}
        assert door.publish(DOOR, json.dumps(reading).encode()) in ACCEPTED
        wait_until(lambda: store.count_observations() == 1, 15, what="the reading in the hub's store")


def test_a_reading_forged_under_another_gateways_base_topic_is_a_dead_letter(
        tmp_path: Path, connect: Connect, broker: Broker) -> None:
    """Gateway B may write its own base topic, so it can name gateway A's device there: the hub takes a
    Zigbee2MQTT reading only under the base topic of the device's own compound (issue 12)."""
    with hub_on_acl(tmp_path, broker) as store:
        gateway_a, gateway_b = (connect(broker.plain_port, gateway_user(c), broker.passwords[gateway_user(c)])
                                for c in ("c1", "c2"))
        now = int(time.time() * 1000)
        forged = json.dumps({"action": "emergency", "battery": 90, "last_seen": now}).encode()
        assert gateway_b.publish("zigbee2mqtt/c2/101/sos button", forged) in ACCEPTED  # A's name, B's base
        press_b = json.dumps({"action": "emergency", "battery": 80, "last_seen": now + 1}).encode()
        assert gateway_b.publish(SOS_BUTTON_C2, press_b) in ACCEPTED
        press_a = json.dumps({"action": "emergency", "battery": 70, "last_seen": now + 2}).encode()
        assert gateway_a.publish(SOS_BUTTON_C1, press_a) in ACCEPTED
        wait_until(lambda: store.count_observations() == 2 and store.dead_letter_counts(), 15,
                   what="both gateways' own readings stored and the forged one dead-lettered")
        assert set(store.observation_keys()) == {("band-z2", now + 1), ("band-z", now + 2)}
        (dead,) = store.dead_letters()
        assert (dead.reason, dead.topic, dead.payload) == ("topic_mismatch", "zigbee2mqtt/c2/101/sos button",
                                                           forged)
        assert dead.device_id is None, "a forged reading must not count as hearing from A's device"
        assert "compound c1" in dead.detail and "'c2'" in dead.detail, dead.detail


def test_a_reexport_keeps_passwords_adds_new_devices_and_revokes_removed_ones(
        tmp_path: Path, brokers: Callable[[Path, Path, dict[str, str]], Broker], connect: Connect) -> None:
    config_dir, secrets = tmp_path / "mosquitto", tmp_path / "mqtt-secrets.yaml"
    assert export_with_cli(community(DEVICES), config_dir, secrets).exit_code == 0
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert (config_dir / "passwd").stat().st_mode & 0o777 == 0o600
    first, first_passwd = yaml.safe_load(secrets.read_text()), (config_dir / "passwd").read_text()
    make_certificates(config_dir / "certs")
    broker = brokers(tmp_path / "data", config_dir, first)
    motion = connect(broker.plain_port, "motion-1", first["motion-1"])
    assert motion.publish(MOTION) in ACCEPTED

    # motion-1 leaves, door-2 arrives
    changed = [DEVICES[0], DEVICES[2], DEVICES[3], Device(id="door-2", kind="door_sensor", household="h101")]
    result = export_with_cli(community(changed), config_dir, secrets)
    assert result.exit_code == 0, result.output
    assert "1 new, 1 removed" in result.output, result.output
    second = yaml.safe_load(secrets.read_text())
    assert second["door-1"] == first["door-1"]
    assert second[HUB_USER] == first[HUB_USER]
    assert "motion-1" not in second
    assert second["door-2"] not in first.values()
    hashes, first_hashes = parse_passwd((config_dir / "passwd").read_text()), parse_passwd(first_passwd)
    assert hashes["door-1"] == first_hashes["door-1"]  # unchanged users keep their hash: stable files
    assert set(hashes) == set(second)

    broker.reload()  # the running broker takes the new users, as in production
    wait_until(lambda: not connect(broker.plain_port, "door-2", second["door-2"]).connack.is_failure, 10,
               what="the reloaded broker to know door-2")
    new = connect(broker.plain_port, "door-2", second["door-2"])
    assert new.publish(event_topic("sunshine", "door_sensor", "door-2")) in ACCEPTED
    assert not connect(broker.plain_port, "door-1", second["door-1"]).connack.is_failure
    assert connect(broker.plain_port, "motion-1", first["motion-1"]).connack.value in REFUSED_CREDENTIALS
    assert motion.disconnected.wait(5)  # the reload cut off the revoked device's open connection


@pytest.mark.integration
def test_our_hashes_and_mosquitto_passwd_agree(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    subprocess.run([require_binary("mosquitto_passwd", "/usr/bin/mosquitto_passwd"), "-c", "-b", str(passwd),
                    "alice", "s3cret pass"], check=True, capture_output=True)
    theirs = parse_passwd(passwd.read_text())["alice"]
    assert verify_password("s3cret pass", theirs)
    assert not verify_password("s3cret pasS", theirs)
    salt = theirs.split("$")[3]
    assert hash_password("s3cret pass", salt=base64.b64decode(salt)) == theirs
    assert not verify_password("x", "not-a-hash")


def test_placeholder_service_passwords_are_refused_in_production(tmp_path: Path) -> None:
    config_dir, secrets = tmp_path / "mosquitto", tmp_path / "mqtt-secrets.yaml"
    result = export_with_cli(community(DEVICES), config_dir, secrets, HUB_ENVIRONMENT="production",
                             MQTT_HUB_PASSWORD="change-me-hub", MQTT_HEALTHCHECK_PASSWORD="change-me")
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "hub's password looks like a placeholder" in output
    assert "healthcheck's password looks like a placeholder" in output
    assert not config_dir.exists()
    assert not secrets.exists()
    # In development the same passwords are accepted.
    result = export_with_cli(community(DEVICES), config_dir, secrets, MQTT_HUB_PASSWORD="change-me-hub")
    assert result.exit_code == 0, result.output


def test_a_device_named_like_a_service_account_is_refused(tmp_path: Path) -> None:
    clash = [*DEVICES, Device(id=HUB_USER, kind="door_sensor", household="h101")]
    with pytest.raises(ExportError, match="'hub' would be hub and device"):
        export_mosquitto(community(clash), tmp_path / "mosquitto", tmp_path / "secrets.yaml")
    assert not (tmp_path / "mosquitto").exists()


def test_the_secrets_file_is_never_put_where_the_broker_can_read_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ExportError, match="must not be in"):
        export_mosquitto(community(DEVICES), tmp_path / "mosquitto", tmp_path / "mosquitto" / "secrets.yaml")
    assert not (tmp_path / "mosquitto").exists()
    # By default the secrets go beside the output directory, however it was named.
    community(DEVICES).dump(tmp_path / "registry.yaml")
    (tmp_path / "mosquitto").mkdir()
    monkeypatch.chdir(tmp_path / "mosquitto")
    result = CliRunner().invoke(app, ["registry", "export-mosquitto", "--registry", "../registry.yaml",
                                      "--out", "."])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mqtt-secrets.yaml").is_file()
    assert {p.name for p in (tmp_path / "mosquitto").iterdir()} == {"mosquitto.conf", "passwd", "acl"}


def test_a_hub_password_that_cannot_go_into_a_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="HUB_MQTT_URL"):
        export_mosquitto(community(DEVICES), tmp_path / "mosquitto", tmp_path / "secrets.yaml",
                         service_passwords={HUB_USER: "p@ss:word"})


def test_the_default_config_is_the_compose_containers(broker: Broker) -> None:
    conf = (broker.config_dir / "mosquitto.conf").read_text()
    assert conf == render_config()
    settings = dict(line.split(" ", 1) for line in conf.splitlines() if line and not line.startswith("#"))
    assert settings["allow_anonymous"] == "false"
    assert settings["persistence"] == "true"
    assert settings["password_file"] == "/mosquitto/config/passwd"
    assert settings["keyfile"] == "/mosquitto/config/certs/server.key"
    assert int(settings["max_queued_messages"]) >= 1_000_000
    assert int(settings["max_packet_size"]) == max_packet_size(Settings().max_payload_bytes), "aligned"


def test_the_broker_refuses_packets_the_hub_would_only_dead_letter(connect: Connect, broker: Broker) -> None:
    """The broker's max_packet_size follows the hub's payload limit (issue 12, item 8): a payload a little
    over the hub's limit still reaches the hub (which keeps it as a `too_large` dead letter, visible to an
    operator); one past the packet limit is refused by the broker, which disconnects its sender, and the
    hub never has to hold it."""
    limit = Settings().max_payload_bytes
    hub = hub_session(connect, broker)
    door = connect(broker.plain_port, "door-1", broker.passwords["door-1"])
    over_the_hubs_limit = b'{"pad": "' + b"x" * limit + b'"}'
    assert door.publish(DOOR, over_the_hubs_limit) in ACCEPTED
    assert hub.next_message() == (DOOR, over_the_hubs_limit)

    door.client.publish(DOOR, b"x" * max_packet_size(limit), qos=1)
    assert door.disconnected.wait(5), "the broker disconnects a sender of a packet past its limit"
    motion = connect(broker.plain_port, "motion-1", broker.passwords["motion-1"])
    assert motion.publish(MOTION, b'{"occupancy": true}') in ACCEPTED
    assert hub.next_message() == (MOTION, b'{"occupancy": true}'), "the oversized packet never reached it"


def test_the_packet_limit_follows_the_hubs_payload_limit(tmp_path: Path) -> None:
    config_dir, secrets = tmp_path / "mosquitto", tmp_path / "mqtt-secrets.yaml"
    result = export_with_cli(community(DEVICES), config_dir, secrets, HUB_MAX_PAYLOAD_BYTES="131072")
    assert result.exit_code == 0, result.output
    conf = (config_dir / "mosquitto.conf").read_text()
    assert f"\nmax_packet_size {131072 + 4096}\n" in conf


def test_the_retired_all_communities_consumer_is_dropped_with_a_warning(tmp_path: Path) -> None:
    """An old deployment's secrets file still has `alert-consumer`, and its .env the password: the re-export
    removes the user, says the password is no longer used, and each community has its own consumer."""
    config_dir, secrets = tmp_path / "mosquitto", tmp_path / "mqtt-secrets.yaml"
    secrets.write_text("alert-consumer: old-shared-password\n")
    result = export_with_cli(community(DEVICES), config_dir, secrets,
                             MQTT_ALERT_CONSUMER_PASSWORD="old-shared-password")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "MQTT_ALERT_CONSUMER_PASSWORD is no longer used" in output
    assert "1 removed" in output
    kept = yaml.safe_load(secrets.read_text())
    assert "alert-consumer" not in kept and "old-shared-password" not in kept.values()
    assert {alert_consumer_user("sunshine"), alert_consumer_user("moonlight")} <= set(kept)
    assert "user alert-consumer\n" not in (config_dir / "acl").read_text()
