"""The topics devices publish on, for the hub and the simulators alike (`hub.topics` has the whole
scheme: alerts, hub status, and how intake parses a topic back).

Native devices:   sc/<community>/<kind>/<device_id>/event          QoS 1, one message per reading
                  sc/<community>/<kind>/<device_id>/availability   retained, also the last will
Zigbee2MQTT:      <base>/<compound>/<friendly_name>                 device state
                  <base>/<compound>/<friendly_name>/availability    online/offline
Simulated clock:  sim/clock                                         retained epoch ms (`hub.clock`)
"""

from __future__ import annotations

from typing import Literal

CLOCK_TOPIC = "sim/clock"

Channel = Literal["event", "availability"]


def event_topic(community: str, kind: str, device_id: str) -> str:
    return f"sc/{community}/{kind}/{device_id}/event"


def availability_topic(community: str, kind: str, device_id: str) -> str:
    return f"sc/{community}/{kind}/{device_id}/availability"


def zigbee2mqtt_gateway_base(base: str, compound: str) -> str:
    """The base topic of one compound's Zigbee2MQTT gateway (its `mqtt.base_topic`)."""
    return f"{base}/{compound}"


def zigbee2mqtt_topic(base: str, compound: str, friendly_name: str, channel: Channel = "event") -> str:
    topic = f"{zigbee2mqtt_gateway_base(base, compound)}/{friendly_name}"
    return topic if channel == "event" else f"{topic}/availability"
