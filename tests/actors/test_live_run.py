"""``egostream run`` on live MPEG-TS streams as they really are (issue #16), in-process (``--local``), with the paced
loopback sender of :mod:`tests.io.live_sender`: TS packets lost, a loop that jumps back, a 2^33 wrap, frames
without a PTS, a late sender, a sender that stops; UDP, TCP and HTTP. Each: exit status as the policy says, no
traceback, windows every emission period of stream time, losses and discontinuities reported, the result file
readable to its last window. Also a file with a corrupted middle (issue #15 item 9)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from egostream.cli import main
from egostream.io import EGOVLP_WINDOWS, expected_window_count
from egostream.io.sinks import read_results
from tests.io.live_sender import PTS_WRAP, EncodedVideo, LoopbackSender, SenderPlan, encode_video
from tests.io.test_file_sources import corrupt_middle, decoded_by_plain_pyav
from tests.io.video_factory import NUM_CLASSES, free_tcp_port, free_udp_port, segment_labels

#: the tiny pixel extractor of the test checkpoint
EXTRACTOR = ["--extractor-option", "dim=32", "--extractor-option", "device=cpu"]

EMIT_ROWS = 2  # a result every 2 windows of 16 frames
GOP = 30  # frames per key-frame interval of the encoded clip
START_S = 1.5  # the sender starts once `run` has loaded the model and listens
FAST_END = ["--source-option", "read_timeout_s=0.5", "--source-option", "open_timeout_s=1",
            "--source-option", "max_retries=1", "--source-option", "backoff_s=0.1"]


@pytest.fixture(scope="module")
def clip() -> EncodedVideo:
    """4 s of 30 fps video (144 x 256: a frame spans a few dozen TS packets), label changing every second."""
    return encode_video(segment_labels([30, 30, 30, 30]), NUM_CLASSES, (144, 256))


def run_live(tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoint: Path, sender: LoopbackSender,
             *options: str) -> tuple[int, dict | None, str, Path]:
    """Start ``sender``, run ``egostream run`` on its URL (in this process unless ``options`` name a Ray address);
    returns (exit status, report, stderr, result file)."""
    out = tmp_path / "live.jsonl"
    config = tmp_path / "stream.yaml"
    config.write_text(f"emit_every_s: {EMIT_ROWS * 16 / 30!r}\nhorizon_s: 60.0\n")
    sender.start()
    code = main(["run", sender.url, "--checkpoint", str(checkpoint), "--extractor", "pixel_projection", "--out",
                 str(out), "--format", "jsonl", "--stream-config", str(config), "--no-table",
                 *([] if "--ray-address" in options else ["--local"]), *options, *EXTRACTOR])
    sender.join()
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else None, captured.err, out


def check_results(out: Path, report: dict, frames_sent: int) -> list:
    """The result file reads to its last window; results come every EMIT_ROWS rows of stream time; the rows are
    the windows of every canonical frame (the clock neither stalls nor invents), and those cover what was sent
    but for at most one key-frame interval (a receiver that joins mid-GOP, or loses a key frame, decodes nothing
    until the next one)."""
    results = read_results(out)
    assert results.report.ok
    records = results.results
    assert [r.window_index for r in records] == list(range(len(records))) and records
    assert all(r.rows % EMIT_ROWS == 0 for r in records[:-1])
    assert [b.rows - a.rows for a, b in zip(records, records[1:-1])] == [EMIT_ROWS] * (len(records) - 2)
    assert records[-1].rows == report["rows"]  # the last window was written
    source = report["source"]
    assert source["missing_frames"] == 0
    assert report["rows"] == expected_window_count(source["canonical_frames"], EGOVLP_WINDOWS)
    assert frames_sent - GOP <= source["canonical_frames"] <= frames_sent
    return records


def test_one_percent_ts_packet_loss_is_counted_and_flagged(tmp_path, capsys, checkpoint, clip):
    sender = LoopbackSender(clip, free_udp_port(), SenderPlan(frames=150, loss=0.01, seed=3, delay_s=START_S))
    code, report, err, out = run_live(tmp_path, capsys, checkpoint, sender, *FAST_END)
    assert code == 0 and "Traceback" not in err
    assert sender.dropped_ts_packets > 0
    source = report["source"]
    assert source["corrupt_frames"] + source["skipped_frames"] + source["skipped_packets"] > 0
    records = check_results(out, report, 150)
    assert any(r.decode_errors for r in records)


def test_a_loop_without_timestamp_offset_is_a_discontinuity_and_time_goes_on(tmp_path, capsys, checkpoint, clip):
    sender = LoopbackSender(clip, free_udp_port(), SenderPlan(frames=180, loop_frames=90, delay_s=START_S))
    code, report, err, out = run_live(tmp_path, capsys, checkpoint, sender, *FAST_END)
    assert code == 0 and "Traceback" not in err
    assert report["source"]["discontinuities"] == 1
    records = check_results(out, report, 180)
    assert sum(r.discontinuity for r in records) == 1
    assert [r.time_s for r in records[:-1]] == pytest.approx([(i + 1) * EMIT_ROWS * 16 / 30
                                                             for i in range(len(records) - 1)])


def test_a_2_33_wrap_keeps_stream_time_continuous(tmp_path, capsys, checkpoint, clip):
    start = PTS_WRAP - 90_000  # wraps 1 s into the stream
    sender = LoopbackSender(clip, free_udp_port(), SenderPlan(frames=120, start_pts=start, delay_s=START_S))
    code, report, err, out = run_live(tmp_path, capsys, checkpoint, sender, *FAST_END)
    assert code == 0 and "Traceback" not in err
    source = report["source"]
    assert source["out_of_order"] == 0 and source["retimed"] == 0
    assert source["discontinuities"] == source["wraps"] <= 1  # FFmpeg unwraps MPEG-TS itself; otherwise we do
    check_results(out, report, 120)


def test_frames_without_pts_are_placed_by_the_frame_rate(tmp_path, capsys, checkpoint, clip):
    sender = LoopbackSender(clip, free_udp_port(), SenderPlan(frames=120, no_pts=(30, 70), delay_s=START_S))
    code, report, err, out = run_live(tmp_path, capsys, checkpoint, sender, *FAST_END)
    assert code == 0 and "Traceback" not in err
    assert 40 - 2 <= report["source"]["untimed"] <= 40  # FFmpeg may infer a time for a frame next to a timed one
    check_results(out, report, 120)


def test_a_sender_started_3_s_late_is_waited_for_with_a_status_line(tmp_path, capsys, checkpoint, clip):
    port = free_udp_port()
    sender = LoopbackSender(clip, port, SenderPlan(frames=90, delay_s=3.0))
    code, report, err, out = run_live(tmp_path, capsys, checkpoint, sender, "--source-option", "open_timeout_s=6",
                                      "--source-option", "read_timeout_s=0.5", "--source-option", "max_retries=0")
    assert code == 0 and "Traceback" not in err
    assert f"waiting for udp://127.0.0.1:{port} (attempt 1 of 1, open timeout 6 s)" in err
    check_results(out, report, 90)


@pytest.mark.parametrize("give_up, status", [("end", 0), ("error", 2)])
def test_a_sender_stopped_mid_stream_ends_the_run_after_the_policy(tmp_path, capsys, checkpoint, clip, give_up,
                                                                  status):
    port = free_udp_port()
    sender = LoopbackSender(clip, port, SenderPlan(frames=600, stop_after_s=2.5, delay_s=START_S))
    code, report, err, out = run_live(tmp_path, capsys, checkpoint, sender, *FAST_END, "--source-option",
                                      f"give_up={give_up}")
    assert code == status and "Traceback" not in err
    assert "gave up after 2 failed attempts (max_retries=1" in err
    frames_sent = len(sender.sent_at)
    results = read_results(out)
    assert results.report.ok and results.results
    if give_up == "end":
        check_results(out, report, frames_sent)
    else:  # one line naming the URL, and the windows read before it are all in the file
        assert err.strip().splitlines()[-1].startswith(f"egostream run: error: udp://127.0.0.1:{port}: connection:")
        assert results.results[-1].rows >= frames_sent // 16 - 1


@pytest.mark.parametrize("transport", ["tcp", "http"])
def test_tcp_and_http_streams_end_cleanly_when_the_server_closes(tmp_path, capsys, checkpoint, clip, transport):
    sender = LoopbackSender(clip, free_tcp_port(), SenderPlan(frames=90), transport)  # listens: no frame lost
    code, report, err, out = run_live(tmp_path, capsys, checkpoint, sender, *FAST_END)
    assert code == 0 and "Traceback" not in err
    # FFmpeg's HTTP client reads the server's close as an I/O error: one failed retry, then the policy ends it
    assert report["source"]["reconnects"] == (0 if transport == "tcp" else 1)
    assert report["source"]["discontinuities"] == 0
    check_results(out, report, 90)


def test_run_reports_the_frames_skipped_in_a_corrupted_file(tmp_path, capsys, checkpoint, video):
    corrupt = corrupt_middle(video, tmp_path / "corrupt.mp4")
    packets, decoded = decoded_by_plain_pyav(corrupt)
    assert len(decoded) < packets
    out = tmp_path / "corrupt.jsonl"
    code = main(["run", str(corrupt), "--checkpoint", str(checkpoint), "--extractor", "pixel_projection", "--out",
                 str(out), "--format", "jsonl", "--no-table", "--local", *EXTRACTOR])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert report["source"]["skipped_frames"] == packets - len(decoded)
    assert report["source"]["corrupt_frames"] == sum(decoded.values())
    assert any(r.decode_errors for r in read_results(out).results)


@pytest.mark.cluster
def test_a_looping_sender_with_untimed_frames_streams_through_ray_actors(ray_cluster, tmp_path, capsys, checkpoint,
                                                                         clip):
    """The reported failure (a NaN time ending the stream in a Ray actor) with a loop and frames without PTS. The
    actors may take long to start on a busy machine, so the sender loops for 30 s and the receiver joins when it can.
    """
    plan = SenderPlan(frames=900, loop_frames=120, no_pts=(780, 800), delay_s=2.0)
    sender = LoopbackSender(clip, free_udp_port(), plan)
    code, report, err, out = run_live(tmp_path, capsys, checkpoint, sender, *FAST_END, "--source-option",
                                      "open_timeout_s=30", "--ray-address", ray_cluster.address)
    assert code == 0 and "Traceback" not in err and "RayTaskError" not in err
    assert f"egostream: waiting for {sender.url} (attempt 1 of 2" in err  # relayed from the decode actor
    source = report["source"]
    assert source["discontinuities"] >= 1 and 20 - 2 <= source["untimed"] <= 20 and source["missing_frames"] == 0
    records = read_results(out).results
    assert [r.window_index for r in records] == list(range(len(records))) and records[-1].rows == report["rows"]
    assert report["rows"] == expected_window_count(source["canonical_frames"], EGOVLP_WINDOWS)
    assert 1 <= sum(r.discontinuity for r in records) <= source["discontinuities"]  # a dropped window drops its flag


def test_source_options_are_checked_before_the_stream_starts(tmp_path, capsys, checkpoint, video):
    out = tmp_path / "never.jsonl"
    base = ["run", "--checkpoint", str(checkpoint), "--extractor", "pixel_projection", "--out", str(out), "--local",
            "--no-table"]
    assert main([*base[:1], f"udp://127.0.0.1:{free_udp_port()}", *base[1:], "--source-option", "max_retries=many",
                 *EXTRACTOR]) == 2
    assert main([*base[:1], str(video), *base[1:], "--source-option", "rtsp_transport=tcp",
                 *EXTRACTOR]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "source option max_retries: not a number: 'many'" in err[0]
    assert f"{video}: source options: only network sources take source options" in err[1]
    assert not out.exists()
