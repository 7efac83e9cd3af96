"""Live residents' activity → the inactivity detector → inactivity, not-back-home and coverage signals.

The detector (`detectors.InactivityDetector`) is pure and vectorized; this is the hub's side of it: which
residents a device's readings are about (a wristband its wearer; a home's sensors everyone living
there), which readings are activity, and an episode guard so that one silence raises one warning and at
most one escalation to critical, not a request every tick. A restart never cancels a pending alert: the
deadline of a silence that began before it is where it was. Each community's learned state (the
detector's rows of its residents, the episode guards, each device's last fields) is checkpointed into
the store with the store position it covers; a start restores it and relearns only the observations
after that position, and a community without a usable checkpoint relearns them all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from detectors import (
    NEVER,
    NO_ROOM,
    NO_SEVERITY,
    NO_TIME,
    STATE_FORMAT,
    Evidence,
    InactivityDetector,
    Severity,
    is_activity,
    is_stillness,
    live_evidence,
    room_of,
    state_from_bytes,
    state_to_bytes,
)
from devices import KINDS
from hub.registry import Registry
from hub.sensitivity import BAND_HOURS, BANDS
from hub.store import Checkpoint, StoredObservation

T = TypeVar("T")
# The hub's own arrays kept beside the detector's in a checkpoint, one row per resident.
_RESIDENT_IDS = "resident_ids"
_GUARDS = ("raised", "raised_for", "not_back_for", "decline_for")


@dataclass(frozen=True, slots=True)
class ResidentSignal:
    kind: str  # inactivity, not_back_home, coverage, activity_decline
    severity: Severity
    resident: str
    at_ms: int
    evidence: dict[str, int | float | str]


class ResidentActivity:
    """Owned by the evaluation thread. Other threads (the API's view of one resident) read the detector's
    arrays through `read_consistent`, never locking the evaluation out."""

    def __init__(self, registry: Registry, detector: InactivityDetector | None = None) -> None:
        # A sequence lock: odd while the evaluation changes the detector's arrays.
        self._changes = 0
        self.residents: list[str] = []
        self.index: dict[str, int] = {}
        self.detector = (detector or InactivityDetector()).init(0)
        self._previous: dict[str, Mapping[str, object]] = {}
        self._raised = np.zeros(0, dtype=np.int8)  # severity raised this silence
        self._raised_for = np.zeros(0, dtype=np.int64)  # ... which began then
        self._not_back_for = np.zeros(0, dtype=np.int64)
        self._decline_for = np.zeros(0, dtype=np.int64)  # the decline already raised
        # Sensitivity: the registry's per resident, times the caregivers' factor per time-of-day band
        # (hub/sensitivity.py), applied for the band the clock is in (`_apply_sensitivity`).
        self._sensitivity = np.ones(0, dtype=np.float32)
        self._factors: dict[str, Sequence[float]] = {}
        self._factor_table = np.ones((0, len(BANDS)), dtype=np.float32)
        self._now_ms = 0
        self.follow(registry)

    def follow(self, registry: Registry) -> None:
        """Take a changed registry (an API edit in the running hub): residents new to it join the detector
        with the prior, those already known keep everything learned, devices are re-placed, and residents
        no longer in it (deactivated) are still learned about but raise nothing."""
        with self._changing():
            self._follow(registry)

    def _follow(self, registry: Registry) -> None:
        self._followed = registry
        data = registry.data
        self._community_of = {r.id: registry.hierarchy.resident(r.id).community or "" for r in data.residents}
        self._devices_of: dict[str, list[str]] = {}
        for device in registry.devices.values():
            self._devices_of.setdefault(device.community, []).append(device.id)
        fresh = [r for r in data.residents if r.id not in self.index]
        if fresh:
            zones = {c.id: c.timezone for c in data.communities}
            now = datetime.now(UTC)
            offsets = [_utc_offset_s(zones[self._community_of[r.id]], now) for r in fresh]
            first = len(self.residents)
            self.detector.add_residents(np.array(offsets))
            self.residents += [r.id for r in fresh]
            self.index.update({r.id: first + k for k, r in enumerate(fresh)})
            self._raised = np.concatenate([self._raised, np.zeros(len(fresh), np.int8)])
            self._raised_for = np.concatenate([self._raised_for, np.full(len(fresh), NO_TIME, np.int64)])
            self._not_back_for = np.concatenate([self._not_back_for, np.full(len(fresh), NO_TIME, np.int64)])
            self._decline_for = np.concatenate([self._decline_for, np.full(len(fresh), NEVER, np.int64)])
            self._sensitivity = np.concatenate([self._sensitivity, np.ones(len(fresh), np.float32)])
        self._active = np.zeros(len(self.residents), dtype=np.bool_)
        listed = np.array([self.index[r.id] for r in data.residents], dtype=np.intp)
        self._active[listed] = True
        self._sensitivity[listed] = [r.inactivity_sensitivity for r in data.residents]
        self._fill_factor_table()
        living: dict[str, list[int]] = {}
        for resident in data.residents:
            living.setdefault(resident.household, []).append(self.index[resident.id])
        self._about: dict[str, Sequence[int]] = {}
        self._home_sensors: dict[int, list[str]] = {i: [] for i in range(len(self.residents))}
        # Where an indoor sensor is: silences after the bedroom are learned apart from those after the
        # kitchen (a device with no room in the registry gives the detector none: the hour alone decides).
        self._room: dict[str, int] = {}
        for device in registry.devices.values():
            if device.room is not None:
                self._room[device.id] = room_of(device.room)
            if device.household is None:
                continue
            if device.resident in self.index:
                self._about[device.id] = (self.index[device.resident],)
            else:
                self._about[device.id] = living.get(device.household, ())
            if KINDS[device.kind].home_sensor:
                for i in living.get(device.household, ()):
                    self._home_sensors[i].append(device.id)

    def set_factors(self, factors: Mapping[str, Sequence[float]]) -> None:
        """Take the caregivers' factors per resident and band (`hub.sensitivity.factors`), changed."""
        with self._changing():
            self._factors = dict(factors)
            self._fill_factor_table()

    def _fill_factor_table(self) -> None:
        table = np.ones((len(self.residents), len(BANDS)), dtype=np.float32)
        for resident, values in self._factors.items():
            if resident in self.index:
                table[self.index[resident]] = values
        self._factor_table = table
        self._apply_sensitivity()

    def _apply_sensitivity(self) -> None:
        """The detector's sensitivity: the registry's times the factor of the band each resident's local
        clock is in. The detector refreshes only the residents whose value changed (a band boundary,
        a verdict), so this is cheap to call every tick."""
        n = len(self.residents)
        if n == 0:
            return
        offsets = self.detector.utc_offset_s_.astype(np.int64)
        band = (self._now_ms // 1000 + offsets) // 3600 % 24 // BAND_HOURS
        effective = self._sensitivity * self._factor_table[np.arange(n), band]
        self.detector.set_sensitivity(np.arange(n), effective)

    def observe(self, rows: Sequence[StoredObservation]) -> None:
        """Learn from stored readings, in store order (one detector call per batch)."""
        who: list[int] = []
        when: list[int] = []
        codes: list[int] = []
        rooms: list[int] = []
        for row in rows:
            residents = self._about.get(row.device_id)
            previous = self._previous.get(row.device_id)
            self._previous[row.device_id] = row.fields
            if not residents:
                continue
            if is_activity(row.kind, row.fields, previous):
                code = int(live_evidence(row.kind, row.fields))
            elif is_stillness(row.kind, row.fields):
                code = int(Evidence.STILL)
            else:
                continue
            room = self._room.get(row.device_id, NO_ROOM)
            for i in residents:
                who.append(i)
                when.append(row.ts)
                codes.append(code)
                rooms.append(room)
        if who:
            with self._changing():
                self.detector.partial_fit(np.array(who), np.array(when, dtype=np.int64), np.array(codes),
                                          np.array(rooms, dtype=np.int8))

    def checkpoint(self, community: str, last_id: int, hub_ms: int) -> Checkpoint:
        """What this community's residents in service have learned, as of store position `last_id` and
        hub time `hub_ms`, to store."""
        ids = [r for r, c in self._community_of.items() if c == community]
        rows = np.array([self.index[r] for r in ids], dtype=np.intp)
        arrays = self.detector.get_state(rows)
        arrays[_RESIDENT_IDS] = np.array(ids, dtype=np.str_)
        for name in _GUARDS:
            arrays[name] = getattr(self, f"_{name}")[rows]
        fields = {d: self._previous[d] for d in self._devices_of.get(community, ()) if d in self._previous}
        return Checkpoint(community, STATE_FORMAT, self.detector.fingerprint(), last_id, hub_ms,
                          state_to_bytes(arrays), json.dumps(fields, separators=(",", ":")))

    def restore(self, checkpoint: Checkpoint) -> str | None:
        """Take back a community's learned state: its residents still living there (and in service) get
        their rows back; residents added or moved in since keep the prior, those gone are dropped, and
        the registry's current settings (sensitivity) apply. Returns why it cannot be taken, None when
        taken; a checkpoint that cannot be taken changes nothing."""
        if checkpoint.format != STATE_FORMAT:
            return f"format {checkpoint.format}, this hub reads {STATE_FORMAT}"
        if checkpoint.fingerprint != self.detector.fingerprint():
            return "taken with other detector parameters"
        try:
            arrays = state_from_bytes(checkpoint.state)
            ids = [str(r) for r in arrays[_RESIDENT_IDS]]
            guards = {name: arrays[name] for name in _GUARDS}
            fields = json.loads(checkpoint.last_fields)
        except (ValueError, KeyError) as exc:
            return f"unreadable ({exc})"
        if not isinstance(fields, dict) or any(g.shape != (len(ids),) for g in guards.values()):
            return "unreadable (the devices' fields or the guards do not fit)"
        keep = [k for k, r in enumerate(ids) if self._community_of.get(r) == checkpoint.community]
        rows = np.array([self.index[ids[k]] for k in keep], dtype=np.intp)
        with self._changing():
            try:
                self.detector.set_state({name: value[keep] for name, value in arrays.items()}, rows)
            except ValueError as exc:
                return f"unreadable ({exc})"
            for name, value in guards.items():
                getattr(self, f"_{name}")[rows] = value[keep]
            devices = set(self._devices_of.get(checkpoint.community, ()))
            self._previous.update({d: f for d, f in fields.items() if d in devices})
            self._follow(self._followed)  # the registry's sensitivities over the checkpoint's
        return None

    def tick(self, now_ms: int, offline: set[str]) -> list[ResidentSignal]:
        """Signals due at `now_ms`; `offline` holds the devices currently known to be silent or offline."""
        with self._changing():
            return self._tick(now_ms, offline)

    def read_consistent(self, read: Callable[[], T]) -> T:
        """`read()` of the detector's state, again until no change overlapped it: a view never shows a
        new last activity beside the deadline computed from the one before."""
        while True:
            before = self._changes
            if before % 2 == 0:
                result = read()
                if self._changes == before:
                    return result
            time.sleep(0)  # let the evaluation finish its change

    @contextmanager
    def _changing(self) -> Iterator[None]:
        self._changes += 1
        try:
            yield
        finally:
            self._changes += 1

    def _tick(self, now_ms: int, offline: set[str]) -> list[ResidentSignal]:
        if now_ms // 1000 // 3600 != self._now_ms // 1000 // 3600:  # bands change on the hour at most
            self._now_ms = now_ms
            self._apply_sensitivity()
        self._now_ms = now_ms
        detector = self.detector
        signals = self._declines(now_ms)
        due = np.flatnonzero(detector.due(now_ms) & self._active)
        if due.size == 0:
            return signals
        last = detector.last_activity_ms_[due]
        fresh = last != self._raised_for[due]  # activity since the last alert: a new silence
        self._raised[due[fresh]] = NO_SEVERITY
        self._raised_for[due[fresh]] = last[fresh]
        coverage_ok = np.array([self._covered(int(i), offline) for i in due], dtype=np.bool_)
        scores = detector.score(now_ms, due)
        severity = detector.decide(scores, coverage_ok, due)
        uncovered = detector.coverage(scores, coverage_ok, due)
        not_back = detector.not_back_home(now_ms, due)
        # The usual rhythm, for the people told: the longest silence begun around that hour so far.
        usual = detector.longest_silence_s(due, last)
        for k, i in enumerate(due):
            evidence: dict[str, int | float | str] = {
                "last_activity_ms": int(last[k]),
                "silence_s": int((now_ms - last[k]) // 1000),
                "surprise": round(float(scores[k]), 2),
            }
            if usual[k] > 0:
                evidence["usual_longest_silence_s"] = int(usual[k])
            if severity[k] > self._raised[i]:
                self._raised[i] = severity[k]
                signals.append(
                    ResidentSignal(
                        "inactivity", Severity.of_rank(int(severity[k])), self.residents[i], now_ms, evidence
                    )
                )
            if uncovered[k] and self._raised[i] == NO_SEVERITY:
                self._raised[i] = Severity.WARNING.rank  # one coverage alert per silence
                signals.append(
                    ResidentSignal("coverage", Severity.WARNING, self.residents[i], now_ms, evidence))
            door_ms = int(detector.last_door_ms_[i])
            if not_back[k] and self._not_back_for[i] != door_ms:
                self._not_back_for[i] = door_ms
                signals.append(
                    ResidentSignal(
                        "not_back_home",
                        Severity.WARNING,
                        self.residents[i],
                        now_ms,
                        {**evidence, "left_ms": door_ms},
                    )
                )
        return signals

    def _declines(self, now_ms: int) -> list[ResidentSignal]:
        """One `activity_decline` per day the detector judged far below habit (an illness coming on)."""
        detector = self.detector
        new = np.flatnonzero((detector.decline_ms_ <= now_ms) & (detector.decline_ms_ != self._decline_for)
                             & self._active)
        self._decline_for[new] = detector.decline_ms_[new]
        return [
            ResidentSignal("activity_decline", Severity.WARNING, self.residents[i], now_ms, {
                "day_ended_ms": int(detector.decline_ms_[i]),
                "share_of_usual": round(float(detector.decline_ratio_[i]), 2),
            })
            for i in new
        ]

    def _covered(self, resident: int, offline: set[str]) -> bool:
        """Whether any of the home's sensors still reports (a home without sensors has only the band)."""
        sensors = self._home_sensors[resident]
        return not sensors or any(device not in offline for device in sensors)


def _utc_offset_s(zone: str, at: datetime) -> int:
    offset = at.astimezone(ZoneInfo(zone)).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0
