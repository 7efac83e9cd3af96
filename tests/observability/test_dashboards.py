"""The dashboards against the real things: the committed JSON is what the builders make; every PromQL of
the ops and supervision dashboards runs on a real Prometheus scraping a running hub and returns data, and
the supervision dashboard's variables list the places; every InfluxQL of the
community dashboard runs on a real InfluxDB 1.x loaded with what the hub's exporter writes for a simulated
community and returns series; the provisioning files point at what the dashboards use."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import community, ops, supervision
from dashboards.generate import GENERATED, render, stale
from devices import KINDS
from hub.alerts.service import AlertService
from hub.alerts.settings import AlertSettings
from hub.clock import CLOCK_TOPIC, SystemClock
from hub.embedded_broker import free_loopback_port
from hub.export.influxdb import to_lines
from hub.export.state import snapshot_lines, take_snapshot
from hub.intake import IntakeStats, Router, RouterLimits, build_batch
from hub.mqtt import Message, Publisher
from hub.registry import Registry
from hub.store import Store
from simulators.community import CommunityParameters
from simulators.message import hub_clock_at
from simulators.scenario import Scenario
from simulators.simulation import Simulation
from tests.conftest import StartHub, StartPrometheus
from tests.observability.support import PUBLISHED, in_a_subdistrict, scrape, with_caregivers
from tests.real_servers import HubProcess, InfluxDB1, Mosquitto, Prometheus, require_binary, wait_until
from tests.traffic import NO_FAULTS

PROVISIONING = Path(__file__).parents[2] / "dashboards" / "provisioning"
MINUTE_MS = 60_000


def generated(uid: str) -> dict[str, Any]:
    model: dict[str, Any] = json.loads((GENERATED / f"{uid}.json").read_text(encoding="utf-8"))
    return model


def targets(model: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in model["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target


def datasource_uids(node: object) -> set[str]:
    """Every datasource uid anywhere in a dashboard model (panels, targets, variables)."""
    if isinstance(node, dict):
        found = {node["datasource"]["uid"]} if isinstance(node.get("datasource"), dict) else set()
        return found.union(*(datasource_uids(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(datasource_uids(item) for item in node))
    return set()


# --- generated JSON and provisioning ------------------------------------------------------------------


def test_generated_json_is_what_the_builders_make() -> None:
    assert stale() == [], "run `python -m dashboards` and commit dashboards/generated/"
    assert render(ops.build()) == render(ops.build()), "rendering is deterministic"
    assert {path.name for path in GENERATED.glob("*.json")} == {
        f"{uid}.json" for uid in (ops.UID, community.UID, supervision.UID)}


def dashboards_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dashboards", *args], capture_output=True, text=True,
                          cwd=Path(__file__).parents[2], check=False)


@pytest.mark.integration
def test_dashboards_command_checks_and_refuses_unknown_options() -> None:
    result = dashboards_command("--check")
    assert result.returncode == 0, result.stdout + result.stderr
    result = dashboards_command("--bogus")
    assert result.returncode == 2 and "usage" in result.stderr


def test_provisioning_points_at_the_generated_dashboards_and_their_datasources() -> None:
    [providers_file] = (PROVISIONING / "dashboards").glob("*.yaml")
    providers = yaml.safe_load(providers_file.read_text(encoding="utf-8"))
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")

    [sources_file] = (PROVISIONING / "datasources").glob("*.yaml")
    sources = {source["uid"]: source for source in yaml.safe_load(sources_file.read_text())["datasources"]}
    uids = (ops.UID, community.UID, supervision.UID)
    used = set().union(*(datasource_uids(generated(uid)) for uid in uids))
    assert used == set(sources), "every datasource a dashboard uses is provisioned, and no other"
    assert {source["type"] for source in sources.values()} == {"prometheus", "influxdb"}
    influx = next(source for source in sources.values() if source["type"] == "influxdb")
    assert influx["jsonData"]["version"] == "InfluxQL"
    assert influx["secureJsonData"]["httpHeaderValue1"] == "Token ${INFLUXDB_TOKEN}"
    assert {"${INFLUXDB_URL}", "${PROMETHEUS_URL}"} == {source["url"] for source in sources.values()}
    for uid in uids:
        for title, target in targets(generated(uid)):
            assert target["datasource"]["uid"] in sources, title


@pytest.mark.integration
def test_production_prometheus_config_is_valid_and_scrapes_the_hub() -> None:
    config = Path(__file__).parents[2] / "dashboards" / "prometheus.yml"
    promtool = require_binary("promtool", "/usr/bin/promtool")
    result = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    [job] = yaml.safe_load(config.read_text())["scrape_configs"]
    # Every hub node of the compose stack, and nothing else.
    services = yaml.safe_load((config.parents[1] / "docker-compose.yml").read_text())["services"]
    nodes = [f"{name}:8080" for name, service in services.items()
             if "HUB_NODE_ID" in (service.get("environment") or {})]
    assert len(nodes) == 2
    assert sorted(job["static_configs"][0]["targets"]) == sorted(nodes)


# --- the ops dashboard on a real Prometheus ------------------------------------------------------------

METRIC = re.compile(r"\bhub_[a-z_]+\b")


def promql_of(model: dict[str, Any]) -> list[tuple[str, str]]:
    return [(title, target["expr"]) for title, target in targets(model)]


class Traffic(threading.Thread):
    """A running community in simulated time: each round the clock moves a minute and every native
    device of the one-of-each registry reports, with one malformed message among them."""

    def __init__(self, mosquitto: Mosquitto, start_ms: int) -> None:
        super().__init__(name="traffic", daemon=True)
        self._publisher = Publisher(mosquitto.address)
        self._publisher.start()
        self.now_ms = start_ms
        self.stopping = threading.Event()

    def publish_round(self, *, sos: bool = False) -> None:
        self.now_ms += MINUTE_MS
        self._publisher.publish(CLOCK_TOPIC, str(self.now_ms), retain=True)
        for kind, (device, _) in PUBLISHED.items():
            payload: dict[str, Any] = {**KINDS[kind].example, "ts": self.now_ms}
            if kind == "wristband" and sos:
                payload["sos"] = True
            if kind == "high_altitude_camera":
                payload["event_id"] = f"hac-{self.now_ms}"
            self._publisher.publish(f"sc/sunshine/{kind}/{device}/event", json.dumps(payload))
        self._publisher.publish("sc/sunshine/door_sensor/door-1/event", b"{not json").wait(10)

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            self.publish_round()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)
        self._publisher.stop()


def scrapes(prometheus: Prometheus) -> int:
    result = prometheus.query("count_over_time(hub_broker_connected[1m])")["result"]
    return int(result[0]["value"][1]) if result else 0


def acknowledge(hub: HubProcess, registry_path: Path, kind: str, at_ms: int) -> None:
    registry = Registry.load(registry_path)
    service = AlertService(hub.store_path, lambda: registry, SystemClock(), AlertSettings())
    try:
        [alert] = service.list(kind=kind)
        service.acknowledge(alert.id, by="duty", at_ms=at_ms)
    finally:
        service.close()


def label_values(prometheus: Prometheus, label: str, match: str) -> list[str]:
    """What a Grafana `label_values(match, label)` variable lists."""
    url = f"{prometheus.url}/api/v1/label/{label}/values?{urllib.parse.urlencode({'match[]': match})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        values: list[str] = json.loads(response.read())["data"]
    return values


def as_grafana_sends(expr: str, instance: str) -> str:
    """The query with its variables as Grafana interpolates them: a regex variable escaped for the regex,
    then for the PromQL string; the places as "All" (.*); the period and rate window as the test's."""
    escaped = re.escape(instance).replace("\\", "\\\\")
    return (expr.replace("$__rate_interval", "20s").replace("$__range", "5m").replace("$instance", escaped)
            .replace("$subdistrict", ".*").replace("$community", ".*").replace("$grid", ".*"))


