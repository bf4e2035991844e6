"""``egostream train translation --support-checkpoint ...`` writes a translation checkpoint that ``egostream replay``
loads with its frozen sources; the recorded sources are the ones given."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from egostream.checkpoint import load_checkpoint
from egostream.cli import main
from egostream.config import CONFIG_DIR
from egostream.translation import is_translation_checkpoint
from tests.stream.streams import single_threaded_torch
from tests.translation.models import tiny_model

__all__ = ["single_threaded_torch"]

SMALL = ["min_video_sec=120", "max_video_sec=150", "feature_dim=4", "moments_per_video=4", "train_fraction=0.5"]


def test_train_translation_then_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    assert main(["synth", str(root), *SMALL, "--videos", "4", "--seed", "3"]) == 0
    source = tmp_path / "source.pt"
    replace(tiny_model(), feature_dim=4, tasks=("oscc", "pnr")).build(seed=0).save(source)
    capsys.readouterr()
    out = tmp_path / "run"
    assert main(["train", "translation", "--task", "oscc", "--data", str(root), "--out", str(out),
                 "--config", str(CONFIG_DIR / "train" / "tiny_translation.yaml"), "--support-checkpoint", str(source),
                 "num_epochs=2", "batch_size=2", "model.feature_dim=4", "translation.source_tasks=[oscc,pnr]"]) == 0
    summary = json.loads(capsys.readouterr().out)
    checkpoint = Path(summary["checkpoint"])
    assert summary["epochs"] == 2 and is_translation_checkpoint(checkpoint)
    record = load_checkpoint(checkpoint).config["translation"]
    assert [item["path"] for item in record["sources"]] == [str(source)]
    assert record["sources"][0]["tasks"] == ["oscc", "pnr"]
    assert main(["replay", "--task", "oscc", "--protocol", "hier-egopack", "--data", str(root), "--split", "val",
                 "--checkpoint", str(checkpoint), "--features", "synthetic", "--out", str(tmp_path / "replay")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0.0 <= metrics["oscc"]["accuracy_pct"] <= 100.0
    assert json.loads((tmp_path / "replay" / "oscc.json").read_text())


def test_a_translation_checkpoint_streams_in_replay_stream_and_run(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``replay --stream`` and ``run`` load a translation checkpoint with its frozen source: every window has the
    primary task's readout and the attention shares over the source tasks."""
    from egostream.io.sinks import read_results
    from egostream.io.synthetic_video import render_video

    root = tmp_path / "data"
    assert main(["synth", str(root), *SMALL, "--videos", "4", "--seed", "3"]) == 0
    source = tmp_path / "source.pt"
    replace(tiny_model(), feature_dim=4, tasks=("oscc", "pnr")).build(seed=0).save(source)
    capsys.readouterr()
    assert main(["train", "translation", "--task", "oscc", "--data", str(root), "--out", str(tmp_path / "run"),
                 "--config", str(CONFIG_DIR / "train" / "tiny_translation.yaml"), "--support-checkpoint", str(source),
                 "num_epochs=2", "batch_size=2", "model.feature_dim=4", "translation.source_tasks=[oscc,pnr]"]) == 0
    checkpoint = Path(json.loads(capsys.readouterr().out)["checkpoint"])
    video_uid = sorted(path.stem for path in (root / "features" / "synthetic").glob("*.pt"))[0]
    streamed = tmp_path / "stream.jsonl"
    assert main(["replay", "--stream", "--data", str(root), "--video", video_uid, "--checkpoint", str(checkpoint),
                 "--features", "synthetic", "--out", str(streamed)]) == 0
    clip = tmp_path / "clip.mp4"
    render_video(clip, [(frame // 45) % 3 for frame in range(30 * 6)], 30.0, num_classes=3, size=(48, 64))
    live = tmp_path / "live.jsonl"
    assert main(["run", str(clip), "--checkpoint", str(checkpoint), "--extractor", "pixel_projection", "--out",
                 str(live), "--format", "jsonl", "--local", "--no-table", "--extractor-option", "dim=4",
                 "--extractor-option", "device=cpu", "emit_every_s=1.0"]) == 0
    for path in (streamed, live):
        windows = read_results(path).results
        assert windows
        for window in windows:
            assert window.oscc is not None and window.ar is None and window.mq is None
            assert set(window.attention) == {"oscc", "pnr"}
            assert abs(sum(window.attention.values()) - 1.0) < 1e-5
