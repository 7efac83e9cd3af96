"""What a sink sends: one `Notification` (an alert, why it is being told now, and to which tier), rendered
as the JSON body the webhook sink sends, as the title/text of a chat or e-mail message, and as the
machine body the MQTT sink publishes.

The MQTT body (`machine_body`) is for machines on a shared broker, not for people: ids, kind, severity,
state, times, counts and the evidence a dispatcher acts on. It never carries a name, a flat number, a phone
number, a notify URL, or any free text people typed (who acknowledged, the resolution note); a consumer
that shows people names looks the ids up in the registry it is entitled to. The evidence is filtered to
the keys in `MACHINE_EVIDENCE_KEYS` with scalar values (and `location` as lat/lon), so a detector that
adds a key does not leak it onto the broker until someone has decided it belongs there.

The rendering is pinned by the golden files in `hub/alerts/testdata/`: consumers parse these bodies, so a
change to them is a change to an interface.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from detectors.severity import Severity
from hub.alerts.model import Alert
from hub.registry import Caregiver

SCHEMA = "sc.alert/1"
MACHINE_SCHEMA = "sc.alert.machine/1"

# Evidence the detectors attach that a machine may act on: when it happened, how late it arrived, which
# device and what it measured. Anything else stays in the store and the people-facing sinks.
MACHINE_EVIDENCE_KEYS: frozenset[str] = frozenset({
    "occurrence", "device_kind", "late", "late_s", "received_ms",
    "press_ts", "fall_ts",  # sos, fall
    "reason", "last_heard_ms", "checkin_interval_s",  # device_offline
    "opened_at_ms", "closed_at_ms", "limit_s",  # door_left_open, night_exit
    "battery",  # battery_low
    "event_id", "building", "camera", "floor_min", "floor_max", "confidence", "clip",  # falling_object
    "last_activity_ms", "silence_s", "surprise", "left_ms",  # inactivity, coverage, not_back_home
    "day_ended_ms", "share_of_usual",  # activity_decline
    "location",  # {"lat", "lon"}: where to go
    "outside_m", "accuracy_m",  # left_geofence
    "tamper", "online", "lens_blocked", "storage_ok", "fps", "below", "reports",  # equipment faults
    "floor_source", "heart_rate", "min", "max", "since_ms", "event_ts", "lingering_s", "day",
    "worn_days", "of_days",  # falling_object, heart_rate, door_lingering, not_worn
})

KIND_LABELS: dict[str, str] = {
    "inactivity": "长时间无活动", "not_back_home": "未按时回家", "coverage": "监测覆盖不足",
    "activity_decline": "活动明显减少",
    "sos": "SOS 求助", "fall": "跌倒", "falling_object": "高空抛物", "door_left_open": "门未关",
    "night_exit": "夜间外出", "device_offline": "设备离线", "battery_low": "电量低",
    "tamper": "设备被拆动", "camera_offline": "摄像机离线", "lens_blocked": "镜头被遮挡",
    "storage_failed": "存储故障", "low_frame_rate": "帧率过低", "door_lingering": "夜间门外逗留",
    "heart_rate": "心率异常", "not_worn": "手环未佩戴", "left_geofence": "离开安全区域",
}
SEVERITY_LABELS: dict[str, str] = {Severity.INFO: "提示", Severity.WARNING: "警告", Severity.CRITICAL: "紧急"}
REASON_LABELS: dict[str, str] = {
    "raised": "新告警", "escalated": "无人确认，已升级", "severity_raised": "级别升高",
    "acknowledged": "已有人确认", "resolved": "已处理", "cleared": "已自动恢复",
}
OUTCOME_LABELS: dict[str, str] = {
    "resident_ok": "老人平安", "visited": "已上门查看", "hospital": "已送医", "false_alarm": "误报",
    "device_fault": "设备故障", "cleared": "已自动恢复",
}


@dataclass(frozen=True, slots=True)
class Notification:
    alert: Alert
    event_id: int  # the history event this tells about; with the alert id, a consumer's dedup key
    reason: str  # raised, escalated, severity_raised, acknowledged, resolved, cleared
    tier: int
    recipients: tuple[Caregiver, ...]  # everyone notified in this tier
    recipient: Caregiver | None  # whom this one delivery addresses; None for broadcast sinks
    resident_name: str | None
    unit: str | None
    timezone: str  # the community's, for the times people read


def _head(notification: Notification, schema: str) -> dict[str, Any]:
    """What both bodies begin with: which alert, which event of it, and where."""
    a = notification.alert
    return {
        "schema": schema,
        "alert_id": a.id,
        "event_id": notification.event_id,
        "reason": notification.reason,
        "kind": a.kind,
        "severity": a.severity,
        "state": a.state,
        "subject": a.subject,  # a resident, household, device or building id
        "community": a.community,
        "building": a.building,
        "household": a.household,
    }


def body(notification: Notification) -> dict[str, Any]:
    a = notification.alert
    return {
        **_head(notification, SCHEMA),
        "unit": notification.unit,
        "resident": a.resident,
        "resident_name": notification.resident_name,
        "device": a.device,
        "count": a.count,
        "first_seen_ms": a.first_seen_ms,
        "last_seen_ms": a.last_seen_ms,
        "evidence": a.evidence,
        "tier": notification.tier,
        # Phone numbers and notify URLs stay out: this body goes to brokers and third-party services.
        "recipients": [{"id": c.id, "name": c.name, "role": c.role} for c in notification.recipients],
        "assigned_to": a.assigned_to,
        "acknowledged_by": a.acknowledged_by,
        "resolved_by": a.resolved_by,
        "outcome": a.outcome,
    }


def body_bytes(notification: Notification) -> bytes:
    """The exact bytes the webhook sink sends (and signs)."""
    return _json_bytes(body(notification))


def machine_body(notification: Notification) -> dict[str, Any]:
    """What the MQTT sink publishes: ids and what a machine needs, nothing that names a person (see the
    module doc). (`alert_id`, `event_id`) is a consumer's dedup key."""
    a = notification.alert
    return {
        **_head(notification, MACHINE_SCHEMA),
        "resident": a.resident,
        "device": a.device,
        "count": a.count,
        "first_seen_ms": a.first_seen_ms,
        "last_seen_ms": a.last_seen_ms,
        "deadline_ms": a.deadline_ms,
        "acknowledged_ms": a.acknowledged_ms,
        "resolved_ms": a.resolved_ms,
        "outcome": a.outcome,
        "evidence": machine_evidence(a.evidence),
        "tier": notification.tier,
        "recipients": [{"id": c.id, "role": c.role} for c in notification.recipients],
    }


