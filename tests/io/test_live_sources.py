import subprocess
import sys
import time
from pathlib import Path

import pytest

from egostream.errors import InputError
from egostream.io import EGOVLP_WINDOWS, CameraSource, NetworkSource, ReconnectPolicy, WindowStream
from tests.io.video_factory import dominant_label, free_tcp_port, free_udp_port, segment_labels, stream_udp_in_thread


def collect_until_error(stream):
    """The windows a live stream yields until its source gives up, and that error."""
    windows = []
    with pytest.raises(InputError) as caught:
        with stream:
            for window in stream:
                windows.append(window)
    return windows, caught.value


def contiguous_labels(windows):
    return [dominant_label(frame) for window in windows for frame in window.frames]


@pytest.mark.parametrize("give_up", ["end", "error"])
def test_udp_mpegts_stream_on_loopback_is_ingested_live(give_up):
    port = free_udp_port()
    labels = segment_labels([32, 32])
    policy = ReconnectPolicy(max_retries=0, open_timeout_s=5.0, read_timeout_s=0.5, give_up=give_up)
    source = NetworkSource(f"udp://127.0.0.1:{port}", policy, status=lambda line: None)
    stream = WindowStream(source, EGOVLP_WINDOWS).start()
    sender = stream_udp_in_thread(port, labels, fps=30.0)  # the source listens before the sender starts
    if give_up == "error":
        windows, error = collect_until_error(stream)
        assert "gave up after 1 failed attempts" in str(error) and f"udp://127.0.0.1:{port}" in str(error)
    else:  # the sender stopped: the stream ends cleanly after the read timeout
        with stream:
            windows = list(stream)
        assert source.ended is not None and source.ended.startswith("gave up after 1 failed attempts")
    sender.join()
    assert stream.policy == "drop_oldest" and stream.source.live
    assert [w.index for w in windows] == [0, 1, 2, 3]
    assert contiguous_labels(windows) == labels  # every frame, in order, on the 30 fps clock
    assert not any(w.discontinuity or w.decode_errors for w in windows)


def test_network_source_reconnects_across_an_outage_and_keeps_time():
    port = free_udp_port()
    policy = ReconnectPolicy(max_retries=1, backoff_s=0.05, open_timeout_s=2.0, read_timeout_s=0.3)
    windows = []
    with WindowStream(NetworkSource(f"udp://127.0.0.1:{port}", policy), EGOVLP_WINDOWS).start() as stream:
        first = stream_udp_in_thread(port, [0] * 32, fps=30.0)
        first.join()
        second = stream_udp_in_thread(port, [1] * 56, fps=30.0, delay_s=0.8)  # 0.8 s outage; 2 windows on the grid
        for window in stream:
            windows.append(window)
            if len(windows) == 4:
                stats = stream.stats  # before the source notices the sender is gone
                break
    second.join()
    assert stats.reconnects == 1 and stats.missing_frames > 0
    assert [contiguous_labels([w]) for w in windows] == [[0] * 16] * 2 + [[1] * 16] * 2
    assert [w.index for w in windows[:2]] == [0, 1] and windows[3].index == windows[2].index + 1
    assert windows[2].start_s - windows[1].end_s >= 0.8  # stream time kept running through the outage


@pytest.mark.parametrize("url", ["tcp://127.0.0.1:{port}", "rtsp://127.0.0.1:{port}/stream"])
def test_unreachable_stream_fails_after_the_give_up_policy(url):
    url = url.format(port=free_tcp_port())
    source = NetworkSource(url, ReconnectPolicy(max_retries=2, backoff_s=0.05, open_timeout_s=1.0))
    started = time.monotonic()
    windows, error = collect_until_error(WindowStream(source, EGOVLP_WINDOWS))
    assert windows == []
    assert str(error).startswith(f"{url}: connection: gave up after 3 failed attempts (max_retries=2")
    assert source.reconnects == 2
    assert time.monotonic() - started >= 0.05 + 0.1  # it waited the backoff: 0.05 s, then 0.1 s


def test_silent_udp_stream_times_out_and_gives_up():
    source = NetworkSource(f"udp://127.0.0.1:{free_udp_port()}",
                           ReconnectPolicy(max_retries=0, open_timeout_s=0.3, read_timeout_s=0.3))
    _, error = collect_until_error(WindowStream(source, EGOVLP_WINDOWS))
    assert "gave up after 1 failed attempts" in str(error)


def test_missing_camera_device_raises_input_error():
    source = CameraSource("/dev/video-egostream-absent", read_timeout_s=0.5)
    _, error = collect_until_error(WindowStream(source, EGOVLP_WINDOWS))
    assert "/dev/video-egostream-absent" in str(error) and error.field == "container"


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_through_ffmpegs_client_options_with_rtsp_transport(transport):
    """No RTSP server ships with the test environment, so the receiver is one: FFmpeg's RTSP demuxer in listen mode
    (``rtsp_flags=listen``) takes a stream published by FFmpeg's RTSP muxer in another process, over the
    ``rtsp_transport`` under test. A client-mode URL (a camera's) goes through the same code with other options."""
    port = free_tcp_port()
    url = f"rtsp://127.0.0.1:{port}/live"
    sender = subprocess.Popen([sys.executable, "-m", "tests.io.live_sender", "rtsp", url, transport, "--clip-s",
                               "3"], cwd=Path(__file__).resolve().parents[2])
    try:
        source = NetworkSource(url, ReconnectPolicy(max_retries=0, open_timeout_s=60.0, read_timeout_s=2.0),
                               options={"rtsp_flags": "listen", "listen_timeout": "60", "rtsp_transport": transport},
                               status=lambda line: None)
        with WindowStream(source, EGOVLP_WINDOWS) as stream:
            windows = list(stream)
    finally:
        assert sender.wait(60) == 0
    assert [w.index for w in windows] == [0, 1, 2, 3, 4, 5]  # 90 frames, 3 labels of 30
    assert contiguous_labels(windows[:5]) == segment_labels([30, 30, 30])[:80]
    assert stream.stats.missing_frames == stream.stats.discontinuities == 0