def resolve_and_acknowledge_again(hub: HubProcess, registry_path: Path, traffic: Traffic) -> None:
    """While Prometheus scrapes: the acknowledged falling object is resolved as a false alarm, and the
    next one the camera reports is acknowledged, so the period's figures have something to count."""
    registry = Registry.load(registry_path)
    service = AlertService(hub.store_path, lambda: registry, SystemClock(), AlertSettings())
    try:
        [fallen] = service.list(kind="falling_object", state="acknowledged")
        service.resolve(fallen.id, "false_alarm", by="duty")
        wait_until(lambda: service.list(kind="falling_object", state="open"), 30,
                   what="the next falling object")
        [again] = service.list(kind="falling_object", state="open")
        service.acknowledge(again.id, by="duty", at_ms=traffic.now_ms)
    finally:
        service.close()


def test_every_prometheus_query_returns_data_from_a_real_prometheus_scraping_the_hub(
    mosquitto: Mosquitto, start_hub: StartHub, start_prometheus: StartPrometheus, one_of_each_registry: Path
) -> None:
    with_caregivers(one_of_each_registry)
    in_a_subdistrict(one_of_each_registry, "hm")
    hub = start_hub(one_of_each_registry, {
        "HUB_CLOCK": "mqtt", "HUB_INFLUX_URL": f"http://127.0.0.1:{free_loopback_port()}",  # InfluxDB down
        "HUB_INFLUX_RETRY_MAX_S": "1", "HUB_ALERTS_WEBHOOK_URL": f"http://127.0.0.1:{free_loopback_port()}/",
        "HUB_ALERTS_WEBHOOK_ALLOW_HTTP": "true",
        "HUB_ALERTS_WEBHOOK_TIMEOUT_S": "1", "HUB_ALERTS_DELIVERY_BACKOFF_INITIAL_S": "0.2",
        "HUB_ALERTS_DELIVERY_BACKOFF_MAX_S": "1", "HUB_ALERTS_TICK_INTERVAL_S": "0.2",
        "HUB_ALERTS_APPRISE_ENABLED": "false",
    })
    served = scrape(hub)
    queries = [*promql_of(generated(ops.UID)), *promql_of(generated(supervision.UID))]
    for title, expr in queries:
        for metric in METRIC.findall(expr):
            assert re.search(rf"^{metric}[{{ ]", served, re.MULTILINE), f"{title}: the hub serves no {metric}"

    traffic = Traffic(mosquitto, SystemClock().now_ms() - 24 * 60 * MINUTE_MS)
    try:
        traffic.publish_round(sos=True)  # an SOS alert left open, and a falling object acknowledged below
        wait_until(lambda: "hub_alerts_open{" in scrape(hub) and re.search(
            r'^hub_alerts_open\{kind="falling_object",severity="critical"\} 1.0$', scrape(hub), re.MULTILINE),
            30, what="the alerts")
        acknowledge(hub, one_of_each_registry, "falling_object", traffic.now_ms + MINUTE_MS)
        traffic.start()
        prometheus = start_prometheus([hub.http_url.removeprefix("http://")])
        wait_until(prometheus.targets_up, 30, what="prometheus scraping the hub")
        wait_until(lambda: scrapes(prometheus) >= 3, 30, what="three scrapes")
        resolve_and_acknowledge_again(hub, one_of_each_registry, traffic)
        wait_until(lambda: scrapes(prometheus) >= 6, 30, what="six scrapes")

        [variable] = generated(ops.UID)["templating"]["list"]
        assert variable["query"] == "label_values(hub_broker_connected, instance)"
        instances = label_values(prometheus, "instance", "hub_broker_connected")
        assert instances == [hub.http_url.removeprefix("http://")]
        # The supervision dashboard's 街道 → 社区 → 网格 variables, each within the one chosen above it.
        places = {v["name"]: v["query"] for v in generated(supervision.UID)["templating"]["list"]}
        listed = {}
        for name, query in places.items():
            match = re.fullmatch(r"label_values\((.*), (\w+)\)", query)
            assert match is not None and match[2] == name, query
            listed[name] = label_values(prometheus, name, match[1].replace("$subdistrict", "hm")
                                        .replace("$community", "sunshine"))
        assert listed == {"subdistrict": ["hm"], "community": ["sunshine"], "grid": ["g1"]}

        empty = []
        for title, expr in queries:
            query = as_grafana_sends(expr, instances[0])
            result = prometheus.query(query)["result"]  # raises with Prometheus' message on an error
            values = [float(series["value"][1]) for series in result]
            if not any(not math.isnan(v) for v in values):
                empty.append(f"{title}: {query} -> {result}")
        assert empty == [], "queries without data:\n" + "\n".join(empty)
        share = dict(promql_of(generated(supervision.UID)))["False alarms 误报率"]
        [resolved] = prometheus.query(as_grafana_sends(share, instances[0]))["result"]
        assert float(resolved["value"][1]) == 1.0  # the one alert resolved: a false alarm
    finally:
        traffic.stop()


