"""Community: what is happening where people live, for the community's staff. InfluxDB in InfluxQL: the
readings (one measurement per device kind) and the hub's state snapshots (`hub/export/state.py`).

Only InfluxQL that InfluxDB 1.x understands — no subqueries, no functions newer than 1.x — so the same
dashboard works on 1.x, on 2.x through its v1 API (with a DBRP mapping) and on 3.x. Tags are written
`"name"::tag` in WHERE: the high-altitude camera also has a *field* called `building` (the building it
reports), and an unqualified name would mean that field.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, VariableRefresh, VariableSort

from dashboards import panels
from dashboards.sources import INFLUXDB, InfluxQL
from devices import KINDS

UID = "smart-community-community"
COMMUNITY = '"community"::tag =~ /^$community$/'
PLACE = f'{COMMUNITY} AND "building"::tag =~ /^$building$/'
# Snapshots are at least a minute of hub time apart, so a one-minute bucket holds at most one snapshot
# per place: summing over places per minute gives exact totals.
PER_SNAPSHOT = "GROUP BY time(1m) fill(none)"



def events() -> list[tuple[str, dict[str, str], str]]:
    """What counts as an event of each kind, as the kind declares it (`DeviceKind.dashboard_events`): its
    measurement, the fields counted (column alias -> field) and the condition a reading must meet.
    Heartbeats, health and battery-only reports are not events."""
    return [(name, dict(counted.columns), f'"{counted.when_true}" = true' if counted.when_true else "")
            for name, kind in KINDS.items() for counted in kind.dashboard_events]


def measurement_of(alert: str) -> str:
    """The measurement (kind) whose readings raise `alert` at once (`DeviceKind.immediate_alerts`)."""
    return next(name for name, kind in KINDS.items() if alert in kind.immediate_alerts)


def count_events(measurement: str, columns: dict[str, str], condition: str, ref_id: str) -> InfluxQL:
    counts = ", ".join(f'count("{field}") AS "{alias}"' for alias, field in columns.items())
    where = f"{condition} AND " if condition else ""
    return InfluxQL(f'SELECT {counts} FROM "{measurement}" WHERE {where}$timeFilter AND {PLACE} '
                    'GROUP BY time($__interval), "building" fill(0)', ref_id).alias("$tag_building $col")


def state_total(field: str, ref_id: str) -> InfluxQL:
    return InfluxQL(f'SELECT sum("{field}") FROM "hub_state" WHERE $timeFilter AND {PLACE} {PER_SNAPSHOT}',
                    ref_id)


def build() -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard("Smart community · residents and buildings").uid(UID)
        .description("Events per kind and building, residents silent for longer than usual, open alerts, "
                     "SOS and falling objects, devices offline or running low.")
        .tags(["smart-community", "community"]).timezone("browser").time("now-24h", "now").refresh("1m")
        .tooltip(DashboardCursorSync.CROSSHAIR).editable()
        .with_variable(
            dashboard.QueryVariable("community").label("Community").datasource(INFLUXDB)
            .query('SHOW TAG VALUES WITH KEY = "community"').refresh(VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(VariableSort.ALPHABETICAL_ASC).multi(True).include_all(True).all_value(".*"))
        .with_variable(
            dashboard.QueryVariable("building").label("Building").datasource(INFLUXDB)
            .query('SHOW TAG VALUES WITH KEY = "building" WHERE "community" =~ /^$community$/')
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD).sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*"))
    )
    board.with_row(dashboard.Row("Now"))
    board.with_panel(panels.figure(
        INFLUXDB,
        "Residents inactive longer than usual", "Residents at home whose silence has gone past what their "
        "own daily rhythm explains (the inactivity detector's warning point), at the latest snapshot.",
        state_total("residents_inactive_longer_than_usual", "A"), width=4))
    board.with_panel(panels.figure(
        INFLUXDB,
        "Open alerts", "Alerts nobody has acknowledged yet, at the latest snapshot (whole community: "
        "alerts are counted per community, not per building).",
        InfluxQL(f'SELECT sum("open") FROM "hub_alerts" WHERE $timeFilter AND {COMMUNITY} {PER_SNAPSHOT}',
                 "A"), width=4))
    board.with_panel(panels.figure(
        INFLUXDB,
        "SOS presses", "Wristband SOS presses in the time range.",
        InfluxQL(f'SELECT count("sos") FROM "{measurement_of("sos")}" WHERE "sos" = true AND $timeFilter AND '
                 f"{PLACE}", "A"),
        width=4))
    board.with_panel(panels.figure(
        INFLUXDB,
        "Falling objects", "Objects the high-altitude cameras saw fall, in the time range.",
        InfluxQL(f'SELECT count("falling_object") FROM "{measurement_of("falling_object")}" WHERE '
                 f'"falling_object" = true AND $timeFilter AND {PLACE}', "A"), width=4))
    board.with_panel(panels.figure(
        INFLUXDB,
        "Devices offline", "Devices silent past their check-in interval, or that said they are offline.",
        state_total("devices_offline", "A"), width=4))
    board.with_panel(panels.figure(
        INFLUXDB,
        "Low battery", "Devices with a low-battery alert not resolved yet.",
        state_total("devices_low_battery", "A"), width=4))
    board.with_row(dashboard.Row("Over time"))
    board.with_panel(panels.graph(
        INFLUXDB,
        "Events per kind and building", "Door openings, motion at home, the peephole's doorbells, "
        "lingering visitors and comings and goings, wristband SOS presses and falls, and falling objects, "
        "per building. Heartbeats, camera health and battery-only reports are left out.",
        [count_events(measurement, columns, condition, chr(ord("A") + i))
         for i, (measurement, columns, condition) in enumerate(events())], width=24, height=9))
    board.with_panel(panels.graph(
        INFLUXDB,
        "Residents inactive longer than usual", "Per building, the most at any snapshot in each interval.",
        [InfluxQL('SELECT max("residents_inactive_longer_than_usual") FROM "hub_state" WHERE $timeFilter '
                  f'AND {PLACE} GROUP BY time($__interval), "building" fill(none)', "A")
         .alias("$tag_building")]))
    board.with_panel(panels.graph(
        INFLUXDB,
        "Open alerts by kind", "Alerts not acknowledged yet, per kind, at each snapshot.",
        [InfluxQL(f'SELECT sum("open") FROM "hub_alerts" WHERE $timeFilter AND {COMMUNITY} '
                  'GROUP BY time(1m), "kind" fill(none)', "A").alias("$tag_kind")]))
    board.with_panel(panels.graph(
        INFLUXDB,
        "SOS presses and falls", "Wristband SOS presses and reported falls per building.",
        [count_events(measurement_of("sos"), {"SOS": "sos"}, '"sos" = true', "A"),
         count_events(measurement_of("fall"), {"fall": "fall"}, '"fall" = true', "B")]))
    board.with_panel(panels.graph(
        INFLUXDB,
        "Devices offline and low battery", "Per building, the most at any snapshot in each interval.",
        [InfluxQL('SELECT max("devices_offline") AS "offline", max("devices_low_battery") AS "low battery" '
                  f'FROM "hub_state" WHERE $timeFilter AND {PLACE} GROUP BY time($__interval), "building" '
                  "fill(none)", "A").alias("$tag_building $col")]))
    board.with_panel(panels.listing(
        INFLUXDB,
        "Falling objects seen", "Each detection: the floors it probably fell from, the camera and its "
        "confidence. Several cameras may see the same object (one alert is raised).",
        InfluxQL('SELECT "floor_min", "floor_max", "confidence", "camera_id", "event_id" FROM '
                 f'"{measurement_of("falling_object")}" WHERE "falling_object" = true AND $timeFilter '
                 f'AND {PLACE} GROUP BY "building"', "A").table(), width=24))
    return board
