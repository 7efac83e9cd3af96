"""Scoring the alerts a hub raised against a simulation's ground truth (`hub simulate score`).

An incident counts as detected by the first alert of its expected kind about its subject (the resident,
device or building; for household alerts any resident of the household) raised from the incident's
start up to `window` later; the delay is the time between. Alerts that match no incident are false
alarms, counted per kind.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from devices.kind import to_epoch_ms
from simulators.incidents import Incident

DAY_MS = 86_400_000
# An alert stamped a little before the incident's recorded start still belongs to it: the hub's clock
# follows the simulated one minute by minute.
_EARLY_MS = 60_000


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    kind: str
    subject: str
    raised_at_ms: int
    severity: str = ""
    household: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, object]) -> RaisedAlert:
        """Accepts the hub's alert records and `hub backtest` lines alike."""
        subject = data.get("subject") or data.get("resident") or data.get("device") or data.get("building")
        raised = data.get("raised_at_ms", data.get("raised_at"))
        if not isinstance(subject, str) or raised is None:
            raise ValueError(f"an alert needs a subject (or resident) and raised_at: {data}")
        household = data.get("household")
        return cls(
            str(data["kind"]),
            subject,
            to_epoch_ms(raised),
            str(data.get("severity", "")),
            household if isinstance(household, str) else None,
        )


@dataclass
class KindScore:
    staged: int = 0
    detected: int = 0
    delays_ms: list[int] = field(default_factory=list)

    @property
    def missed(self) -> int:
        return self.staged - self.detected

    def delay_s(self, quantile: float) -> float | None:
        if not self.delays_ms:
            return None
        if len(self.delays_ms) == 1:
            return self.delays_ms[0] / 1000
        cuts = statistics.quantiles(self.delays_ms, n=100, method="inclusive")
        return cuts[round(quantile * 100) - 1] / 1000 if quantile < 1 else max(self.delays_ms) / 1000


@dataclass
class ScoreReport:
    incidents: dict[str, KindScore]
    false_alarms: Counter[str]
    missed: list[Incident]

    def to_json(self) -> str:
        return json.dumps(
            {
                "incidents": {
                    kind: {
                        "staged": s.staged,
                        "detected": s.detected,
                        "missed": s.missed,
                        "median_delay_s": s.delay_s(0.5),
                        "p95_delay_s": s.delay_s(0.95),
                    }
                    for kind, s in sorted(self.incidents.items())
                },
                "false_alarms": dict(sorted(self.false_alarms.items())),
                "missed": [i.model_dump(mode="json", exclude_none=True) for i in self.missed],
            },
            indent=2,
        )


def score(
    incidents: Sequence[Incident], alerts: Iterable[RaisedAlert], *, window_ms: int = DAY_MS
) -> ScoreReport:
    by_key: dict[tuple[str, str], list[RaisedAlert]] = defaultdict(list)
    for alert in sorted(alerts, key=lambda a: a.raised_at_ms):
        by_key[(alert.kind, alert.subject)].append(alert)
        if alert.household:
            by_key[(alert.kind, alert.household)].append(alert)
    used: set[int] = set()
    scores: dict[str, KindScore] = defaultdict(KindScore)
    missed: list[Incident] = []
    for incident in sorted(incidents, key=lambda i: i.start_ms):
        expected = incident.expected_alert
        score_ = scores[incident.incident.value]
        score_.staged += 1
        candidates = by_key[(expected.kind, expected.subject)]
        if incident.household:
            candidates = sorted(
                [*candidates, *by_key[(expected.kind, incident.household)]], key=lambda a: a.raised_at_ms
            )
        match = next(
            (
                a
                for a in candidates
                if id(a) not in used
                and incident.start_ms - _EARLY_MS <= a.raised_at_ms <= incident.start_ms + window_ms
            ),
            None,
        )
        if match is None:
            missed.append(incident)
            continue
        used.add(id(match))
        score_.detected += 1
        score_.delays_ms.append(max(0, match.raised_at_ms - incident.start_ms))
    # An alert about the same subject and kind as a detected incident, later in the same episode, is the
    # same alert updated (the hub keeps one open alert per subject and kind), not a false alarm.
    detected_keys = {(i.expected_alert.kind, i.expected_alert.subject) for i in incidents if i not in missed}
    false_alarms: Counter[str] = Counter()
    counted: set[int] = set()  # an alert indexed under its subject and its household counts once
    for group in by_key.values():
        for alert in group:
            if id(alert) in used or id(alert) in counted or (alert.kind, alert.subject) in detected_keys:
                continue
            counted.add(id(alert))
            false_alarms[alert.kind] += 1
    return ScoreReport(dict(scores), false_alarms, missed)


def read_alerts(path: Path) -> list[RaisedAlert]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [RaisedAlert.from_json(json.loads(line)) for line in lines if line.strip()]


def render(report: ScoreReport, console: Console) -> None:
    table = Table(title="alerts against ground truth")
    for column in ("incident", "staged", "detected", "missed", "median delay", "p95 delay"):
        table.add_column(column, justify="left" if column == "incident" else "right")
    for kind, s in sorted(report.incidents.items()):
        table.add_row(
            kind,
            str(s.staged),
            str(s.detected),
            str(s.missed),
            _duration(s.delay_s(0.5)),
            _duration(s.delay_s(0.95)),
            style="red" if s.missed else None,
        )
    console.print(table)
    false = ", ".join(f"{kind}: {n}" for kind, n in sorted(report.false_alarms.items())) or "none"
    console.print(f"false alarms: {false}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.0f} min"
        if seconds < 7200
        else f"{seconds / 3600:.1f} h"
    )
