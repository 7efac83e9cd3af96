"""Backtest: replay a recorded activity log through the live hub's inactivity detector.

The log is a CSV with the header `timestamp,resident,device,kind,location`, one row per sign of activity.
The replay learns online exactly as the live hub does: events are fed in time order, one minute of log
time at a time, and each evaluation at minute `t` (the live hub's tick) sees only events before `t`.
Every resident's clock runs until `run_on_hours` (24 by default) after their last event, so a collapse
at the end of a log is still caught. Alerts go out as JSON Lines, one line per alert: one per
(resident, kind) episode, re-raised only after activity resumes, with an escalation from warning to
critical as a second line.

Nothing here loops over events in Python: the usual log is read in array passes over its bytes, minutes
with events are fed as array batches (consecutive minutes as one batch while nothing can fall due within
it, which leaves the detector exactly as feeding them one by one would), and between them the replay
jumps straight to the next minute at which some deadline falls.
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
import pyarrow as pa
import pyarrow.compute as pc
import typer
from pyarrow import csv as pa_csv
from rich.console import Console
from rich.progress import Progress, TaskID

from detectors import NEVER, NO_SEVERITY, Evidence, InactivityDetector, Severity, evidence_of
from detectors.inactivity import room_of

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
    room: npt.NDArray[np.int8]           # each row's room class (`detectors.room_of`)


@dataclass(frozen=True)
class BacktestReport:
    events: int
    residents: int
    alerts: dict[str, int]  # "kind/severity" → count
    evaluations: int        # minutes at which something was due


def read_log(csv_path: Path, zone: ZoneInfo, progress: Progress | None = None) -> ActivityLog:
    """Read and validate the whole log. Timestamps without an offset are local time in `zone`.

    Arrow's CSV reader reads a valid log; a log it cannot read, and every error, goes through the `csv`
    module row by row, which has the last word on what a log means and on what its errors say."""
    task = progress.add_task("reading rows", total=None) if progress else None
    log = _read_arrow(csv_path, zone)
    if log is None:
        return _read_csv(csv_path, zone, progress, task)
    if progress is not None and task is not None:
        progress.update(task, completed=len(log.t_ms))
    return log


def _read_csv(csv_path: Path, zone: ZoneInfo, progress: Progress | None, task: TaskID | None) -> ActivityLog:
    names: dict[str, int] = {}
    kinds: dict[tuple[str, str], int] = {}
    places: dict[str, int] = {}
    times: list[I64] = []
    who: list[npt.NDArray[np.intp]] = []
    codes: list[npt.NDArray[np.int8]] = []
    rooms: list[npt.NDArray[np.int8]] = []
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
            rooms.append(np.fromiter((places.setdefault(row[4], room_of(row[4])) for row in rows), np.int8,
                                     len(rows)))
            line += len(rows)
            if progress is not None and task is not None:
                progress.update(task, completed=line - 2)
    t_ms = np.concatenate(times) if times else np.zeros(0, np.int64)
    resident = np.concatenate(who) if who else np.zeros(0, np.intp)
    evidence = np.concatenate(codes) if codes else np.zeros(0, np.int8)
    room = np.concatenate(rooms) if rooms else np.zeros(0, np.int8)
    return _sorted_log(t_ms, resident, evidence, room, list(names), zone)


def _sorted_log(t_ms: I64, resident: npt.NDArray[np.intp], evidence: npt.NDArray[np.int8],  # noqa: PLR0917
                room: npt.NDArray[np.int8], residents: list[str], zone: ZoneInfo) -> ActivityLog:
    """The log in time order (rows at the same time keep the file's order)."""
    if np.any(t_ms[1:] < t_ms[:-1]):
        order = np.argsort(t_ms, kind="stable")
        t_ms, resident, evidence, room = t_ms[order], resident[order], evidence[order], room[order]
    first_ms = np.full(len(residents), NEVER, dtype=np.int64)
    np.minimum.at(first_ms, resident, t_ms)
    offsets = np.array([_utc_offset_s(zone, int(ms)) for ms in first_ms], dtype=np.int32)
    return ActivityLog(t_ms, resident, evidence, residents, offsets, room)


def _read_arrow(csv_path: Path, zone: ZoneInfo) -> ActivityLog | None:
    """The log read by Arrow's CSV reader (columnar, in C++), or None for anything it cannot read as the
    `csv` module would or that is not a valid log (the `csv` path then reads it, or says what is wrong)."""
    try:
        table = pa_csv.read_csv(csv_path, convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(HEADER, pa.string()), strings_can_be_null=False))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if table.column_names != HEADER or table.num_rows == 0:
        return None
    # Residents numbered in order of first appearance (Arrow's dictionary encoding keeps that order, and
    # encodes every chunk against one dictionary). The string columns are encoded chunk by chunk, never
    # copied whole: only their few distinct values are looked at.
    residents = pc.dictionary_encode(table["resident"]).combine_chunks()
    names = residents.dictionary.to_pylist()
    if "" in names:
        return None
    stamps = table["timestamp"]
    try:  # naive ISO 8601, the usual case: local time in `zone`
        local = stamps.cast(pa.timestamp("ms")).to_numpy().astype(np.int64)
        t_ms = local - _local_offsets_ms(local, zone)
    except pa.ArrowInvalid:  # offsets among them, or an error whose line `_parse_times` names
        try:
            t_ms = _parse_times(stamps.to_pylist(), zone, csv_path, 2)
        except BacktestError:
            return None
    kinds = pc.dictionary_encode(table["kind"]).combine_chunks()
    places = pc.dictionary_encode(table["location"]).combine_chunks()
    place_names = places.dictionary.to_pylist()
    rooms = np.array([room_of(place) for place in place_names], np.int8)
    place_at = places.indices.to_numpy()
    pair, distinct = _pairs(kinds.indices.to_numpy(), place_at, len(place_names))
    kind_names = kinds.dictionary.to_pylist()
    # Each distinct (kind, location) classified once. Joined and split at the first comma, as this
    # reader always has (a kind with a comma in it is no kind the hub knows).
    codes = np.array([evidence_of(*f"{kind_names[k // len(place_names)]},{place_names[k % len(place_names)]}"
                                  .split(",", 1)) for k in distinct.tolist()], np.int8)
    return _sorted_log(t_ms, residents.indices.to_numpy().astype(np.intp), codes[pair], rooms[place_at],
                       names, zone)


