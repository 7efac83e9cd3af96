"""Ops: is the hub taking, storing, exporting and evaluating everything, and are alerts getting through?
Prometheus, from the hub's `/metrics` (names in docs/operators/metrics.md)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, VariableRefresh, VariableSort

from dashboards import panels
from dashboards.sources import PROMETHEUS, promql

UID = "smart-community-ops"
RATE = "$__rate_interval"


def series(metric: str, matcher: str = "") -> str:
    """`metric` of the hubs chosen in the dashboard's `instance` variable (plus `matcher`)."""
    return f'{metric}{{instance=~"$instance"{", " + matcher if matcher else ""}}}'


def total(metric: str, by: str = "", matcher: str = "") -> str:
    return f"sum{f' by ({by})' if by else ''} ({series(metric, matcher)})"


def per_second(counter: str, by: str = "", function: str = "rate") -> str:
    return f"sum{f' by ({by})' if by else ''} ({function}({series(counter)}[{RATE}]))"


def quantile(q: float, histogram: str, *, by: str = "le", rated: bool = True) -> str:
    buckets = series(f"{histogram}_bucket")
    if rated:
        buckets = f"rate({buckets}[{RATE}])"
    return f"histogram_quantile({q}, sum by ({by}) ({buckets}))"


def build() -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard("Smart community · hub operations").uid(UID)
        .description("The hub's health: intake, storage, export, evaluation and alert delivery.")
        .tags(["smart-community", "ops"]).timezone("browser").time("now-6h", "now").refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR).editable()
        .with_variable(
            dashboard.QueryVariable("instance").label("Hub").datasource(PROMETHEUS)
            .query("label_values(hub_broker_connected, instance)").refresh(VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(VariableSort.ALPHABETICAL_ASC).multi(True).include_all(True).all_value(".*"))
    )
    board.with_row(dashboard.Row("Intake"))
    board.with_panel(panels.figure(
        PROMETHEUS,
        "Broker connected", "1 while the hub is connected and subscribed to its MQTT broker.",
        promql(f"min({series('hub_broker_connected')})", "connected", "A"), width=4))
    board.with_panel(panels.figure(
        PROMETHEUS,
        "Store writable", "0 while commits to the embedded store fail (disk full, read-only): nothing is "
        "acknowledged then, and the backlog waits at the broker.",
        promql(f"min({series('hub_store_writable')})", "writable", "A"), width=4))
    board.with_panel(panels.figure(
        PROMETHEUS,
        "Waiting for intake", "Messages received and not yet taken into a batch.",
        promql(total("hub_intake_queue"), "queued", "A"), width=4))
    board.with_panel(panels.figure(
        PROMETHEUS,
        "Readings committed / s", "Readings stored per second, all kinds.",
        promql(per_second("hub_messages_committed_total"), "committed", "A"), unit="reqps", width=6))
    board.with_panel(panels.figure(
        PROMETHEUS,
        "Dead letters / s", "Messages refused per second, all reasons.",
        promql(per_second("hub_dead_letters_total"), "dead letters", "A"), unit="reqps", width=6))
    board.with_panel(panels.graph(
        PROMETHEUS,
        "Ingest rate per kind", "Messages per second taken from the broker, committed, and acknowledged "
        "after their commit. Received above acknowledged for long means intake is falling behind.",
        [promql(per_second("hub_messages_received_total", "kind"), "received {{kind}}", "A"),
         promql(per_second("hub_messages_committed_total", "kind"), "committed {{kind}}", "B"),
         promql(per_second("hub_messages_acked_total", "kind"), "acked {{kind}}", "C")],
        unit="reqps"))
    board.with_panel(panels.graph(
        PROMETHEUS,
        "Ingestion lag", "Device time to commit, in hub time: a device's clock, the network, the broker's "
        "queue while the hub was away, and the hub's own batching.",
        [promql(quantile(0.5, "hub_ingestion_lag_seconds"), "median", "A"),
         promql(quantile(0.95, "hub_ingestion_lag_seconds"), "p95", "B")],
        unit="s"))
    board.with_panel(panels.graph(
        PROMETHEUS,
        "Dead letters per reason", "Messages kept as dead letters instead of readings; `hub deadletter "
        "list --reason R` shows them, `hub deadletter replay` routes them again.",
        [promql(f"{per_second('hub_dead_letters_total', 'reason', 'increase')} > 0", "{{reason}}", "A")]))
    board.with_panel(panels.graph(
        PROMETHEUS,
        "Batches and commits", "Messages per committed batch (median) and the time one batch's store "
        "transaction takes (p95, ms).",
        [promql(quantile(0.5, "hub_intake_batch_size"), "batch size (median)", "A"),
         promql(f"{quantile(0.95, 'hub_store_commit_seconds')} * 1000", "commit ms (p95)", "B")]))
    board.with_row(dashboard.Row("Export and evaluation"))
    board.with_panel(panels.graph(
        PROMETHEUS,
        "Backlogs", "Committed readings not yet in InfluxDB (it grows while InfluxDB is down and drains "
        "when it is back) and not yet evaluated for alerts.",
        [promql(total("hub_influx_export_backlog"), "InfluxDB export", "A"),
         promql(total("hub_evaluation_backlog"), "evaluation", "B")]))
    board.with_panel(panels.graph(
        PROMETHEUS,
        "InfluxDB writes", "Points written per second, failed writes (retried with back-off) and points "
        "refused for good (they stay in the store).",
        [promql(per_second("hub_influx_exported_points_total"), "points written / s", "A"),
         promql(per_second("hub_influx_export_failures_total"), "failed writes / s", "B"),
         promql(per_second("hub_influx_rejected_points_total"), "points refused / s", "C")]))
    board.with_panel(panels.graph(
        PROMETHEUS,
        "Tick time", "How long one tick of the time-driven checks takes: doors left open, devices silent, "
        "and the inactivity detector over every resident.",
        [promql(quantile(0.5, "hub_evaluation_tick_seconds"), "median", "A"),
         promql(quantile(0.95, "hub_evaluation_tick_seconds"), "p95", "B")],
        unit="s"))
    board.with_panel(panels.graph(
        PROMETHEUS,
        "Residents evaluated", "Residents the detector follows, and how many it evaluates per second over "
        "all ticks.",
        [promql(total("hub_detector_residents"), "residents", "A"),
         promql(per_second("hub_detector_residents_evaluated_total"), "evaluated / s", "B")]))
    board.with_row(dashboard.Row("Alerts"))
    board.with_panel(panels.graph(
        PROMETHEUS,
        "Alerts waiting", "Alerts nobody has acknowledged yet, and acknowledged ones not resolved yet.",
        [promql(f"{total('hub_alerts_open', 'kind, severity')} > 0", "open {{kind}} ({{severity}})", "A"),
         promql(f"{total('hub_alerts_acknowledged', 'kind, severity')} > 0",
                "acknowledged {{kind}} ({{severity}})", "B")]))
    board.with_panel(panels.graph(
        PROMETHEUS,
        "Acknowledgement time and escalations", "How long alerts took from first sighting to "
        "acknowledgement (median over the store's history, per severity), and escalations to a next tier "
        "of caregivers because nobody acknowledged in time.",
        [promql(quantile(0.5, "hub_alert_acknowledgement_seconds", by="le, severity", rated=False),
                "acknowledged after (median, {{severity}})", "A"),
         promql(per_second("hub_alert_escalations_total", "kind", "increase"), "escalations {{kind}}", "B")]))
    board.with_panel(panels.graph(
        PROMETHEUS,
        "Sink delivery failures", "Failed delivery attempts per sink (each retry counts) and notifications "
        "still queued or given up; a sink failing never delays the others.",
        [promql(per_second("hub_alert_delivery_failures_total", "sink", "increase"),
                "failed attempts {{sink}}", "A"),
         promql(total("hub_alert_deliveries", "sink", 'status="pending"'), "pending {{sink}}", "B"),
         promql(total("hub_alert_deliveries", "sink", 'status="failed"'), "given up {{sink}}", "C")]))
    return board
