"""Detection quality of the inactivity detector on simulated residents with staged collapses.

Simulates a community with many collapse incidents, turns its messages into the backtest's activity
log (in memory, then one CSV), replays it through `hub.backtest` twice: as recorded (homes whose worn
wristband reports steps) and with wristband rows dropped (sensor-only homes). Reports the delay from
collapse to the first inactivity alert, the share detected within 24 h, and false alarms per
resident-month on normal days (everything not after a collapse); then the false alarms of homes with
and without a front-door contact apart.

    python -m tests.benchmarks.detector_quality [--households 300] [--days 28] [--collapses 120]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from detectors import InactivityDetector, is_activity, is_stillness
from detectors.evidence import ENTRANCE, STILL_LOCATION
from devices import KINDS
from devices.kind import Sees
from hub.backtest import HEADER, backtest
from simulators.community import CommunityParameters
from simulators.incidents import IncidentKind
from simulators.message import CLOCK_KIND, DAY_MS, SimMessage
from simulators.scenario import IncidentCounts, Scenario
from simulators.simulation import Simulation

_NO_OTHER_INCIDENTS = {kind.value: 0 for kind in IncidentKind}
WARM_UP_DAYS = 7  # as on the real homes
HOUR_MS = DAY_MS // 24
WELFARE_KINDS = ("inactivity", "not_back_home")
Row = tuple[str, str, str, str, str]


def activity_rows(simulation: Simulation) -> Iterator[Row]:
    """The simulation's stored readings that are activity, as backtest rows (naive local timestamps).
    Household devices speak for every resident of the household; a wristband for its wearer."""
    registry = simulation.registry
    zone = ZoneInfo(simulation.scenario.community.timezone)
    residents: dict[str, list[str]] = {}
    for resident in registry.residents:
        residents.setdefault(resident.household, []).append(resident.id)
    owners = {d.id: [d.resident] if d.resident else residents.get(d.household or "", [])
              for d in registry.devices}
    previous: dict[str, dict[str, object]] = {}
    for message in simulation.messages():
        if message.kind == CLOCK_KIND or message.reading_ts is None or message.dead_letter is not None:
            continue
        assert message.device_id is not None
        fields = _decode(message)
        active = is_activity(message.kind, fields, previous.get(message.device_id))
        if active or is_stillness(message.kind, fields):
            stamp = datetime.fromtimestamp(message.reading_ts / 1000, UTC).astimezone(zone)
            local = stamp.replace(tzinfo=None).isoformat(timespec="milliseconds")
            place = ENTRANCE if Sees.FRONT_DOOR in KINDS[message.kind].places else "home"
            location = place if active else STILL_LOCATION
            for owner in owners[message.device_id]:
                yield local, owner, message.device_id, message.kind, location
        previous[message.device_id] = fields


def _decode(message: SimMessage) -> dict[str, object]:
    kind = KINDS[message.kind]
    if message.topic.startswith("zigbee2mqtt/"):
        assert kind.decode_zigbee2mqtt is not None
        return dict(kind.decode_zigbee2mqtt(message.payload, message.sim_ms).fields)
    return dict(kind.decode(message.payload).fields)


def write_csv(rows: Iterable[Row], path: Path) -> int:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        count = 0
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


@dataclass(frozen=True)
class Quality:
    collapses: int
    delays_min: list[float]
    false_alarms: int
    not_back_home: int
    resident_months: float
    events: int
    seconds: float
    by_home: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # inactivity, not_back, months
    welfare: tuple[int, float] = (0, 0.0)  # as the real homes are counted (see `welfare_false_alarms`)

    def line(self, label: str) -> str:
        delays = np.array(self.delays_min) if self.delays_min else np.array([np.nan])
        return (f"{label}: {self.events} events replayed in {self.seconds:.1f} s; "
                f"collapses detected within 24 h {len(self.delays_min)}/{self.collapses} "
                f"({len(self.delays_min) / max(1, self.collapses):.0%}); delay median "
                f"{np.median(delays):.0f} min, p95 {np.percentile(delays, 95):.0f} min; false inactivity "
                f"alarms {self.false_alarms / self.resident_months:.2f} per resident-month "
                f"({self.false_alarms} in {self.resident_months:.1f}); not_back_home "
                f"{self.not_back_home / self.resident_months:.2f} per resident-month; "
                f"welfare alarms as on the real homes {self.welfare[0] / max(self.welfare[1], 1e-9):.2f} "
                f"per resident-month ({self.welfare[0]} in {self.welfare[1]:.1f})"
                + "".join(f"\n  {home}: false inactivity alarms {n / months:.2f} per resident-month "
                          f"({n} in {months:.1f}); not_back_home {back / months:.2f}"
                          for home, (n, back, months) in self.by_home.items() if months))


def evaluate(csv_path: Path, simulation: Simulation, events: int,
             detector: InactivityDetector | None = None,
             homes: dict[str, set[str]] | None = None) -> Quality:
    """`homes`: groups of residents (by the kind of home) whose false alarms to report apart."""
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        out = Path(tmp) / "alerts.jsonl"
        backtest(csv_path, out, progress=False, detector=detector)
        seconds = time.perf_counter() - began
        alerts = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    start_ms, end_ms = simulation.start_ms, simulation.end_ms
    residents = [r.id for r in simulation.registry.residents]
    collapsed = {i.resident: i.start_ms for i in simulation.incidents
                 if i.incident == IncidentKind.COLLAPSE and i.resident}
    delays: list[float] = []
    false_alarms = not_back = 0
    counts = {home: [0, 0] for home in homes or {}}
    for resident, collapse_ms in collapsed.items():
        raised = sorted(_ms(a["raised_at"]) for a in alerts if a["resident"] == resident
                        and a["kind"] == "inactivity" and _ms(a["raised_at"]) >= collapse_ms)
        if raised and raised[0] - collapse_ms <= DAY_MS:
            delays.append((raised[0] - collapse_ms) / 60_000)
    for alert in alerts:
        ends = collapsed.get(alert["resident"], end_ms)
        if _ms(alert["raised_at"]) < ends and alert["severity"] == "warning":
            inactivity = alert["kind"] == "inactivity"
            false_alarms += inactivity
            not_back += not inactivity
            for home, members in (homes or {}).items():
                if alert["resident"] in members:
                    counts[home][0 if inactivity else 1] += 1

    def months(members: Iterable[str]) -> float:
        return sum((collapsed.get(r, end_ms) - start_ms) / DAY_MS for r in members) / 30

    by_home = {home: (n, back, months(homes[home])) for home, (n, back) in counts.items()} if homes else {}
    return Quality(len(collapsed), delays, false_alarms, not_back, months(residents), events, seconds,
                   by_home, welfare_false_alarms(alerts, residents, collapsed, start_ms, end_ms))


def welfare_false_alarms(alerts: list[dict[str, str]], residents: list[str], collapsed: dict[str, int],
                         start_ms: int, end_ms: int) -> tuple[int, float]:
    """False alarms counted as the real homes' benchmark counts them (tests/benchmarks/real_homes.py):
    welfare alerts (`inactivity` or `not_back_home`, any severity) after a 7-day warm-up and before any
    collapse, alerts less than 60 min after the resident's previous one counted once; and the
    resident-months they were counted over."""
    warm = start_ms + WARM_UP_DAYS * DAY_MS
    counted = 0
    for resident in residents:
        ends = collapsed.get(resident, end_ms)
        times = sorted(at for a in alerts if a["resident"] == resident and a["kind"] in WELFARE_KINDS
                       and warm <= (at := _ms(a["raised_at"])) < ends)
        counted += sum(1 for i, at in enumerate(times) if i == 0 or at - times[i - 1] >= HOUR_MS)
    months = sum(max(0, collapsed.get(r, end_ms) - warm) for r in residents) / DAY_MS / 30
    return counted, months


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=300)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--collapses", type=int, default=120)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--warning", type=float, default=None, help="warning_surprise (default: detector's)")
    parser.add_argument("--critical", type=float, default=None, help="critical_surprise")
    args = parser.parse_args()
    params = {name: value for name, value in (("warning_surprise", args.warning),
                                              ("critical_surprise", args.critical)) if value is not None}
    start = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday
    scenario = Scenario(seed=args.seed, days=args.days, start=start,
                        community=CommunityParameters(households=args.households),
                        incidents=IncidentCounts(**{**_NO_OTHER_INCIDENTS, "collapse": args.collapses}))
    simulation = Simulation(scenario)
    residents = [r.id for r in simulation.registry.residents]
    with_door = {d.household for d in simulation.registry.devices if KINDS[d.kind].door_open_field}
    homes = {"homes with a front-door contact": {r.id for r in simulation.registry.residents
                                                 if r.household in with_door},
             "homes without one": {r.id for r in simulation.registry.residents
                                   if r.household not in with_door}}
    began = time.perf_counter()
    rows = list(activity_rows(simulation))
    print(f"simulated {len(residents)} residents × {args.days} days: {len(rows)} activity rows "
          f"in {time.perf_counter() - began:.0f} s")
    with tempfile.TemporaryDirectory() as tmp:
        full, sensors = Path(tmp) / "full.csv", Path(tmp) / "sensors.csv"
        n_full = write_csv(rows, full)
        n_sensors = write_csv((r for r in rows if KINDS[r[3]].sees is not Sees.WEARER), sensors)
        for label, path, n in (("wristband + sensors", full, n_full), ("sensor-only", sensors, n_sensors)):
            print(evaluate(path, simulation, n, InactivityDetector(**params), homes).line(label))


if __name__ == "__main__":
    main()
