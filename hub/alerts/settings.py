"""The alert loop's settings, from `HUB_ALERTS_*` environment variables (to be folded into the hub's
settings). List values are JSON: `HUB_ALERTS_APPRISE_URLS='["dingtalk://token/", "mailto://..."]'`."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from detectors.severity import Severity
from hub.alerts.notify_urls import check_webhook_url


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_ALERTS_", extra="ignore")

    # How long a tier has to acknowledge before the next tier is notified too.
    ack_deadline_critical_s: float = Field(5 * 60, gt=0)
    ack_deadline_warning_s: float = Field(30 * 60, gt=0)
    ack_deadline_info_s: float = Field(4 * 3600, gt=0)
    # How long an acknowledged alert may stay unresolved before the tier above the acknowledger's is told.
    resolve_deadline_critical_s: float = Field(2 * 3600, gt=0)
    resolve_deadline_warning_s: float = Field(24 * 3600, gt=0)
    resolve_deadline_info_s: float = Field(72 * 3600, gt=0)
    tick_interval_s: float = Field(5.0, gt=0, description="how often the running service checks deadlines")

    # The delivery queue: a failed delivery is tried again after a doubling back-off, up to a limit.
    delivery_backoff_initial_s: float = Field(2.0, gt=0)
    delivery_backoff_max_s: float = Field(300.0, gt=0)
    delivery_max_attempts: int = Field(50, ge=1, description="then the delivery is given up and recorded")

    # MQTT sink: sc/<community>/alerts/<kind>, QoS 1.
    mqtt_enabled: bool = True
    mqtt_url: str | None = Field(None, description="mqtt://user:pass@host:1883; unset: the hub's own broker")
    mqtt_client_id: str = "sc-hub-alerts"
    mqtt_publish_timeout_s: float = Field(10.0, gt=0)

    # Webhook sink: POST JSON signed with Sc-Signature: t=<unix>,v1=<hmac> (hub/alerts/sinks/webhook.py).
    webhook_url: str | None = None
    webhook_secret: SecretStr = SecretStr("")
    webhook_timeout_s: float = Field(5.0, gt=0)
    webhook_allow_http: bool = Field(False, description="let the webhook URL be plain http:// (a test bench)")

    # Apprise sink: each notified caregiver's `notify` URLs from the registry, plus these for every alert.
    apprise_enabled: bool = True
    apprise_urls: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _webhook_url_checked(self) -> Self:
        if self.webhook_url:
            check_webhook_url(self.webhook_url, allow_http=self.webhook_allow_http)
        return self

    def ack_deadline_ms(self, severity: Severity) -> int:
        seconds = {Severity.CRITICAL: self.ack_deadline_critical_s,
                   Severity.WARNING: self.ack_deadline_warning_s,
                   Severity.INFO: self.ack_deadline_info_s}[severity]
        return int(seconds * 1000)

    def resolve_deadline_ms(self, severity: Severity) -> int:
        seconds = {Severity.CRITICAL: self.resolve_deadline_critical_s,
                   Severity.WARNING: self.resolve_deadline_warning_s,
                   Severity.INFO: self.resolve_deadline_info_s}[severity]
        return int(seconds * 1000)

    def backoff_ms(self, attempts: int) -> int:
        """The wait after the `attempts`-th failed attempt."""
        seconds = self.delivery_backoff_initial_s * 2 ** min(attempts - 1, 30)
        return int(min(seconds, self.delivery_backoff_max_s) * 1000)
