"""Issue 15, item 2 and the batch rules, on the Ray cluster: errors raised in actors and tasks reach the user as one
line naming the file (exit 2), and a bad item of a batch is skipped and listed while the others keep their results."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from egostream.cli import main
from egostream.io import EGOVLP_WINDOWS, expected_window_count
from tests.actors.conftest import FRAMES
from tests.actors.test_command_outputs import SMALL, _fails, _run_argv, _snapshot, _stream_config

pytestmark = pytest.mark.cluster


def test_a_bad_source_in_a_stage_actor_is_one_line(ray_cluster, checkpoint: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``run`` on a missing or random-bytes file: the decoder actor's InputError was a 60-90-line traceback."""
    config = _stream_config(tmp_path)
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                    dtype=torch.uint8).numpy().tobytes())
    before = _snapshot(tmp_path)
    for source in (tmp_path / "missing.mp4", noise):
        argv = [arg for arg in _run_argv(source, checkpoint, tmp_path / "out.jsonl", config) if arg != "--local"]
        _fails(capsys, [*argv[:-2], "--ray-address", ray_cluster.address, *argv[-2:]], str(source))
    assert _snapshot(tmp_path) == before


def test_extract_on_the_cluster_skips_the_corrupt_video_of_three(ray_cluster, video: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "videos").mkdir()
    for uid in ("uid_a", "uid_c"):
        (tmp_path / "videos" / f"{uid}.mp4").write_bytes(video.read_bytes())
    corrupt = tmp_path / "videos" / "uid_b.mp4"
    corrupt.write_bytes(video.read_bytes()[: len(video.read_bytes()) // 3])
    code = main(["extract", str(tmp_path / "videos"), "--out", str(tmp_path / "features"), "--extractor",
                 "pixel_projection", "--extractor-option", "dim=32", "--extractor-option", "device=cpu",
                 "--ray-address", ray_cluster.address])
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert code == 2 and report["written"] == 2 and list(report["failed"]) == ["uid_b"]
    assert str(corrupt) in report["failed"]["uid_b"]
    skips = [line for line in captured.err.splitlines() if line.startswith("egostream extract: skipped")]
    assert len(skips) == 1 and str(corrupt) in skips[0] and "Traceback" not in captured.err
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == ["uid_a.pt", "uid_c.pt"]
    windows = expected_window_count(FRAMES, EGOVLP_WINDOWS)
    assert torch.load(tmp_path / "features" / "uid_c.pt", weights_only=True).shape == (windows, 32)


def test_replay_on_the_cluster_lists_the_tasks_it_could_not_run(ray_cluster, checkpoint: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Wrong-width features: the worker's InputError became a traceback and exit 1; now each task is listed."""
    data = tmp_path / "data"
    assert main(["synth", str(data), *[s for s in SMALL if not s.startswith("feature_dim")], "feature_dim=16",
                 "--videos", "4", "--seed", "1"]) == 0
    capsys.readouterr()
    code = main(["replay", "--task", "ar", "--data", str(data), "--checkpoint", str(checkpoint), "--features",
                 "synthetic", "--out", str(tmp_path / "out"), "--ray-address", ray_cluster.address])
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert code == 2 and list(report) == ["failed"] and list(report["failed"]) == ["ar"]
    skips = [line for line in captured.err.splitlines() if line.startswith("egostream replay: skipped ar:")]
    assert len(skips) == 1 and "synthetic" in skips[0] and "Traceback" not in captured.err
    assert not (tmp_path / "out" / "ar.json").exists()
