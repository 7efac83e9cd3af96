"""Load mode: the benchmarks' load generator.

Thousands of devices check in through P processes, each with its own connection, at a
target total rate (or as fast as the broker acknowledges), for a fixed number of messages or a fixed
time. Payloads come from the same per-kind simulators as a scenario, so they are valid; each device's
`ts` is the wall clock in ms, forced strictly increasing, so every message is a distinct stored reading
and the hub's store must end up with exactly `published` observations.

Timestamps follow the real clock because a hub under benchmark runs on its own clock and refuses
readings more than 600 s in its future.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import queue
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from devices.registry import RegistryFile, place_devices
from simulators.calendar import Calendar
from simulators.community import BuiltCommunity, CommunityParameters, build_community
from simulators.device import DeviceContext, MessageSink, SimulatedDevice, simulator_for
from simulators.message import MINUTE_MS, SimMessage
from simulators.publishing import AckWindow, Connect
from simulators.residents import Place
from simulators.seeding import random_stream

_DEVICES_PER_HOUSEHOLD = 5  # a little under the builder's average, so one build is nearly always enough
_PACE_EVERY = 64            # messages between checks of the clock against the target rate
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LoadPlan:
    connect: Connect                  # opens each worker's connection: plain data (workers are processes)
    rate: float = 0.0                 # messages per second in total; 0: as fast as possible
    devices: int = 5_000
    processes: int = 2
    total: int | None = None          # stop after this many messages in total ...
    duration_s: float | None = None   # ... or after this long
    seed: int = 1
    zigbee2mqtt_share: float = 0.3

    def __post_init__(self) -> None:
        if (self.total is None) == (self.duration_s is None):
            raise ValueError("give exactly one of a total message count or a duration")
        if self.devices < self.processes:
            raise ValueError("need at least one device per process")


@dataclass(frozen=True)
class WorkerResult:
    index: int
    published: int
    started: float   # epoch seconds, comparable across processes
    finished: float
    error: str | None = None


@dataclass(frozen=True)
class LoadReport:
    devices: int
    processes: int
    target_rate: float
    published: int
    elapsed_s: float
    achieved_rate: float
    workers: list[WorkerResult] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")

    def render(self, console: Console) -> None:
        table = Table(title=f"Load: {self.devices:,} devices, {self.processes} processes")
        for column in ("process", "published", "seconds", "msg/s"):
            table.add_column(column, justify="right")
        for worker in self.workers:
            seconds = worker.finished - worker.started
            table.add_row(str(worker.index), f"{worker.published:,}", f"{seconds:.1f}",
                          f"{worker.published / seconds:,.0f}" if seconds > 0 else "-")
        table.add_row("all", f"{self.published:,}", f"{self.elapsed_s:.1f}", f"{self.achieved_rate:,.0f}",
                      style="bold")
        console.print(table)
        target = f"{self.target_rate:,.0f} msg/s" if self.target_rate else "as fast as possible"
        console.print(f"target {target}; achieved [bold]{self.achieved_rate:,.0f} msg/s[/bold]")


def load_community(devices: int, seed: int, zigbee2mqtt_share: float) -> BuiltCommunity:
    """A community with exactly `devices` devices (the registry the hub needs for a load run)."""
    households = max(1, math.ceil(devices / _DEVICES_PER_HOUSEHOLD))
    while True:
        parameters = CommunityParameters(households=households, buildings=max(1, households // 100),
                                         zigbee2mqtt_share=zigbee2mqtt_share)
        built = build_community(parameters, random_stream(seed, "load community"))
        if len(built.registry.devices) >= devices:
            break
        households += math.ceil((devices - len(built.registry.devices)) / _DEVICES_PER_HOUSEHOLD)
    kept = built.registry.devices[:devices]
    registry = RegistryFile.model_validate({**built.registry.model_dump(), "devices": kept})
    return BuiltCommunity(registry, {d.id: built.rooms[d.id] for d in kept if d.id in built.rooms},
                          built.locations)


def run_load(plan: LoadPlan) -> LoadReport:
    """Run the workers and gather what each published; raises if any of them failed."""
    context = multiprocessing.get_context("spawn")  # no inherited paho threads or sockets
    start_line = context.Barrier(plan.processes)
    results: multiprocessing.Queue[WorkerResult] = context.Queue()
    workers = [context.Process(target=_work, args=(index, plan, start_line, results), daemon=True)
               for index in range(plan.processes)]
    for worker in workers:
        worker.start()
    gathered: list[WorkerResult] = []
    try:
        while len(gathered) < len(workers):
            try:
                gathered.append(results.get(timeout=1.0))
            except queue.Empty:
                # A worker that died hard (killed, or failed before it could report) never reports.
                if any(w.exitcode not in (None, 0) for w in workers):
                    raise RuntimeError("a load worker died without reporting") from None
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.terminate()
    failed = [result for result in gathered if result.error]
    if failed:
        raise RuntimeError(f"load worker {failed[0].index} failed:\n{failed[0].error}")
    gathered.sort(key=lambda result: result.index)
    published = sum(result.published for result in gathered)
    elapsed = max(r.finished for r in gathered) - min(r.started for r in gathered)
    return LoadReport(plan.devices, plan.processes, plan.rate, published, elapsed,
                      published / elapsed if elapsed > 0 else 0.0, gathered)


class _SteadyWearer:
    """A wearer who is at home, awake, wearing the band and pottering about: load needs no life story."""

    resting_heart_rate = 70

    def place_at(self, sim_ms: int) -> Place:
        return Place.LIVING

    def worn_at(self, sim_ms: int) -> bool:
        return True

    def steps_between(self, from_ms: int, to_ms: int) -> int:
        return max(0, (to_ms - from_ms) * 5 // MINUTE_MS)


class _Outbox:
    """The devices' sink in load mode: no faults, just collect what they send."""

    def __init__(self) -> None:
        self.messages: list[SimMessage] = []

    def deliver(self, message: SimMessage, *, zigbee2mqtt: bool) -> None:
        self.messages.append(message)


