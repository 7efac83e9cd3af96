"""Evaluation: committed observations → safety rules and the inactivity detector → alerts.

It follows the store's observations as an outbox with its own cursor, like the exporters, so a crash
between a commit and its evaluation loses nothing: after a restart the evaluation resumes at its cursor,
and the alert loop's occurrence keys make a re-evaluated SOS press the same alert, not a second one.
Time-driven checks (doors left open, devices silent, inactivity deadlines) run only once evaluation has
caught up with intake, so a backlog being worked through never looks like silence.

A start is bounded: every `checkpoint_every_s` of hub time, and at a clean stop, each community's learned
detector state is checkpointed into the store with the evaluation cursor, in one transaction. A start
restores each community's checkpoint and relearns only the observations after it; a community whose
checkpoint is missing, unreadable, of another format or taken with other detector parameters relearns
from the first stored observation (logged).

Where hub nodes share one PostgreSQL (hub/leases.py), a node evaluates only the communities it owns, and
each community has its own cursor (`evaluation:<community>`): the node that takes a community over
restores its checkpoint, relearns what came after it up to the community's cursor, and resumes at the
cursor its previous owner saved when it handed it over (or last saved before it died). Alone (SQLite),
the hub owns everything under the one cursor `evaluation`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from detectors.safety import Clear, DeviceFacts, SafetyRules, SafetyThresholds, Signal
from detectors.severity import Severity
from devices import KINDS
from devices.registry import LIVES_ALONE_FLAG, Resident
from hub.alerts.model import OCCURRENCE_KEY, AlertRequest, ClearRequest
from hub.clock import Clock
from hub.registry import PlacedDevice, Registry
from hub.resident_activity import ResidentActivity
from hub.settings import RuleSettings
from hub.store import Checkpoint, Committed, Store, StoredObservation
from hub.threads import BackgroundThread

log = logging.getLogger(__name__)

CURSOR = "evaluation"
_HANDOVER_MAX = 20  # commits held in memory at most (each up to HUB_BATCH_MAX observations); then the store
# Alerts a reading raises at once (as each device kind declares): marked late when their reading was.
URGENT_KINDS = frozenset(alert for kind in KINDS.values() for alert in kind.immediate_alerts)
TICK_MS = 60_000  # time-driven checks once a minute of hub time (a door open 15 min, a silence of hours)


def device_facts(registry: Registry) -> dict[str, DeviceFacts]:
    """What the rules need per device, resolved once per registry."""
    data = registry.data
    residents_of: dict[str, list[str]] = {}
    people_of: dict[str, list[Resident]] = {}
    wandering: set[str] = set()
    door_limit: dict[str, int] = {}  # household -> the shortest limit any of its residents asks for
    for resident in data.residents:
        residents_of.setdefault(resident.household, []).append(resident.id)
        people_of.setdefault(resident.household, []).append(resident)
        if resident.wandering_risk:
            wandering.add(resident.household)
        if resident.door_open_limit_s is not None:
            door_limit[resident.household] = min(
                resident.door_open_limit_s, door_limit.get(resident.household, resident.door_open_limit_s)
            )
    zones = {c.id: c.timezone for c in data.communities}
    entries = {d.id: d for d in data.devices}
    residents = {r.id: r for r in data.residents}
    facts = {}
    for device_id, placed in registry.devices.items():
        household = placed.household
        wearer = residents.get(placed.resident or "")
        lines = entries[device_id].floor_lines
        facts[device_id] = DeviceFacts(
            id=device_id,
            kind=placed.kind,
            building=placed.building,
            household=household,
            resident=placed.resident,
            household_residents=tuple(residents_of.get(household, ())) if household else (),
            wandering_risk=household in wandering,
            timezone=zones[placed.community],
            checkin_interval_s=entries[device_id].checkin_interval_s,
            door_open_limit_s=entries[device_id].door_open_limit_s or door_limit.get(household or ""),
            lives_alone=_lives_alone(people_of.get(household or "", [])),
            heart_rate_min=wearer.heart_rate_min if wearer else None,
            heart_rate_max=wearer.heart_rate_max if wearer else None,
            geofence=wearer.geofence if wearer and wearer.wandering_risk else None,
            floor_lines=tuple(sorted(lines.items())) if lines else (),
        )
    return facts


def _lives_alone(people: list[Resident]) -> bool:
    """A home of someone living alone (独居): anyone flagged so, or its only resident not marked as
    living with others."""
    return any(LIVES_ALONE_FLAG in r.flags for r in people) or (len(people) == 1 and people[0].lives_alone)


def thresholds(rules: RuleSettings) -> SafetyThresholds:
    """The rules' thresholds: settings over each kind's own check-in interval."""
    checkins = {name: int(kind.checkin_interval.total_seconds()) for name, kind in KINDS.items()}
    return SafetyThresholds(
        door_open_limit_s=rules.door_open_limit_s,
        night_start_hour=rules.night_start_hour,
        night_end_hour=rules.night_end_hour,
        battery_low_percent=rules.battery_low_percent,
        falling_object_merge_s=rules.falling_object_merge_s,
        checkin_interval_s=checkins | rules.checkin_interval_s,
        falling_object_min_confidence=rules.falling_object_min_confidence,
        heart_rate_min=rules.heart_rate_min,
        heart_rate_max=rules.heart_rate_max,
        heart_rate_reports=rules.heart_rate_reports,
        not_worn_days=rules.not_worn_days,
        not_worn_min_days=rules.not_worn_min_days,
        not_worn_share=rules.not_worn_share,
        offline_clear_after_s=rules.offline_clear_after_s,
    )


class Ownership(Protocol):
    """The communities this node owns (hub/leases.py's `CommunityLeases`)."""

    def owned(self) -> tuple[int, frozenset[str]]:
        """(version, the communities to evaluate now)."""
        ...

    def applied(self, version: int) -> None:
        """Only what `owned()` gave at `version` is evaluated, and the others' cursors are saved."""
        ...


def cursor_name(community: str | None) -> str:
    return CURSOR if community is None else f"{CURSOR}:{community}"


@dataclass
class EvaluationStats:
    evaluated: int = 0
    signals: int = 0
    ticks: int = 0
    backlog: int = 0
    restored: int = 0  # communities restored from a checkpoint at start
    relearned: int = 0  # observations relearned at start
    start_s: float = 0.0  # from the thread's start to the detector armed
    checkpoints: int = 0
    communities: int = 0  # evaluated: owned under leases (hub nodes on PostgreSQL), or all of them alone


class Evaluator(BackgroundThread):
    def __init__(
        self,
        store_factory: Callable[[], Store],
        registry: Callable[[], Registry],
        clock: Clock,
        raise_alert: Callable[[AlertRequest], object],
        *,
        settled_ms: Callable[[int], int],
        clear_alerts: Callable[[list[ClearRequest]], object] | None = None,
        rules: SafetyThresholds | None = None,
        late_after_s: int = 120,
        batch: int = 5000,
        tick_s: float = 1.0,
        checkpoint_every_s: float | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        super().__init__("evaluation")
        self.stats = EvaluationStats()
        self.rules = SafetyRules(rules or thresholds(RuleSettings()))
        self._store_factory = store_factory
        self._registry = registry
        self._clock = clock
        self._raise_alert = raise_alert
        self._clear_alerts = clear_alerts
        self._settled_ms = settled_ms
        self._batch = batch
        self._tick_s = tick_s
        self._late_after_ms = late_after_s * 1000
        self._placed: _Placement | None = None
        self.activity = ResidentActivity(registry())
        self._ticked_ms = 0
        self._checkpoint_every_ms = None if checkpoint_every_s is None else int(checkpoint_every_s * 1000)
        self._checkpointed_ms = 0  # hub time of the last checkpoint
        # Set once the learned state is restored and relearned: from then on a silence is judged.
        self.armed = threading.Event()
        self._handover: deque[Committed] = deque()
        self._ownership = ownership
        # Where each owned community's evaluation stands (None: every community, alone), and what of it
        # the store has.
        self._cursors: dict[str | None, int] = {}
        self._saved: dict[str | None, int] = {}
        self._availability_ms = 0  # the newest availability message taken
        self._availability_seen: dict[str, int] = {}  # device -> when its last one taken was received
        # Where nodes share the store: the cursor each community's learned state was brought up to at
        # start. Taken at that cursor still, it is learned already: no second restore and relearning.
        self._learned_at_start: dict[str, int] = {}
        # Metrics: seconds one tick's time-driven checks took, residents the detector looked at.
        self.on_tick: Callable[[float, int], None] = lambda seconds, residents: None

    def run(self) -> None:
        started = time.perf_counter()
        store = self._store_factory()
        try:
            self._seed(store)
            factors_seen = self._follow_factors(store, -1)  # before relearning: replayed ticks use them
            factors_due = time.monotonic() + _FACTORS_EVERY_S
            self._start_up(store)
            self.stats.start_s = time.perf_counter() - started
            self.armed.set()
            log.info("detector armed in %.1f s: %d communities restored from checkpoints, %d observations "
                     "relearned", self.stats.start_s, self.stats.restored, self.stats.relearned)
            save_due = availability_due = 0.0
            while not self._stopping.is_set():
                self._follow_ownership(store)
                position = min(self._cursors.values(), default=None)
                if position is None:  # owning nothing (yet): nothing to read
                    position = store.last_observation_id()
                # The watermark is read after taking a handed-over batch (intake moves it before handing
                # over, so it covers the batch) and before reading the store (so the rows cover it).
                handed = self._handed_over(position)
                settled = self._settled_ms(self._clock.now_ms())
                if handed is None:
                    rows = store.observations_after(position, self._batch) if self._cursors else []
                    last_id = rows[-1].id if rows else position
                    read = len(rows)
                    rows = self._mine(rows)
                else:
                    rows, last_id = handed
                    read = len(rows)
                if time.monotonic() >= factors_due:
                    factors_seen = self._follow_factors(store, factors_seen)
                    factors_due = time.monotonic() + _FACTORS_EVERY_S
                self._evaluate(rows, settled)
                self.stats.evaluated += len(rows)
                for community, cursor in self._cursors.items():
                    self._cursors[community] = max(cursor, last_id)
                if self._checkpoint_due() and self._checkpoint(store, self._cursors):
                    pass
                elif self._cursors != self._saved and time.monotonic() >= save_due:
                    # At most once a second: re-evaluating a second of readings after a crash raises
                    # nothing twice (occurrence keys, one open alert per subject and kind), while a
                    # synchronous commit per intake batch would halve intake on a small machine.
                    self._save_cursors(store, self._cursors)
                    save_due = time.monotonic() + 1.0
                behind = min(self._cursors.values(), default=last_id)
                self.stats.backlog = store.last_observation_id() - behind
                if handed is None and read < self._batch:  # caught up with everything committed
                    # Availability once a second (an offline device pages in seconds), and always before
                    # the time-driven checks, which count a device back from when it said so.
                    if time.monotonic() >= availability_due or settled >= self._ticked_ms + TICK_MS:
                        self._follow_availability(store)
                        availability_due = time.monotonic() + 1.0
                    self._maybe_tick(settled)
                    self._sleep(self._tick_s)  # intake wakes us after each commit
            if self._checkpoint_every_ms is None or not self._checkpoint(store, self._cursors):
                self._save_cursors(store, self._cursors)
        finally:
            store.close()

    def _follow_factors(self, store: Store, seen: int) -> int:
        """Take the caregivers' sensitivity factors (hub/sensitivity.py) when a verdict changed them since
        `seen` (the newest change's id); returns the id now seen."""
        newest, factors = store.sensitivity_factors()
        if newest != seen:
            self.activity.set_factors(factors)
        return newest

    def _save_cursors(self, store: Store, cursors: dict[str | None, int]) -> None:
        changed = {c: cursor for c, cursor in cursors.items() if self._saved.get(c) != cursor}
        if changed:
            store.set_export_cursors({cursor_name(c): cursor for c, cursor in changed.items()})
            self._saved.update(changed)

    @staticmethod
    def _stored_cursor(store: Store, community: str) -> int:
        """Where `community`'s evaluation stands; never evaluated alone: where the single hub's stood (a
        hub that ran alone before nodes)."""
        return store.export_cursor(cursor_name(community)) or store.export_cursor(CURSOR)

    def _follow_ownership(self, store: Store) -> None:
        """Stop evaluating the communities no longer owned (checkpointing their learned state with their
        cursors, for the next owner), start on those newly owned at their cursors, and confirm."""
        if self._ownership is None:
            self.stats.communities = len(self._registry().file.communities)
            return
        version, owned = self._ownership.owned()
        released = {c: cursor for c, cursor in self._cursors.items() if c not in owned}
        if released and (self._checkpoint_every_ms is None or not self._checkpoint(store, released)):
            self._save_cursors(store, released)
        for community in released:
            del self._cursors[community]
            del self._saved[community]
        gained = owned - self._cursors.keys()
        for community in gained:
            cursor = self._cursors[community] = self._saved[community] = self._stored_cursor(store, community)
            self._take_over(store, community, cursor)
        self.stats.communities = len(self._cursors)
        if released or gained:
            log.info("evaluating communities %s", ", ".join(sorted(owned)) or "none")
        self._ownership.applied(version)

    def _owns(self, community: str) -> bool:
        return None in self._cursors or community in self._cursors

    def _mine(self, rows: list[StoredObservation]) -> list[StoredObservation]:
        """The rows of owned communities not evaluated yet (a community taken over later than the others
        re-reads from its own cursor, behind theirs)."""
        if None in self._cursors:
            return rows
        devices = self._registry().devices
        mine = []
        for row in rows:
            placed = devices.get(row.device_id)
            after = None if placed is None else self._cursors.get(placed.community)
            if after is not None and row.id > after:
                mine.append(row)
        return mine


    def committed(self, committed: Committed) -> None:
        """Intake committed a batch: keep its observations to evaluate without reading them back from the
        store (which cost intake about a tenth of its rate), and wake up. Bounded: a reader that falls
        behind drops what it holds and reads the store instead. Not where nodes share the store: a commit
        of this node's may repeat readings another node stored first, which this one has evaluated
        already from the store."""
        if self._ownership is None and len(self._handover) < _HANDOVER_MAX:
            self._handover.append(committed)
        self.wake()

    def _handed_over(self, cursor: int) -> tuple[list[StoredObservation], int] | None:
        """The next commit's observations if it continues exactly at `cursor`; None: read the store."""
        while self._handover:
            committed = self._handover[0]
            if committed.after_id <= cursor:
                self._handover.popleft()  # already evaluated from the store
                continue
            if committed.before_id != cursor:
                return None  # a gap (a replay from the CLI, a dropped hand-over): the store has it all
            self._handover.popleft()
            rows = [StoredObservation(0, o.device_id, o.kind, o.ts, o.fields, o.received_ms)
                    for o in committed.observations]
            return rows, committed.after_id
        return None

    def _placement(self) -> _Placement:
        registry = self._registry()
        if self._placed is None or self._placed.registry is not registry:
            if self._placed is not None:
                self.activity.follow(registry)  # the registry was edited in the running hub
            self._placed = _Placement(registry)
        return self._placed

    def _facts(self) -> dict[str, DeviceFacts]:
        return self._placement().facts

    def _start_up(self, store: Store) -> None:
        """Bring the residents' learned rhythm and current silences up to the evaluation cursors (a start):
        each community from its checkpoint, or from the first stored observation. Alone, up to the hub's
        cursor; where nodes share the store, each community up to its own (what its owner evaluated)."""
        registry = self._placement().registry  # the checkpoints' residents are matched to the registry now
        if self._ownership is None:
            self._cursors = {None: store.export_cursor(CURSOR)}
            until = {community.id: self._cursors[None] for community in registry.data.communities}
        else:  # nothing owned yet: each community is taken, and evaluated on from its cursor, later
            until = {community.id: self._stored_cursor(store, community.id)
                     for community in registry.data.communities}
        self._saved = dict(self._cursors)
        restored = {community: self._restore(store, community, until_id)
                    for community, until_id in until.items()}
        self.stats.restored = sum(1 for last_id in restored.values() if last_id is not None)
        if self._checkpoint_every_ms is not None and self.stats.restored == len(restored):
            self._checkpointed_ms = self._clock.now_ms()  # else the next round checkpoints what was relearned
        after = {community: last_id or 0 for community, last_id in restored.items()}
        self.stats.relearned = self._relearn(store, after, until)
        if self._ownership is not None:
            self._learned_at_start = until

    def _take_over(self, store: Store, community: str, cursor: int) -> None:
        """A community this node has just taken over: its learned state from the checkpoint its previous
        owner left, and the observations after it up to where its evaluation stands. Without a checkpoint
        it keeps what this node learned of it (at start, and while it last owned it); taken at the cursor
        the start learned it up to (nobody evaluated it since), it is learned already."""
        if self._learned_at_start.pop(community, None) == cursor:
            return
        restored = self._restore(store, community, cursor)
        if restored is not None:
            self.stats.restored += 1
            self.stats.relearned += self._relearn(store, {community: restored}, {community: cursor})

    def _restore(self, store: Store, community: str, until_id: int) -> int | None:
        """The community's checkpoint restored: returns the last observation id it covers (None: none)."""
        checkpoint = store.checkpoint(community)
        if checkpoint is None:
            return None
        habits: dict[str, dict[date, bool]] | None = None
        try:
            habits = SafetyRules.read_habits(json.loads(checkpoint.habits))
        except ValueError as exc:
            unreadable = str(exc)
        if checkpoint.last_id > until_id:
            why: str | None = f"it covers observations past the evaluation cursor ({until_id})"
        elif habits is None:
            why = f"unreadable ({unreadable})"
        else:
            why = self.activity.restore(checkpoint)
        if why is None and habits is not None:  # what the rules learned from the observations it covers
            devices = self._placement().registry.devices
            self.rules.restore_habits({d: f for d, f in self._facts().items()
                                       if devices[d].community == community}, habits)
        if why is not None:
            log.warning("detector checkpoint of community %s not restored, %s: relearning it from every "
                        "stored observation", community, why)
            return None
        self._ticked_ms = max(self._ticked_ms, checkpoint.hub_ms)
        return checkpoint.last_id

    def _relearn(self, store: Store, after: dict[str, int], until: dict[str, int]) -> int:
        """Learn the stored observations of the communities in `until`, each's after the id it was
        restored to (`after`) and up to its id in `until`. Returns how many were learned."""
        devices = self._placement().registry.devices
        last_id = min(after.values(), default=0)
        end = max(until.values(), default=0)
        learned = 0
        while last_id < end:
            batch = store.observations_after(last_id, self._batch)
            if not batch:
                break
            last_id = batch[-1].id
            # A device of no community is no one's: nothing to learn from it.
            rows = [row for row in batch if (placed := devices.get(row.device_id)) is not None
                    and after.get(placed.community, 0) < row.id <= until.get(placed.community, 0)]
            self.activity.observe(rows)
            facts = self._facts()
            for row in rows:  # the habits the safety rules learn (is a band usually worn?)
                if (device := facts.get(row.device_id)) is not None:
                    self.rules.learn(device, row.ts, row.fields)
            learned += len(rows)
        return learned

    def _checkpoint_due(self) -> bool:
        if self._checkpoint_every_ms is None:
            return False
        now = self._clock.now_ms()
        # A clock behind the last checkpoint (a simulation restarted at an earlier time) starts afresh.
        if now >= self._checkpointed_ms + self._checkpoint_every_ms or now < self._checkpointed_ms:
            self._checkpointed_ms = now  # this round is taken now, whether the store takes it or not
            return True
        return False

    def _checkpoint(self, store: Store, cursors: dict[str | None, int]) -> bool:
        """Checkpoint the learned state of these communities (None: all of them, alone), each as of its
        cursor (everything up to it learned), with their evaluation cursors, atomically. False when the
        store refused it (evaluation carries on)."""
        started = time.perf_counter()
        registry = self._placement().registry
        if None in cursors:
            at = {community.id: cursors[None] for community in registry.data.communities}
        else:
            at = {community: cursor for community, cursor in cursors.items() if community is not None}
        try:
            store.save_checkpoints([self._checkpoint_of(c, cursor) for c, cursor in at.items()],
                                   {cursor_name(c): cursor for c, cursor in cursors.items()})
        except Exception:  # a full disk must not stop the evaluation; the next round tries again
            log.exception("checkpointing the detector's learned state failed")
            return False
        self._saved.update(cursors)
        self.stats.checkpoints += 1
        log.debug("detector checkpoint of %d communities took %.3f s", len(at), time.perf_counter() - started)
        return True

    def _checkpoint_of(self, community: str, cursor: int) -> Checkpoint:
        """The community's detector state, with the habits the safety rules learned of its devices."""
        placed = self._placement().registry.devices
        devices = [d for d, device in placed.items() if device.community == community]
        return dataclasses.replace(self.activity.checkpoint(community, cursor, self._ticked_ms),
                                   habits=json.dumps(self.rules.habits(devices), separators=(",", ":")))

    def _seed(self, store: Store) -> None:
        """After a restart, what the hub last heard from each device still counts toward offline checks,
        and each device's last availability message is taken as if it had just come."""
        facts = self._facts()
        for device_id, heard_ms, _ in store.liveness():
            device = facts.get(device_id)
            if device is not None:
                self.rules.heard_from(device, heard_ms)
        self._follow_availability(store, owned_only=False)

    def _follow_availability(self, store: Store, *, owned_only: bool = True) -> None:
        """The `online`/`offline` availability messages (and last wills) intake stored since the last look:
        `offline` raises `device_offline` at once, `online` clears it as a reading would. Intake keeps
        only each device's last one, beside the observations. `owned_only`: only those of the communities
        this node evaluates (at start: every device's, as before)."""
        changes = store.availability_since(self._availability_ms - _AVAILABILITY_LOOKBACK_MS)
        facts, devices = self._facts(), self._placement().registry.devices
        for device_id, online, at_ms in changes:
            self._availability_ms = max(self._availability_ms, at_ms)
            device, placed = facts.get(device_id), devices.get(device_id)
            if device is None or placed is None or self._availability_seen.get(device_id, -1) >= at_ms:
                continue
            self._availability_seen[device_id] = at_ms
            if owned_only and not self._owns(placed.community):
                continue
            if online:
                self.rules.came_online(device, at_ms)
            else:
                self._emit(self.rules.went_offline(device, at_ms))
        self._clear(self.rules.take_clears())

    def _evaluate(self, rows: list[StoredObservation], settled: int) -> None:
        """Rules and detector over a chunk of readings, with the time-driven checks run at least once per
        `TICK_MS` of reading time inside it: a backlog (or a simulation running days in seconds) must
        not jump over a door that stood open for an hour between two readings of the same chunk."""
        facts = self._facts()
        start = 0
        for k, row in enumerate(rows):
            moment = min(row.ts, settled)
            if moment >= self._ticked_ms + TICK_MS:
                self.activity.observe(rows[start:k])
                start = k
                self._maybe_tick(moment)
            device = facts.get(row.device_id)
            if device is not None:
                self._emit(self.rules.observe(device, row.ts, row.fields),
                           late=self._late(row), where=self._where(row))
        self.activity.observe(rows[start:])
        self._clear(self.rules.take_clears())

    def _maybe_tick(self, now: int) -> None:
        """Time-driven checks at `now` (the time through which intake has committed everything), at most
        once per `TICK_MS` of it and never backwards: readings of different devices interleave, and the
        checks walk every device, which is too much to do after every commit."""
        if now < self._ticked_ms + TICK_MS:
            return
        started = time.perf_counter()
        self._tick(now)
        self.on_tick(time.perf_counter() - started, self.activity.detector.n_residents)

    def _tick(self, now: int) -> None:
        self._ticked_ms = now
        self.stats.ticks += 1
        self._emit(self.rules.tick(now))
        self._clear(self.rules.take_clears())
        signals = self.activity.tick(now, self.rules.offline_devices())
        if not signals:
            return
        placement = self._placement()
        for signal in signals:
            home = placement.home_of.get(signal.resident)
            if home is None:
                continue  # a resident whose home has no devices yet: nothing can be said about them
            self._request(
                signal.kind,
                signal.severity,
                subject=signal.resident,
                place=home,
                device=None,
                evidence=dict(signal.evidence),
                at_ms=signal.at_ms,
            )

    def _late(self, row: StoredObservation) -> dict[str, object] | None:
        """Evidence marking an urgent reading that arrived late (held by a device or a gateway out of
        reach, or queued at the broker while the hub was down), None when it came in time: whoever goes
        must know the SOS press or the fall happened that long before they heard of it."""
        if row.received_ms is None or row.received_ms - row.ts < self._late_after_ms:
            return None
        return {"late": True, "late_s": (row.received_ms - row.ts) // 1000, "received_ms": row.received_ms}

    @staticmethod
    def _where(row: StoredObservation) -> dict[str, object] | None:
        """Where the reading was made, when the device sent its position (a band's SOS or fall): the
        place to go, for the people told."""
        lat, lon = row.fields.get("lat"), row.fields.get("lon")
        if not isinstance(lat, float) or not isinstance(lon, float):
            return None
        where: dict[str, object] = {"lat": lat, "lon": lon}
        accuracy = row.fields.get("accuracy_m")
        if isinstance(accuracy, float):
            where["accuracy_m"] = accuracy
        return {"location": where}

    def _emit(self, signals: list[Signal], *, late: dict[str, object] | None = None,
              where: dict[str, object] | None = None) -> None:
        if not signals:
            return
        devices = self._registry().devices
        for signal in signals:
            placed = devices.get(signal.device)
            if placed is None:
                continue
            evidence: dict[str, object] = {**signal.evidence, "device_kind": placed.kind}
            if late is not None and signal.kind in URGENT_KINDS:
                evidence |= late
            if where is not None and signal.kind in URGENT_KINDS:
                evidence |= where
            if signal.occurrence is not None:
                evidence[OCCURRENCE_KEY] = signal.occurrence
            self._request(
                signal.kind,
                signal.severity,
                subject=signal.subject,
                place=placed,
                device=signal.device,
                evidence=evidence,
                at_ms=signal.at_ms,
            )

    def _clear(self, clears: list[Clear]) -> None:
        if self._clear_alerts is None or not clears:
            return
        try:
            self._clear_alerts([ClearRequest(kind=clear.kind, subject=clear.subject, device=clear.device,
                                             evidence=dict(clear.evidence), cleared_at_ms=clear.at_ms)
                                for clear in clears])
        except Exception:  # a failed clear must not stop evaluation of everything after it
            log.exception("clearing %d alert(s) failed", len(clears))

    def _request(
        self,
        kind: str,
        severity: Severity,
        *,
        subject: str,
        place: PlacedDevice,
        device: str | None,
        evidence: dict[str, object],
        at_ms: int,
    ) -> None:
        """Raise an alert about `subject`, placed where `place` is (its community, building, household)."""
        self.stats.signals += 1
        resident = subject if subject in self._placement().residents else None
        try:
            self._raise_alert(
                AlertRequest(
                    kind=kind,
                    severity=severity,
                    subject=subject,
                    community=place.community,
                    building=place.building,
                    household=place.household,
                    resident=resident,
                    device=device,
                    evidence=evidence,
                    raised_at_ms=at_ms,
                )
            )
        except Exception:  # one bad alert must not stop evaluation of everything after it
            log.exception("raising %s for %s failed", kind, subject)


# Intake processes commit in parallel, so one may store an availability message received before the
# newest one evaluation has taken: it looks this far back, and skips what it took already.
_AVAILABILITY_LOOKBACK_MS = 60_000

# How often evaluation looks for new sensitivity verdicts: a false alarm resolved now changes the next
# silence's deadline, not the one that already passed, so seconds do not matter.
_FACTORS_EVERY_S = 5.0


class _Placement:
    """Lookups derived from one registry, built once per registry rather than per tick or signal."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.facts = device_facts(registry)
        self.residents = frozenset(r.id for r in registry.data.residents)
        by_household = {d.household: d for d in registry.devices.values() if d.household is not None}
        self.home_of = {
            r.id: by_household[r.household] for r in registry.data.residents if r.household in by_household
        }
