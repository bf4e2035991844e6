import av
import numpy as np
import pytest

from egostream.errors import InputError
from egostream.io import FileSource, WindowStream, OMNIVORE_WINDOWS, EGOVLP_WINDOWS, expected_window_count, open_source
from tests.io.video_factory import dominant_label, make_video, segment_labels

BACKENDS = ["pyav", "decord"]


def decord_works() -> str | None:
    """None when decord imports (it decodes H.264 in this environment); else why not."""
    try:
        import decord  # noqa: F401
    except Exception as error:  # a broken native library raises OSError, not ImportError
        return f"decord cannot be imported: {error}"
    return None


def backend_param(backend):
    reason = decord_works() if backend == "decord" else None
    return pytest.param(backend, marks=pytest.mark.skipif(reason is not None, reason=reason or ""))


@pytest.fixture(scope="module")
def labels():
    return segment_labels([20, 30, 30])  # 80 frames: 0 x20, 1 x30, 2 x30


@pytest.fixture(scope="module")
def video_30fps(tmp_path_factory, labels):
    return make_video(tmp_path_factory.mktemp("videos"), labels, 30.0)


def read_windows(source, spec):
    with WindowStream(source, spec) as stream:
        windows = list(stream)
    return windows, stream.stats


@pytest.mark.parametrize("backend", [backend_param(b) for b in BACKENDS])
def test_h264_file_decodes_to_expected_frames_fps_and_windows(video_30fps, labels, backend):
    with av.open(str(video_30fps)) as container:  # it really is H.264 at 30 fps
        assert container.streams.video[0].codec_context.name == "h264"
    source = FileSource(video_30fps, backend=backend)
    windows, stats = read_windows(source, EGOVLP_WINDOWS)
    assert source.nominal_fps == pytest.approx(30.0)
    assert stats.source_frames == stats.canonical_frames == len(labels)
    assert stats.clock_dropped == stats.clock_duplicated == 0
    assert [w.index for w in windows] == [0, 1, 2, 3, 4]  # 80 frames = 5 full windows of 16
    assert all(w.frames.shape == (16, 48, 64, 3) and w.frames.dtype == np.uint8 for w in windows)
    for window in windows:
        decoded = [dominant_label(frame) for frame in window.frames]
        assert decoded == labels[window.start_frame:window.start_frame + 16]
        assert window.start_s == pytest.approx(window.index * 16 / 30)


def test_both_backends_give_the_same_frames(video_30fps):
    if decord_works() is not None:
        pytest.skip(decord_works())
    pyav, _ = read_windows(FileSource(video_30fps, backend="pyav"), OMNIVORE_WINDOWS)
    decord, _ = read_windows(FileSource(video_30fps, backend="decord"), OMNIVORE_WINDOWS)
    assert [w.index for w in pyav] == [w.index for w in decord] == [0, 1, 2, 3]
    for a, b in zip(pyav, decord):
        assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 2.0  # same frames, colour conversion


