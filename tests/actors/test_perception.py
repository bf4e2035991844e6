"""The real stages: an H.264 video through the tiny pixel extractor and a tiny model, in-process; the emitter's
snapshot (model left out) resumes to the same results; extraction of a folder of videos gives one [T, D] file per
video with the Ego4D window count (the result file's own tests are in tests/io/test_sinks.py)."""
from __future__ import annotations

from pathlib import Path

import torch

from egostream.actors.batch import run_batch
from egostream.actors.extraction import FeatureExtractionJob, extraction_items, find_videos
from egostream.actors.perception import EmitterEngineFactory, VideoWindows, annotate_latency
from egostream.actors.pipeline import PipelineConfig, StreamPipeline
from egostream.io import EGOVLP_WINDOWS, expected_window_count
from egostream.io.sinks import ResultFileFactory, read_results

from tests.actors.conftest import FRAMES, PIXELS, STREAM


def _rows(video: Path) -> torch.Tensor:
    return FeatureExtractionJob(PIXELS, 32).features(str(video))


def test_a_file_streams_to_one_result_per_emission(video: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.msgpack"
    report = StreamPipeline.from_factories(
        VideoWindows(str(video)), PIXELS, EmitterEngineFactory(str(checkpoint), "clip", STREAM),
        ResultFileFactory(str(out), "msgpack"), annotate=annotate_latency, backend="local",
        config=PipelineConfig(batch_size=4, checkpoint_every=5)).run()
    windows = expected_window_count(FRAMES, EGOVLP_WINDOWS)
    results = read_results(out)
    assert results.report.ok and report.rows == windows == 18
    # one window every 4 rows (rows 4, 8, 12, 16) and one at the end of the stream over rows 17-18
    assert [r.window_index for r in results.results] == list(range(5))
    assert [r.rows for r in results.results] == [4, 8, 12, 16, 18]
    for result in results.results[:-1]:  # the last comes from the engine's finish(), after every stage
        assert {"decode", "extract", "engine_push", "end_to_end", "engine"} <= set(result.latency_ms)
    assert results.results[-1].latency_ms["end_to_end"] >= 0


def test_the_emitter_snapshot_resumes_to_the_same_results(video: Path, checkpoint: Path) -> None:
    rows = _rows(video)
    factory = EmitterEngineFactory(str(checkpoint), "clip", STREAM)
    straight = factory()
    expected = [straight.push(rows[i:i + 6]) for i in range(0, len(rows), 6)]
    interrupted = factory()
    got = [interrupted.push(rows[i:i + 6]) for i in range(0, 12, 6)]
    state = interrupted.state_dict()
    assert len(state) < 200_000  # the model is not in the snapshot
    resumed = factory()
    resumed.load_state_dict(state)
    got += [resumed.push(rows[i:i + 6]) for i in range(12, len(rows), 6)]

    def comparable(batches: list[list]) -> list:
        return [(r.window_index, r.rows, r.ar, r.lta, r.oscc, r.pnr, r.mq) for batch in batches for r in batch]

    assert comparable(got) == comparable(expected)


def test_windows_fall_on_the_emission_grid_whatever_the_batches(video: Path, checkpoint: Path) -> None:
    rows = _rows(video)
    factory = EmitterEngineFactory(str(checkpoint), "clip", STREAM)
    for batch in (2, 7):
        engine = factory()
        results = [r for i in range(0, len(rows), batch) for r in engine.push(rows[i:i + batch])] + engine.finish()
        assert [r.rows for r in results] == [4, 8, 12, 16, 18]


def test_extract_writes_one_feature_file_per_video(video: Path, tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "uid_a.mp4").write_bytes(video.read_bytes())
    (folder / "uid_b.mp4").write_bytes(video.read_bytes()[: len(video.read_bytes()) // 3])  # truncated video
    (folder / "notes.txt").write_text("not a video")
    job = FeatureExtractionJob(PIXELS, 32)
    report = run_batch(extraction_items(find_videos([folder]), tmp_path / "features"), job, backend="local")
    assert report.written == ["uid_a"] and list(report.failed) == ["uid_b"]  # mp4 cut before its index: bad input
    assert "uid_b.mp4: container: cannot open video" in report.failed["uid_b"]
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == ["uid_a.pt"]
    features = torch.load(tmp_path / "features" / "uid_a.pt", weights_only=True)
    assert features.shape == (expected_window_count(FRAMES, EGOVLP_WINDOWS), 32)
    assert torch.equal(features, _rows(video))
    again = run_batch(extraction_items(find_videos([folder]), tmp_path / "features"), job, backend="local")
    assert "uid_a" in again.skipped
