"""The run summary: what was published, and what the hub's store must hold afterwards.

`unique_readings_by_kind` is what the hub's `observations` table must contain per kind: distinct
(device, ts) pairs of valid readings (a duplicate or a repeated cached state replaces its first copy).
`dead_letters_by_reason` is what its `dead_letters` table must contain per reason: one row per refused
message, duplicates of refused messages included.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from devices.kind import epoch_ms_to_iso
from simulators.incidents import Incident
from simulators.message import HOUR_MS, SimMessage

# A reading can only recur (duplicate, cached state repeated minutes later, skewed clock) within this
# span of simulated time, so older keys can be forgotten and memory stays flat on long scenarios.
_RECURRENCE_HORIZON_MS = 2 * HOUR_MS


@dataclass(frozen=True)
class PublishReport:
    published: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        return self.published / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class RunSummary:
    seed: int
    start_ms: int
    end_ms: int
    messages: int = 0
    published_by_kind: dict[str, int] = field(default_factory=dict)
    unique_readings_by_kind: dict[str, int] = field(default_factory=dict)
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    incidents: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    publish: PublishReport | None = None

    def to_json(self) -> str:
        body = asdict(self)
        if self.publish is not None:
            body["publish"]["rate"] = round(self.publish.rate, 1)
        return json.dumps(body, indent=2, ensure_ascii=False)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")

    def render(self, console: Console) -> None:
        table = Table(title=f"Simulated {epoch_ms_to_iso(self.start_ms)} → {epoch_ms_to_iso(self.end_ms)}"
                            f" (seed {self.seed})")
        table.add_column("kind")
        table.add_column("published", justify="right")
        table.add_column("unique readings", justify="right")
        for kind in sorted(self.published_by_kind):
            table.add_row(kind, f"{self.published_by_kind[kind]:,}",
                          f"{self.unique_readings_by_kind.get(kind, 0):,}")
        table.add_row("total", f"{self.messages:,}", f"{sum(self.unique_readings_by_kind.values()):,}",
                      style="bold")
        console.print(table)
        for title, counts in (("expected dead letters", self.dead_letters_by_reason),
                              ("faults injected", self.faults), ("incidents staged", self.incidents)):
            listed = ", ".join(f"{name} {count:,}" for name, count in sorted(counts.items())) or "none"
            console.print(f"[bold]{title}:[/bold] {listed}")
        if self.publish is not None:
            console.print(f"[bold]published[/bold] {self.publish.published:,} messages in "
                          f"{self.publish.elapsed_s:.1f} s: {self.publish.rate:,.0f} msg/s")
        else:
            console.print(f"[bold]generated[/bold] {self.messages:,} messages in {self.wall_s:.1f} s")


class SummaryTracker:
    """Counts messages as they go by; `summary()` at any point reports what has passed so far."""

    def __init__(self, seed: int, start_ms: int, end_ms: int, incidents: Iterable[Incident] = ()) -> None:
        self._summary = RunSummary(seed, start_ms, end_ms)
        self._published: Counter[str] = Counter()
        self._unique: Counter[str] = Counter()
        self._dead: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._incidents = Counter(str(incident.incident) for incident in incidents)
        self._seen: dict[int, set[tuple[str, int]]] = {}  # hour of ts → (device, ts) keys stored
        self._oldest_hour = 0

    def track(self, messages: Iterable[SimMessage]) -> Iterator[SimMessage]:
        for message in messages:
            self.observe(message)
            yield message

    def observe(self, message: SimMessage) -> None:
        self._published[message.kind] += 1
        if message.fault:
            self._faults[str(message.fault)] += 1
        if message.dead_letter is not None:
            self._dead[str(message.dead_letter)] += 1
        elif message.reading_ts is not None and message.device_id is not None:
            self._store(message.kind, message.device_id, message.reading_ts, message.sim_ms)

    def summary(self, wall_s: float = 0.0, publish: PublishReport | None = None) -> RunSummary:
        summary = self._summary
        summary.messages = sum(self._published.values())
        summary.published_by_kind = dict(sorted(self._published.items()))
        summary.unique_readings_by_kind = dict(sorted(self._unique.items()))
        summary.dead_letters_by_reason = dict(sorted(self._dead.items()))
        summary.faults = dict(sorted(self._faults.items()))
        summary.incidents = dict(sorted(self._incidents.items()))
        summary.wall_s = wall_s
        summary.publish = publish
        return summary

    def _store(self, kind: str, device_id: str, ts: int, sim_ms: int) -> None:
        hour = ts // HOUR_MS
        if hour < self._oldest_hour:
            raise ValueError(f"reading {device_id}@{ts} recurs more than {_RECURRENCE_HORIZON_MS} ms late")
        keys = self._seen.setdefault(hour, set())
        if (device_id, ts) not in keys:
            keys.add((device_id, ts))
            self._unique[kind] += 1
        oldest = (sim_ms - _RECURRENCE_HORIZON_MS) // HOUR_MS
        if oldest > self._oldest_hour:
            for stale in [h for h in self._seen if h < oldest]:
                del self._seen[stale]
            self._oldest_hour = oldest