@pytest.mark.parametrize("source_fps, suffix", [(24.0, ".mp4"), (60.0, ".mp4"), (60.0, ".ts")])
def test_other_frame_rates_map_to_the_30fps_clock(tmp_path, source_fps, suffix):
    num_source = int(2 * source_fps)  # 2 s of video
    labels = segment_labels([num_source // 2, num_source - num_source // 2])  # label 1 from t = 1 s
    windows, stats = read_windows(FileSource(make_video(tmp_path, labels, source_fps, suffix)), EGOVLP_WINDOWS)
    assert stats.source_frames == num_source
    assert stats.canonical_frames == 60  # 2 s on the 30 fps clock
    if source_fps == 24.0:  # 4 source frames -> 5 canonical frames
        assert (stats.clock_duplicated, stats.clock_dropped) == (12, 0)
    else:  # every other frame kept
        assert (stats.clock_dropped, stats.clock_duplicated) == (60, 0)
    assert len(windows) == expected_window_count(60, EGOVLP_WINDOWS) == 4
    assert windows[-1].backpadded and windows[-1].start_frame == 44
    frames = np.concatenate([w.frames for w in windows[:3]] + [windows[3].frames[4:]])
    # canonical frame k shows the latest source frame at or before k / 30 s: label 1 from k = 30
    assert [dominant_label(f) for f in frames] == [0] * 30 + [1] * 30


@pytest.mark.parametrize("backend", [backend_param(b) for b in BACKENDS])
def test_truncated_mp4_raises_input_error_naming_the_file(video_30fps, tmp_path, backend):
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video_30fps.read_bytes()[: video_30fps.stat().st_size // 2])
    with pytest.raises(InputError) as caught:
        read_windows(FileSource(truncated, backend=backend), EGOVLP_WINDOWS)
    assert str(truncated) in str(caught.value) and caught.value.field == "container"


@pytest.mark.parametrize("backend", [backend_param(b) for b in BACKENDS])
def test_garbage_and_missing_files_raise_input_error(tmp_path, backend):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="garbage.mp4"):
        read_windows(FileSource(garbage, backend=backend), EGOVLP_WINDOWS)
    with pytest.raises(InputError, match="no such video file"):
        read_windows(FileSource(tmp_path / "absent.mp4", backend=backend), EGOVLP_WINDOWS)


def test_truncated_mpegts_keeps_the_decodable_prefix(tmp_path, labels):
    video = make_video(tmp_path, labels, 30.0, ".ts")
    truncated = tmp_path / "truncated.ts"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    windows, stats = read_windows(FileSource(truncated), EGOVLP_WINDOWS)
    assert 0 < stats.source_frames < len(labels) and windows
    for window in windows:
        assert [dominant_label(f) for f in window.frames] == labels[window.start_frame:window.start_frame + 16]


def test_open_source_picks_the_source_kind(tmp_path):
    assert type(open_source(tmp_path / "a.mp4")).__name__ == "FileSource"
    assert type(open_source("udp://127.0.0.1:5000")).__name__ == "NetworkSource"
    assert type(open_source("rtsp://camera.local/stream")).__name__ == "NetworkSource"
    assert type(open_source("/dev/video0")).__name__ == "CameraSource"


def corrupt_middle(video, target, seed=0, size=2000):
    """``video`` with ``size`` random bytes written over its middle (the mdat of an mp4: the index stays intact)."""
    data = bytearray(video.read_bytes())
    start = len(data) * 3 // 10
    data[start:start + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


def decoded_by_plain_pyav(path):
    """(packets in the container, {frame index: corrupt} of the frames PyAV outputs), ignoring decode errors."""
    packets, frames = 0, {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            packets += packet.size > 0
            try:
                for frame in packet.decode():
                    frames[round(frame.time * 30)] = bool(frame.is_corrupt)
            except av.error.InvalidDataError:
                continue
    return packets, frames


def test_corrupted_middle_reports_the_frames_pyav_skipped_on_the_windows_they_touch(tmp_path):
    labels = segment_labels([40, 40, 40])
    video = corrupt_middle(make_video(tmp_path, labels, 30.0), tmp_path / "corrupt.mp4")
    packets, decoded = decoded_by_plain_pyav(video)
    assert packets == len(labels) and len(decoded) < len(labels)  # frames really are skipped, without an error
    windows, stats = read_windows(FileSource(video), EGOVLP_WINDOWS)
    assert stats.skipped_frames == len(labels) - len(decoded)
    assert stats.corrupt_frames == sum(decoded.values())
    assert stats.source_frames == len(decoded)
    # touched: canonical frames held in place of a skipped one, the first frame after a skip, corrupt frames
    damaged = {k for k in range(len(labels)) if k not in decoded or decoded[k]}
    damaged |= {k for k in decoded if k - 1 not in decoded and k > 0}
    assert [w.index for w in windows] == list(range(len(labels) // 16 + 1))  # nothing missing: the clock held
    assert [w.decode_errors for w in windows] == [bool(damaged & set(range(w.start_frame, w.start_frame + 16)))
                                                  for w in windows]
    assert any(w.decode_errors for w in windows) and not all(w.decode_errors for w in windows)
