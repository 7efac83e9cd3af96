"""Publishing a simulation through a real broker, paced against wall time.

The simulators know no MQTT client: whoever wires them to a broker (the hub's CLI, the tests) passes a
`Connect`, which opens a `Connection` (the hub's `Publisher` is one). One connection carries everything,
clock ticks included, so the broker delivers
the ticks to the hub in order with the device messages. With `acceleration` N, one simulated second
takes 1/N s of wall time; with 0, messages go out as fast as the broker acknowledges them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from devices.kind import epoch_ms_to_iso
from simulators.message import SimMessage
from simulators.simulation import Simulation
from simulators.summary import PublishReport, RunSummary, SummaryTracker

_PROGRESS_EVERY = 2_000  # messages between progress bar refreshes: rich is slow next to publishing
_SLEEP_AT_LEAST_S = 0.002  # shorter waits are not worth a system call; the pace catches up next time


class Published(Protocol):
    def wait(self, timeout: float | None = None) -> bool:
        """True once the broker acknowledged the message (QoS 1), waiting at most `timeout` s."""
        ...


class Connection(Protocol):
    """A publishing connection to a broker that never blocks on a publish."""

    def start(self) -> None: ...

    def publish(self, topic: str, payload: bytes | str, *, qos: int = 1,
                retain: bool = False) -> Published: ...

    def stop(self) -> None: ...


Connect = Callable[[str], Connection]
"""Opens a connection (not started yet) with the given client id."""


class AckWindow:
    """Bounds how many publishes may await the broker's PUBACK.

    The publisher never blocks and paho queues without limit, so without a bound a fast generator
    would pile the whole run up in memory. Waiting for the oldest handle when the window is full keeps
    the queue short, and a publish counts as done only once acknowledged.
    """

    def __init__(self, size: int, timeout_s: float = 30.0) -> None:
        self._pending: deque[Published] = deque()
        self._size = size
        self._timeout_s = timeout_s
        self.acknowledged = 0

    def add(self, published: Published) -> None:
        self._pending.append(published)
        if len(self._pending) > self._size:
            self._confirm(self._pending.popleft())

    def drain(self) -> None:
        while self._pending:
            self._confirm(self._pending.popleft())

    def _confirm(self, published: Published) -> None:
        if not published.wait(self._timeout_s):
            raise TimeoutError(f"the broker acknowledged nothing for {self._timeout_s:.0f} s")
        self.acknowledged += 1


ProgressCallback = Callable[[int, SimMessage], None]  # (messages so far, the latest one)


def publish_messages(messages: Iterable[SimMessage], connect: Connect, *, acceleration: float = 0.0,
                     client_id: str = "", window: int = 1_000, stop: threading.Event | None = None,
                     on_progress: ProgressCallback | None = None) -> PublishReport:
    """Publish `messages` in order on one connection; returns once the broker acknowledged them all, or
    once `stop` is set (after the acknowledgements of what was published).

    `on_progress` is called every few thousand messages.
    """
    if acceleration < 0:
        raise ValueError("acceleration must be positive, or 0 for as fast as possible")
    stop = stop or threading.Event()
    publisher = connect(client_id)
    publisher.start()
    acks = AckWindow(window)
    started = time.perf_counter()
    origin_ms: int | None = None
    try:
        for count, message in enumerate(messages, 1):
            if stop.is_set():
                break
            if acceleration:
                if origin_ms is None:
                    origin_ms = message.sim_ms
                due = started + (message.sim_ms - origin_ms) / 1000 / acceleration
                delay = due - time.perf_counter()
                if delay > _SLEEP_AT_LEAST_S:
                    stop.wait(delay)
            acks.add(publisher.publish(message.topic, message.payload, qos=message.qos,
                                       retain=message.retain))
            if on_progress is not None and count % _PROGRESS_EVERY == 0:
                on_progress(count, message)
        acks.drain()
    finally:
        publisher.stop()
    return PublishReport(acks.acknowledged, time.perf_counter() - started)


def publish_simulation(simulation: Simulation, connect: Connect, *, acceleration: float = 0.0,
                       console: Console | None = None, client_id: str = "") -> RunSummary:
    """Publish a whole simulation, with a progress bar on `console` (None: silently)."""
    tracker = SummaryTracker(simulation.scenario.seed, simulation.start_ms, simulation.end_ms,
                             simulation.incidents)
    started = time.perf_counter()
    messages = tracker.track(simulation.messages())
    if console is None:
        report = publish_messages(messages, connect, acceleration=acceleration, client_id=client_id)
    else:
        with _progress_bar(console) as progress:
            task = progress.add_task("publishing", total=simulation.end_ms - simulation.start_ms,
                                     messages=0, now="")

            def advance(count: int, latest: SimMessage) -> None:
                progress.update(task, completed=latest.sim_ms - simulation.start_ms, messages=count,
                                now=epoch_ms_to_iso(latest.sim_ms)[:16])

            report = publish_messages(messages, connect, acceleration=acceleration, client_id=client_id,
                                      on_progress=advance)
            progress.update(task, completed=simulation.end_ms - simulation.start_ms,
                            messages=report.published, now=epoch_ms_to_iso(simulation.end_ms)[:16])
    return tracker.summary(time.perf_counter() - started, report)


def summarize_simulation(simulation: Simulation) -> RunSummary:
    """Generate without publishing: the same summary a published run would report."""
    tracker = SummaryTracker(simulation.scenario.seed, simulation.start_ms, simulation.end_ms,
                             simulation.incidents)
    started = time.perf_counter()
    for message in simulation.messages():
        tracker.observe(message)
    return tracker.summary(time.perf_counter() - started)


def _progress_bar(console: Console) -> Progress:
    """Progress in simulated time, since the number of messages is only known at the end."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("sim {task.fields[now]}"),
        TextColumn("{task.fields[messages]:,} msgs"), TimeElapsedColumn(), console=console,
    )
