"""The baseline for the ingest benchmark: a bare paho subscriber that only runs `json.loads`.

Same broker, same stream, same protocol and QoS as the hub, with paho's automatic acknowledgement: the
fastest a Python MQTT consumer on this machine can go before doing any work. Run as a separate process:
`python -m tests.benchmarks.bare_subscriber PORT COUNT` prints `ready` once subscribed, then JSON
{"received", "seconds" from the first message to the COUNT-th, "last_epoch" when the COUNT-th came}.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from hub.topics import subscriptions


def consume(port: int, count: int, timeout: float = 600) -> dict[str, float]:
    done = threading.Event()
    state = {"received": 0, "first": 0.0, "last": 0.0, "last_epoch": 0.0}

    def on_message(_: paho.Client, __: Any, msg: paho.MQTTMessage) -> None:
        json.loads(msg.payload)
        if state["received"] == 0:
            state["first"] = time.perf_counter()
        state["received"] += 1
        if state["received"] >= count:
            state["last"] = time.perf_counter()
            state["last_epoch"] = time.time()
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=paho.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in subscriptions("zigbee2mqtt")])
    client.on_subscribe = lambda *_: print("ready", flush=True)
    client.connect("127.0.0.1", port, keepalive=30, clean_start=True)
    client.loop_start()
    done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    seconds = state["last"] - state["first"]
    return {"received": state["received"], "seconds": seconds, "last_epoch": state["last_epoch"]}


if __name__ == "__main__":
    print(json.dumps(consume(int(sys.argv[1]), int(sys.argv[2]))), flush=True)
