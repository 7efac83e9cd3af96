"""Backtest: replay a recorded activity log through the live hub's inactivity detector.

The log is a CSV with the header `timestamp,resident,device,kind,location`, one row per sign of activity.
The replay learns online exactly as the live hub does: events are fed in time order, one minute of log
time at a time, and each evaluation at minute `t` (the live hub's tick) sees only events before `t`.
Every resident's clock runs until `run_on_hours` (24 by default) after their last event, so a collapse
at the end of a log is still caught. Alerts go out as JSON Lines, one line per alert: one per
(resident, kind) episode, re-raised only after activity resumes, with an escalation from warning to
critical as a second line.

Nothing here loops over events in Python once the file is read: minutes with events are fed as array
batches, and between them the replay jumps straight to the next minute at which some deadline falls.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import typer
from rich.console import Console
from rich.progress import Progress

from detectors import NEVER, Evidence, InactivityDetector, Severity, evidence_of

HEADER = ["timestamp", "resident", "device", "kind", "location"]
DEFAULT_TIMEZONE = "Asia/Shanghai"
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
RUN_ON_HOURS = 24.0  # how long each resident's clock runs after their last event, by default
_CHUNK_ROWS = 200_000
_EPOCH = datetime(1970, 1, 1)

I64 = npt.NDArray[np.int64]


class BacktestError(ValueError):
    """A log the backtest refuses: a bad header or a bad row, with the line number and why."""


@dataclass(frozen=True)
class ActivityLog:
    """A log read into arrays, sorted by time; `resident` indexes `residents`."""

    t_ms: I64
    resident: npt.NDArray[np.intp]
    evidence: npt.NDArray[np.int8]
    residents: list[str]
    utc_offset_s: npt.NDArray[np.int32]  # each resident's offset at their first event


@dataclass(frozen=True)
class BacktestReport:
    events: int
    residents: int
    alerts: dict[str, int]  # "kind/severity" → count
    evaluations: int        # minutes at which something was due


def read_log(csv_path: Path, zone: ZoneInfo, progress: Progress | None = None) -> ActivityLog:
    """Read and validate the whole log. Timestamps without an offset are local time in `zone`."""
    names: dict[str, int] = {}
    kinds: dict[tuple[str, str], int] = {}
    times: list[I64] = []
    who: list[npt.NDArray[np.intp]] = []
    codes: list[npt.NDArray[np.int8]] = []
    task = progress.add_task("reading rows", total=None) if progress else None
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != HEADER:
            raise BacktestError(f"{csv_path}: line 1: the header must be exactly {','.join(HEADER)}, "
                                f"found {','.join(header) if header else 'an empty file'}")
        line = 2
        while True:
            rows = [row for _, row in zip(range(_CHUNK_ROWS), reader, strict=False)]
            if not rows:
                break
            for offset, row in enumerate(rows):
                if len(row) != len(HEADER) or not row[1]:
                    raise BacktestError(f"{csv_path}: line {line + offset}: expected {len(HEADER)} fields "
                                        f"with a resident, found {row!r}")
            times.append(_parse_times([row[0] for row in rows], zone, csv_path, line))
            who.append(np.fromiter((names.setdefault(row[1], len(names)) for row in rows), np.intp,
                                   len(rows)))
            for row in rows:  # few distinct (kind, location) pairs: classify each once
                if (row[3], row[4]) not in kinds:
                    kinds[row[3], row[4]] = evidence_of(row[3], row[4])
            codes.append(np.fromiter((kinds[row[3], row[4]] for row in rows), np.int8, len(rows)))
            line += len(rows)
            if progress is not None and task is not None:
                progress.update(task, completed=line - 2)
    t_ms = np.concatenate(times) if times else np.zeros(0, np.int64)
    resident = np.concatenate(who) if who else np.zeros(0, np.intp)
    evidence = np.concatenate(codes) if codes else np.zeros(0, np.int8)
    order = np.argsort(t_ms, kind="stable")
    t_ms, resident, evidence = t_ms[order], resident[order], evidence[order]
    first_ms = np.full(len(names), NEVER, dtype=np.int64)
    np.minimum.at(first_ms, resident, t_ms)
    offsets = np.array([_utc_offset_s(zone, int(ms)) for ms in first_ms], dtype=np.int32)
    return ActivityLog(t_ms, resident, evidence, list(names), offsets)


def _parse_times(values: list[str], zone: ZoneInfo, csv_path: Path, first_line: int) -> I64:
    """ISO 8601 strings → epoch ms. Naive ones (the usual case) parse in one numpy call as local time;
    the few with an offset go through `datetime`."""
    text = np.array(values)
    aware = np.char.endswith(text, "Z") | (np.char.rfind(text, "+") > 10) | (np.char.rfind(text, "-") > 10)
    local = np.zeros(len(values), dtype=np.int64)
    naive = np.flatnonzero(~aware)
    try:
        local[naive] = np.array(text[naive], dtype="datetime64[ms]").astype(np.int64)
    except ValueError:
        for i in naive:  # numpy does not say which row: find it
            _parse_one(values[i], csv_path, first_line + int(i))
        raise BacktestError(f"{csv_path}: lines {first_line}–{first_line + len(values) - 1}: a timestamp "
                            "is not ISO 8601") from None
    # A zone's offset only changes on the hour: look it up once per distinct local hour.
    hours, inverse = np.unique(local[naive] // HOUR_MS, return_inverse=True)
    offsets_ms = np.array([_local_offset_s(zone, int(h)) * 1000 for h in hours], dtype=np.int64)
    utc = local.copy()
    utc[naive] -= offsets_ms[inverse.reshape(-1)] if len(naive) else 0
    for i in np.flatnonzero(aware):
        utc[i] = _parse_one(values[i], csv_path, first_line + int(i))
    return utc


def _parse_one(value: str, csv_path: Path, line: int) -> int:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BacktestError(f"{csv_path}: line {line}: timestamp {value!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        return (moment - _EPOCH) // timedelta(milliseconds=1)  # naive: the caller applies the zone
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _local_offset_s(zone: ZoneInfo, local_hour: int) -> int:
    offset = (_EPOCH + timedelta(hours=local_hour)).replace(tzinfo=zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _utc_offset_s(zone: ZoneInfo, t_ms: int) -> int:
    offset = datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def replay(log: ActivityLog, detector: InactivityDetector, out: TextIO, zone: ZoneInfo,
           progress: Progress | None = None, *, run_on_hours: float = RUN_ON_HOURS) -> BacktestReport:
    """Feed the log to `detector` minute by minute and write the alerts it raises to `out`; each resident's
    clock runs `run_on_hours` past their last event."""
    n = len(log.residents)
    detector.init(n, log.utc_offset_s)
    end_ms = np.full(n, -1, dtype=np.int64)
    np.maximum.at(end_ms, log.resident, log.t_ms)
    end_ms += int(run_on_hours * HOUR_MS)
    raised = np.zeros(n, dtype=np.int8)           # inactivity severity raised in the current episode
    not_back_raised = np.zeros(n, dtype=bool)
    minutes = log.t_ms // MINUTE_MS
    starts = np.flatnonzero(np.r_[True, minutes[1:] != minutes[:-1]]) if len(minutes) else np.zeros(0, int)
    bounds = np.r_[starts, len(minutes)]
    alerts = _Alerts(out, zone, {})
    evaluations = 0
    task = progress.add_task("replaying", total=len(log.t_ms)) if progress else None

    def next_check() -> I64:
        inactivity = np.where(raised == Severity.NONE, detector.deadline_ms_,
                              np.where(raised == Severity.WARNING, detector.critical_ms_, NEVER))
        check = np.minimum(inactivity, np.where(not_back_raised, NEVER, detector.not_back_ms_))
        return np.where(check <= end_ms, check, NEVER)

    def evaluate(now: int) -> None:
        who = np.flatnonzero(next_check() <= now)
        if who.size == 0:
            return
        scores = detector.score(now, who)
        severity = detector.decide(scores, resident_idx=who)
        for i in np.flatnonzero(severity > raised[who]):
            r = int(who[i])
            alerts.emit(log.residents[r], "inactivity", Severity(int(severity[i])), now,
                        last_activity_ms=int(detector.last_activity_ms_[r]), surprise=float(scores[i]))
        raised[who] = np.maximum(raised[who], severity)
        late = detector.not_back_home(now, who) & ~not_back_raised[who]
        for r in who[late]:
            alerts.emit(log.residents[int(r)], "not_back_home", Severity.WARNING, now,
                        last_activity_ms=int(detector.last_activity_ms_[r]),
                        left_at=_iso(int(detector.last_door_ms_[r]), zone))
        not_back_raised[who[late]] = True

    for k in range(len(starts)):
        event_minute_ms = int(minutes[starts[k]]) * MINUTE_MS
        # Minutes with nothing due and no events change nothing: jump to the next due deadline.
        while True:
            due = int(next_check().min()) if n else NEVER
            due_minute_ms = -(-due // MINUTE_MS) * MINUTE_MS
            if due_minute_ms >= event_minute_ms:
                break
            evaluate(due_minute_ms)
            evaluations += 1
        evaluate(event_minute_ms)
        evaluations += 1
        batch = slice(bounds[k], bounds[k + 1])
        detector.partial_fit(log.resident[batch], log.t_ms[batch], log.evidence[batch])
        codes = log.evidence[batch]
        alive = np.unique(log.resident[batch][(codes != Evidence.CORRIDOR) & (codes != Evidence.STILL)])
        raised[alive] = Severity.NONE   # activity resumed: a new silence is a new episode
        not_back_raised[alive] &= detector.away(alive)
        if progress is not None and task is not None and (k % 512 == 0 or k == len(starts) - 1):
            progress.update(task, completed=int(bounds[k + 1]))
    while n and (due := int(next_check().min())) != NEVER:
        evaluate(-(-due // MINUTE_MS) * MINUTE_MS)
        evaluations += 1
    return BacktestReport(events=len(log.t_ms), residents=n, alerts=alerts.counts, evaluations=evaluations)


@dataclass
class _Alerts:
    """Writes alert lines and counts them by kind and severity."""

    out: TextIO
    zone: ZoneInfo
    counts: dict[str, int]

    def emit(self, resident: str, kind: str, severity: Severity, now_ms: int, *, last_activity_ms: int,
             **evidence: str | float) -> None:
        record = {"resident": resident, "kind": kind, "severity": severity.name.lower(),
                  "raised_at": _iso(now_ms, self.zone), "last_activity": _iso(last_activity_ms, self.zone),
                  "silence_s": (now_ms - last_activity_ms) // 1000,
                  **{k: round(v, 2) if isinstance(v, float) else v for k, v in evidence.items()}}
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        key = f"{kind}/{record['severity']}"
        self.counts[key] = self.counts.get(key, 0) + 1


def _iso(t_ms: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(zone).isoformat(timespec="seconds")


def backtest(csv_path: Path, out_path: Path, *, progress: bool, timezone: str = DEFAULT_TIMEZONE,
             detector: InactivityDetector | None = None,
             run_on_hours: float = RUN_ON_HOURS) -> BacktestReport:
    """Replay `csv_path` through the inactivity detector and write its alerts to `out_path` (JSON Lines)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BacktestError(f"unknown time zone {timezone!r}") from None
    if not run_on_hours > 0:
        raise BacktestError(f"run-on must be a positive number of hours, not {run_on_hours}")
    detector = detector if detector is not None else InactivityDetector()
    with Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar:
        log = read_log(csv_path, zone, bar)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with out_path.open("w", encoding="utf-8") as out:
            return replay(log, detector, out, zone, bar, run_on_hours=run_on_hours)


def backtest_command(
    events: Annotated[Path, typer.Argument(help="activity log CSV: timestamp,resident,device,kind,location",
                                           exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option(help="where to write the alerts (JSON Lines)")] = Path("alerts.jsonl"),
    timezone: Annotated[str, typer.Option(help="time zone of naive timestamps")] = DEFAULT_TIMEZONE,
    progress: Annotated[bool, typer.Option(help="show progress")] = True,
    run_on: Annotated[float, typer.Option(
        help="hours each resident's clock runs past their last event (72 for door-only homes)",
    )] = RUN_ON_HOURS,
) -> None:
    """Replay a recorded activity log through the inactivity detector and write the alerts it raises."""
    console = Console(stderr=True)
    try:
        report = backtest(events, out, progress=progress, timezone=timezone, run_on_hours=run_on)
    except BacktestError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(report.alerts.items())) or "none"
    console.print(f"{report.events} events, {report.residents} residents → alerts: {summary} ({out})")
