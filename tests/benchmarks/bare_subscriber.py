"""The baseline for the ingest benchmark: a bare paho subscriber that only runs `json.loads`.

Same broker, same protocol, QoS and Receive Maximum as the hub, with paho's automatic acknowledgement:
the fastest a stock Python MQTT consumer on this machine can go before doing any work. It is measured as
the hub's headline figure is, draining a backlog the broker queued in its persistent session while it
was away, so that no publisher competes with it for the CPUs. Run as a separate process:

    python -m tests.benchmarks.bare_subscriber subscribe PORT     # open the session, subscribe, leave
    (publish the backlog)
    python -m tests.benchmarks.bare_subscriber drain PORT COUNT   # resume the session, take COUNT messages

`drain` prints JSON {"received", "seconds" from the first message to the COUNT-th}.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.settings import Settings
from hub.topics import subscriptions

CLIENT_ID = "bench-bare"


def _client(port: int, *, resume: bool) -> paho.Client:
    """A client on the persistent session `CLIENT_ID` (a fresh one unless `resume`), with the hub's
    session expiry and Receive Maximum."""
    settings = Settings()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=CLIENT_ID, protocol=paho.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = settings.mqtt_session_expiry_s
    properties.ReceiveMaximum = settings.mqtt_receive_maximum
    client.connect("127.0.0.1", port, keepalive=30, clean_start=not resume, properties=properties)
    return client


def subscribe(port: int, timeout: float = 30) -> None:
    """Open a fresh session and subscribe to the device topics; the broker queues for it once it left."""
    subscribed = threading.Event()
    client = _client(port, resume=False)
    client.on_subscribe = lambda *_: subscribed.set()
    client.loop_start()
    client.subscribe([(topic, 1) for topic in subscriptions("zigbee2mqtt")])
    if not subscribed.wait(timeout):
        raise TimeoutError("no SUBACK")
    client.disconnect()
    client.loop_stop()


def drain(port: int, count: int, timeout: float = 600) -> dict[str, float]:
    """Resume the session and take `count` queued messages."""
    done = threading.Event()
    state = {"received": 0, "first": 0.0, "last": 0.0}

    def on_message(_: paho.Client, __: Any, msg: paho.MQTTMessage) -> None:
        json.loads(msg.payload)
        if state["received"] == 0:
            state["first"] = time.perf_counter()
        state["received"] += 1
        if state["received"] >= count:
            state["last"] = time.perf_counter()
            done.set()

    client = _client(port, resume=True)
    client.on_message = on_message
    client.loop_start()
    done.wait(timeout)
    # Leave the session ended (expiry 0), so the broker queues nothing more for it.
    properties = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 0
    client.disconnect(properties=properties)
    client.loop_stop()
    return {"received": state["received"], "seconds": state["last"] - state["first"]}


if __name__ == "__main__":
    command, port = sys.argv[1], int(sys.argv[2])
    if command == "subscribe":
        subscribe(port)
    else:
        print(json.dumps(drain(port, int(sys.argv[3]))), flush=True)
