import numpy as np
import pytest

from egostream.io.windows import OMNIVORE_WINDOWS, EGOVLP_WINDOWS, Windower, WindowSpec, expected_window_count


def windows_of(frame_indices, spec):
    windower = Windower(spec)
    windows = [w for i in frame_indices if (w := windower.push(i, np.full((2, 2, 3), i % 256, np.uint8)))]
    last = windower.finish()
    return windows + ([last] if last else [])


def test_ego4d_documented_example_39_frames():
    # EGO4D/docs features.md: 39 frames, W=32, stride 16 -> [0, 31] and [7, 38] ("back-padded")
    windows = windows_of(range(39), OMNIVORE_WINDOWS)
    assert [(w.index, w.start_frame, w.num_frames, w.backpadded) for w in windows] == [(0, 0, 32, False),
                                                                                      (1, 7, 32, True)]
    assert windows[1].frames[:, 0, 0, 0].tolist() == list(range(7, 39))
    assert windows[1].start_s == pytest.approx(7 / 30) and windows[1].end_s == pytest.approx(39 / 30)


@pytest.mark.parametrize("spec", [EGOVLP_WINDOWS, OMNIVORE_WINDOWS, WindowSpec(32, 16, backpad_last=False)])
@pytest.mark.parametrize("num_frames", [1, 15, 16, 17, 32, 33, 48, 100, 161])
def test_window_grid_matches_brute_force(spec, num_frames):
    windows = windows_of(range(num_frames), spec)
    assert len(windows) == expected_window_count(num_frames, spec)
    W, S = spec.window_frames, spec.stride_frames
    # brute force: every grid start whose window fits, then (backpad) the last W frames if the grid misses the end
    starts = [s for s in range(0, num_frames) if s % S == 0 and s + W <= num_frames]
    if spec.backpad_last and (not starts or starts[-1] + W < num_frames):
        starts.append(max(0, num_frames - W))
    assert [w.start_frame for w in windows] == starts
    for window in windows:
        expected = [min(f, num_frames - 1) for f in range(window.start_frame, window.start_frame + W)]
        assert window.frames[:, 0, 0, 0].tolist() == expected
        assert window.index == (window.start_frame // S if not window.backpadded else
                                -(-(num_frames - W) // S) if num_frames > W else 0)
        assert window.end_s - window.start_s == pytest.approx(W / 30)


def test_windows_touching_missing_frames_are_not_emitted():
    frames = list(range(40)) + list(range(60, 96))  # canonical frames 40..59 missing
    windows = windows_of(frames, EGOVLP_WINDOWS)
    assert [w.index for w in windows] == [0, 1, 4, 5]  # windows 2 ([32, 48)) and 3 ([48, 64)) overlap the gap