def fleet_for_worker(plan: LoadPlan, index: int, sink: MessageSink) -> list[SimulatedDevice]:
    """This worker's share of the devices: every P-th one, so each process gets a mix of kinds."""
    community = load_community(plan.devices, plan.seed, plan.zigbee2mqtt_share)
    registry = community.registry
    wearer = _SteadyWearer()
    placed = place_devices(registry)
    zone = ZoneInfo(registry.communities[0].timezone)
    calendar = Calendar(datetime.now(UTC), 1, zone)
    contexts = {c.id: DeviceContext(seed=plan.seed, community=c.id, calendar=calendar, sink=sink,
                                    home=community.locations[c.id],
                                    wearers={r.id: wearer for r in registry.residents},
                                    compounds={device_id: d.compound for device_id, d in placed.items()})
                for c in registry.communities}
    return [simulator_for(d.kind)(d, contexts[placed[d.id].community])
            for d in registry.devices[index::plan.processes]]


def _work(index: int, plan: LoadPlan, start_line: Barrier,
          results: multiprocessing.Queue[WorkerResult]) -> None:
    try:
        results.put(_publish_share(index, plan, start_line))
    except BaseException:
        start_line.abort()  # release the others rather than leave them waiting for this one
        results.put(WorkerResult(index, 0, 0.0, 0.0, traceback.format_exc()))


def _publish_share(index: int, plan: LoadPlan, start_line: Barrier) -> WorkerResult:
    outbox = _Outbox()
    fleet = fleet_for_worker(plan, index, outbox)
    quota = None
    if plan.total is not None:  # spread the remainder over the first workers
        quota = plan.total // plan.processes + (index < plan.total % plan.processes)
    rate = plan.rate / plan.processes
    publisher = plan.connect(f"sim-load-{index}")
    publisher.start()
    acks = AckWindow(1_000)
    last_ts = [0] * len(fleet)
    sent = 0
    next_check = _PACE_EVERY
    start_line.wait(_START_TIMEOUT_S)  # connect first, then all start together
    started, began = time.time(), time.perf_counter()
    deadline = None if plan.duration_s is None else began + plan.duration_s
    try:
        while quota is None or sent < quota:
            for slot, device in enumerate(fleet):
                ts = max(time.time_ns() // 1_000_000, last_ts[slot] + 1)  # strictly increasing per device
                last_ts[slot] = ts
                device.report(ts)
                for message in outbox.messages:
                    acks.add(publisher.publish(message.topic, message.payload, qos=message.qos))
                    sent += 1
                outbox.messages.clear()
                if quota is not None and sent >= quota:
                    break
                if sent >= next_check:
                    next_check = sent + _PACE_EVERY
                    now = time.perf_counter()
                    if deadline is not None and now >= deadline:
                        quota = sent
                        break
                    if rate and (ahead := began + sent / rate - now) > 0:
                        time.sleep(ahead)
        acks.drain()
    finally:
        publisher.stop()
    return WorkerResult(index, acks.acknowledged, started, time.time())