# --- the community dashboard on a real InfluxDB 1.x ----------------------------------------------------


class LoadedCommunity:
    def __init__(self, server: InfluxDB1, registry: Registry, store: Store, start_ms: int,
                 end_ms: int) -> None:
        self.server = server
        self.registry = registry
        self.store = store
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.community = registry.data.communities[0].id

    def run(self, influxql: str, building: str = ".*") -> list[dict[str, Any]]:
        """A dashboard query as Grafana would send it for the whole simulated period."""
        query = (influxql.replace("$timeFilter", f"time >= {self.start_ms}ms AND time <= {self.end_ms}ms")
                 .replace("$__interval", "10m").replace("$community", re.escape(self.community))
                 .replace("$building", building))
        return self.server.query(query)

    def stored(self, kind: str, field: str) -> int:
        """Readings of `kind` whose `field` is true, in the hub's store."""
        return sum(1 for row in self.store.observations_after(0, 10**9)
                   if row.kind == kind and row.fields.get(field) is True)


@pytest.fixture(scope="module")
def loaded(influxdb1: InfluxDB1, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedCommunity]:
    """A simulated day of a small community with one incident of each kind, taken in by the hub's own
    router and store, then written to InfluxDB as the hub's exporter writes it, with state snapshots."""
    simulation = Simulation(Scenario.model_validate({
        "seed": 5, "start": "2026-11-16T00:00:00+08:00", "days": 1, "faults": NO_FAULTS,
        "community": CommunityParameters(households=8, buildings=2, zigbee2mqtt_share=0.3)}))
    registry = Registry(simulation.registry)
    store = Store(tmp_path_factory.mktemp("hub") / "hub.sqlite3", synchronous="normal")
    router = Router(lambda: registry, "zigbee2mqtt", RouterLimits())
    messages = [Message(m.topic, m.payload, hub_clock_at(m.sim_ms), mid=0, qos=1, connection=0)
                for m in simulation.messages() if m.kind in KINDS]
    for i in range(0, len(messages), 5000):
        store.commit(build_batch(router, messages[i:i + 5000], 1024, IntakeStats()))
    rows = store.observations_after(0, 10**9)
    influxdb1.write(to_lines(rows, registry))

    start_ms, end_ms = min(row.ts for row in rows), max(row.ts for row in rows)
    community_id = registry.data.communities[0].id
    resident = registry.data.residents[0].id
    devices = sorted(registry.devices)
    building = registry.devices[devices[0]].building
    lines = []
    for at_ms in range(start_ms, end_ms, 10 * MINUTE_MS):
        late = (at_ms - start_ms) // (10 * MINUTE_MS) % 3 == 0
        lines += snapshot_lines(take_snapshot(
            registry, at_ms, inactive_residents=[resident] if late else [], offline_devices=devices[:2],
            unresolved_alerts=[(community_id, building, "sos", "critical", "open", 1),
                               (community_id, building, "battery_low", "info", "acknowledged", 1)]))
    influxdb1.write(lines)
    yield LoadedCommunity(influxdb1, registry, store, start_ms, end_ms)
    store.close()


