"""A scenario: everything a simulation run depends on, loadable from YAML.

```yaml
seed: 7
start: "2026-11-16T00:00:00+08:00"
days: 7
community: {households: 50, buildings: 3, zigbee2mqtt_share: 0.3}
incidents: {collapse: 1, sos: 2, falling_object: 1}
faults: {malformed_rate: 0.002, duplicate_rate: 0.01}
zigbee2mqtt: {last_seen: epoch}
```

The same scenario gives the same messages, byte for byte, and the same ground truth.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from devices.kind import Reason
from simulators.community import CommunityParameters, Share

# The dead-letter reasons a malformed payload can earn on its own (the hub adds the others).
MALFORMED_REASONS: tuple[Reason, ...] = (
    Reason.INVALID_JSON, Reason.INVALID_PAYLOAD, Reason.MISSING_TS, Reason.NOT_UTF8,
)

Count = Annotated[int, Field(ge=0, le=1000)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IncidentCounts(_Section):
    """How many incidents of each kind to stage (fewer when the community has too few candidates)."""

    collapse: Count = 1
    illness: Count = 1
    sos: Count = 1
    fall: Count = 1
    falling_object: Count = 1
    door_left_open: Count = 1
    night_exit: Count = 1
    device_offline: Count = 1
    battery_low: Count = 1
    # The signals added later stage nothing unless asked for: older scenarios keep their messages.
    tamper: Count = 0
    camera_offline: Count = 0
    lens_blocked: Count = 0
    storage_failed: Count = 0
    low_frame_rate: Count = 0
    night_lingering: Count = 0
    heart_rate: Count = 0
    left_geofence: Count = 0
    not_worn: Count = 0


class FaultSettings(_Section):
    duplicate_rate: Share = Field(0.005, description="share of messages delivered twice (QoS 1 redelivery)")
    cached_state_rate: Share = Field(0.02, description="share of Zigbee2MQTT states republished unchanged")
    malformed_rate: Share = Field(0.001, description="malformed copies per message")
    malformed_reasons: tuple[Reason, ...] = MALFORMED_REASONS
    skewed_device_share: Share = Field(0.03, description="devices whose clock is off for a while")
    max_skew_s: int = Field(300, ge=0, le=300, description="within ±5 min a reading stays valid")
    future_clock_devices: Count = Field(1, description="devices whose clock jumps far into the future")
    future_clock_offset_s: int = Field(3600, gt=700, description="their offset: > the hub's 600 s tolerance")
    burst_rate: Share = Field(0.02, description="chance per sensor and day of a burst of rapid messages")


class Zigbee2mqttSettings(_Section):
    base_topic: str = "zigbee2mqtt"
    last_seen: Literal["ISO_8601", "epoch"] = Field(
        "ISO_8601", description="Zigbee2MQTT's advanced.last_seen setting")


class Scenario(_Section):
    seed: int = 1
    start: AwareDatetime | None = Field(
        None, description="default: local midnight `days` days ago, so every reading is in the past")
    days: int = Field(7, ge=1, le=366)
    native_iso_share: Share = Field(0.3, description="native devices whose firmware sends ISO 8601 ts")
    community: CommunityParameters = Field(default_factory=CommunityParameters)
    incidents: IncidentCounts = Field(default_factory=IncidentCounts)
    faults: FaultSettings = Field(default_factory=FaultSettings)
    zigbee2mqtt: Zigbee2mqttSettings = Field(default_factory=Zigbee2mqttSettings)

    @classmethod
    def load(cls, path: Path) -> Scenario:
        return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.community.timezone)

    def start_time(self) -> datetime:
        if self.start is not None:
            return self.start
        today = datetime.now(UTC).astimezone(self.zone).replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=self.days)
