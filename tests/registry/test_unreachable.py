"""Alerts a registry would leave with no one to tell: what `hub registry check` warns of, and the docs'
example registry, which leaves none."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from hub.alerts.directory import Gap, unreachable_kinds
from hub.cli import app
from hub.registry import Registry, RegistryFile
from tests.registry_builder import RegistryBuilder

ROOT = Path(__file__).resolve().parents[2]


def building_with_camera(*staff: tuple[str, str, str]) -> RegistryBuilder:
    builder = (RegistryBuilder().community("sunshine", "阳光社区").compound("c1").building("b7", floors=18)
               .grid("g7").household("h1402", unit="7-2-1402")
               .caregiver("cg-li", "李女士", "family"))
    for cg, name, role in staff:
        builder.caregiver(cg, name, role)
    return (builder.resident("r-wang", "王奶奶", caregivers={"cg-li": 1})
            .device("door-1402", "door_sensor", household="h1402")
            .device("hac-07", "high_altitude_camera", building="b7"))


def test_without_staff_the_buildings_and_equipments_alerts_reach_nobody() -> None:
    gaps = unreachable_kinds(building_with_camera().registry())
    assert gaps == [
        Gap("community sunshine", ("battery_low", "camera_offline", "device_offline", "lens_blocked",
                                   "low_frame_rate", "storage_failed", "tamper", "unreachable"),
            ("duty_officer",)),
        Gap("community sunshine", ("falling_object",), ("property_security", "duty_officer")),
    ]


def test_a_duty_officer_is_enough_and_a_resident_with_no_one_is_a_gap() -> None:
    registry = (building_with_camera(("cg-duty", "刘值班", "duty_officer"))
                .resident("r-zhao", "赵爷爷", household="h1402").registry())
    assert unreachable_kinds(registry) == []  # falling objects reach the duty officer, a tier later
    without_staff = building_with_camera().resident("r-zhao", "赵爷爷", household="h1402").registry()
    assert Gap("resident r-zhao", (), ("family", "duty_officer")) in unreachable_kinds(without_staff)
    assert not any(gap.place == "resident r-wang" for gap in unreachable_kinds(without_staff))


def test_registry_check_warns_and_still_passes(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    building_with_camera().dump(path)
    result = CliRunner().invoke(app, ["registry", "check", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert ("warning: community sunshine: falling_object would reach nobody"
            " (add a property_security or duty_officer)") in result.output


def test_the_docs_example_registry_leaves_no_alert_unreachable() -> None:
    text = (ROOT / "docs/operators/running-the-hub.md").read_text(encoding="utf-8")
    example = re.search(r"## The registry.*?```yaml\n(.*?)```", text, re.S)
    assert example is not None
    registry = Registry(RegistryFile.model_validate(yaml.safe_load(example.group(1))))
    assert registry.devices, "the example has devices and a camera to raise alerts"
    assert unreachable_kinds(registry) == []
