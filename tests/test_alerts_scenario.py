"""The simulated week of the simulators issue, end to end through a real Mosquitto and the hub: every SOS,
fall and falling object is alerted, the collapses are detected (and so is every night exit, door left
open, device gone offline and battery run down), and `hub simulate score` says so with numbers that
match the ground truth. Gradual illness has no detector yet and is only counted."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from hub.mqtt import BrokerAddress
from hub.registry import Registry
from hub.store import Store
from simulators.incidents import IncidentKind, write_ground_truth
from simulators.publishing import publish_simulation
from simulators.scenario import Scenario
from simulators.simulation import Simulation
from tests.conftest import StartHub
from tests.real_servers import Mosquitto

ALWAYS_ALERTED = (
    "sos",
    "fall",
    "falling_object",
    "collapse",
    "night_exit",
    "door_left_open",
    "device_offline",
    "battery_low",
)


def caught_up(store: Store) -> bool:
    return store.export_cursor("evaluation") >= store.last_observation_id() > 0


def test_a_simulated_week_raises_the_alerts_its_ground_truth_expects(
    tmp_path: Path, mosquitto: Mosquitto, start_hub: StartHub
) -> None:
    scenario = Scenario.model_validate(
        {
            "seed": 11,
            "start": "2026-11-02T00:00:00+08:00",
            "days": 7,
            "community": {"households": 50, "wandering_risk_share": 0.2, "zigbee2mqtt_share": 0.3},
            "incidents": {kind.value: 2 for kind in IncidentKind},
        }
    )
    simulation = Simulation(scenario)
    registry, truth = tmp_path / "registry.yaml", tmp_path / "truth.jsonl"
    Registry(simulation.registry).dump(registry)
    write_ground_truth(simulation.incidents, truth)
    hub = start_hub(registry, env={"HUB_CLOCK": "mqtt"})
    summary = publish_simulation(simulation, BrokerAddress.from_url(mosquitto.url))
    hub.wait_for(
        lambda s: s.count_observations() >= sum(summary.unique_readings_by_kind.values()),
        60,
        "the week stored",
    )
    hub.wait_for(caught_up, 60, "evaluation caught up")

    env = {"HUB_STORE_PATH": str(hub.store_path), "HUB_REGISTRY_PATH": str(registry), "COLUMNS": "200"}
    listed = subprocess.run(
        [sys.executable, "-m", "hub", "alerts", "list", "--json", "--limit", "100000"],
        env={**hub.env, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text(listed.stdout)
    report_path = tmp_path / "score.json"
    scored = subprocess.run(
        [
            sys.executable,
            "-m",
            "hub",
            "simulate",
            "score",
            "--truth",
            str(truth),
            "--alerts",
            str(alerts),
            "--out",
            str(report_path),
        ],
        env={**hub.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert scored.returncode == 0, scored.stderr
    report = json.loads(report_path.read_text())

    staged = Counter(i.incident.value for i in simulation.incidents)
    assert {kind: r["staged"] for kind, r in report["incidents"].items()} == dict(staged)
    for kind in ALWAYS_ALERTED:
        assert report["incidents"][kind]["detected"] == staged[kind], (kind, report["missed"])
    for kind in ("sos", "fall", "falling_object"):
        assert report["incidents"][kind]["median_delay_s"] < 120, "immediate alerts come at once"
    assert report["incidents"]["collapse"]["p95_delay_s"] < 24 * 3600
