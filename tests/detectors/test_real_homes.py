"""The real-homes benchmark (`make bench-real`): its scoring rules, its baselines, and a regression bound
for the detector on one real home."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks.real_homes import (
    DAY_S,
    HOUR_S,
    WARMUP_S,
    Dataset,
    Home,
    Stream,
    bound_lines,
    build_streams,
    forced_false_alarms,
    hub_alerts,
    read_homes,
    score,
    summarize,
    timeout_alerts,
    write_events_csv,
)

# The default detector on two real homes (base stream and 40 incident copies each), which raised 62 and 119
# false alarms a month before the learned silence floor: at most one false alarm in the 9 days each has
# after its warm-up, and nearly every collapse found. Tighten as the detector improves.
MAX_FA_PER_MONTH = 3.5
MIN_DETECTED = 0.95


@pytest.fixture(scope="module")
def homes() -> dict[str, Home]:
    return read_homes()


def _tiny() -> Dataset:
    """One home: events on days 0, 8, 9 and 10 (warm-up ends on day 7), its base stream and 4 incidents."""
    t = np.array([0, 8 * DAY_S, 9 * DAY_S, 10 * DAY_S], dtype=np.int64)
    home = Home("H", t, [("d1", "door_sensor", "kitchen")] * len(t), [])
    window = 24 * HOUR_S
    t0s = [9 * DAY_S + HOUR_S, 9 * DAY_S + 12 * HOUR_S, 8 * DAY_S + 12 * HOUR_S, 9 * DAY_S + 2 * HOUR_S]
    streams = [Stream("H-base", "H", 4, 10 * DAY_S, None)]
    streams += [Stream(f"H-inc-{i}", "H", int(np.searchsorted(t, t0)), t0 + window, t0)
                for i, t0 in enumerate(t0s)]
    return Dataset({"H": home}, streams, window)


def test_scoring_rules_on_a_hand_made_case() -> None:
    data = _tiny()
    day7_12h = WARMUP_S + 12 * HOUR_S
    minute = 60
    alerts = {
        # Before the warm-up's end: not counted. 0, 30 and 80 min: one alarm (each < 60 min from the
        # previous). 3 h later: a second one.
        "H-base": [6 * DAY_S, day7_12h, day7_12h + 30 * minute, day7_12h + 80 * minute,
                   day7_12h + 260 * minute],
        "H-inc-0": [9 * DAY_S + 3 * HOUR_S],                            # 2 h after t0
        "H-inc-1": [9 * DAY_S + 6 * HOUR_S, 9 * DAY_S + 13 * HOUR_S],  # raised in the quiet spell: a re-raise
        # H-inc-2 has no alert: missed, counted as the 24 h window
        "H-inc-3": [8 * DAY_S + 13 * HOUR_S, 9 * DAY_S + 6 * HOUR_S],  # earlier alert before the last event
    }
    home = score(data, alerts)["H"]
    assert home.false_alarms == 2
    assert home.days == 3.0
    assert home.delays_h == [2.0, None, None, 4.0]
    s = summarize([home], 24.0)
    assert (s.n, s.median_h, s.p95_h, s.det_24h, s.det_window) == (4, 14.0, 24.0, 0.5, 0.5)
    assert s.fa_per_month == 20.0


def test_fixed_timeout_alerts_after_each_long_enough_silence() -> None:
    t = np.array([0, 10 * HOUR_S, 11 * HOUR_S], dtype=np.int64)
    data = Dataset({"H": Home("H", t, [("d", "door_sensor", "x")] * 3, [])},
                   [Stream("a", "H", 3, 30 * HOUR_S, None), Stream("b", "H", 3, 18 * HOUR_S, None)], 0)
    alerts = timeout_alerts(data, 8)
    assert alerts == {"a": [8 * HOUR_S, 19 * HOUR_S], "b": [8 * HOUR_S]}


def test_silences_a_day_long_force_false_alarms_on_whoever_finds_every_collapse_within_a_day() -> None:
    """The lower bound, by hand: a 72 h window after a 7-day warm-up, a stream of 17 days."""
    d, h, m = DAY_S, HOUR_S, 60
    t = np.array([0,                 # the silence to day 8 begins before the warm-up's end: no t0 there
                  8 * d,             # A: 24.5 h
                  9 * d + 30 * m,    # B: 24.5 h, its window 30 min after A's: their alerts count once
                  10 * d + h,        # 1 h
                  10 * d + 2 * h,    # C: 26 h
                  11 * d + 4 * h,    # 30 h, but labelled away: no at-home t0
                  12 * d + 10 * h,   # D: 44 h
                  14 * d + 6 * h,    # E: 66 h, begun after the last t0 (17 d - 72 h): only with any_t0
                  17 * d], dtype=np.int64)
    home = Home("H", t, [("d", "door_sensor", "entrance")] * len(t), [(11 * d + 4 * h, 12 * d)])
    data = Dataset({"H": home}, [Stream("H-base", "H", len(t), 17 * d, None)], 72 * h)
    assert forced_false_alarms(data) == {"H": 3}
    assert forced_false_alarms(data, any_t0=True) == {"H": 4}
    # Found within 26 h less 2 s, a collapse 1 s after C's first event is found 1 s before the next one,
    # in the base too; within 26 h less 1 s, perhaps just when it comes. A and B no longer force one.
    assert forced_false_alarms(data, within_s=26 * h - 2) == {"H": 2}
    assert forced_false_alarms(data, within_s=26 * h - 1) == {"H": 1}
    scores = score(data, {})
    assert scores["H"].days == 10.0
    assert bound_lines(data, scores).splitlines()[0] == (
        "H: any detector that finds every collapse within 24 h raises at least 3 false alarms here = 9.00 "
        "/ resident-month (with a t0 anywhere after the warm-up: 4 = 12.00)")


def test_the_lower_bound_on_the_real_homes(homes: dict[str, Home]) -> None:
    """HouseD's door alone stays shut for 24.3 h from 2003-04-04 13:56 and 24.9 h from 2003-04-09 13:14
    at home (the second after the last t0 of a 72 h window); HouseB's broken installation is silent 51 h."""
    door = build_streams(homes, incident_hours=72, entrance_only=True)
    assert forced_false_alarms(door) == {"HouseC": 0, "HouseD": 1}
    assert forced_false_alarms(door, any_t0=True) == {"HouseC": 0, "HouseD": 2}
    assert forced_false_alarms(build_streams(homes)) == {"HouseB": 1, "HouseC": 0, "HouseD": 0, "HouseE": 0}


