"""The live terminal view of a running hub (rich): messages/s per kind, stored counts, dead letters,
export backlog and broker state, redrawn once a second."""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Group
from rich.table import Table
from rich.text import Text

from devices import KINDS
from hub.alerts.directory import alert_labels
from hub.alerts.service import AlertService
from hub.clock import Clock, FollowedClock
from hub.export.influxdb import ExportStats
from hub.intake_processes import MainIntake
from hub.local_time import local_time, zone_of
from hub.registry import Registry


class LiveView:
    def __init__(self, intake: MainIntake, clock: Clock, alerts: AlertService, export: ExportStats | None, *,
                 broker_url: str, registry: Registry) -> None:
        """`export`: None without InfluxDB; `broker_url` as shown (its password masked); `registry`: the
        one the hub started with: the names and the first community's time zone the view shows."""
        self._intake = intake
        self._clock = clock
        self._alert_service = alerts
        self._export = export
        self._broker_url = broker_url
        self._last_received: Counter[str] = Counter()
        self._last_at = time.monotonic()
        self._rates: dict[str, float] = {}
        self._registry = registry
        self._zone = zone_of(registry)

    def render(self) -> Group:
        intake, clock = self._intake, self._clock
        stats = intake.stats()
        now = time.monotonic()
        elapsed = max(now - self._last_at, 1e-3)
        received = Counter(stats.received)
        self._rates = {kind: (received[kind] - self._last_received[kind]) / elapsed for kind in received}
        self._last_received, self._last_at = received, now

        store_error = intake.store_error()
        hub_time = local_time(clock.now_ms(), self._zone, "%Y-%m-%d %H:%M")
        simulated = " (simulated)" if isinstance(clock, FollowedClock) else ""
        header = Text.assemble(
            ("smart-community hub  ", "bold"),
            ("● connected", "green") if intake.connected else ("○ not connected", "red"),
            f"  broker {self._broker_url}  ",
            ("store ok" if store_error is None else f"STORE FAILING: {store_error}",
             "green" if store_error is None else "bold red"),
            f"  clock {hub_time}{simulated}",
        )
        kinds = Table(title="intake", expand=True)
        for column in ("kind", "msg/s", "received", "stored"):
            kinds.add_column(column, justify="left" if column == "kind" else "right")
        for kind in [*KINDS, "?"]:
            if kind == "?" and not received[kind]:
                continue
            kinds.add_row(kind, f"{self._rates.get(kind, 0.0):,.0f}", f"{received[kind]:,}",
                          f"{stats.stored[kind]:,}")
        kinds.add_row(Text("total", style="bold"), f"{sum(self._rates.values()):,.0f}",
                      f"{sum(received.values()):,}", f"{sum(stats.stored.values()):,}")

        dead = Table(title="dead letters", expand=True)
        dead.add_column("reason")
        dead.add_column("count", justify="right")
        for reason, count in stats.dead_letters.most_common():
            dead.add_row(reason, f"{count:,}")
        if not stats.dead_letters:
            dead.add_row(Text("none", style="dim"), "0")

        parts: list[Table | Text] = [header, kinds, dead]
        export = self._export
        if export is not None:
            parts.append(Text(f"InfluxDB export: {export.exported:,} sent, backlog {export.backlog:,}, "
                              f"{export.failures} failed writes" + (f" ({export.last_error})"
                                                                    if export.last_error else "")))
        parts.append(self._alerts())
        own = intake.pipeline.thread.stats  # the last batch is this process's (in worker mode it takes none)
        last = (f", last {own.last_batch_size} msgs committed in {own.last_commit_s * 1000:.1f} ms"
                if intake.processes is None else f" by {len(intake.processes.names)} intake processes")
        parts.append(Text(f"batches {stats.batches:,}{last}; ignored {stats.ignored:,}", style="dim"))
        return Group(*parts)

    def _alerts(self) -> Table:
        table = Table(title="latest alerts (hub alerts list)", expand=True)
        for column in ("raised", "kind", "severity", "about", "state", "count"):
            table.add_column(column)
        alerts = self._alert_service.list(limit=8)
        for alert in alerts:
            raised = local_time(alert.first_seen_ms, self._zone, "%m-%d %H:%M")
            style = {"critical": "bold red", "warning": "yellow"}.get(alert.severity)
            words = alert_labels(self._registry, alert)
            about = words.people or words.building_name or alert.subject  # the name people know
            table.add_row(raised, alert.kind, alert.severity, about, alert.state, str(alert.count),
                          style=style)
        if not alerts:
            table.add_row(Text("none yet", style="dim"), "", "", "", "", "")
        return table
