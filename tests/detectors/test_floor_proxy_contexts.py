"""The floor stand-in's context features (`python -m tests.benchmarks.floor_proxy --context-leads`): each
is known when its event happens, and a home where a feature is not known keeps the room floor."""

from __future__ import annotations

import numpy as np

from tests.benchmarks import floor_proxy as fp
from tests.benchmarks.real_homes import HOUR_S, Home, read_home


def _home(events: list[tuple[int, str, str, str]]) -> Home:
    return Home("HouseX", np.array([e[0] for e in events], dtype=np.int64), [e[1:] for e in events], [])


MAT = ("mat", "pressure_sensor", "bedroom")
DOOR = ("door", "door_sensor", "kitchen")
FLUSH = ("flush", "appliance", "toilet")


def test_parity_alternates_interval_kinds_and_leaves_other_events_starts() -> None:
    home = _home([(0, *DOOR), (10, *FLUSH), (20, *DOOR), (30, *FLUSH), (40, *DOOR)])
    assert fp.ends_by_parity(home).tolist() == [False, False, True, False, False]


def test_bed_occupied_from_press_to_release_and_unknown_without_a_mat() -> None:
    home = _home([(0, *DOOR), (10, *MAT), (20, *DOOR), (30, *MAT), (40, *DOOR)])
    assert fp._bed_occupied(home, fp.ends_by_parity(home)).tolist() == [0, 1, 1, 0, 0]
    no_mat = _home([(0, *DOOR), (10, *DOOR)])
    assert fp._bed_occupied(no_mat, fp.ends_by_parity(no_mat)).tolist() == [-1, -1]


def test_recent_activity_counts_the_window_up_to_each_event() -> None:
    home = _home([(60 * m, *DOOR) for m in (0, 1, 2, 3, 4, 5, 100)])
    # 1, 2, ... 6 events in the 30 min up to each, then one alone: bins < 5, 5-19, >= 20.
    assert fp._recent(home, 1800, fp.RECENT_EVENTS_CUTS, False).tolist() == [0, 0, 0, 0, 1, 1, 0]
    assert fp._recent(home, 1800, fp.RECENT_DEVICES_CUTS, True).tolist() == [0] * 7


def test_after_a_long_silence_for_the_hours_after_it_ends() -> None:
    t = [0, 4 * HOUR_S, 5 * HOUR_S, 7 * HOUR_S]
    home = _home([(x, *DOOR) for x in t])
    assert fp._after_long_silence(home, 3 * HOUR_S, 2 * HOUR_S).tolist() == [0, 1, 1, 0]


def test_a_feature_not_known_leaves_the_room_floor() -> None:
    home = read_home("E")     # no bed mat
    room = fp.floors_h(home, shrink=3)
    np.testing.assert_array_equal(fp.floors_h(home, shrink=3, context="bed occupied"), room)
    assert not np.array_equal(fp.floors_h(home, shrink=3, context="events in 30 min"), room)