def machine_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """`evidence` cut down to `MACHINE_EVIDENCE_KEYS`: scalars, and `location` as numeric lat/lon."""
    kept: dict[str, Any] = {}
    for key, value in evidence.items():
        if key not in MACHINE_EVIDENCE_KEYS:
            continue
        if key == "location":
            if isinstance(value, dict):
                point = {k: v for k, v in value.items() if k in ("lat", "lon") and _is_number(v)}
                if len(point) == 2:
                    kept[key] = point
        elif value is None or isinstance(value, (bool, int, float, str)):
            kept[key] = value
    return kept


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def machine_body_bytes(notification: Notification) -> bytes:
    """The exact bytes the MQTT sink publishes."""
    return _json_bytes(machine_body(notification))


def _json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _local_time(ms: int, timezone: str) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _duration(seconds: int) -> str:
    if seconds < 2 * 3600:
        return f"{seconds // 60} 分钟"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} 小时"
    return f"{seconds // 86400} 天"


def title(notification: Notification) -> str:
    a = notification.alert
    who = notification.resident_name or a.device or a.subject
    where = notification.unit or f"{a.building} 号楼"
    return (f"[{SEVERITY_LABELS.get(a.severity, a.severity)}] {KIND_LABELS.get(a.kind, a.kind)}"
            f" · {who} · {where}")


def text(notification: Notification) -> str:
    a = notification.alert
    tz = notification.timezone
    lines = [
        f"告警 #{a.id} · {REASON_LABELS.get(notification.reason, notification.reason)}"
        f" · 第 {notification.tier} 级通知",
        f"首次 {_local_time(a.first_seen_ms, tz)} · 最近 {_local_time(a.last_seen_ms, tz)} · 共 {a.count} 次",
        f"社区 {a.community} · 楼 {a.building}" + (f" · 设备 {a.device}" if a.device else ""),
    ]
    late_s, received_ms = a.evidence.get("late_s"), a.evidence.get("received_ms")
    if a.evidence.get("late") and isinstance(late_s, int) and isinstance(received_ms, int):
        # Whoever goes must know the press or the fall is not happening now but happened then.
        lines.append(f"迟到 {_duration(late_s)}: 事发 {_local_time(received_ms - late_s * 1000, tz)},"
                     f" {_local_time(received_ms, tz)} 才收到")
    if a.evidence:
        lines.append("详情 " + json.dumps(a.evidence, ensure_ascii=False, sort_keys=True))
    if a.state == "resolved":
        lines.append(f"已由 {a.resolved_by} 处理: {OUTCOME_LABELS.get(a.outcome or '', a.outcome)}"
                     + (f" · {a.note}" if a.note else ""))
    elif a.state == "acknowledged":
        lines.append(f"已由 {a.acknowledged_by} 确认，正在处理")
    else:
        lines.append(f"确认: hub alerts ack {a.id} --by <姓名>")
    return "\n".join(lines)