def _pairs(a: npt.NDArray[np.integer], b: npt.NDArray[np.integer], b_n: int) -> tuple[I64, I64]:
    """Pairs of codes (`b` below `b_n`) as the index of each among the distinct pairs, and those pairs as
    `a * b_n + b`, in order. Few codes make few possible pairs: a table of which occur then stands in
    for sorting the column."""
    key = a.astype(np.int64) * b_n + b
    return _codes(key, (int(a.max()) + 1) * b_n if len(key) else 0)


def _codes(key: I64, possible: int) -> tuple[I64, I64]:
    """Each key's index among the distinct keys (all in 0..possible-1), and the distinct keys in order:
    `np.unique(key, return_inverse=True)` reversed, without its sort when `possible` is small."""
    if possible > 4 * len(key) + (1 << 16):
        distinct, inverse = np.unique(key, return_inverse=True)
        return inverse.reshape(-1).astype(np.int64), distinct.astype(np.int64)
    seen = np.zeros(possible, dtype=bool)
    seen[key] = True
    distinct = np.flatnonzero(seen)
    number = np.cumsum(seen, dtype=np.int64) - 1
    return number[key], distinct.astype(np.int64)


def _local_offsets_ms(local_ms: I64, zone: ZoneInfo) -> I64:
    """The zone's UTC offset at each local time, in ms. A zone's offset only changes on the hour: it is
    looked up once per distinct local hour."""
    hour = local_ms // HOUR_MS
    first = int(hour.min()) if len(hour) else 0
    at, hours = _codes(hour - first, int(hour.max()) - first + 1 if len(hour) else 0)
    offsets_ms = np.array([_local_offset_s(zone, int(h) + first) * 1000 for h in hours], dtype=np.int64)
    return np.asarray(offsets_ms[at], dtype=np.int64)


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
    utc = local.copy()
    utc[naive] -= _local_offsets_ms(local[naive], zone)
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
           progress: Progress | None = None, *, run_on_hours: float = RUN_ON_HOURS,
           minute_by_minute: bool = False) -> BacktestReport:
    """Feed the log to `detector` minute by minute and write the alerts it raises to `out`; each resident's
    clock runs `run_on_hours` past their last event.

    Consecutive minutes in which nothing can fall due are fed as one batch (see `_batch_spans`): the
    detector ends up exactly as it would minute by minute, and no evaluation is skipped that could have
    raised anything. `minute_by_minute` feeds every minute on its own (the reference the batches are
    tested against)."""
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
    minute_ms = minutes[starts] * MINUTE_MS
    alerts = _Alerts(out, zone, {})
    evaluations = 0
    task = progress.add_task("replaying", total=len(log.t_ms)) if progress else None
    batches = None if minute_by_minute or not n else _Batches(log, minutes, starts, detector)
    fed, fed_at = batches.thinned if batches is not None and batches.thinned is not None else (None, bounds)

    def next_check() -> I64:
        inactivity = np.where(raised == NO_SEVERITY, detector.deadline_ms_,
                              np.where(raised == Severity.WARNING.rank, detector.critical_ms_, NEVER))
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
            alerts.emit(log.residents[r], "inactivity", Severity.of_rank(int(severity[i])), now,
                        last_activity_ms=int(detector.last_activity_ms_[r]), surprise=float(scores[i]))
        raised[who] = np.maximum(raised[who], severity)
        late = detector.not_back_home(now, who) & ~not_back_raised[who]
        for r in who[late]:
            alerts.emit(log.residents[int(r)], "not_back_home", Severity.WARNING, now,
                        last_activity_ms=int(detector.last_activity_ms_[r]),
                        left_at=_iso(int(detector.last_door_ms_[r]), zone))
        not_back_raised[who[late]] = True

    k = 0
    reported = 0
    while k < len(starts):
        event_minute_ms = int(minute_ms[k])
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
        end = k + 1 if batches is None else batches.end(k, next_check())
        evaluations += end - k - 1  # the minutes fed with it, evaluated with nothing due
        if fed is not None and batches is not None and end > k + 1 and batches.thin(k):
            log_batch = slice(fed_at[k], fed_at[end])
            fed_log = fed
        else:
            log_batch = slice(bounds[k], bounds[end])
            fed_log = log
        who, t_ms, what = fed_log.resident[log_batch], fed_log.t_ms[log_batch], fed_log.evidence[log_batch]
        detector.partial_fit(who, t_ms, what, fed_log.room[log_batch])
        alive = _distinct(who[(what != Evidence.CORRIDOR) & (what != Evidence.STILL)], n)
        raised[alive] = NO_SEVERITY   # activity resumed: a new silence is a new episode
        not_back_raised[alive] &= detector.away(alive)
        if end > k + 1 and n:
            _check_batch(next_check()[alive], int(minute_ms[end - 1]))
        k = end
        if progress is not None and task is not None and (k - reported >= 512 or k == len(starts)):
            progress.update(task, completed=int(bounds[k]))
            reported = k
    while n and (due := int(next_check().min())) != NEVER:
        evaluate(-(-due // MINUTE_MS) * MINUTE_MS)
        evaluations += 1
    return BacktestReport(events=len(log.t_ms), residents=n, alerts=alerts.counts, evaluations=evaluations)


@dataclass(frozen=True)
class _BatchSpans:
    """How far a batch of minutes may run, in ms (0: one minute only)."""

    quiet: int  # past any resident's activity in it (their next can come sooner)
    door: int   # past its first minute, if that has a front-door event
    worn: int   # past its first minute, if it has a worn band's reports
    thin: bool = False  # whether indoor readings a batch does not need may be left out (see `_thinned`)


def _batch_spans(detector: InactivityDetector) -> _BatchSpans:
    """Fed minute by minute, the detector is evaluated at each minute; fed as a batch, it must end in the
    same state, with no evaluation in between that could have raised anything. That holds when

    - no deadline set within the batch falls within it: a silence's warning never comes sooner than its
      learned floor, at least `shortest_floor_s` (extra time, prior or a cap, over sensitivity) after
      the last activity (critical comes later still, and only counts once a warning was raised, which
      activity resets): so each resident's activity in the batch is followed by more of it, or by the
      batch's end, within that floor. A not-back deadline comes at least `min(away_after_door_s,
      max_away_s)` (or that floor) after the door event that sent the resident out, and only a door
      event does: so a door event may only open a batch, which then stays shorter than both;
    - no deadline set before the batch falls within it (`replay` ends the batch before the next one);
    - no band reports stillness in it (`replay` feeds such a minute on its own): a still report's
      surprise depends on the band's counts before it, and it can bring a deadline forward to its time;
    - a silence that ends within the batch is learned as it would be minute by minute. `partial_fit`
      takes a silence begun at a reading of the same batch as an outing if the resident was away before
      the batch and nothing indoors came since, while a band's report in an earlier minute would have
      ended the outing; and it decides whether one begun at the front door is an outing from the door
      reading alone. So a batch with band reports or a door event stays shorter than `silence_min_s`.
    """
    quiet = int(detector.shortest_floor_s() * 1000) - 1
    silence_ms = int(detector.silence_min_s * 1000) - MINUTE_MS + 1  # the last minute's readings come later
    door = min(quiet, silence_ms, int(min(detector.away_after_door_s, detector.max_away_s) * 1000) - 1)
    return _BatchSpans(max(quiet, 0), max(door, 0), max(min(quiet, silence_ms), 0),
                       thin=detector.silence_min_s >= MINUTE_MS / 1000)


class _Batches:
    """Where each batch of minutes ends (see `_batch_spans`), from the log's minutes with still reports,
    front-door events and band reports, and from each resident's activity: when their next comes."""

    most = 1 << 18  # events in a batch, at most (more only make the detector's sorts slower)

    def __init__(self, log: ActivityLog, minutes: I64, starts: npt.NDArray[np.intp],
                 detector: InactivityDetector) -> None:
        self.detector = detector
        self.spans = _batch_spans(detector)
        self.bounds = np.r_[starts, len(minutes)]
        self.minute_ms = minutes[starts] * MINUTE_MS
        codes = log.evidence
        # Each reading's minute index (32 bits: the gathers below in resident order miss the cache).
        minute_of = np.repeat(np.arange(len(starts), dtype=np.int32), np.diff(self.bounds))
        self.still, self.door, worn = (_minutes_with(codes == code, minute_of, len(starts))
                                       for code in (Evidence.STILL, Evidence.DOOR, Evidence.WORN))
        self.worn_before = np.r_[0, np.cumsum(worn)]  # minutes before each with a worn band's report
        self.stops = np.flatnonzero(self.still | self.door)  # a batch ends before these
        self.thinned: tuple[ActivityLog, npt.NDArray[np.intp]] | None = None
        # Each resident's activity (every reading but the corridor's) in time order: a stable sort by
        # resident, a radix sort on 16-bit keys. Sorted, the residents are each one's count of them.
        n = len(log.residents)
        small = n <= 1 << 16
        by_resident = np.argsort(log.resident.astype(np.uint16) if small else log.resident, kind="stable")
        coded = codes[by_resident]
        touched = coded != Evidence.CORRIDOR
        touch, coded = by_resident[touched], coded[touched]
        counts = (np.bincount(log.resident, minlength=n)
                  - np.bincount(log.resident[codes == Evidence.CORRIDOR], minlength=n))
        who = np.repeat(np.arange(n, dtype=np.int64), counts)
        minute_index = minute_of[touch]
        self.minutes_n = max(len(starts), 1)
        self.touch_key = who * self.minutes_n + minute_index
        # Lapses: activity not followed by more of the same resident's within the shortest floor (a
        # resident's minutes only go forward), and when their next comes (NEVER: none).
        at = self.minute_ms[minute_index]
        same = who[1:] == who[:-1]
        gap = at[1:] - at[:-1]
        lapse = np.flatnonzero(np.r_[~same | (gap > self.spans.quiet), True][:len(touch)])
        next_ms = np.full(len(lapse), NEVER, dtype=np.int64)
        inner = lapse < len(touch) - 1
        followed = lapse[inner]
        next_ms[inner] = np.where(same[followed], at[followed + 1], NEVER)
        order = np.argsort(touch[lapse], kind="stable")
        self.lapse_minute = minute_index[lapse][order]
        self.lapse_who = who[lapse][order].astype(np.intp)
        self.lapse_t = log.t_ms[touch[lapse][order]]
        self.lapse_room = log.room[touch[lapse][order]]  # the room each silence would begin in
        self.lapse_next_ms = next_ms[order]
        # Thinning keeps a reading or two of each resident's minute, and every reading that is not indoor:
        # worth a copy of the log only if it leaves out at least one reading in eight.
        distinct = np.count_nonzero(~same | (gap != 0)) + 1 if len(touch) else 0
        if self.spans.thin and 8 * (len(codes) - len(touch) + distinct) <= 7 * len(codes):
            indoor = coded == Evidence.INDOOR
            self.thinned = _thinned(log, touch[indoor], who[indoor], minute_index[indoor], self.bounds)

    def thin(self, k: int) -> bool:
        """Whether a batch from minute k may be fed without the readings `_thinned` leaves out."""
        return not self.door[k]

    def end(self, k: int, check: I64) -> int:
        """Where the batch from minute k ends (exclusive), given when each resident is next due."""
        spans = self.spans
        if spans.quiet <= 0 or self.still[k]:
            return k + 1
        start_ms = int(self.minute_ms[k])
        following = int(np.searchsorted(self.stops, k, side="right"))
        horizon = int(self.minute_ms[self.stops[following]]) if following < len(self.stops) else NEVER
        full = int(np.searchsorted(self.bounds, self.bounds[k] + self.most, side="right")) - 1
        if full < len(self.minute_ms):
            horizon = min(horizon, int(self.minute_ms[max(full, k + 1)]))
        if self.door[k]:
            horizon = min(horizon, start_ms + spans.door, int(check.min()))
        else:
            horizon = self._lapses(k, self._due(k, check, horizon))
        end = self._reach(k, horizon)
        if self.worn_before[end] > self.worn_before[k]:
            end = self._reach(k, min(horizon, start_ms + spans.worn))
        return end

    def _reach(self, k: int, horizon: int) -> int:
        return max(k + 1, int(np.searchsorted(self.minute_ms, horizon, side="left")))

    def _due(self, k: int, check: I64, horizon: int) -> int:
        """Bring `horizon` before any deadline pending now that would fall due before its resident's next
        activity (from minute k on, which is fed before anything else is evaluated)."""
        pending = np.flatnonzero(check < horizon)
        if pending.size == 0:
            return horizon
        at = np.searchsorted(self.touch_key, pending * self.minutes_n + k, side="left")
        found = np.minimum(at, len(self.touch_key) - 1)
        key = self.touch_key[found] if len(self.touch_key) else np.zeros(len(pending), np.int64)
        seen = (at < len(self.touch_key)) & (key // self.minutes_n == pending)
        next_ms = np.where(seen, self.minute_ms[key % self.minutes_n], NEVER)
        falls = (next_ms > self.minute_ms[k]) & (check[pending] <= next_ms)
        return min(horizon, int(check[pending][falls].min(initial=NEVER)))

    def _lapses(self, k: int, horizon: int) -> int:
        """Bring `horizon` before the deadline set by a resident's activity in the batch that is not
        followed by more of theirs soon enough: no sooner than their learned silence floor after it (the
        floor only grows as the resident's silences are learned, so the floor as of now bounds it from
        below, once the resident is known; before, the shortest floor does)."""
        lo = int(np.searchsorted(self.lapse_minute, k, side="left"))
        hi = int(np.searchsorted(self.lapse_minute, self._reach(k, horizon), side="left"))
        if hi <= lo:
            return horizon
        detector = self.detector
        who, t_ms = self.lapse_who[lo:hi], self.lapse_t[lo:hi]
        floor_s = detector.floor_bound_s(who, t_ms, room=self.lapse_room[lo:hi])
        bound = t_ms + np.floor(floor_s * 1000).astype(np.int64)
        late = np.flatnonzero(self.lapse_next_ms[lo:hi] >= bound)
        if late.size == 0:
            return horizon
        # The first late one within the batch ends it, before its bound; later ones only if sooner.
        soonest = np.minimum.accumulate(bound[late])
        limit = np.minimum(horizon, np.r_[NEVER, soonest[:-1]])
        inside = self.minute_ms[self.lapse_minute[lo:hi][late]] < limit
        stop = int(np.argmin(inside)) if not inside.all() else len(late)
        return min(horizon, int(soonest[stop - 1])) if stop else horizon


def _minutes_with(readings: npt.NDArray[np.bool_], minute_of: npt.NDArray[np.int32], minutes_n: int
                  ) -> npt.NDArray[np.bool_]:
    """Which minutes (by index) hold any of `readings`."""
    has = np.zeros(minutes_n, dtype=bool)
    has[minute_of[readings]] = True
    return has


def _thinned(log: ActivityLog, indoor: npt.NDArray[np.intp], who: I64, minute: npt.NDArray[np.int32],
             bounds: npt.NDArray[np.intp]) -> tuple[ActivityLog, npt.NDArray[np.intp]]:
    """The log without the indoor readings that are neither the first nor the last of their resident's in
    their minute, and where each minute starts in it. Fed in a batch without front-door events or still
    reports, a reading in between changes nothing: the active minute is counted once, the resident's
    first reading in the batch ends their silence and their last one is their last activity, and gaps
    within a minute are shorter than a silence. `indoor`: the indoor readings by resident, then time,
    with their residents and minute indices; `bounds`: where each minute starts, and the log's end."""
    change = np.flatnonzero((who[1:] != who[:-1]) | (minute[1:] != minute[:-1]))
    keep = log.evidence != Evidence.INDOOR
    if len(indoor):
        keep[indoor[np.r_[0, change + 1]]] = True
        keep[indoor[np.r_[change, len(indoor) - 1]]] = True
    at = np.r_[0, np.cumsum(keep)]
    thinned = ActivityLog(log.t_ms[keep], log.resident[keep], log.evidence[keep], log.residents,
                          log.utc_offset_s, log.room[keep])
    return thinned, at[bounds]


def _distinct(values: npt.NDArray[np.intp], n: int) -> npt.NDArray[np.intp]:
    """The distinct values (all in 0..n-1), sorted."""
    if 8 * len(values) < n:
        return np.unique(values)
    seen = np.zeros(n, dtype=bool)
    seen[values] = True
    return np.flatnonzero(seen)


def _check_batch(check: I64, last_minute_ms: int) -> None:
    """The residents of a batch must have nothing due within it (see `_batch_spans`)."""
    if check.size and int(check.min()) <= last_minute_ms:
        raise RuntimeError("the detector set a deadline within a batch of minutes: the batching in "
                           "`hub.backtest.replay` no longer matches the detector (see `_batch_spans`)")


@dataclass
class _Alerts:
    """Writes alert lines and counts them by kind and severity."""

    out: TextIO
    zone: ZoneInfo
    counts: dict[str, int]

    def emit(self, resident: str, kind: str, severity: Severity, now_ms: int, *, last_activity_ms: int,
             **evidence: str | float) -> None:
        record = {"resident": resident, "kind": kind, "severity": str(severity),
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