def influxql_of(model: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f"{title} [{target['refId']}]", target["query"]) for title, target in targets(model)]


def test_every_community_query_returns_series_from_a_real_influxdb_1(loaded: LoadedCommunity) -> None:
    buildings = sorted({d.building for d in loaded.registry.devices.values()})
    empty = []
    for title, query in influxql_of(generated(community.UID)):
        loaded.run(query, re.escape(buildings[0]))  # one building: runs (raises with InfluxDB's message)
        series = loaded.run(query)  # all buildings: runs, and has data
        if not any(value is not None for s in series for row in s["values"] for value in row[1:]):
            empty.append(f"{title}: {query}")
    assert empty == [], "queries without data:\n" + "\n".join(empty)


def test_community_variables_list_the_communities_and_their_buildings(loaded: LoadedCommunity) -> None:
    variables = {v["name"]: v["query"] for v in generated(community.UID)["templating"]["list"]}
    assert set(variables) == {"community", "building"}
    values = {row[1] for s in loaded.run(variables["community"]) for row in s["values"]}
    assert values == {loaded.community}
    values = {row[1] for s in loaded.run(variables["building"]) for row in s["values"]}
    assert values == {d.building for d in loaded.registry.devices.values()}


def stat_query(title: str) -> str:
    """The query of the community dashboard's single-number panel called `title`."""
    [panel] = [p for p in generated(community.UID)["panels"] if p["type"] == "stat" and p["title"] == title]
    [target] = panel["targets"]
    return str(target["query"])


def total(series: list[dict[str, Any]]) -> float:
    return float(sum(value for s in series for row in s["values"] for value in row[1:] if value is not None))


def test_community_figures_count_what_the_hub_stored(loaded: LoadedCommunity) -> None:
    """The panels count what the store holds: SOS presses, falling objects, door openings."""
    assert loaded.stored("wristband", "sos") >= 1
    assert loaded.stored("high_altitude_camera", "falling_object") >= 1
    assert total(loaded.run(stat_query("SOS presses"))) == loaded.stored("wristband", "sos")
    assert total(loaded.run(stat_query("Falling objects"))) == loaded.stored("high_altitude_camera",
                                                                             "falling_object")
    [events] = [p for p in generated(community.UID)["panels"]
                if p.get("title") == "Events per kind and building"]
    [doors] = [t["query"] for t in events["targets"] if '"door_sensor"' in t["query"]]
    assert total(loaded.run(doors)) == loaded.stored("door_sensor", "open")
    # A snapshot's figures: two devices offline and one resident at home too long (every third snapshot).
    offline = loaded.run(stat_query("Devices offline"))
    assert {value for s in offline for row in s["values"] for value in row[1:]} == {2}
    inactive = loaded.run(stat_query("Residents inactive longer than usual"))
    assert {value for s in inactive for row in s["values"] for value in row[1:]} == {0, 1}
