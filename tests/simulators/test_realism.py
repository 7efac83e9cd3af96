"""The realism statistics on a log small enough to count by hand, and the simulated community against
the four real homes: a change that makes simulated lives regular again fails here."""

from __future__ import annotations

import math

import pytest

from tests.benchmarks.realism import (
    DAY_S,
    HOUR_S,
    STATISTICS,
    activity_log,
    compare,
    logs_from_rows,
    pooled,
    real_homes,
    realism,
    simulated_population,
)


def at(day: int, hour: float) -> float:
    return day * DAY_S + hour * HOUR_S


# Two days: a quiet first night, a bathroom trip at 02:00 on the second, and an outing 09:00-10:00.
TIMES = [at(0, 8), at(0, 8 + 10 / 60), at(0, 12), at(0, 20), at(1, 2), at(1, 9), at(1, 10), at(1, 21)]
PLACES = ["home", "home", "home", "home", "home", "entrance", "entrance", "home"]


def test_statistics_of_a_hand_made_log() -> None:
    log = activity_log("r", [*TIMES, at(1, 15)], [*PLACES, "still"], span=(0, 2 * DAY_S - 1))
    assert log.days == 2
    assert len(log.t) == 8, "a worn band's still report is not activity"
    stats = realism(log, min_entrance_events=2)
    # Silences ≥ 30 min, from the start of the days to their end, by the band they begin in:
    # 00-06: 00:00-08:00, 02:00-09:00; 06-12: 08:10-12:00, 09:00-10:00, 10:00-21:00;
    # 12-18: 12:00-20:00; 18-24: 20:00-02:00, 21:00-24:00.
    assert [stats.silences_per_day(b) for b in range(4)] == [1.0, 1.5, 0.5, 1.0]
    assert sorted(stats.silence_minutes[1].tolist()) == pytest.approx([60, 230, 660])
    assert stats.silence_percentile(1, 50) == pytest.approx(230)
    assert stats.silence_longest(3) == pytest.approx(360)
    assert stats.quiet_night_share == 0.5
    assert stats.events_per_night.tolist() == [0, 1]
    assert stats.mean_night_hours_active == 0.5
    assert stats.door_out_share == pytest.approx(3600 / (2 * DAY_S))
    # Daytime 07-22 inside silences ≥ 3 h: 1 + 3⅚ + 8 + 2 (day 1) and 2 + 11 + 1 (day 2) of 30 hours.
    assert stats.daytime_long_silence_share == pytest.approx((1 + 23 / 6 + 8 + 2 + 2 + 11 + 1) / 30)
    assert stats.events_per_day.tolist() == [4, 4]
    assert stats.cv_events_per_day == 0.0
    assert stats.median_active_minutes_per_day == 4
    assert stats.day_to_day_difference == pytest.approx(7 / 24)  # hours 8, 12, 20 vs 2, 9, 10, 21


def test_a_home_without_a_working_front_door_has_no_door_figure() -> None:
    stats = realism(activity_log("r", TIMES, PLACES, span=(0, 2 * DAY_S - 1)))
    assert math.isnan(stats.door_out_share)


def test_pooling_adds_counts_and_keeps_each_residents_variation() -> None:
    rows = [(f"1970-01-0{1 + int(t // DAY_S)}T{int(t % DAY_S // HOUR_S):02d}:{int(t % HOUR_S // 60):02d}:00",
             resident, "dev", "motion_sensor", place)
            for resident in ("a", "b") for t, place in zip(TIMES, PLACES, strict=True)]
    logs = logs_from_rows(rows, span=(0, 2 * DAY_S - 1))
    assert set(logs) == {"a", "b"}
    both = pooled([realism(log) for log in logs.values()])
    one = realism(logs["a"])
    assert both.days == 4
    assert both.silence_counts == tuple(2 * c for c in one.silence_counts)
    assert both.quiet_night_share == one.quiet_night_share
    assert both.cv_events == (0.0, 0.0)


def test_the_simulated_community_looks_like_the_real_homes() -> None:
    """The benchmark's own community (as `make bench-quality` prints it): every tested statistic of the
    simulated door and motion sensors within its tolerance of the four real homes."""
    homes = list(real_homes().values())
    simulated = simulated_population()
    verdicts = compare(homes, simulated.kit)
    assert len(verdicts) == len(STATISTICS)
    failed = [(v.statistic.name, round(v.simulated, 3), round(v.real, 3), v.statistic.tolerance.text)
              for v in verdicts if v.tested and not v.passed]
    assert failed == []
