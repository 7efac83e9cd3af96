"""MQTT sink: each notification as JSON (see `hub.alerts.notification.machine_body`: ids, times and
evidence, no names, flat numbers or phones) on `sc/<community>/alerts/<kind>`, QoS 1, not retained (a
retained alert would be re-announced to every new subscriber long after it was resolved). Dashboards, the
property-management system and on-site displays subscribe to `sc/<community>/alerts/#` as their
community's consumer (`alert-consumer-<community>`, see `hub.broker.acl`), which reads nothing else.
Sample configuration:

    HUB_ALERTS_MQTT_ENABLED=true
    HUB_ALERTS_MQTT_URL=mqtt://alerts:secret@broker:1883   # unset: the hub's own broker
    HUB_ALERTS_MQTT_CLIENT_ID=sc-hub-alerts
    HUB_ALERTS_MQTT_PUBLISH_TIMEOUT_S=10                    # no PUBACK by then: retried with back-off

A publish is acknowledged by the broker (PUBACK) before the delivery counts as sent; one that timed out is
sent again, so a consumer may see a notification twice and dedups on (`alert_id`, `event_id`).
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.alerts.notification import Notification, machine_body_bytes
from hub.alerts.sinks.sink import DeliveryError
from hub.mqtt import BrokerAddress, Protocol, Publisher
from hub.registry import Caregiver
from hub.topics import alert_topic


class MqttSink:
    name = "mqtt"

    def __init__(self, broker: BrokerAddress, client_id: str, publish_timeout_s: float,
                 protocol: Protocol = "5") -> None:
        self._broker = broker
        self._protocol = protocol
        self._client_id = client_id
        self._timeout_s = publish_timeout_s
        self._publisher: Publisher | None = None

    def addressees(self, recipients: Sequence[Caregiver]) -> list[str | None]:
        return [None]

    def send(self, notification: Notification) -> None:
        publisher = self._connected()
        alert = notification.alert
        try:
            published = publisher.publish(alert_topic(alert.community, alert.kind),
                                          machine_body_bytes(notification), qos=1)
        except ConnectionError as exc:
            raise DeliveryError(str(exc)) from exc
        if not published.wait(self._timeout_s):
            raise DeliveryError(f"no PUBACK from {self._broker.host}:{self._broker.port} "
                                f"within {self._timeout_s:g} s")

    def _connected(self) -> Publisher:
        # Connected on first use and kept: paho reconnects by itself once the first connection succeeded.
        if self._publisher is None:
            publisher = Publisher(self._broker, self._client_id, protocol=self._protocol)
            try:
                publisher.start(timeout=self._timeout_s)
            except OSError as exc:  # ConnectionError included: broker down, refused, DNS
                publisher.stop()
                raise DeliveryError(f"cannot connect to {self._broker.host}:{self._broker.port}: {exc}") \
                    from exc
            self._publisher = publisher
        return self._publisher

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.stop()
            self._publisher = None
