"""Which track a home's devices put it on, and what `hub registry check` tells a community of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.monitoring_track import EXPECTED, Track, track_of


@pytest.mark.parametrize(("kinds", "track"), [
    (["door_sensor", "motion_sensor", "wristband"], Track.BAND),
    (["door_sensor", "motion_sensor"], Track.INDOOR),
    (["door_sensor", "smart_peephole"], Track.DOOR_ONLY),
    (["smart_peephole"], Track.DOOR_ONLY),
    (["high_altitude_camera"], Track.NONE),
    ([], Track.NONE),
])
def test_a_homes_devices_decide_its_track(kinds: list[str], track: Track) -> None:
    assert track_of(kinds) == track


def test_every_track_says_what_to_expect_and_door_only_waits_longer() -> None:
    assert set(EXPECTED) == set(Track)
    indoor, door = EXPECTED[Track.INDOOR], EXPECTED[Track.DOOR_ONLY]
    assert indoor.median_delay_h is not None and door.median_delay_h is not None
    assert door.median_delay_h > indoor.median_delay_h, "a door contact alone sees only passages"
    assert EXPECTED[Track.NONE].cells() == ("–", "–", "–")


def test_registry_check_lists_each_residents_track(one_of_each_registry: Path) -> None:
    result = CliRunner().invoke(app, ["registry", "check", str(one_of_each_registry)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "ok" in result.output
    row = next(line for line in result.output.splitlines() if " band " in line)
    assert "r1" in row, "the one-of-each home has a wristband: its resident is on the band track"
