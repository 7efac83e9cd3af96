"""The inactivity detector core: batch equivalence, rhythm, prior, outings, coverage, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import (
    NEVER,
    NO_SEVERITY,
    Evidence,
    InactivityDetector,
    Severity,
    evidence_of,
    is_activity,
    live_evidence,
    state_from_bytes,
    state_to_bytes,
)
from detectors.inactivity import (
    NO_ROOM,
    ROOMS,
    _by_resident_then_time,
    _distinct_pairs,
    _distinct_sorted,
    room_of,
)

HOUR = 3_600_000
MINUTE = 60_000
SHANGHAI = 8 * 3600
# Monday 2026-03-02 00:00 in Shanghai, as epoch ms.
MONDAY = 1_772_380_800_000


def local(day: int, hour: float) -> int:
    return MONDAY + day * 24 * HOUR + int(hour * HOUR)


def trained(days: int = 14, n: int = 1) -> InactivityDetector:
    """Residents awake 07:00–22:00 with activity every 10 minutes, asleep and still at night."""
    detector = InactivityDetector().init(n, SHANGHAI)
    for day in range(days):
        times = np.arange(local(day, 7), local(day, 22), 10 * MINUTE)
        for resident in range(n):
            detector.partial_fit(np.full(len(times), resident), times, np.zeros(len(times)))
    return detector


def test_new_resident_gets_the_conservative_prior_timeout() -> None:
    detector = InactivityDetector(prior_events_per_hour=1.0, warning_surprise=10.0).init(1, SHANGHAI)
    detector.partial_fit([0], [local(0, 10)], [Evidence.INDOOR])
    assert (detector.deadline_ms_[0] - local(0, 10)) / HOUR == pytest.approx(12.0), "the silence prior"
    assert detector.decide(detector.score(local(0, 21.9)))[0] == NO_SEVERITY

    # With the learned floor out of play (prior and cap of a second), the rate model's own prior.
    rates = InactivityDetector(prior_events_per_hour=1.0, warning_surprise=10.0, silence_prior_s=1.0,
                               silence_max_s=1.0).init(1, SHANGHAI)
    rates.partial_fit([0], [local(0, 10)], [Evidence.INDOOR])
    timeout_h = (rates.deadline_ms_[0] - local(0, 10)) / HOUR
    # Ten expected minutes at one an hour, a little sooner for the one minute already seen.
    assert 9.0 < timeout_h <= 10.0
    assert rates.decide(rates.score(local(0, 15)))[0] == NO_SEVERITY


def test_daytime_silence_alerts_but_the_same_silence_at_night_does_not() -> None:
    detector = trained()
    day, night = local(14, 10), local(14, 22)
    detector.partial_fit([0], [day], [Evidence.INDOOR])
    assert detector.decide(detector.score(day + 4 * HOUR))[0] >= Severity.WARNING.rank
    detector.partial_fit([0], [night], [Evidence.INDOOR])
    assert detector.decide(detector.score(night + 4 * HOUR))[0] == NO_SEVERITY
    assert detector.decide(detector.score(night + 9 * HOUR))[0] == NO_SEVERITY  # a whole night's sleep


def test_severity_escalates_from_warning_to_critical() -> None:
    detector = trained()
    start = local(14, 9)
    detector.partial_fit([0], [start], [Evidence.INDOOR])
    warn, crit = int(detector.deadline_ms_[0]), int(detector.critical_ms_[0])
    assert start < warn < crit
    assert detector.decide(detector.score(warn - MINUTE))[0] == NO_SEVERITY
    assert detector.decide(detector.score(warn))[0] == Severity.WARNING.rank
    assert detector.decide(detector.score(crit))[0] == Severity.CRITICAL.rank


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0, SHANGHAI, -5 * 3600, 19_800]))
def test_deadline_is_when_the_score_crosses_the_warning(seed: int, offset: int) -> None:
    rng = np.random.default_rng(seed)
    detector = InactivityDetector().init(5, offset)
    times = np.sort(rng.integers(MONDAY, MONDAY + 20 * 24 * HOUR, 400))
    detector.partial_fit(rng.integers(0, 5, 400), times, rng.choice([0, 2, 4], 400))
    seen = detector.last_activity_ms_ > 0
    deadline = detector.deadline_ms_[seen]
    at = detector.score(deadline, np.flatnonzero(seen))
    a_second_before = detector.score(deadline - 1000, np.flatnonzero(seen))
    # Where the rate decides, the score crosses the warning at the deadline; where the learned floor
    # decides, it is lifted to it there (the rate's surprise may already be past).
    assert np.all(at >= detector.warning_surprise * (1 - 1e-5))
    assert np.all(a_second_before < detector.warning_surprise)
    assert np.all(detector.decide(at, resident_idx=np.flatnonzero(seen)) >= Severity.WARNING.rank)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_a_batch_scores_like_residents_one_at_a_time(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, events = 6, 300
    offsets = rng.choice([0, SHANGHAI, -18_000], n)
    who = rng.integers(0, n, events)
    times = np.sort(rng.integers(MONDAY, MONDAY + 10 * 24 * HOUR, events))
    codes = rng.choice(list(Evidence), events)
    rooms = rng.integers(-1, len(ROOMS), events)
    chunks = np.array_split(np.arange(events), 7)  # the same batches of time for everyone
    together = InactivityDetector(band_min_reports=0.0).init(n, offsets)  # the band's runs are in play
    for chunk in chunks:
        together.partial_fit(who[chunk], times[chunk], codes[chunk], rooms[chunk])
    now = MONDAY + 11 * 24 * HOUR
    scores = together.score(now)
    for r in range(n):
        alone = InactivityDetector(band_min_reports=0.0).init(1, offsets[r])
        for chunk in chunks:
            mine = chunk[who[chunk] == r]
            alone.partial_fit(np.zeros(mine.size), times[mine], codes[mine], rooms[mine])
        np.testing.assert_allclose(alone.score(now), scores[r : r + 1], rtol=1e-6)
        assert alone.deadline_ms_[0] == together.deadline_ms_[r]
        np.testing.assert_allclose(alone.band_run_, together.band_run_[r : r + 1], rtol=1e-5)
        assert alone.decline_ms_[0] == together.decline_ms_[r]
        np.testing.assert_array_equal(alone.silence_longest_h_[0], together.silence_longest_h_[r])
        np.testing.assert_array_equal(alone.silence_room_h_[0], together.silence_room_h_[r])
        np.testing.assert_array_equal(alone.silence_room_n_[0], together.silence_room_n_[r])
        assert alone.last_room_[0] == together.last_room_[r]
        assert alone.decide(alone.score(now))[0] == together.decide(scores)[r]


def test_sensor_only_homes_are_judged_sooner_in_the_day_but_not_at_bedtime() -> None:
    def deadline(start: int, sensor_only_warning: float) -> int:
        detector = InactivityDetector(sensor_only_warning_surprise=sensor_only_warning).init(1, SHANGHAI)
        for day in range(14):
            times = np.arange(local(day, 7), local(day, 22), 10 * MINUTE)
            detector.partial_fit(np.zeros(len(times)), times, np.zeros(len(times)))
        detector.partial_fit([0], [start], [Evidence.INDOOR])
        assert detector.decide(detector.score(int(detector.deadline_ms_[0])))[0] == Severity.WARNING.rank
        return int(detector.deadline_ms_[0])

    morning, bedtime = local(14, 10), local(14, 21.9)
    assert deadline(morning, 6.0) < deadline(morning, 10.0), "the sensors' own threshold, in the day"
    assert deadline(bedtime, 6.0) == deadline(bedtime, 10.0), "a night's sleep keeps the common one"


def test_days_of_thinned_out_activity_are_a_decline_and_one_quiet_day_is_not() -> None:
    detector = trained()  # 90 active minutes a day, 07:00-22:00, for 14 days

    def day(number: int, every_minutes: int) -> None:
        times = np.arange(local(number, 7), local(number, 22), every_minutes * MINUTE)
        detector.partial_fit(np.zeros(len(times)), times, np.zeros(len(times)))

    day(14, 30)  # one quiet day (half the usual): not yet
    day(15, 10)
    day(16, 10)
    assert detector.decline_ms_[0] == NEVER
    day(17, 20)  # then an illness: half the usual, day after day
    day(18, 20)
    assert detector.decline_ms_[0] == NEVER, "judged only once a day is over"
    day(19, 20)
    assert detector.decline_ms_[0] == local(19, 0), "two days at half: established as day 18 ends"
    assert 0.4 < detector.decline_ratio_[0] < 0.6
    day(20, 20)
    assert detector.decline_ms_[0] == local(19, 0), "one decline, not one a day"


def test_a_residents_sensitivity_scales_the_score_and_moves_the_deadline() -> None:
    detector = trained(n=2)
    start = local(14, 10)
    detector.partial_fit([0, 1], [start, start], [Evidence.INDOOR, Evidence.INDOOR])
    detector.set_sensitivity(1, 2.0)
    usual, closer = detector.deadline_ms_
    assert start < closer < usual, "twice as sensitive: warned sooner"
    assert detector.score(closer - 1000, [1])[0] < detector.warning_surprise
    assert detector.decide(detector.score(closer))[1] == Severity.WARNING.rank
    with pytest.raises(ValueError, match="positive"):
        detector.set_sensitivity(0, 0.0)


def band_wearer(days: int = 14, nap_hour: float | None = None) -> InactivityDetector:
    """A resident whose band reports every 5 minutes 07:00-22:00: steps while awake, none while asleep
    at night (worn in bed), and none during a daily 40-minute nap at `nap_hour` if given."""
    detector = InactivityDetector().init(1, SHANGHAI)
    for day in range(days):
        times = np.arange(local(day, 0), local(day + 1, 0), 5 * MINUTE)
        hours = (times - local(day, 0)) / HOUR
        still = (hours < 7) | (hours >= 22)
        if nap_hour is not None:
            still |= (hours >= nap_hour) & (hours < nap_hour + 40 / 60)
        detector.partial_fit(np.zeros(len(times)), times, np.where(still, Evidence.STILL, Evidence.WORN))
    return detector


def test_a_worn_band_lying_still_alerts_within_minutes_where_the_sensors_would_take_hours() -> None:
    detector = band_wearer()
    moving = local(14, 10)
    detector.partial_fit([0], [moving], [Evidence.WORN])
    sensors_deadline = int(detector.deadline_ms_[0])
    assert sensors_deadline - moving > HOUR
    still = [moving + k * 5 * MINUTE for k in (1, 2, 3)]
    detector.partial_fit([0, 0, 0], still, [Evidence.STILL] * 3)
    assert detector.deadline_ms_[0] <= still[-1], "the still run brings the deadline forward"
    assert detector.decide(detector.score(still[-1]))[0] >= Severity.WARNING.rank
    assert detector.last_activity_ms_[0] == moving, "stillness is not a sign of life"
    detector.partial_fit([0], [still[-1] + 5 * MINUTE], [Evidence.WORN])  # up again
    assert detector.band_run_[0] == 0
    assert detector.decide(detector.score(still[-1] + 6 * MINUTE))[0] == NO_SEVERITY


def test_the_daily_nap_and_the_night_are_not_emergencies_for_a_band_wearer() -> None:
    detector = band_wearer(nap_hour=13)
    nap = [local(14, 13) + k * 5 * MINUTE for k in range(1, 8)]  # 35 minutes still, as every day
    detector.partial_fit([0], [local(14, 13)], [Evidence.WORN])
    detector.partial_fit(np.zeros(len(nap)), nap, [Evidence.STILL] * len(nap))
    assert detector.decide(detector.score(nap[-1]))[0] == NO_SEVERITY
    night = [local(14, 22) + k * 5 * MINUTE for k in range(1, 24)]
    detector.partial_fit([0], [local(14, 22)], [Evidence.WORN])
    detector.partial_fit(np.zeros(len(night)), night, [Evidence.STILL] * len(night))
    assert detector.decide(detector.score(night[-1]))[0] == NO_SEVERITY
    morning = [local(15, 10) + k * 5 * MINUTE for k in range(1, 4)]  # the same stillness at 10:00
    detector.partial_fit([0], [local(15, 10)], [Evidence.WORN])
    detector.partial_fit(np.zeros(3), morning, [Evidence.STILL] * 3)
    assert detector.decide(detector.score(morning[-1]))[0] >= Severity.WARNING.rank


def test_away_after_the_front_door_suppresses_inactivity_and_raises_not_back_home() -> None:
    detector = trained()
    left = local(14, 14)
    detector.partial_fit([0], [left], [Evidence.DOOR])
    assert detector.away()[0]
    assert detector.deadline_ms_[0] == NEVER
    assert detector.decide(detector.score(local(14, 20)))[0] == NO_SEVERITY
    assert not detector.not_back_home(local(14, 22.9))[0]
    assert detector.not_back_home(local(14, 23))[0]
    assert detector.due(local(14, 23))[0]
    detector.partial_fit([0], [local(14, 23.5)], [Evidence.INDOOR])  # home again
    assert not detector.away()[0]
    assert not detector.not_back_home(local(14, 23.6))[0]


def test_coming_home_and_collapsing_behind_the_door_is_inside_not_out() -> None:
    detector = trained()
    out, back = local(14, 10), local(14, 12)
    # Leaving: the door opens and closes (one passage); coming back: another passage, then nothing.
    detector.partial_fit([0, 0], [out, out + MINUTE], [Evidence.DOOR, Evidence.DOOR])
    assert detector.away()[0]
    detector.partial_fit([0, 0], [back, back + MINUTE], [Evidence.DOOR, Evidence.DOOR])
    assert not detector.away()[0], "two passages: back inside"
    assert detector.deadline_ms_[0] < local(14, 18)
    assert detector.decide(detector.score(local(14, 18)))[0] >= Severity.WARNING.rank


def test_the_door_closing_behind_a_visitor_is_not_an_outing() -> None:
    detector = trained()
    opened = local(14, 10)
    detector.partial_fit([0, 0], [opened, opened + 2 * MINUTE], [Evidence.DOOR, Evidence.INDOOR])
    assert not detector.away()[0]
    assert detector.deadline_ms_[0] < NEVER


def test_silent_sensors_give_a_coverage_signal_instead_of_an_alarm() -> None:
    detector = trained(n=2)
    for r in (0, 1):
        detector.partial_fit([r], [local(14, 9)], [Evidence.INDOOR])
    scores = detector.score(local(14, 15))
    coverage_ok = np.array([True, False])
    assert list(detector.decide(scores, coverage_ok)) == [Severity.CRITICAL.rank, NO_SEVERITY]
    assert list(detector.coverage(scores, coverage_ok)) == [False, True]


def test_corridor_motion_does_not_reset_the_silence() -> None:
    detector = trained()
    detector.partial_fit([0], [local(14, 9)], [Evidence.INDOOR])
    deadline = detector.deadline_ms_[0]
    detector.partial_fit([0], [local(14, 10)], [Evidence.CORRIDOR])
    assert detector.deadline_ms_[0] == deadline


def test_checkpoint_round_trip_scores_identically(tmp_path) -> None:
    detector = trained(days=3, n=3)
    detector.partial_fit([0, 1, 2], [local(3, 9), local(3, 10), local(3, 11)],
                         [Evidence.INDOOR, Evidence.DOOR, Evidence.WORN])
    path = tmp_path / "state.npz"
    np.savez(path, **detector.get_state())  # type: ignore[arg-type]
    with np.load(path) as saved:
        restored = InactivityDetector(**detector.get_params()).set_state(dict(saved))  # type: ignore[arg-type]
    now = local(3, 20)
    np.testing.assert_array_equal(restored.score(now), detector.score(now))
    np.testing.assert_array_equal(restored.deadline_ms_, detector.deadline_ms_)
    np.testing.assert_array_equal(restored.not_back_ms_, detector.not_back_ms_)
    # and it keeps learning the same way
    for d in (restored, detector):
        d.partial_fit([0], [local(3, 21)], [Evidence.INDOOR])
    np.testing.assert_array_equal(restored.score(now + 5 * HOUR), detector.score(now + 5 * HOUR))


def test_add_residents_keeps_existing_state() -> None:
    detector = trained(days=2)
    before = detector.score(local(2, 12))
    new = detector.add_residents([SHANGHAI, 0])
    assert list(new) == [1, 2]
    np.testing.assert_array_equal(detector.score(local(2, 12))[:1], before)
    assert list(detector.score(local(2, 12))[1:]) == [0.0, 0.0]


def test_evidence_codes_and_activity() -> None:
    assert evidence_of("door_sensor", "entrance") == Evidence.DOOR
    assert evidence_of("door_sensor", "fridge") == Evidence.INDOOR
    assert evidence_of("pressure_sensor", "bed") == Evidence.INDOOR
    assert evidence_of("smart_peephole", "entrance") == Evidence.CORRIDOR
    assert is_activity("motion_sensor", {"occupancy": True}, {"occupancy": False})
    assert not is_activity("motion_sensor", {"occupancy": False}, {"occupancy": True})
    assert is_activity("wristband", {"steps": 5, "worn": True}, None)
    assert not is_activity("wristband", {"steps": 0, "worn": True}, None)
    assert not is_activity("door_sensor", {"open": False}, {"open": False})
    assert is_activity("door_sensor", {"open": True}, {"open": False})
    assert is_activity("smart_peephole", {"resident_left": True}, None)
    assert not is_activity("smart_peephole", {"heartbeat": True}, None)
    assert live_evidence("smart_peephole", {"resident_returned": True}) == Evidence.DOOR
    assert live_evidence("smart_peephole", {"motion": True}) == Evidence.CORRIDOR
    assert live_evidence("door_sensor", {"open": True}) == Evidence.DOOR
    assert live_evidence("motion_sensor", {"occupancy": True}) == Evidence.INDOOR


def days_of(gap: tuple[float, float], *, door: bool = False, days: int = 14) -> InactivityDetector:
    """Residents awake 07:00-22:00 with activity every 10 minutes, but every day nothing from `gap[0]` to
    `gap[1]` (hours): a nap on a couch no sensor sees, or, with `door`, an outing through the front door
    (a passage at each end)."""
    detector = InactivityDetector().init(1, SHANGHAI)
    for day in range(days):
        times = np.arange(local(day, 7), local(day, 22), 10 * MINUTE)
        times = times[(times < local(day, gap[0])) | (times >= local(day, gap[1]))]
        codes = np.full(len(times), Evidence.INDOOR)
        if door:
            passages = [local(day, gap[0]), local(day, gap[0]) + MINUTE, local(day, gap[1]) - MINUTE,
                        local(day, gap[1])]
            order = np.argsort(np.r_[times, passages], kind="stable")
            times = np.r_[times, passages][order]
            codes = np.r_[codes, np.full(4, Evidence.DOOR)][order]
        detector.partial_fit(np.zeros(len(times)), times, codes)
    return detector


def test_a_silence_this_resident_has_had_at_this_hour_is_not_an_emergency() -> None:
    detector = days_of((14, 17))  # the last reading before each nap is at 13:50
    nap_h = 3 + 10 / 60
    floor_s = detector.silence_floor_s([0], np.array([local(14, 13 + 50 / 60)]))[0]
    learned_s = nap_h * 3600 * detector.silence_margin + detector.silence_extra_s
    assert floor_s == pytest.approx(learned_s, rel=1e-6)
    start = local(14, 13 + 50 / 60)
    detector.partial_fit([0], [start], [Evidence.INDOOR])
    assert detector.decide(detector.score(start + int(nap_h * HOUR) + 30 * MINUTE))[0] == NO_SEVERITY
    deadline = int(detector.deadline_ms_[0])
    assert deadline >= start + floor_s * 1000, "no warning before the learned floor"
    assert detector.decide(detector.score(deadline))[0] == Severity.WARNING.rank
    # The morning has never been quiet for long: a silence there is judged by the rhythm, within hours.
    morning = local(14, 9)
    detector.partial_fit([0], [morning + 24 * HOUR], [Evidence.INDOOR])
    assert detector.deadline_ms_[0] - (morning + 24 * HOUR) < floor_s * 1000


def test_outings_are_learned_apart_from_silences_at_home() -> None:
    detector = days_of((9, 12), door=True)
    at_nine = np.array([local(14, 9)])
    assert detector.silence_floor_s([0], at_nine)[0] == detector.silence_extra_s, "no long silence at home"
    outing_s = detector.silence_floor_s([0], at_nine, out=True)[0]
    assert outing_s == pytest.approx((3 - 2 / 60) * 3600 * detector.silence_margin + detector.silence_extra_s,
                                     rel=1e-6)
    # Out again at 09:00: not back is judged against the usual outing, not the fixed 23:00.
    left = local(14, 9)
    detector.partial_fit([0, 0], [left, left + MINUTE], [Evidence.DOOR, Evidence.DOOR])
    assert detector.away()[0]
    assert detector.not_back_ms_[0] == left + MINUTE + int(np.ceil(outing_s * 1000))


def test_a_silence_begun_at_the_door_waits_for_the_outing_floor_whatever_the_passage_count() -> None:
    detector = days_of((9, 12), door=True)
    # Out and straight back in by the count of passages, then nothing: perhaps inside, perhaps out after
    # all (a bouncing reed, a step out and back), so it waits as long as an outing would.
    t = local(14, 9)
    detector.partial_fit([0] * 4, [t, t + MINUTE, t + 5 * MINUTE, t + 6 * MINUTE], [Evidence.DOOR] * 4)
    assert not detector.away()[0]
    outing_s = detector.silence_floor_s([0], np.array([t + 6 * MINUTE]), out=True)[0]
    assert detector.deadline_ms_[0] >= t + 6 * MINUTE + outing_s * 1000


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_a_stream_cut_anywhere_learns_what_it_learns_whole(seed: int) -> None:
    """What makes a restart from a checkpoint equal a full replay: the learned arrays do not depend on
    where the stream (in time order) is cut into batches. Doors and band reports interleave, the case
    that once learned outings differently across a cut; the rooms silences begin in are learned too."""
    rng = np.random.default_rng(seed)
    n, events = 4, 600
    who = rng.integers(0, n, events)
    span = (12 * 24 * HOUR, 6 * HOUR)[seed % 2]  # days, or readings crowding the same minutes
    times = np.sort(rng.integers(MONDAY, MONDAY + span, events))
    codes = rng.choice(list(Evidence), events, p=rng.dirichlet(np.ones(len(Evidence))))
    rooms = rng.integers(NO_ROOM, len(ROOMS), events)  # the room a silence begins in, one unknown
    whole = InactivityDetector(band_min_reports=0.0).init(n, SHANGHAI)
    whole.partial_fit(who, times, codes, rooms)
    cut = InactivityDetector(band_min_reports=0.0).init(n, SHANGHAI)
    for chunk in np.split(np.arange(events), np.sort(rng.choice(events, rng.integers(1, 30), replace=False))):
        cut.partial_fit(who[chunk], times[chunk], codes[chunk], rooms[chunk])
    expected = whole.get_state()
    for name, value in cut.get_state().items():
        if name == "band_run_":  # a sum of surprises, kept in float32 between batches: equal to rounding
            np.testing.assert_allclose(value, expected[name], rtol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_state_as_bytes_round_trips_and_refuses_what_is_not_one() -> None:
    detector = trained(days=3, n=3)
    rows = detector.get_state([2, 0])
    restored = state_from_bytes(state_to_bytes(rows))
    for name, value in rows.items():
        np.testing.assert_array_equal(restored[name], value)
        assert restored[name].dtype == value.dtype
    blob = state_to_bytes(rows)
    for broken in (blob[: len(blob) // 2], b"", b"not a state", b"PK\x03\x04" + bytes(50)):
        with pytest.raises(ValueError, match="not a detector state"):
            state_from_bytes(broken)


def test_rows_of_a_state_overwrite_those_residents_only_and_a_misfit_changes_nothing() -> None:
    source = trained(days=3, n=2)
    target = InactivityDetector().init(3, SHANGHAI)
    target.set_state(source.get_state([1]), [2])
    np.testing.assert_array_equal(target.counts_[2], source.counts_[1])
    assert target.counts_[:2].sum() == 0
    misfit = source.get_state([0]) | {"counts_": np.zeros((1, 7), np.float32)}
    before = target.get_state()
    with pytest.raises(ValueError, match="counts_"):
        target.set_state(misfit, [0])
    for name, value in target.get_state().items():
        np.testing.assert_array_equal(value, before[name])


def test_the_fingerprint_follows_the_parameters_only() -> None:
    assert InactivityDetector().fingerprint() == trained(days=1).fingerprint()
    assert InactivityDetector(warning_surprise=11.0).fingerprint() != InactivityDetector().fingerprint()
    assert (InactivityDetector(prior_events_per_hour=[0.8] * 48).fingerprint()
            == InactivityDetector(prior_events_per_hour=0.8).fingerprint()) is False


def test_a_silence_after_the_kitchen_is_not_judged_by_the_nights_after_the_bedroom() -> None:
    kitchen, bedroom = room_of("Kitchen"), room_of("bedroom")
    detector = InactivityDetector().init(1, SHANGHAI)
    for day in range(14):  # in the kitchen 07:00–22:00 but for a 40-minute pause at 20:00; to bed at 22:00
        times = np.r_[np.arange(local(day, 7), local(day, 20), 10 * MINUTE),
                      np.arange(local(day, 20 + 40 / 60), local(day, 22), 10 * MINUTE)]
        detector.partial_fit(np.zeros(len(times) + 1), np.r_[times, local(day, 22)], np.zeros(len(times) + 1),
                             np.r_[np.full(len(times), kitchen), bedroom])
    at = np.array([local(14, 21)])
    hour_only = detector.silence_floor_s([0], at)[0]
    assert hour_only == pytest.approx(9 * 3600 * 1.25 + detector.silence_extra_s, rel=1e-3)
    assert detector.silence_floor_s([0], at, room=[NO_ROOM])[0] == hour_only, "no room known: the hour's"
    after_bed = detector.silence_floor_s([0], at, room=[bedroom])[0]
    after_kitchen = detector.silence_floor_s([0], at, room=[kitchen])[0]
    assert after_bed == pytest.approx(hour_only, rel=1e-3), "the nights begin in the bedroom"
    assert after_kitchen < hour_only / 2, "the kitchen's pauses at that hour are short"
    hour_alone = InactivityDetector(silence_room_shrink=None).set_state(detector.get_state())
    assert hour_alone.silence_floor_s([0], at, room=[kitchen])[0] == hour_only
    # The deadline follows the room of the last reading (the rhythm's own deadline, the night ahead, is
    # later than the kitchen's floor but sooner than the bedroom's).
    morning = np.arange(local(14, 7), local(14, 20), 10 * MINUTE)
    detector.partial_fit(np.zeros(len(morning)), morning, np.zeros(len(morning)),
                         np.full(len(morning), kitchen))
    detector.partial_fit([0], [local(14, 21)], [Evidence.INDOOR], [kitchen])
    after_kitchen_ms = int(detector.deadline_ms_[0]) - local(14, 21)
    assert detector.floor_bound_s([0], at)[0] <= after_kitchen
    detector.partial_fit([0], [local(14, 21) + MINUTE], [Evidence.INDOOR], [bedroom])
    assert detector.deadline_ms_[0] - (local(14, 21) + MINUTE) >= after_bed * 1000 > after_kitchen_ms + HOUR


def test_a_resident_seen_only_at_the_front_door_may_stay_in_a_whole_day_but_not_longer() -> None:
    """With only a door contact, a day at home without a passage is an ordinary day: where the resident has
    already been silent longer than `silence_max_s` around that hour, the learned floor's cap is
    `silence_door_only_max_s` (still inside the day the door-only track promises) until any other sign of
    life is seen, and `silence_max_s` from then on. A batch of both kinds equals each alone."""
    days = 14
    # Out at 10:00 and back at 10:10 every day (two passages), then nothing but the door for a day.
    passages = np.array([local(d, h) for d in range(days) for h in (10, 10 + 10 / 60)])
    last = int(passages[-1])
    # The second resident has the same passages and one indoor reading on the first day.
    who = np.r_[np.zeros(len(passages)), np.ones(len(passages) + 1)].astype(np.intp)
    times = np.r_[passages, passages, local(0, 12)]
    codes = np.r_[np.full(2 * len(passages), Evidence.DOOR), Evidence.INDOOR]
    together = InactivityDetector().init(2, SHANGHAI)
    together.partial_fit(who, times, codes)
    door_only = int(together.silence_door_only_max_s * 1000)
    assert together.silence_door_only_max_s == 23.5 * 3600 < 24 * 3600, "warned and paged within the day"
    assert together.deadline_ms_[0] == last + door_only, "the whole-day silences push the floor to its cap"
    assert together.deadline_ms_[1] == last + int(together.silence_max_s * 1000), "indoor seen: 20 h"
    for r in (0, 1):
        alone = InactivityDetector().init(1, SHANGHAI)
        alone.partial_fit(np.zeros((who == r).sum()), times[who == r], codes[who == r])
        assert alone.deadline_ms_[0] == together.deadline_ms_[r]
        due = int(alone.deadline_ms_[0])
        assert alone.decide(alone.score(due - MINUTE))[0] == NO_SEVERITY
        assert alone.decide(alone.score(due))[0] == Severity.WARNING.rank
    # A replay's bound on floors to come stays under the usual cap: an indoor reading may come first.
    assert together.floor_bound_s([0], np.array([last]))[0] <= together.silence_max_s
    # A single indoor sign of life: the resident is no longer door-only, and the usual cap applies.
    together.partial_fit([0], [last + HOUR], [Evidence.INDOOR])
    at_ten = np.array([last])
    assert together.silence_floor_s([0], at_ten, out=True)[0] == together.silence_max_s
    assert together.silence_floor_s([1], at_ten, out=True)[0] == together.silence_max_s
    assert together.shortest_floor_s() == min(together.silence_extra_s, together.silence_prior_s)
    # Silent at most 16 h 50 min from 17:10: the floor (1.25 × that + 90 min, 22.5 h) keeps the usual cap.
    shorter = InactivityDetector().init(1, SHANGHAI)
    evenings = np.array([local(d, h) for d in range(days) for h in (10, 10 + 10 / 60, 17, 17 + 10 / 60)])
    shorter.partial_fit(np.zeros(len(evenings)), evenings, np.full(len(evenings), Evidence.DOOR))
    assert shorter.silence_floor_s([0], np.array([local(days, 17 + 10 / 60)]), out=True)[0] == 20 * 3600
    with pytest.raises(ValueError, match="prior"):
        InactivityDetector(silence_door_only_max_s=6 * 3600.0).init(1)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 6))
def test_the_floor_bound_holds_whatever_comes_before_the_silence(seed: int, days: int) -> None:
    """`floor_bound_s` is never later than the deadline of a silence begun at that time, after a reading
    of that room (or of any room), whatever the resident does until then: a batched replay leans on it."""
    rng = np.random.default_rng(seed)
    detector = InactivityDetector().init(1, SHANGHAI)

    def live(start: int, end: int) -> None:
        """Readings at gaps of minutes, now and then of hours (silences learned), from random rooms,
        a front-door passage now and then, fed in batches of random size."""
        gaps = np.where(rng.random(400) < 0.1, rng.integers(HOUR, 12 * HOUR, 400),
                        rng.integers(MINUTE, 20 * MINUTE, 400))
        times = start + np.cumsum(gaps)
        times = times[times < end]
        rooms = rng.choice([NO_ROOM, *range(len(ROOMS))], len(times))
        codes = np.where(rng.random(len(times)) < 0.03, Evidence.DOOR, Evidence.INDOOR)
        for part in np.array_split(np.arange(len(times)), rng.integers(1, 5)):
            detector.partial_fit(np.zeros(len(part)), times[part], codes[part], rooms[part])

    live(local(0, 7), local(days, 7) + 1)
    at = local(days, 7) + int(rng.integers(MINUTE, 3 * 24 * HOUR))
    room = int(rng.choice([NO_ROOM, *range(len(ROOMS))]))
    bound_s = detector.floor_bound_s([0], np.array([at]), room=[room])[0]
    assert detector.floor_bound_s([0], np.array([at]))[0] <= bound_s, "whichever room: no later"
    live(local(days, 7), at)
    detector.partial_fit([0], [at], [Evidence.INDOOR], [room])
    assert detector.deadline_ms_[0] >= at + np.floor(bound_s * 1000)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([3, 70_000]), st.booleans())
def test_the_sorts_spared_give_what_the_sorts_would(seed: int, residents: int, in_time_order: bool) -> None:
    """A batch in time order is put in resident order by one stable sort, not a lexsort, and keys already
    in order are not sorted again: the same orders and the same distinct values."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 50))
    idx = rng.integers(0, residents, n).astype(np.intp)
    t = rng.integers(0, 10, n).astype(np.int64)  # ties in time too
    if in_time_order:
        t.sort()
    np.testing.assert_array_equal(_by_resident_then_time(idx, t, residents), np.lexsort((t, idx)))
    order = np.lexsort((t, idx))
    np.testing.assert_array_equal(_distinct_sorted(idx[order]), np.unique(idx))
    np.testing.assert_array_equal(_distinct_sorted(idx), np.unique(idx))
    for a, b in ((idx[order], t[order]), (idx, t)):
        if n:
            expected_a, expected_b = np.unique(np.stack([a, b], axis=1), axis=0).T
            got_a, got_b, inverse = _distinct_pairs(a, b)
            np.testing.assert_array_equal(got_a, expected_a)
            np.testing.assert_array_equal(got_b, expected_b)
            np.testing.assert_array_equal(got_a[inverse], a)
            np.testing.assert_array_equal(got_b[inverse], b)
