"""`hub.backtest`: log validation, local time, and what the replay raises (and does not)."""

from __future__ import annotations

import io
import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from detectors import InactivityDetector
from hub.backtest import (
    HEADER,
    BacktestError,
    _Batches,
    _read_arrow,
    _read_csv,
    backtest,
    backtest_command,
    read_log,
    replay,
)

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


def mixed_rows(residents: int = 8, days: int = 8, burst: int = 3) -> list[str]:
    """Sensors, bursts of `burst` readings within a minute, the corridor, front-door outings, worn bands
    reporting steps or stillness every ten minutes, one resident silent for a long afternoon, two who
    collapse (one wearing a band) on the last day and one who goes out that evening and stays out."""
    rng = random.Random(7)
    rows: list[tuple[datetime, str]] = []
    for r in range(residents):
        name, wears, collapses = f"r{r}", r % 3 == 0, r in (0, 1)
        fallen = START + timedelta(days=days - 1, hours=10 + r)
        for day in range(days):
            base = START + timedelta(days=day)
            awake_from = base + timedelta(hours=7, minutes=rng.randint(0, 59))
            awake_to = base + timedelta(hours=22)
            outing = base + timedelta(hours=rng.choice([9, 13, 15])) if rng.random() < 0.4 else None
            back = outing + timedelta(hours=rng.uniform(0.5, 3)) if outing else None
            if r == 2 and day == days - 1:
                outing, back = base + timedelta(hours=19), base + timedelta(days=1, hours=10)
            moment = awake_from
            while moment < awake_to and not (collapses and moment > fallen):
                if r == 5 and day == 4 and base + timedelta(hours=10) < moment < base + timedelta(hours=18):
                    moment += timedelta(hours=8)  # a long afternoon out of the sensors' sight
                if outing and back and outing <= moment < back:
                    rows += [(outing, f"{name},{name}-door,door_sensor,entrance"),
                             (outing + timedelta(seconds=20), f"{name},{name}-door,door_sensor,entrance"),
                             (back, f"{name},{name}-door,door_sensor,entrance")]
                    moment = back + timedelta(minutes=1)
                    continue
                rows.append((moment, f"{name},{name}-pir,motion_sensor,living"))
                if rng.random() < 0.2:  # a burst: several readings within the minute
                    rows += [(moment + timedelta(seconds=s), f"{name},{name}-mat,pressure_sensor,bed")
                             for s in sorted(rng.sample(range(1, 50), burst))]
                if rng.random() < 0.05:
                    corridor = f"{name},{name}-peep,smart_peephole,entrance"
                    rows.append((moment + timedelta(seconds=7), corridor))
                moment += timedelta(minutes=rng.choice([1, 2, 5, 10, 20, 45, 95]), seconds=rng.randint(0, 59))
            if wears:
                report = base + timedelta(minutes=rng.randint(0, 9))
                while report < base + timedelta(days=1):
                    awake = awake_from <= report < awake_to and not (collapses and report > fallen)
                    out = outing is not None and back is not None and outing <= report < back
                    if not out:
                        moving = awake and rng.random() < 0.9
                        rows.append((report, f"{name},{name}-band,wristband,{'home' if moving else 'still'}"))
                    report += timedelta(minutes=10, seconds=rng.randint(-20, 20))
    rows.sort(key=lambda row: row[0])
    return [f"{moment.isoformat()},{rest}" for moment, rest in rows]


@pytest.mark.parametrize("burst", [0, 3])  # 0: too few readings within a minute to feed a thinned log
@pytest.mark.parametrize("params", [
    {"band_min_reports": 20.0},  # bands judged after a day of reports
    # Short floors and a touchy band: many more deadlines fall due, some brought forward by a band.
    {"band_min_reports": 5.0, "band_warning_surprise": 1.5, "silence_extra_s": 1200.0,
     "silence_prior_s": 7200.0, "away_after_door_s": 600.0, "max_away_s": 5400.0, "silence_min_s": 900.0},
])
def test_batched_replay_raises_what_minute_by_minute_does(tmp_path: Path, params: dict[str, Any],
                                                          burst: int) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    log = read_log(write(tmp_path / "events.csv", mixed_rows(burst=burst)), zone)
    minutes = log.t_ms // 60_000
    batches = _Batches(log, minutes, np.flatnonzero(np.r_[True, minutes[1:] != minutes[:-1]]),
                       InactivityDetector(**params).init(len(log.residents), log.utc_offset_s))
    assert (batches.thinned is not None) == (burst > 0), "both the whole log and the thinned one are fed"
    outputs = []
    for minute_by_minute in (True, False):
        out = io.StringIO()
        report = replay(log, InactivityDetector(**params), out, zone, minute_by_minute=minute_by_minute)
        outputs.append((out.getvalue(), report))
    assert outputs[0] == outputs[1]
    kinds = {line["kind"] for line in map(json.loads, outputs[0][0].splitlines())}
    assert kinds == {"inactivity", "not_back_home"}


@pytest.mark.parametrize("variant", ["lf", "crlf", "no final newline", "T and offsets", "non-ASCII",
                                     "quoted", "years apart"])
def test_the_arrow_reader_reads_as_the_csv_module_does(tmp_path: Path, variant: str) -> None:
    rows = mixed_rows(residents=4, days=2)
    if variant == "T and offsets":
        rows[3] = rows[3].replace(rows[3][:19], rows[3][:19] + "+02:00")
        rows[5] = rows[5].replace(rows[5][:19], rows[5][:19] + ".250")
    else:
        rows = [row.replace("T", " ", 1) for row in rows]
    if variant == "non-ASCII":
        rows = [row.replace("r1,", "张三,", 1) for row in rows]
    if variant == "years apart":  # more hours between them than rows: no table of the hours between
        rows[4] = rows[4].replace(rows[4][:4], str(int(rows[4][:4]) + 30), 1)
    if variant == "quoted":
        timestamp, resident, _, kind, location = rows[2].split(",")
        rows[2] = f'{timestamp},{resident},"a device, quoted",{kind},{location}'
    text = "\n".join([",".join(HEADER), *rows]) + "\n"
    if variant == "crlf":
        text = text.replace("\n", "\r\n")
    if variant == "no final newline":
        text = text.rstrip("\n")
    path = tmp_path / "events.csv"
    path.write_bytes(text.encode("utf-8"))
    zone = ZoneInfo("Europe/Berlin")
    got = _read_arrow(path, zone)
    assert got is not None, "a valid log is read by Arrow"
    expected = _read_csv(path, zone, None, None)
    for field in ("t_ms", "resident", "evidence", "utc_offset_s"):
        assert np.array_equal(getattr(got, field), getattr(expected, field)), field
        assert getattr(got, field).dtype == getattr(expected, field).dtype
    assert got.residents == expected.residents
