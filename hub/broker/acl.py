"""Who may publish and read what on the production broker, derived from the registry and `hub.topics`.

Mosquitto denies whatever the ACL does not grant, and anonymous clients are refused outright, so:

- each native device (username = its registry id) may only *write* its own two topics,
  `sc/<community>/<kind>/<id>/event` and `.../availability` (retained, and its last will);
- a device registered by Zigbee2MQTT friendly name never connects itself: its compound's Zigbee2MQTT
  gateway does, as user `zigbee2mqtt-<compound id>`, with read and write on its own base topic
  `<base>/<compound id>/#` only (Zigbee2MQTT subscribes to its base topic for `/set` commands and bridge
  requests), so a gateway neither reads nor forges another compound's devices, nor commands its gateway;
  intake takes a reading only under the base topic of the device's own compound;
- the hub (user `hub`) reads exactly what it subscribes to (`hub.topics.subscriptions`, plus the
  simulation clock, which no production user may write) and writes the alert topics and its status;
- each community's alert consumer (user `alert-consumer-<community>`: its dashboards, its
  property-management system) reads that community's alerts, `sc/<community>/alerts/#`, and nothing else.
  There is no all-communities consumer: nothing in the project needs one, and an operator who does gets
  one by reading with each community's account;
- `healthcheck` reads one `$SYS` topic, for the container's healthcheck.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from hub.clock import CLOCK_TOPIC
from hub.registry import Registry
from hub.topics import (
    alert_topic,
    availability_topic,
    event_topic,
    hub_status_topic,
    intake_committed_topic,
    subscriptions,
    zigbee2mqtt_gateway_base,
)

Access = Literal["read", "write", "readwrite"]
Role = Literal["hub", "device", "zigbee2mqtt_gateway", "alert_consumer", "healthcheck"]

HUB_USER = "hub"
ALERT_CONSUMER_PREFIX = "alert-consumer-"
HEALTHCHECK_USER = "healthcheck"
GATEWAY_USER_PREFIX = "zigbee2mqtt-"
# Published by Mosquitto itself, retained, so a healthcheck's subscription is answered at once.
HEALTHCHECK_TOPIC = "$SYS/broker/uptime"

_TOPIC_LEVELS = re.compile(r"^[^#+\s]+(/[^#+\s]+)*$")


class BrokerUsersError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Grant:
    access: Access
    topic: str


@dataclass(frozen=True, slots=True)
class BrokerUser:
    name: str
    role: Role
    grants: tuple[Grant, ...]


def gateway_user(compound: str) -> str:
    return GATEWAY_USER_PREFIX + compound


def alert_consumer_user(community: str) -> str:
    return ALERT_CONSUMER_PREFIX + community


def broker_users(registry: Registry, zigbee2mqtt_base: str) -> list[BrokerUser]:
    """Every broker user the registry calls for: the service accounts, one alert consumer per community,
    each native device, and one Zigbee2MQTT gateway per compound that has Zigbee2MQTT devices. Names are
    unique or this raises."""
    if not _TOPIC_LEVELS.match(zigbee2mqtt_base):
        raise BrokerUsersError(f"Zigbee2MQTT base topic {zigbee2mqtt_base!r} must be topic levels without "
                               "wildcards or spaces, like `zigbee2mqtt`")
    users = [
        BrokerUser(HUB_USER, "hub", (
            *(Grant("read", topic) for topic in [*subscriptions(zigbee2mqtt_base), CLOCK_TOPIC]),
            Grant("write", alert_topic("+", "+")),
            Grant("write", hub_status_topic("+")),
            # Intake workers tell the main hub of each commit (worker mode, `hub run --workers N`).
            Grant("read", intake_committed_topic("+")),
            Grant("write", intake_committed_topic("+")),
        )),
        BrokerUser(HEALTHCHECK_USER, "healthcheck", (Grant("read", HEALTHCHECK_TOPIC),)),
        *(BrokerUser(alert_consumer_user(community.id), "alert_consumer",
                     (Grant("read", alert_topic(community.id, "#")),))
          for community in sorted(registry.data.communities, key=lambda c: c.id)),
    ]
    gateway_compounds: set[str] = set()
    for device in registry.data.devices:
        placed = registry.devices[device.id]
        if device.zigbee2mqtt:
            gateway_compounds.add(placed.compound)
            continue
        users.append(BrokerUser(device.id, "device", (
            Grant("write", event_topic(placed.community, placed.kind, device.id)),
            Grant("write", availability_topic(placed.community, placed.kind, device.id)),
        )))
    users += [BrokerUser(gateway_user(compound), "zigbee2mqtt_gateway",
                         (Grant("readwrite", f"{zigbee2mqtt_gateway_base(zigbee2mqtt_base, compound)}/#"),))
              for compound in sorted(gateway_compounds)]
    _refuse_duplicate_names(users)
    return users


def _refuse_duplicate_names(users: list[BrokerUser]) -> None:
    roles: dict[str, list[Role]] = {}
    for user in users:
        roles.setdefault(user.name, []).append(user.role)
    clashes = sorted((name, found) for name, found in roles.items() if len(found) > 1)
    if clashes:
        listed = "; ".join(f"{name!r} would be {' and '.join(found)}" for name, found in clashes)
        raise BrokerUsersError(
            f"broker user names must be unique: {listed}. Device ids name their broker users; rename the "
            f"device (the names {HUB_USER!r}, {HEALTHCHECK_USER!r}, {ALERT_CONSUMER_PREFIX}<community> and "
            f"{GATEWAY_USER_PREFIX}<compound> are taken)")


def render_acl(users: list[BrokerUser]) -> str:
    lines = [
        "# Generated by `hub registry export-mosquitto` from the registry: edit the registry and re-run it.",
        "# Whatever is not granted here is denied; anonymous clients are refused before the ACL applies.",
    ]
    role = None
    for user in sorted(users, key=lambda u: (u.role != "hub", u.role, u.name)):
        if user.role != role:
            role = user.role
            lines += ["", f"# --- {role.replace('_', ' ')}"]
        lines += ["", f"user {user.name}", *(f"topic {grant.access} {grant.topic}" for grant in user.grants)]
    return "\n".join(lines) + "\n"
