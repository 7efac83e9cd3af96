"""The MQTT topic scheme, in one place. The topics devices publish on are built in `devices.topics`, which
the simulators use too; intake parses them back here.

Native devices:   sc/<community>/<kind>/<device_id>/event          QoS 1, one message per reading
                  sc/<community>/<kind>/<device_id>/availability   retained, also the last will
Zigbee2MQTT:      <base>/<compound>/<friendly_name>                 device state
                  <base>/<compound>/<friendly_name>/availability    online/offline
Alerts:           sc/<community>/alerts/<kind>                     QoS 1, JSON, published by the hub
Hub status:       hub/<client_id>/status                            retained online/offline (last will)

Each compound's Zigbee2MQTT gateway has its own base topic, `<base>/<compound>` (Zigbee2MQTT's
`mqtt.base_topic`), so the broker's ACL keeps every gateway to its own compound's topics and intake knows
which gateway a reading came through. Friendly names may themselves contain `/` (Zigbee2MQTT allows it for
grouping), so a Zigbee2MQTT topic is matched from its end, and Zigbee2MQTT's own `bridge/...` topics and
`/set` `/get` commands are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from devices.topics import (
    CLOCK_TOPIC,
    Channel,
    availability_topic,
    event_topic,
    zigbee2mqtt_gateway_base,
    zigbee2mqtt_topic,
)

# The device topics (`devices.topics`), for the hub's modules that import the whole scheme from here.
__all__ = [
    "Channel",
    "IgnoredTopic",
    "NativeTopic",
    "Zigbee2mqttTopic",
    "alert_topic",
    "availability_topic",
    "event_topic",
    "hub_status_topic",
    "intake_committed_topic",
    "parse_topic",
    "subscriptions",
    "zigbee2mqtt_gateway_base",
    "zigbee2mqtt_topic",
]

@dataclass(frozen=True, slots=True)
class NativeTopic:
    community: str
    kind: str
    device_id: str
    channel: Channel


@dataclass(frozen=True, slots=True)
class Zigbee2mqttTopic:
    compound: str  # whose gateway's base topic the message came under
    friendly_name: str
    channel: Channel


@dataclass(frozen=True, slots=True)
class IgnoredTopic:
    """A topic the hub subscribes to by wildcard but that carries no device reading."""

    why: str


def alert_topic(community: str, kind: str) -> str:
    return f"sc/{community}/alerts/{kind}"


def hub_status_topic(client_id: str) -> str:
    return f"hub/{client_id}/status"


def intake_committed_topic(hub_client_id: str) -> str:
    """Where intake processes tell the main hub they committed a batch (QoS 0, the batch's last id)."""
    return f"hub/{hub_client_id}/intake/committed"


def subscriptions(zigbee2mqtt_base: str, communities: Iterable[str] | None = None,
                  compounds: Iterable[str] = ()) -> list[str]:
    """The device topic filters: every device's, or (with `communities`) those communities' native
    devices' and the Zigbee2MQTT gateways' of `compounds` (theirs: a gateway's base topic names its
    compound, not its community)."""
    if communities is None:
        return ["sc/+/+/+/event", "sc/+/+/+/availability", f"{zigbee2mqtt_base}/#"]
    return [*(f"sc/{community}/+/+/{channel}" for community in sorted(communities)
              for channel in ("event", "availability")),
            *(f"{zigbee2mqtt_gateway_base(zigbee2mqtt_base, compound)}/#" for compound in sorted(compounds))]


_Z2M_COMMANDS = ("/set", "/get")
_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # a registry id (devices.registry.Id)


def parse_topic(topic: str, zigbee2mqtt_base: str) -> NativeTopic | Zigbee2mqttTopic | IgnoredTopic | None:
    """Classify a topic; None means it fits no scheme (a dead letter: someone publishes garbage)."""
    if topic == CLOCK_TOPIC:
        return IgnoredTopic("simulation clock")
    if topic.startswith("sc/"):
        parts = topic.split("/")
        if len(parts) == 5 and parts[4] in ("event", "availability") and all(parts[1:4]):
            channel: Channel = "event" if parts[4] == "event" else "availability"
            return NativeTopic(parts[1], parts[2], parts[3], channel)
        return None
    prefix = zigbee2mqtt_base + "/"
    if not topic.startswith(prefix):
        return None
    compound, _, name = topic[len(prefix):].partition("/")
    if not _ID.match(compound):
        return None
    if name.startswith("bridge/") or name == "bridge":
        return IgnoredTopic("zigbee2mqtt bridge topic")
    if name.endswith(_Z2M_COMMANDS) or "/set/" in name:
        return IgnoredTopic("zigbee2mqtt command topic")
    if name.endswith("/availability"):
        name = name.removesuffix("/availability")
        return Zigbee2mqttTopic(compound, name, "availability") if name else None
    return Zigbee2mqttTopic(compound, name, "event") if name else None
