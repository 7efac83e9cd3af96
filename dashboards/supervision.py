"""Supervision (督查): alerts, response times, overdue alerts, false alarms, device coverage and visits per
subdistrict (街道), community (社区) and grid (网格). Prometheus, from the hub's `hub_supervision_*` series
(docs/operators/metrics.md, docs/operators/supervision.md).

Every hub node sharing a store serves the same figures (they are read from the store), so each query takes
one node's value of each series (`max without (instance, job)`) before adding grids up."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, VariableRefresh, VariableSort

from dashboards import panels
from dashboards.sources import PROMETHEUS, promql

UID = "smart-community-supervision"
ONE_NODE = "max without (instance, job)"
CHOSEN = 'subdistrict=~"$subdistrict", community=~"$community", grid=~"$grid"'
PERIOD = "$__range"  # the dashboard's time range: the period the figures are over


def chosen(metric: str, matcher: str = "", *, increase: bool = False) -> str:
    """`metric` of the chosen places (plus `matcher`), one node's series; with `increase`, how much each
    grew over the dashboard's period."""
    selected = f"{metric}{{{CHOSEN}{', ' + matcher if matcher else ''}}}"
    if increase:
        selected = f"increase({selected}[{PERIOD}])"
    return f"{ONE_NODE} ({selected})"


def total(metric: str, matcher: str = "", *, by: str = "", increase: bool = False) -> str:
    return f"sum{f' by ({by})' if by else ''} ({chosen(metric, matcher, increase=increase)})"


def acknowledgement(q: float, by: str = "", *, over_period: bool = True) -> str:
    """The `q` quantile of first sighting → acknowledgement, over the period (or the store's history)."""
    buckets = chosen("hub_supervision_acknowledgement_seconds_bucket", increase=over_period)
    return f"histogram_quantile({q}, sum by (le{', ' + by if by else ''}) ({buckets}))"


def false_alarm_share(by: str = "") -> str:
    """Resolutions by a person over the period with the outcome false_alarm, as a share of them."""
    resolved = "hub_supervision_alerts_resolved_total"
    false_alarms = total(resolved, 'outcome="false_alarm"', by=by, increase=True)
    by_people = total(resolved, 'outcome!="cleared"', by=by, increase=True)
    return f"{false_alarms} / {by_people}"


def coverage(by: str = "") -> str:
    """Devices in service not under an unresolved offline alert, as a share of them, now."""
    reporting = total("hub_supervision_devices", 'state="reporting"', by=by)
    return f"{reporting} / {total('hub_supervision_devices', by=by)}"


def _variable(name: str, label: str, selector: str) -> dashboard.QueryVariable:
    return (dashboard.QueryVariable(name).label(label).datasource(PROMETHEUS)
            .query(f"label_values(hub_supervision_alerts_unresolved{selector}, {name})")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*"))


def build() -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard("Smart community · supervision 督查").uid(UID)
        .description("Per subdistrict, community and grid: alerts, time to acknowledge, overdue alerts, "
                     "false alarms, device coverage and patrol visits, over the chosen period.")
        .tags(["smart-community", "supervision"]).timezone("browser").time("now-30d", "now").refresh("5m")
        .tooltip(DashboardCursorSync.CROSSHAIR).editable()
        .with_variable(_variable("subdistrict", "街道 Subdistrict", ""))
        .with_variable(_variable("community", "社区 Community", '{subdistrict=~"$subdistrict"}'))
        .with_variable(_variable("grid", "网格 Grid",
                                 '{subdistrict=~"$subdistrict", community=~"$community"}'))
    )
    board.with_row(dashboard.Row("Now 当前"))
    board.with_panel(panels.figure(
        PROMETHEUS, "Open alerts 未响应", "Alerts nobody has acknowledged yet.",
        promql(total("hub_supervision_alerts_unresolved", 'state="open"'), "open", "A"), width=4))
    board.with_panel(panels.figure(
        PROMETHEUS, "Acknowledged, not resolved 处置中", "Alerts acknowledged and not resolved yet.",
        promql(total("hub_supervision_alerts_unresolved", 'state="acknowledged"'), "acknowledged", "A"),
        width=4))
    board.with_panel(panels.figure(
        PROMETHEUS, "Overdue 超时", "Unresolved alerts past their resolution deadline (told overdue).",
        promql(total("hub_supervision_alerts_overdue"), "overdue", "A"), width=4))
    board.with_panel(panels.figure(
        PROMETHEUS, "Device coverage 设备在线", "Devices in service not under an unresolved offline alert.",
        promql(coverage(), "coverage", "A"), unit="percentunit", width=4))
    board.with_panel(panels.figure(
        PROMETHEUS, "Visits overdue 走访逾期", "Patrol visits due in the last 30 days missed, or past due "
        "and not done.",
        promql(total("hub_supervision_visits", 'status="overdue"'), "overdue", "A"), width=4))
    board.with_panel(panels.figure(
        PROMETHEUS, "Visits done 走访完成", "Patrol visits due in the last 30 days and done.",
        promql(total("hub_supervision_visits", 'status="done"'), "done", "A"), width=4))
    board.with_row(dashboard.Row("Over the period 本期"))
    board.with_panel(panels.figure(
        PROMETHEUS, "Alerts raised 告警", "Alerts raised over the dashboard's time range.",
        promql(total("hub_supervision_alerts_total", increase=True), "raised", "A"), width=6))
    board.with_panel(panels.figure(
        PROMETHEUS, "Acknowledged within (median) 响应中位", "First sighting to acknowledgement, median of "
        "the acknowledgements over the time range (from the histogram's buckets: an estimate).",
        promql(acknowledgement(0.5), "median", "A"), unit="s", width=6))
    board.with_panel(panels.figure(
        PROMETHEUS, "Acknowledged within (p90) 响应 P90", "First sighting to acknowledgement, 90th "
        "percentile of the acknowledgements over the time range (from the histogram's buckets).",
        promql(acknowledgement(0.9), "p90", "A"), unit="s", width=6))
    board.with_panel(panels.figure(
        PROMETHEUS, "False alarms 误报率", "Resolutions by a person over the time range with the outcome "
        "false_alarm, as a share of them.",
        promql(false_alarm_share(), "false alarms", "A"), unit="percentunit", width=6))
    board.with_row(dashboard.Row("Per grid 各网格"))
    board.with_panel(panels.graph(
        PROMETHEUS, "Unresolved alerts per grid", "Open and acknowledged alerts of each grid (no grid: "
        "about a building).",
        [promql(total("hub_supervision_alerts_unresolved", by="community, grid"), "{{community}} {{grid}}",
                "A")]))
    board.with_panel(panels.graph(
        PROMETHEUS, "Overdue alerts per grid", "Unresolved alerts past their resolution deadline.",
        [promql(total("hub_supervision_alerts_overdue", by="community, grid"), "{{community}} {{grid}}",
                "A")]))
    board.with_panel(panels.graph(
        PROMETHEUS, "Acknowledgement time per grid (median)", "First sighting to acknowledgement, median "
        "over every acknowledged alert the store holds.",
        [promql(acknowledgement(0.5, "community, grid", over_period=False), "{{community}} {{grid}}", "A")],
        unit="s"))
    board.with_panel(panels.graph(
        PROMETHEUS, "Device coverage per grid", "Devices in service not under an unresolved offline "
        "alert, as a share of the grid's devices.",
        [promql(coverage("community, grid"), "{{community}} {{grid}}", "A")], unit="percentunit"))
    return board
