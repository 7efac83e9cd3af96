"""This hub among others on one broker: its node id and the communities it takes (`HUB_NODE_ID`,
`HUB_COMMUNITIES`; docs/operators/nodes.md).

A node restricted to some communities subscribes only to their devices' topics: `sc/<community>/...` for
native devices, and `<base>/<compound>/#` for the Zigbee2MQTT gateways of their compounds (a gateway's
base topic names its compound, so the registry says whose it is). A compound added to one of the node's
communities later is subscribed to when the registry in service changes
(`hub.intake_processes.SubscriptionsFollowRegistry`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.registry import Registry
from hub.settings import Settings
from hub.topics import subscriptions


class NodeError(ValueError):
    """The node's settings do not fit its registry."""


@dataclass(frozen=True, slots=True)
class NodeScope:
    """What one node takes. `communities` None: every community (and every gateway)."""

    communities: frozenset[str] | None = None
    compounds: frozenset[str] = frozenset()

    @classmethod
    def of(cls, settings: Settings, registry: Registry) -> NodeScope:
        """The scope `HUB_COMMUNITIES` asks for; a community the registry does not have is an error, not an
        empty subscription that would look like a quiet community."""
        if not settings.communities:
            return cls()
        known = {community.id for community in registry.file.communities}
        unknown = [community for community in settings.communities if community not in known]
        if unknown:
            raise NodeError(
                f"HUB_COMMUNITIES names {', '.join(map(repr, unknown))}, not in the registry "
                f"{settings.registry_path} (its communities: {', '.join(sorted(known)) or 'none'})")
        wanted = frozenset(settings.communities)
        return cls(wanted, frozenset(compound for compound, community in registry.compound_communities.items()
                                     if community in wanted))

    def device_topics(self, zigbee2mqtt_base: str) -> list[str]:
        return subscriptions(zigbee2mqtt_base, self.communities, self.compounds)

    def describe(self) -> str:
        if self.communities is None:
            return "every community"
        compounds = ", ".join(sorted(self.compounds)) or "none"
        return f"communities {', '.join(sorted(self.communities))} (Zigbee2MQTT compounds: {compounds})"


def every_device_topic(zigbee2mqtt_base: str, registry: Registry) -> list[str]:
    """Every device filter a node on this registry could have subscribed to, whatever its scope: what a
    persistent session may still hold from an earlier run with other `HUB_COMMUNITIES`."""
    return [*subscriptions(zigbee2mqtt_base),
            *subscriptions(zigbee2mqtt_base, {c.id for c in registry.file.communities},
                           registry.compound_communities)]
