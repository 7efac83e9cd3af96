"""The hub's one settings object, configured from `HUB_*` environment variables (pydantic-settings).

Every default runs the hub on its embedded parts: no `HUB_MQTT_URL` starts an embedded broker, the store
is SQLite under ./var/, and without `HUB_INFLUX_URL` nothing is exported.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from devices.kind import MAX_FUTURE_SKEW_MS
from hub.alerts.links import DEFAULT_MAP_URL
from hub.alerts.model import ALERT_KINDS
from hub.alerts.notify_urls import DEFAULT_ALLOW as DEFAULT_NOTIFY_ALLOW
from hub.alerts.notify_urls import check_webhook_url
from hub.alerts.settings import AlertSettings
from hub.store import StoreAt


class RuleSettings(BaseSettings):
    """Safety-rule thresholds, from `HUB_RULES_*`. Per device and per resident overrides live in the
    registry (`checkin_interval_s`, `door_open_limit_s`, `heart_rate_min`/`_max`)."""

    model_config = SettingsConfigDict(env_prefix="HUB_RULES_", extra="ignore")

    door_open_limit_s: int = Field(15 * 60, ge=60)
    night_start_hour: int = Field(22, ge=0, le=23, description="local; night runs across midnight")
    night_end_hour: int = Field(6, ge=0, le=23)
    battery_low_percent: int = Field(20, ge=1, le=100, description="below this a battery is low")
    falling_object_merge_s: int = Field(30, ge=1)
    falling_object_min_confidence: float = Field(
        0.5, ge=0, le=1, description="below this a falling-object detection is stored but pages nobody")
    heart_rate_min: int = Field(40, ge=20, le=250, description="per minute; per resident in the registry")
    heart_rate_max: int = Field(130, ge=20, le=250)
    heart_rate_reports: int = Field(3, ge=1, description="reports in a row out of range before a warning")
    not_worn_days: int = Field(14, ge=2, description="days of history that say a band is usually worn")
    not_worn_min_days: int = Field(7, ge=1, description="fewer days of history: no reminder yet")
    not_worn_share: float = Field(0.7, gt=0, le=1, description="worn on this share of days: usually worn")
    offline_clear_after_s: int = Field(
        600, ge=0, description="back less than this and offline again: the same device_offline continues")
    checkin_interval_s: dict[str, int] = Field(
        default_factory=dict, description='per kind, JSON: {"motion_sensor": 3600}; default: the kind\'s own'
    )


# Values that stand for a secret nobody chose yet (.env.example's `change-me-…`, tutorial defaults).
_PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "placeholder", "example")
_PLACEHOLDER_VALUES = frozenset({"secret", "password", "token", "admin", "xxx"})

# A node id and a community id go into MQTT client ids and topics: no `/`, `+`, `#` or spaces.
_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"


def is_placeholder_secret(value: str) -> bool:
    lowered = value.strip().lower()
    return lowered in _PLACEHOLDER_VALUES or any(marker in lowered for marker in _PLACEHOLDER_MARKERS)


class Settings(BaseSettings):
    # An error must never echo the environment it was given: it holds the secrets.
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore", hide_input_in_errors=True)

    environment: Literal["development", "production"] = Field(
        "development", description="production refuses to start with placeholder or empty secrets"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # This node: several hubs may share a broker (and a store), each taking some communities
    node_id: str = Field(
        default_factory=socket.gethostname, pattern=_ID_PATTERN, validate_default=True,
        description="names this hub among others; the MQTT client id derives from it, so it must stay the "
                    "same across restarts (set it where the host name changes, as in containers)")
    communities: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated community ids this node takes; empty: all")
    lease_s: float = Field(
        6.0, ge=1, le=300,
        description="with PostgreSQL: how long a node owns a community's evaluation without renewing it "
                    "(renewed every quarter of it); a dead node's communities are taken over within it "
                    "(docs/operators/nodes.md)")

    # MQTT intake
    mqtt_url: str | None = Field(None, description="mqtt://user:pass@host:1883; unset = embedded broker")
    mqtt_client_id: str | None = Field(
        None, pattern=_ID_PATTERN,
        description="fixed: the broker keeps this session's queue; unset: sc-hub-<HUB_NODE_ID> (`client_id`)")
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    mqtt_session_expiry_s: int = Field(7 * 24 * 3600, gt=0, description="how long the broker queues for us")
    mqtt_receive_maximum: int = Field(20_000, ge=1, le=65535)
    embedded_broker_port: int = Field(1883, ge=0, le=65535)
    zigbee2mqtt_base_topic: str = "zigbee2mqtt"
    # Worker mode (hub/intake_processes.py): intake processes sharing the stream through an MQTT 5 shared
    # subscription
    intake_workers: int = Field(1, ge=1, le=16, description="intake processes; > 1 needs HUB_MQTT_URL")
    mqtt_share_group: str = Field("sc-hub", pattern=r"^[^/+#$\s]+$", description="$share/<group>/...")
    mqtt_shared: bool = Field(
        False, description="a hub without intake workers takes its device filters through the shared "
                           "subscription too, so nodes on one PostgreSQL split the stream instead of each "
                           "taking all of it; needs HUB_MQTT_URL (docs/operators/nodes.md)")
    clock: Literal["system", "mqtt"] = Field(
        "system", description="mqtt: follow the simulated time a simulator publishes on sim/clock"
    )

    # HTTP: the API, health and /metrics (hub/api/)
    http_host: str = Field("127.0.0.1", description="0.0.0.0 to serve beyond this machine")
    http_port: int = Field(8080, ge=0, le=65535, description="0: no HTTP server")
    http_streams_per_token: int = Field(5, ge=1, description="live alert streams one API token may hold")

    # Registry and store
    registry_path: Path = Path("var/registry.yaml")
    registry_poll_s: float = Field(
        5.0, ge=0.5, le=300,
        description="with PostgreSQL: how often a node checks for a registry version it missed being told "
                    "of (a new version is announced to every node at once; this is the fallback)")
    registry_versions_kept: int = Field(
        20, ge=1, description="with PostgreSQL: the newest registry versions kept (the per-entry history is "
                              "in the registry audit); older ones are deleted as new ones are written")
    notify_allow: list[str] = Field(
        default_factory=lambda: list(DEFAULT_NOTIFY_ALLOW),
        description="schemes (`wecombot`) or scheme://host (`jsons://hooks.example.com`) a caregiver's "
                    "notify URL may use when set through the API (JSON list)")
    notify_allow_private: bool = Field(
        False, description="let notify URLs name loopback or private addresses (a test bench)")
    store_path: Path = Path("var/hub.sqlite3")
    store_url: str | None = Field(
        None, pattern=r"^postgres(ql)?://",
        description="postgresql://user:password@host:port/database: PostgreSQL as the store, shared by every "
                    "hub node (docs/operators/postgresql.md); unset: SQLite at "
                    "HUB_STORE_PATH")
    store_synchronous: Literal["full", "normal"] = Field(
        "full", description="full: a commit survives power loss before its messages are acknowledged"
    )

    # Intake pipeline
    batch_max: int = Field(5000, ge=1, description="messages per SQLite transaction at most")
    batch_linger_ms: int = Field(20, ge=0, description="how long a batch waits to fill once started")
    intake_queue_max_bytes: int = Field(
        64 * 1024 * 1024, ge=64 * 1024,
        description="payload bytes received and waiting for intake at most; then the broker holds the rest")
    max_payload_bytes: int = Field(64 * 1024, ge=256)
    max_future_skew_s: int = Field(MAX_FUTURE_SKEW_MS // 1000, ge=0,
                                   description="ts further ahead of the hub clock is refused")
    max_reading_age_s: int | None = Field(
        None, gt=0, description="a reading whose ts is older than this when it arrives is refused (a replay "
                                "or a wrong device clock); unset: the session expiry plus a day")
    detector_checkpoint_minutes: int = Field(
        15, ge=0, description="checkpoint each community's learned detector state this often (minutes of hub "
                              "time) and at a clean stop, so a start relearns only what came after; 0: never")
    late_after_s: int = Field(
        120, ge=1, description="an SOS, fall or falling object arriving this long after its ts is late")
    dead_letter_keep_bytes: int = Field(16 * 1024, ge=0, description="raw bytes kept per dead letter")
    dead_letters_per_device: int = Field(
        1000, ge=1, description="dead letters kept per device (not yet replayed); past it only counted")

    # Retention (residents' personal data, docs/personal-data.md): the running hub deletes what is older,
    # every HUB_RETENTION_INTERVAL_S. Days; each table by its own time.
    retention_readings_days: int = Field(
        180, ge=1, description="readings (observations), by the device's time: half a year covers every "
                               "detector's learning window and a season's comparison")
    retention_dead_letter_bytes_days: int = Field(
        30, ge=1, description="raw bytes of dead letters (cleared, the row kept): a month to fix and replay")
    retention_dead_letters_days: int = Field(
        180, ge=1, description="dead-letter rows (topic, reason, device), by arrival")
    retention_alerts_days: int = Field(
        3 * 365, ge=30, description="resolved alerts with their history and hand-overs, by resolution: the "
                                    "audit record of who was told and who acted, kept for complaints and "
                                    "reviews; unresolved alerts are never deleted")
    retention_deliveries_days: int = Field(
        3 * 365, ge=30, description="sent or given-up notifications, by their last attempt (at most as long "
                                    "as their alert)")
    retention_read_audit_days: int = Field(
        3 * 365, ge=30, description="the read audit: who viewed which resident's data")
    retention_visits_days: int = Field(
        365, ge=30, description="grid workers' visits done or cancelled (outcome, note), by their due time: "
                                "a year of the patrol record for supervisors' reviews")
    retention_visit_locations_days: int = Field(
        30, ge=1, description="where a worker's phone was when recording a visit (cleared, the visit kept): "
                              "a month to check a visit was made at the home")
    retention_interval_s: int = Field(3600, ge=1, description="how often the hub enforces retention")

    # Patrol (巡查): grid workers' planned visits, from the communities' visit plans (hub/visits/)
    visits_interval_s: int = Field(
        300, ge=1, description="how often, in hub time, visits are scheduled and overdue ones alerted")

    # InfluxDB export (v2 write API; InfluxDB 1.8+/2.x/3.x and compatible servers)
    influx_url: str | None = None
    influx_token: SecretStr = SecretStr("")
    influx_org: str = "smart-community"
    influx_bucket: str = "smart-community"
    influx_batch: int = Field(5000, ge=1)
    influx_timeout_s: float = Field(10.0, gt=0)
    influx_retry_max_s: float = Field(30.0, gt=0, description="longest back-off between failed writes")
    influx_server: Literal["influxdb", "victoriametrics"] = Field(
        "influxdb", description="how a resident's points are read and deleted (`hub residents export`, "
                                "`erase`): InfluxDB 2.x's Flux and delete APIs, or VictoriaMetrics' "
                                "export and delete_series APIs")

    # Links in notifications (hub/alerts/links.py): the alert on the caregiver page and a one-tap
    # acknowledgement need the address people reach the hub at; unset, messages carry no such links.
    public_url: str | None = Field(
        None, pattern=r"^https?://[^\s]+$",
        description="how caregivers' phones reach this hub (https://care.example.com); unset: no links")
    link_secret: SecretStr = Field(
        SecretStr(""), description="key of the acknowledge links; empty: a random key kept beside the store")
    ack_link_ttl_s: int = Field(3600, ge=60, le=7 * 86400, description="how long an acknowledge link works")
    map_url: str = Field(
        DEFAULT_MAP_URL, pattern=r"^https://\S*\{lat\}\S*$",
        description="a map at {lat},{lon} (WGS-84) for a band's position, https:// with {lat} and {lon}")

    # The hand-off of SOS and falls to a 120/110 or property security dispatcher
    # (hub/alerts/sinks/dispatch.py, docs/integrators/dispatch.md); unset URL: none. Its callback URL needs
    # HUB_PUBLIC_URL.
    dispatch_url: str | None = Field(None, description="where the hand-off is POSTed (https://)")
    dispatch_secret: SecretStr = Field(SecretStr(""),
                                       description="HMAC-SHA256 key of its Sc-Signature header")
    dispatch_kinds: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sos", "fall"], description="the alert kinds handed off, comma-separated")
    dispatch_timeout_s: float = Field(5.0, gt=0)
    dispatch_allow_http: bool = Field(False, description="let the URL be plain http:// (a test bench)")

    # The alert loop: escalation deadlines and delivery sinks, from HUB_ALERTS_* (hub/alerts/settings.py)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    rules: RuleSettings = Field(default_factory=RuleSettings)

    @field_validator("communities", "dispatch_kinds", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """`HUB_COMMUNITIES=sunshine,moonlight`: a plain list, as operators write it, not JSON."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("communities")
    @classmethod
    def _community_ids(cls, value: list[str]) -> list[str]:
        bad = [community for community in value if not re.match(_ID_PATTERN, community)]
        if bad:
            raise ValueError(f"HUB_COMMUNITIES holds {', '.join(map(repr, bad))}, not community ids")
        return sorted(set(value))

    @field_validator("dispatch_kinds")
    @classmethod
    def _alert_kinds(cls, value: list[str]) -> list[str]:
        unknown = [kind for kind in value if kind not in ALERT_KINDS]
        if unknown:
            raise ValueError(f"HUB_DISPATCH_KINDS holds {', '.join(map(repr, unknown))}, not alert kinds")
        return value

    @model_validator(mode="after")
    def _dispatch_url_checked(self) -> Self:
        if self.dispatch_url:
            check_webhook_url(self.dispatch_url, allow_http=self.dispatch_allow_http,
                              allowed_by="HUB_DISPATCH_ALLOW_HTTP")
        return self

    @property
    def client_id(self) -> str:
        """The MQTT client id of this node's intake, hence of its persistent session (and the stem of its
        intake processes' and alert sink's ids): HUB_MQTT_CLIENT_ID, else derived from the node id, so
        nodes that differ only in HUB_NODE_ID never take over each other's session."""
        return self.mqtt_client_id or f"sc-hub-{self.node_id}"

    @property
    def store_at(self) -> StoreAt:
        return StoreAt(self.store_path, self.store_url)

    @property
    def reading_age_limit_s(self) -> int:
        """How old a reading may be when it arrives: a little longer than the broker queues for a stopped
        hub, so nothing it kept for us is refused, and a replayed or years-old reading is."""
        if self.max_reading_age_s is not None:
            return self.max_reading_age_s
        return self.mqtt_session_expiry_s + 24 * 3600

    @model_validator(mode="after")
    def _real_secrets_in_production(self) -> Self:
        """A production hub never runs on `change-me` credentials (an unedited .env.example) or on none."""
        if self.environment != "production":
            return self

        def url_password(url: str) -> str:
            return unquote(urlsplit(url).password or "")

        in_use: dict[str, str] = {}
        if self.mqtt_url:
            in_use["the password in HUB_MQTT_URL"] = url_password(self.mqtt_url)
        if self.influx_url:
            in_use["HUB_INFLUX_TOKEN"] = self.influx_token.get_secret_value()
        # No password in the URL: the server trusts otherwise (peer, .pgpass), nothing to judge.
        if self.store_url and url_password(self.store_url):
            in_use["the password in HUB_STORE_URL"] = url_password(self.store_url)
        if self.alerts.mqtt_url:
            in_use["the password in HUB_ALERTS_MQTT_URL"] = url_password(self.alerts.mqtt_url)
        if self.alerts.webhook_url:
            in_use["HUB_ALERTS_WEBHOOK_SECRET"] = self.alerts.webhook_secret.get_secret_value()
        if self.dispatch_url:
            in_use["HUB_DISPATCH_SECRET"] = self.dispatch_secret.get_secret_value()
        if self.link_secret.get_secret_value():
            in_use["HUB_LINK_SECRET"] = self.link_secret.get_secret_value()
        problems = [] if self.mqtt_url else ["HUB_MQTT_URL is unset (the embedded broker is for trials)"]
        problems += [f"{name} is empty" if not value else f"{name} looks like a placeholder"
                     for name, value in in_use.items() if not value or is_placeholder_secret(value)]
        if problems:
            raise ValueError("HUB_ENVIRONMENT=production refuses these secrets: " + "; ".join(problems))
        return self