def test_incident_copies_follow_the_protocol(homes: dict[str, Home]) -> None:
    data = build_streams(homes)
    assert len(data.streams) == 4 * 41
    for s in data.streams:
        home = data.homes[s.home]
        if s.t0 is None:
            assert s.n == len(home.t)
            continue
        assert data.warmup_end(s.home) <= s.t0 <= int(home.t[-1]) - data.window_s
        assert not home.is_away(s.t0)
        assert s.n == np.count_nonzero(home.t < s.t0)
        if int(s.resident.rsplit("-", 1)[1]) % 2:
            assert s.t0 - 1 in home.t
    door = build_streams(homes, incident_hours=72, entrance_only=True)
    assert list(door.homes) == ["HouseC", "HouseD"]


def test_fixed_timeouts_reproduce_the_reference_figures(homes: dict[str, Home]) -> None:
    data = build_streams(homes)
    twelve = summarize(score(data, timeout_alerts(data, 12)).values(), 24)
    assert round(twelve.fa_per_month, 1) == 3.1
    # t0 1 s after an event: 12 h less 1 s
    assert (round(twelve.median_h, 1), round(twelve.p95_h, 1), round(twelve.det_24h, 2)) == (12.0, 12.0, 0.96)
    assert round(summarize(score(data, timeout_alerts(data, 8)).values(), 24).fa_per_month, 1) == 15.4
    door = build_streams(homes, incident_hours=72, entrance_only=True)
    day = summarize(score(door, timeout_alerts(door, 24)).values(), 72)
    assert (round(day.fa_per_month, 1), day.det_24h) == (3.1, 1.0)


@pytest.mark.parametrize("home", ["HouseD", "HouseE"])
def test_default_detector_on_a_real_home(homes: dict[str, Home], tmp_path: Path, home: str) -> None:
    """A regression bound: the hub's default detector on a real home's recording and its incidents, so
    that a later change cannot quietly bring the flood of false alarms back."""
    data = build_streams({home: homes[home]})
    csv_path = tmp_path / "EVENTS.csv"
    write_events_csv(data, csv_path)
    house = score(data, hub_alerts(csv_path, tmp_path / "alerts.jsonl", 24))[home]
    s = summarize([house], 24)
    assert s.n == 40
    assert s.fa_per_month <= MAX_FA_PER_MONTH, f"{house.false_alarms} in {house.days:.1f} days"
    assert s.det_24h >= MIN_DETECTED
