import math

import numpy as np
import pytest

from egostream.io import (EGOVLP_WINDOWS, PTS_WRAP_S, CanonicalClock, StreamTimeline, TimedFrame, expected_window_count,
                          iter_windows)

PERIOD = 1 / 30


def place_all(timeline, raws, arrivals=None):
    arrivals = arrivals or [None] * len(raws)
    return [timeline.place(raw, arrival) for raw, arrival in zip(raws, arrivals)]


def test_clean_times_pass_through():
    placed = place_all(StreamTimeline(30.0), [5 + i * PERIOD for i in range(4)])
    assert [t for t, _ in placed] == pytest.approx([5 + i * PERIOD for i in range(4)])
    assert not any(jump for _, jump in placed)


def test_missing_and_nan_times_follow_the_nominal_rate():
    timeline = StreamTimeline(25.0)
    placed = place_all(timeline, [0.0, None, math.nan, math.inf, 4 / 25])
    # untimed frames advance one 1/25 s period each; the next usable time is placed 4/25 s after the last usable
    # one, so the untimed frames do not shift the stream
    assert [t for t, _ in placed] == pytest.approx([0, 0.04, 0.08, 0.12, 0.16])
    assert timeline.counters.untimed == 3 and timeline.counters.discontinuities == 0


def test_untimed_live_frames_use_the_arrival_gap_when_the_sender_paused():
    timeline = StreamTimeline(30.0, max_jump_s=1.0)
    placed = place_all(timeline, [0.0, None, None, None], arrivals=[100.0, 100.01, 100.51, 102.51])
    # jitter (0.01 s, 0.5 s: up to max_jump_s) is one period; a 2 s pause of the sender passes in stream time
    assert [t for t, _ in placed] == pytest.approx([0, PERIOD, 2 * PERIOD, 2 * PERIOD + 2.0])


def test_repeated_time_is_retimed_one_period_on():
    timeline = StreamTimeline(30.0)
    placed = place_all(timeline, [0.0, PERIOD, 2 * PERIOD, PERIOD, 3 * PERIOD])
    times = [t for t, _ in placed]
    assert times == pytest.approx([0, PERIOD, 2 * PERIOD, 3 * PERIOD, 5 * PERIOD])
    assert timeline.counters.retimed == 1 and all(b > a for a, b in zip(times, times[1:]))


def test_loop_back_to_zero_is_one_discontinuity_and_time_keeps_increasing():
    timeline = StreamTimeline(30.0)
    raws = [i * PERIOD for i in range(60)] * 2  # a 2 s file sent twice without offsetting its times
    placed = place_all(timeline, raws)
    times = [t for t, _ in placed]
    assert [i for i, (_, jump) in enumerate(placed) if jump] == [60]
    assert times == pytest.approx([i * PERIOD for i in range(120)])  # no pause: one period across the jump
    assert timeline.counters.discontinuities == 1


def test_forward_jump_beyond_max_jump_is_a_discontinuity_placed_by_the_arrival_clock():
    timeline = StreamTimeline(30.0, max_jump_s=1.0)
    placed = place_all(timeline, [0.0, PERIOD, 3600.0, 3600.0 + PERIOD], arrivals=[0.0, PERIOD, 3.0, 3.0 + PERIOD])
    assert [t for t, _ in placed] == pytest.approx([0, PERIOD, 3.0, 3.0 + PERIOD])  # the sender paused 3 s
    assert [jump for _, jump in placed] == [False, False, True, False]


def test_mpegts_wrap_is_unwrapped_exactly_and_counted():
    timeline = StreamTimeline(30.0)
    raws = [PTS_WRAP_S - 2 * PERIOD, PTS_WRAP_S - PERIOD, 0.0, PERIOD]
    placed = place_all(timeline, raws)
    assert [t - placed[0][0] for t, _ in placed] == pytest.approx([0, PERIOD, 2 * PERIOD, 3 * PERIOD])
    assert [jump for _, jump in placed] == [False, False, True, False]
    assert timeline.counters.wraps == timeline.counters.discontinuities == 1


def test_clock_never_stalls_on_repaired_times_and_flags_the_windows_touched():
    timeline = StreamTimeline(30.0)
    raws = [i * PERIOD for i in range(40)] + [None] * 8 + [i * PERIOD for i in range(40)]  # untimed, then a loop
    frames = []
    for index, raw in enumerate(raws):
        time_s, jump = timeline.place(raw)
        frames.append(TimedFrame(np.full((2, 2, 3), index % 256, np.uint8), time_s, discontinuity=jump))
    windows = list(iter_windows(frames, EGOVLP_WINDOWS))
    assert [w.index for w in windows] == list(range(expected_window_count(len(raws), EGOVLP_WINDOWS)))  # no gap
    jump_at = 48  # the first frame of the loop sits at canonical frame 48
    assert [w.discontinuity for w in windows] == [w.start_frame <= jump_at < w.start_frame + w.num_frames
                                                  for w in windows]


def test_clock_counts_a_nan_time_as_out_of_order_instead_of_failing():
    clock = CanonicalClock()
    image = np.zeros((2, 2, 3), np.uint8)
    assert clock.push(TimedFrame(image, math.nan)) == []
    clock.push(TimedFrame(image, 0.0))
    assert clock.push(TimedFrame(image, math.nan)) == []
    assert clock.counters.out_of_order == 2
    assert [slot for slot, _ in clock.push(TimedFrame(image, PERIOD))] == [0]


def test_reconnect_passes_the_outage_in_stream_time():
    timeline = StreamTimeline(30.0)
    timeline.place(0.0, 10.0)
    assert timeline.place(0.0, 10.4, reconnected=True) == (pytest.approx(0.4), True)  # any outage, even short
