"""`hub.backtest`: log validation, local time, and what the replay raises (and does not)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hub.backtest import HEADER, BacktestError, backtest, backtest_command

START = datetime(2026, 3, 2)  # a Monday, local time


def normal_days(resident: str, days: int, *, kind: str = "motion_sensor") -> list[str]:
    """Awake 07:00–22:00 with activity every 15 minutes, nothing at night."""
    rows = []
    for day in range(days):
        moment = START + timedelta(days=day, hours=7)
        while moment < START + timedelta(days=day, hours=22):
            rows.append(f"{moment.isoformat()},{resident},{resident}-pir,{kind},living")
            moment += timedelta(minutes=15)
    return rows


def write(path: Path, rows: list[str], header: str = ",".join(HEADER)) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def alerts_of(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def run(tmp_path: Path, rows: list[str], timezone: str = "Asia/Shanghai") -> list[dict[str, object]]:
    out = tmp_path / "alerts.jsonl"
    backtest(write(tmp_path / "events.csv", rows), out, progress=False, timezone=timezone)
    return alerts_of(out)


def test_bad_header_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", [], header="time,resident,device,kind,location")
    with pytest.raises(BacktestError, match="line 1: the header must be exactly"):
        backtest(path, tmp_path / "o.jsonl", progress=False)


@pytest.mark.parametrize(("row", "why"), [
    ("not-a-time,r1,d,motion_sensor,living", "is not ISO 8601"),
    ("2026-03-02T08:00:00,r1,d,motion_sensor", "expected 5 fields"),
    ("2026-03-02T08:00:00,,d,motion_sensor,living", "with a resident"),
])
def test_bad_rows_name_their_line(tmp_path: Path, row: str, why: str) -> None:
    rows = ["2026-03-02T07:00:00,r1,d,motion_sensor,living", row]
    with pytest.raises(BacktestError, match=f"line 3: .*{why}"):
        backtest(write(tmp_path / "e.csv", rows), tmp_path / "o.jsonl", progress=False)


def test_the_command_reports_errors_plainly(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(backtest_command)
    bad = write(tmp_path / "e.csv", [], header="a,b")
    result = CliRunner().invoke(app, [str(bad), "--out", str(tmp_path / "o.jsonl"), "--no-progress"])
    assert result.exit_code == 2
    assert "header" in result.output


def test_a_collapse_is_detected_and_a_nights_sleep_is_not(tmp_path: Path) -> None:
    rows = normal_days("r1", 14)
    collapse = START + timedelta(days=14, hours=10)
    moment = START + timedelta(days=14, hours=7)
    while moment < collapse:
        rows.append(f"{moment.isoformat()},r1,r1-pir,motion_sensor,living")
        moment += timedelta(minutes=15)
    alerts = run(tmp_path, rows)
    inactivity = [a for a in alerts if a["kind"] == "inactivity"]
    assert [a["severity"] for a in inactivity] == ["warning", "critical"]  # one episode, escalated
    raised = datetime.fromisoformat(str(inactivity[0]["raised_at"])).replace(tzinfo=None)
    assert collapse < raised < collapse + timedelta(hours=4)
    assert inactivity[0]["last_activity"] == "2026-03-16T09:45:00+08:00"


def test_naive_timestamps_are_local_time(tmp_path: Path) -> None:
    rows = normal_days("r1", 7)
    shanghai = run(tmp_path, rows)
    assert str(shanghai[0]["raised_at"]).endswith("+08:00")
    # The same wall-clock log read as UTC raises the same alerts, at the same local times.
    utc = run(tmp_path, rows, timezone="UTC")
    assert [a["raised_at"][:19] for a in utc] == [a["raised_at"][:19] for a in shanghai]  # type: ignore[index]


def test_unknown_kinds_count_as_activity(tmp_path: Path) -> None:
    alerts = run(tmp_path, normal_days("r1", 7, kind="pressure_sensor"))
    # The only alerts are at the end of the log, when activity stops for good.
    last_day = START + timedelta(days=6, hours=22)
    assert alerts
    assert all(datetime.fromisoformat(str(a["raised_at"])).replace(tzinfo=None) > last_day for a in alerts)


def test_an_alert_at_t_depends_only_on_events_before_t(tmp_path: Path) -> None:
    rows = normal_days("r1", 10)
    base = run(tmp_path, rows[: len(rows) // 2])
    cut = datetime.fromisoformat(rows[len(rows) // 2 - 1].split(",")[0])
    # Whatever comes later in the log cannot change what was raised before it.
    later = run(tmp_path, [*rows, f"{(START + timedelta(days=12)).isoformat()},r1,x,appliance,kitchen"])

    def until_cut(alerts: list[dict[str, object]]) -> list[dict[str, object]]:
        return [a for a in alerts if datetime.fromisoformat(str(a["raised_at"])).replace(tzinfo=None) <= cut]

    assert until_cut(later) == until_cut(base)
    assert until_cut(run(tmp_path, rows)) == until_cut(base)


def test_an_outing_raises_not_back_home_not_inactivity(tmp_path: Path) -> None:
    rows = normal_days("r1", 7)
    left = START + timedelta(days=7, hours=9)
    rows += [f"{(START + timedelta(days=7, hours=8)).isoformat()},r1,r1-pir,motion_sensor,living",
             f"{left.isoformat()},r1,r1-door,door_sensor,entrance",
             f"{(left + timedelta(hours=2)).isoformat()},r1,r1-peep,smart_peephole,entrance"]
    alerts = run(tmp_path, rows)
    after = [a for a in alerts if datetime.fromisoformat(str(a["raised_at"])).replace(tzinfo=None) > left]
    assert [(a["kind"], a["severity"]) for a in after] == [("not_back_home", "warning")]
    assert str(after[0]["raised_at"]).startswith("2026-03-09T23:00")
