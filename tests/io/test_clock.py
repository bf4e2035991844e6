import math

import numpy as np
import pytest

from egostream.io.clock import CanonicalClock
from egostream.io.frames import TimedFrame


def run_clock(times_s, clock, last_frame_duration_s):
    """Push frames whose image is their source index; returns {canonical index: source index}."""
    shown = {}
    for source_index, time_s in enumerate(times_s):
        for slot, image in clock.push(TimedFrame(np.array(source_index), time_s)):
            shown[slot] = int(image)
    for slot, image in clock.finish(last_frame_duration_s):
        shown[slot] = int(image)
    return shown


def latest_at_or_before(times_s, at_s):
    """Brute force: index of the latest source frame whose time is <= at_s."""
    return max(i for i, t in enumerate(times_s) if t <= at_s + 1e-9)


@pytest.mark.parametrize("source_fps", [30.0, 24.0, 60.0, 25.0, 29.97])
def test_clock_matches_sample_and_hold_reference(source_fps):
    start_s = 1.4  # streams rarely start at 0 (mpegts starts at 1.4 s)
    times_s = [start_s + i / source_fps for i in range(2 * round(source_fps))]
    clock = CanonicalClock(30.0)
    shown = run_clock(times_s, clock, 1 / source_fps)
    duration_s = len(times_s) / source_fps
    assert sorted(shown) == list(range(math.ceil(duration_s * 30 - 1e-3)))  # every slot before the end
    relative = [t - start_s for t in times_s]
    assert all(shown[k] == latest_at_or_before(relative, k / 30) for k in shown)
    counters = clock.counters
    assert counters.canonical_frames == len(shown)
    assert counters.dropped == len(times_s) - len(set(shown.values()))
    assert counters.duplicated == len(shown) - len(set(shown.values()))


def test_clock_30fps_is_identity_and_60fps_keeps_even_frames():
    shown30 = run_clock([i / 30 for i in range(90)], CanonicalClock(), 1 / 30)
    assert shown30 == {i: i for i in range(90)}
    shown60 = run_clock([i / 60 for i in range(120)], CanonicalClock(), 1 / 60)
    assert shown60 == {k: 2 * k for k in range(60)}


def test_clock_24fps_repeats_every_fourth_frame():
    shown = run_clock([i / 24 for i in range(48)], CanonicalClock(), 1 / 24)
    assert len(shown) == 60
    # 4 source frames -> 5 canonical frames: frame 4j shown twice (slots 5j and 5j + 1), since slot 5j+1 at
    # (5j+1)/30 s comes before frame 4j+1 at (4j+1)/24 s
    assert [shown[k] for k in range(10)] == [0, 0, 1, 2, 3, 4, 4, 5, 6, 7]


def test_clock_leaves_long_gaps_missing_and_drops_out_of_order_frames():
    times_s = [i / 30 for i in range(10)] + [0.2] + [5.0 + i / 30 for i in range(10)]
    clock = CanonicalClock(30.0, max_hold_s=0.5)
    shown = run_clock(times_s, clock, 1 / 30)
    held = math.ceil((9 / 30 + 0.5) * 30 - 1e-3)  # the frame at 0.3 s is held until 0.8 s
    assert sorted(shown) == list(range(held)) + list(range(150, 160))
    assert clock.counters.missing == 150 - held
    assert clock.counters.out_of_order == 1
    assert shown[150] == 11
