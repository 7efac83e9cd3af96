"""Retention removes exactly what is past its limit, table by table, and nothing else (real SQLite and
PostgreSQL stores, time given as an argument: no sleeping)."""

from __future__ import annotations

from pathlib import Path

from hub.alerts.model import AlertRequest
from hub.alerts.store import AlertStore
from hub.retention import DAY_MS, RetentionPolicy, RetentionThread, apply_retention
from hub.settings import Settings
from hub.store import Batch, DeadLetter, Observation, ResidentRead, Store
from tests.conftest import OpenStore

NOW = 1_800_000_000_000
POLICY = RetentionPolicy(readings_days=180, dead_letter_bytes_days=30, dead_letters_days=90, alerts_days=1095,
                         deliveries_days=365, read_audit_days=1095)


def ago(days: int, ms: int = 0) -> int:
    return NOW - days * DAY_MS - ms


def fill(open_store: OpenStore) -> None:
    store = open_store()
    batch = Batch()
    # Readings: one a millisecond past the limit, one exactly at it, one recent.
    for device, ts in (("band-old", ago(180, 1)), ("band-edge", ago(180)), ("band-new", ago(1))):
        batch.add_observation(Observation(device, "wristband", ts, {"heart_rate": 70}, ts), ts)
    for name, at in (("dl-old", ago(90, 1)), ("dl-month", ago(30, 1)), ("dl-new", ago(30))):
        batch.dead_letters.append(DeadLetter("devices/x/y", "invalid_json", name, b"raw-" + name.encode(), 10,
                                             at, name))
    store.commit(batch)
    for at in (ago(1095, 1), ago(1095)):
        store.record_read(ResidentRead(at, "op", "t", "operator", "activity", ["r"]))
    store.close()
    alerts = AlertStore(open_store.path, url=open_store.url)

    def alert(subject: str, resolved_ms: int | None, sent_ms: int | None, status: str = "sent") -> int:
        request = AlertRequest(kind="sos", severity="critical", subject=subject, community="c", building="b",
                               resident=subject, raised_at_ms=ago(2000))
        alert_id = alerts.insert_alert(request, None, 1, None)
        event = alerts.add_event(alert_id, at_ms=ago(2000), actor="hub", action="raised", from_state=None,
                                 to_state="open")
        alerts.add_delivery(alert_id, event_id=event, reason="raised", tier=1, sink="webhook", recipient=None,
                            now_ms=ago(2000))
        alerts.hand_over(event, alert_id, None)
        if sent_ms is not None:
            alerts._db.execute("UPDATE alert_deliveries SET status = ?, sent_ms = ?, next_attempt_ms = ?"
                               " WHERE alert_id = ?", (status, sent_ms, sent_ms, alert_id))
        if resolved_ms is not None:
            alerts.update_alert(alert_id, state="resolved", resolved_ms=resolved_ms, resolved_by="op",
                                outcome="resident_ok")
        return alert_id

    alert("r-resolved-long-ago", ago(1095, 1), ago(1095, 1))
    alert("r-resolved-at-limit", ago(1095), ago(400))
    alert("r-open-for-years", None, None)  # unresolved: never deleted, its pending delivery neither
    alert("r-failed-delivery", ago(10), ago(365, 1), status="failed")
    alerts.close()


def test_retention_removes_exactly_what_is_past_each_limit(open_store: OpenStore) -> None:
    fill(open_store)
    store = open_store()
    report = apply_retention(store, POLICY, NOW)

    def rows(sql: str) -> list[tuple[object, ...]]:
        return [tuple(row) for row in store._db.execute(sql).fetchall()]

    assert rows("SELECT device_id FROM observations ORDER BY ts") == [("band-edge",), ("band-new",)]
    assert rows("SELECT detail, payload, payload_size FROM dead_letters ORDER BY id") == [
        ("dl-month", b"", 10),  # the row stays until 90 days, its raw bytes go after 30
        ("dl-new", b"raw-dl-new", 10)]
    assert rows("SELECT subject FROM alerts ORDER BY id") == [
        ("r-resolved-at-limit",), ("r-open-for-years",), ("r-failed-delivery",)]
    with_history = ("SELECT a.subject FROM alerts a"
                    " WHERE EXISTS (SELECT 1 FROM alert_events e WHERE e.alert_id = a.id) ORDER BY a.id")
    assert rows(with_history) == [("r-resolved-at-limit",), ("r-open-for-years",), ("r-failed-delivery",)]
    orphans = "SELECT count(*) FROM alert_events WHERE alert_id NOT IN (SELECT id FROM alerts)"
    assert rows(orphans) == [(0,)]
    assert rows("SELECT count(*) FROM alert_handovers") == [(3,)]
    # Deliveries age on their own (sent or given up more than 365 days ago), and go with their alert;
    # the pending one of the open alert stays however old.
    assert rows("SELECT a.subject, d.status FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id"
                      " ORDER BY d.id") == [("r-open-for-years", "pending")]
    assert rows("SELECT at_ms FROM resident_reads") == [(ago(1095),)]
    assert report.readings == 1 and report.dead_letters == 1 and report.dead_letter_bytes == 1
    assert report.alerts == 1 and report.read_audit == 1
    assert report.deliveries == 3  # sent 1095+ days ago, sent 400 days ago, failed 365+ days ago

    assert apply_retention(store, POLICY, NOW).total() == 0, "a second run at the same time removes nothing"


def test_deleted_readings_do_not_linger_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    store = Store(path)
    batch = Batch()
    batch.add_observation(Observation("band", "wristband", ago(400), {"note": "SECRET-MARKER-1"}, 1), 1)
    store.commit(batch)
    apply_retention(store, POLICY, NOW)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = b"".join(p.read_bytes() for p in tmp_path.glob("hub.sqlite3*"))
    assert b"SECRET-MARKER-1" not in data


def test_the_retention_worker_applies_the_settings_limits_by_the_hubs_clock(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    fill(OpenStore(path, None))
    settings = Settings(store_path=path, retention_readings_days=180, retention_interval_s=3600)

    class Clock:
        def now_ms(self) -> int:
            return NOW

    worker = RetentionThread(lambda: Store(path), RetentionPolicy.from_settings(settings), Clock(), 3600)
    worker.start()
    try:
        deadline = 200
        while worker.runs == 0 and deadline:
            worker.join(0.05)
            deadline -= 1
    finally:
        worker.stop()
    assert worker.runs == 1 and worker.last is not None and worker.last.readings == 1
    store = Store(path)
    assert [d for d, _ in store.observation_keys()] == ["band-edge", "band-new"]
    store.close()


def test_the_defaults_are_the_documented_ones() -> None:
    s = Settings()
    assert (s.retention_readings_days, s.retention_dead_letter_bytes_days, s.retention_dead_letters_days,
            s.retention_alerts_days, s.retention_deliveries_days, s.retention_read_audit_days) == (
        180, 30, 180, 1095, 1095, 1095)
