"""Delivery sinks: where notifications go, one module per sink, each documenting its configuration."""

from __future__ import annotations

from hub.alerts.links import Links
from hub.alerts.settings import AlertSettings
from hub.alerts.sinks.apprise import AppriseSink
from hub.alerts.sinks.mqtt import MqttSink
from hub.alerts.sinks.sink import DeliveryError, Sink
from hub.alerts.sinks.webhook import WebhookSink
from hub.mqtt import BrokerAddress, Protocol

__all__ = ["AppriseSink", "DeliveryError", "MqttSink", "Sink", "WebhookSink", "build_sinks"]


def build_sinks(settings: AlertSettings, hub_broker: BrokerAddress | None = None,
                hub_protocol: Protocol = "5", links: Links | None = None) -> list[Sink]:
    """The sinks `settings` configure. MQTT publishes to `settings.mqtt_url`, else to the hub's broker
    (in the hub's protocol: the embedded broker speaks MQTT 3.1.1 only). `links`: what people's messages
    link to (none without them)."""
    sinks: list[Sink] = []
    broker, protocol = hub_broker, hub_protocol
    if settings.mqtt_url:
        broker, protocol = BrokerAddress.from_url(settings.mqtt_url), "5"
    if settings.mqtt_enabled and broker is not None:
        sinks.append(MqttSink(broker, settings.mqtt_client_id, settings.mqtt_publish_timeout_s, protocol))
    if settings.webhook_url:
        sinks.append(WebhookSink(settings.webhook_url, settings.webhook_secret.get_secret_value(),
                                 settings.webhook_timeout_s, allow_http=settings.webhook_allow_http))
    if settings.apprise_enabled:
        sinks.append(AppriseSink(settings.apprise_urls, links))
    return sinks
