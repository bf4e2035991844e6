import time
import tracemalloc

import numpy as np
import pytest

from egostream.errors import InputError
from egostream.io import EGOVLP_WINDOWS, TimedFrame, VideoSource, WindowStream, expected_window_count


class GeneratedSource(VideoSource):
    """``num_frames`` 32x32 frames at 30 fps, as fast as the producer can take them; frame i is filled with i % 256;
    raises after ``fail_after`` frames when set."""

    def __init__(self, num_frames: int, live: bool, fail_after: int | None = None) -> None:
        super().__init__("generated://test")
        self.live = live
        self.num_frames = num_frames
        self.fail_after = fail_after
        self.nominal_fps = 30.0

    def _open(self):
        raise NotImplementedError

    def frames(self):
        for i in range(self.num_frames):
            if i == self.fail_after:
                raise InputError(self.uri, "stream", "connection lost")
            yield TimedFrame(np.full((32, 32, 3), i % 256, np.uint8), i / 30)


def test_live_source_faster_than_consumer_drops_oldest_with_bounded_memory():
    num_frames = 1600
    total = expected_window_count(num_frames, EGOVLP_WINDOWS)  # 100 windows
    window_bytes = 16 * 32 * 32 * 3
    tracemalloc.start()
    try:
        with WindowStream(GeneratedSource(num_frames, live=True), EGOVLP_WINDOWS, queue_size=4) as stream:
            received = []
            for window in stream:
                received.append(window.index)
                time.sleep(0.01)  # a slow consumer
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stats = stream.stats
    assert stats.windows_dropped > 0
    assert stats.windows_emitted + stats.windows_dropped == total
    assert stats.windows_emitted == len(received)
    assert stats.max_queue_depth <= 4
    assert received == sorted(set(received)) and received[-1] == total - 1  # newest kept, order kept
    # queued windows + the window being assembled + frames in flight, far below the 100 windows produced
    assert peak_bytes < 16 * window_bytes < total * window_bytes / 5


def test_file_policy_blocks_and_loses_nothing():
    with WindowStream(GeneratedSource(200, live=False), EGOVLP_WINDOWS, queue_size=2) as stream:
        received = []
        for window in stream:
            received.append(window)
            time.sleep(0.002)
    assert stream.policy == "block"
    assert [w.index for w in received] == list(range(expected_window_count(200, EGOVLP_WINDOWS)))
    assert stream.stats.windows_dropped == 0 and stream.stats.max_queue_depth <= 2
    assert received[2].frames[:, 0, 0, 0].tolist() == list(range(32, 48))


def test_producer_error_reaches_the_consumer_after_earlier_windows():
    received = []
    with pytest.raises(InputError, match="connection lost"):
        with WindowStream(GeneratedSource(200, live=False, fail_after=70), EGOVLP_WINDOWS) as stream:
            for window in stream:
                received.append((window.index, window.start_frame))
    # frames 0..69 arrived: windows 0..3 on the grid, then [54, 70) backpadded as at a normal end
    assert [index for index, _ in received] == [0, 1, 2, 3, 4] and received[-1][1] == 54


def test_consumer_can_stop_early():
    stream = WindowStream(GeneratedSource(10_000, live=False), EGOVLP_WINDOWS, queue_size=2)
    first = next(iter(stream))
    stream.close()  # the producer, blocked on the full queue, must wake up and stop
    assert first.index == 0
    assert not stream._thread.is_alive()
