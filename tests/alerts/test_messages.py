"""The messages people read (`hub.alerts.messages`): one golden file per alert kind × language × channel in
hub/alerts/testdata/messages/, and what each recipient is shown and not shown.

After an intended change, regenerate with `UPDATE_GOLDEN=1 pytest tests/alerts/test_messages.py` and
review the diff: without it any difference fails."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from detectors.severity import Severity
from hub.alerts.delivery import notification_for
from hub.alerts.links import Links, read
from hub.alerts.messages import CHANNELS, LANGUAGES, Channel, Language, channel_of, render, words
from hub.alerts.model import ALERT_KINDS, Alert, Delivery
from hub.alerts.notification import Notification
from hub.registry import Registry
from tests.registry_builder import RegistryBuilder

GOLDEN = Path(__file__).parents[2] / "hub" / "alerts" / "testdata" / "messages"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"
T0 = 1_795_413_900_000  # 2026-11-23 14:05 in Shanghai
MINUTE = 60_000
KEY = b"golden-key"
NOW_S = T0 // 1000 + 60  # when the golden links are made
LINKS = Links("https://care.example.com", KEY, ttl_s=3600, clock=lambda: NOW_S)


def registry(name: str = "王奶奶") -> Registry:
    return (RegistryBuilder()
            .community("sunshine", "阳光社区").compound("c1").building("b7", name="7号楼", floors=18)
            .grid("g7").household("h1402", unit="2单元1402")
            .caregiver("cg-li", "李女士", "family", phone="13800000001")
            .caregiver("cg-grid", "张网格员", "grid_worker", phone="13800000002")
            .caregiver("cg-duty", "刘值班", "duty_officer", phone="13800000003")
            .caregiver("cg-guard", "保安老陈", "property_security", phone="13800000004")
            .resident("r-wang", name, flags=["血透"], phone="13800000000",
                      caregivers={"cg-li": 1, "cg-grid": 2, "cg-duty": 3})
            .device("band-1402", "wristband", resident="r-wang")
            .device("door-1402", "door_sensor", household="h1402")
            .device("hac-07", "high_altitude_camera", building="b7")
            .registry())


LOCATION = {"lat": 31.2304, "lon": 121.4737, "accuracy_m": 12.0}
REPORT = {"occurrence": f"report:cg-grid:{T0}", "reported_by": "cg-grid", "reporter_name": "张网格员",
          "reported_ms": T0}
# Each kind as the hub raises it: (subject level, severity, evidence); times relative to T0.
SAMPLES: dict[str, tuple[str, Severity, dict[str, Any]]] = {
    "sos": ("resident", Severity.CRITICAL, {"press_ts": T0, "occurrence": str(T0), "device_kind": "wristband",
                                            "location": LOCATION}),
    "fall": ("resident", Severity.CRITICAL, {"fall_ts": T0 - 190 * MINUTE,
                                             "occurrence": str(T0 - 190 * MINUTE), "late": True,
                                             "late_s": 190 * 60, "received_ms": T0,
                                             "location": LOCATION}),
    "falling_object": ("building", Severity.CRITICAL, {
        "event_id": "e-981", "building": "b7", "camera": "hac-07", "floor_min": 12, "floor_max": 14,
        "confidence": 0.93, "clip": "https://cam.example.com/clips/e-981.mp4", "occurrence": "e-981"}),
    "door_left_open": ("household", Severity.WARNING, {"opened_at_ms": T0 - 20 * MINUTE, "limit_s": 900}),
    "night_exit": ("household", Severity.CRITICAL, {"opened_at_ms": T0}),
    "device_offline": ("device", Severity.WARNING, {"last_heard_ms": T0 - 130 * MINUTE,
                                                    "checkin_interval_s": 3600,
                                                    "device_kind": "door_sensor"}),
    "battery_low": ("device", Severity.INFO, {"battery": 15, "device_kind": "wristband"}),
    "inactivity": ("resident", Severity.WARNING, {"last_activity_ms": T0 - 190 * MINUTE,
                                                  "silence_s": 190 * 60, "surprise": 11.2,
                                                  "usual_longest_silence_s": 7200}),
    "coverage": ("resident", Severity.WARNING, {"last_activity_ms": T0 - 190 * MINUTE, "silence_s": 190 * 60,
                                                "surprise": 3.1}),
    "not_back_home": ("resident", Severity.WARNING, {"last_activity_ms": T0 - 300 * MINUTE,
                                                     "silence_s": 300 * 60, "surprise": 2.0,
                                                     "left_ms": T0 - 300 * MINUTE}),
    "activity_decline": ("resident", Severity.WARNING, {"day_ended_ms": T0 - 14 * 60 * MINUTE,
                                                        "share_of_usual": 0.45}),
    "tamper": ("device", Severity.WARNING, {"tamper": True, "device_kind": "door_sensor"}),
    "camera_offline": ("building", Severity.WARNING, {"online": False,
                                                      "device_kind": "high_altitude_camera"}),
    "lens_blocked": ("building", Severity.WARNING, {"lens_blocked": True,
                                                    "device_kind": "high_altitude_camera"}),
    "storage_failed": ("building", Severity.WARNING, {"storage_ok": False,
                                                      "device_kind": "high_altitude_camera"}),
    "low_frame_rate": ("building", Severity.WARNING, {"fps": 6.2, "below": 10.0, "reports": 2,
                                                      "device_kind": "high_altitude_camera"}),
    "door_lingering": ("household", Severity.WARNING, {"event_ts": T0 - 11 * 60 * MINUTE, "lingering_s": 240,
                                                       "snapshot": "https://eye.example.com/s/1402-0305.jpg"}),
    "heart_rate": ("resident", Severity.WARNING, {"heart_rate": 142, "min": 45, "max": 120, "reports": 3,
                                                  "since_ms": T0 - 3 * MINUTE}),
    "not_worn": ("resident", Severity.INFO, {"day": "2026-11-22", "worn_days": 12, "of_days": 13}),
    "left_geofence": ("resident", Severity.CRITICAL, {"location": LOCATION, "outside_m": 412.5,
                                                      "accuracy_m": 12.0}),
    "unreachable": ("building", Severity.CRITICAL, {"alert_id": 41, "alert_kind": "falling_object"}),
    "report_resident_unwell": ("resident", Severity.CRITICAL, {**REPORT, "category": "resident_unwell",
                                                               "note": "敲门无人应，邻居说昨晚听到摔倒声",
                                                               "location": LOCATION}),
    "report_hazard": ("building", Severity.WARNING, {**REPORT, "category": "hazard",
                                                     "note": "3楼楼梯灯坏了，台阶有积水 (*很滑*)"}),
    "report_broken_device": ("device", Severity.WARNING, {**REPORT, "category": "broken_device",
                                                          "note": "门磁掉下来了"}),
    "report_other": ("household", Severity.INFO, {**REPORT, "category": "other",
                                                  "note": "老人说想换一个手环颜色"}),
    "visit_overdue": ("resident", Severity.WARNING, {"occurrence": "visit-3", "visit": 3,
                                                     "due_ms": T0 - 26 * 60 * MINUTE, "grid": "g7"}),
}
# Who hears of it first: the family for a resident, staff for equipment and the building.
FIRST = {"falling_object": "cg-guard", "device_offline": "cg-duty", "battery_low": "cg-duty",
         "coverage": "cg-duty", "tamper": "cg-duty", "camera_offline": "cg-duty", "lens_blocked": "cg-duty",
         "storage_failed": "cg-duty", "low_frame_rate": "cg-duty", "unreachable": "cg-duty",
         "report_hazard": "cg-guard", "report_broken_device": "cg-duty", "visit_overdue": "cg-grid"}


def alert_of(kind: str, **changes: Any) -> Alert:
    level, severity, evidence = SAMPLES[kind]
    device = {"falling_object": "hac-07", "door_left_open": "door-1402", "night_exit": "door-1402",
              "device_offline": "door-1402", "battery_low": "band-1402", "tamper": "door-1402",
              "camera_offline": "hac-07", "lens_blocked": "hac-07", "storage_failed": "hac-07",
              "low_frame_rate": "hac-07", "unreachable": "hac-07", "report_hazard": "",
              "report_broken_device": "door-1402"}.get(kind, "band-1402")
    alert = Alert(
        id=42, kind=kind, severity=severity, state="open",
        subject={"resident": "r-wang", "household": "h1402", "device": device, "building": "b7"}[level],
        community="sunshine", building="b7", household=None if level == "building" else "h1402",
        resident="r-wang" if level == "resident" else None,
        device=None if level in ("resident", "household") and kind not in ("sos", "fall") else device or None,
        evidence=evidence, count=1, first_seen_ms=T0, last_seen_ms=T0, tier=1, deadline_ms=T0 + 5 * MINUTE,
        assigned_to=None, acknowledged_by=None, acknowledged_ms=None, resolved_by=None, resolved_ms=None,
        outcome=None, note="")
    return replace(alert, **changes)


def notification(kind: str, recipient: str | None = None, *, language: Language = "zh",
                 reg: Registry | None = None, reason: str = "raised", **changes: Any) -> Notification:
    reg = reg or registry()
    alert = alert_of(kind, **changes)
    who = recipient or FIRST.get(kind, "cg-li")
    delivery = Delivery(id=1, alert_id=alert.id, event_id=7, reason=reason, tier=alert.tier, sink="apprise",
                        recipient=who, status="pending", attempts=0, next_attempt_ms=T0, last_error=None,
                        sent_ms=None)
    n = notification_for(delivery, alert, reg)
    assert n.recipient is not None
    return replace(n, recipient=n.recipient.model_copy(update={"language": language}))


def golden_text(kind: str, language: Language, channel: Channel) -> str:
    message = render(notification(kind, language=language), channel, LINKS)
    return f"{message.title}\n\n{message.body}"


EXTENSIONS = {"text": "txt", "markdown": "md", "html": "html"}


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ALERT_KINDS)
def test_messages_match_golden_files(kind: str, language: Language, channel: Channel) -> None:
    assert kind in SAMPLES, f"alert kind {kind!r} has no sample here: add one, and its words in the phrases"
    rendered = golden_text(kind, language, channel)
    path = GOLDEN / f"{kind}.{language}.{EXTENSIONS[channel]}"
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 and review it"
    assert rendered == path.read_text(encoding="utf-8")


def test_golden_files_are_all_in_use() -> None:
    expected = {f"{k}.{lang}.{EXTENSIONS[c]}" for k in ALERT_KINDS for lang in LANGUAGES for c in CHANNELS}
    assert {p.name for p in GOLDEN.iterdir()} == expected


def test_every_kind_has_words_in_every_language() -> None:
    for language in LANGUAGES:
        assert set(words(language)["kinds"]) == set(ALERT_KINDS), language


def test_the_family_gets_the_staffs_phones_and_staff_the_residents_and_familys() -> None:
    family = render(notification("sos", "cg-li"), "text", LINKS).body
    assert "13800000002" in family and "13800000003" in family  # grid worker, duty officer
    assert "13800000000" not in family and "13800000001" not in family  # the resident's own, their own
    grid = render(notification("sos", "cg-grid"), "text", LINKS).body
    assert "13800000000" in grid and "13800000001" in grid  # the resident, the family
    assert "13800000003" not in grid


def test_what_happened_reads_like_a_person_wrote_it() -> None:
    sos = render(notification("sos"), "text", LINKS).body
    assert "王奶奶（独居、血透） · 阳光社区 · 7号楼 · 2单元1402" in sos
    assert "14:05 按下 SOS 求助" in sos
    assert "31.23040, 121.47370" in sos and "position=121.473700,31.230400&coordinate=wgs84" in sos
    inactivity = render(notification("inactivity"), "text", LINKS).body
    assert "自 10:55 起没有活动，已 3 小时 10 分；平时这个时段最长安静约 2 小时" in inactivity
    english = render(notification("inactivity", language="en"), "text", LINKS).body
    assert "No activity since 10:55, 3 h 10 min ago" in english
    for body in (sos, inactivity, english):
        assert "r-wang" not in body and "sunshine" not in body and "{" not in body  # no ids, no raw JSON


def test_the_links_are_for_this_alert_and_this_recipient() -> None:
    body = render(notification("sos", "cg-grid"), "text", LINKS).body
    assert "https://care.example.com/#alert=42" in body
    token = body.split("https://care.example.com/ack/42?t=")[1].split()[0]
    assert read(KEY, token, 42, NOW_S) == "cg-grid"


def test_without_a_public_url_there_are_no_page_or_acknowledge_links() -> None:
    body = render(notification("sos"), "text", Links(None, KEY)).body
    assert "/ack/" not in body and "#alert=" not in body
    assert "uri.amap.com" in body  # the map needs no hub address


def test_acknowledged_and_resolved_say_by_whom_and_carry_no_acknowledge_link() -> None:
    acked = render(notification("sos", "cg-li", reason="acknowledged", state="acknowledged",
                                acknowledged_by="cg-grid"), "text", LINKS).body
    assert "张网格员 已确认，正在处理" in acked and "/ack/" not in acked
    resolved = render(notification("sos", "cg-li", language="en", reason="resolved", state="resolved",
                                   resolved_by="cg-grid", outcome="visited"), "text", LINKS).body
    assert "Resolved: visited (张网格员)" in resolved and "/ack/" not in resolved


def test_an_equipment_alert_cleared_by_the_hub_says_so() -> None:
    cleared = render(notification("tamper", reason="cleared", state="resolved", resolved_by="hub",
                                  outcome="cleared"), "text", LINKS).body
    assert "已自动恢复：设备已恢复正常" in cleared and "/ack/" not in cleared


def test_a_night_visitor_s_snapshot_is_a_link_named_as_a_picture() -> None:
    body = render(notification("door_lingering"), "markdown", LINKS).body
    assert "[查看抓拍照片](https://eye.example.com/s/1402-0305.jpg)" in body


def test_registry_texts_are_escaped_for_html_and_markdown() -> None:
    hostile = registry(name="<b>王*奶奶*</b> [x](https://evil.example)")
    html = render(notification("sos", reg=hostile), "html", LINKS).body
    assert "&lt;b&gt;王*奶奶*&lt;/b&gt;" in html and "<b>" not in html
    assert 'href="https://care.example.com/ack/42?t=' in html and "&amp;coordinate=wgs84" in html
    markdown = render(notification("sos", reg=hostile), "markdown", LINKS).body
    assert r"王\*奶奶\*" in markdown and r"\[x\]\(https://evil" in markdown
    assert "](https://evil" not in markdown


def test_channels_by_scheme() -> None:
    assert channel_of("mailtos://u:p@smtp.example.com") == "html"
    assert channel_of("dingtalk://token/") == "markdown"
    assert channel_of("feishu://token/") == "markdown"
    assert channel_of("wecombot://key") == "text"  # apprise sends WeCom bots plain text


def test_a_new_incident_an_overdue_alert_and_an_assignment_say_so_in_both_languages() -> None:
    acked: dict[str, Any] = {"state": "acknowledged", "acknowledged_by": "cg-li"}
    again = render(notification("sos", "cg-li", reason="new_incident", **acked), "text", LINKS).body
    assert "再次发生；李女士 已确认前一次" in again and "无需再前往" not in again
    overdue = render(notification("sos", "cg-grid", language="en", reason="overdue", **acked), "text",
                     LINKS).body
    assert "李女士 acknowledged it but it is still not resolved past its deadline" in overdue
    assigned = render(notification("sos", "cg-grid", reason="assigned", assigned_to="cg-grid"), "text",
                      LINKS).body
    assert "已指派给 张网格员 负责处理" in assigned and "/ack/" in assigned  # still open: one tap takes it
    still_open = render(notification("sos", "cg-li", language="en", reason="new_incident"), "text",
                        LINKS).body
    assert "Critical · happened again · tier 1" in still_open


def test_a_reopening_says_why_and_carries_a_link_of_the_new_cycle() -> None:
    reopened = notification("sos", "cg-li", reason="reopened", cycle=1, note="邻居说老人还是不舒服")
    body = render(reopened, "text", LINKS).body
    assert "已重新打开，需再次处理：邻居说老人还是不舒服" in body
    token = body.split("https://care.example.com/ack/42?t=")[1].split()[0]
    assert read(KEY, token, 42, NOW_S, cycle=1) == "cg-li"
    english = render(notification("sos", "cg-li", language="en", reason="reopened", cycle=1,
                                  note="still *unwell*"), "markdown", LINKS).body
    assert "reopened, to be handled again: still \\*unwell\\*" in english  # their words, escaped
