"""``egostream run --local`` and ``egostream replay --stream`` read every checkpoint file once at start-up (the
model, the fail-fast checks and the feature-set check share what was read), for a plain model checkpoint and for a
translation checkpoint with its frozen source; the count is taken at the one function that reads a checkpoint file
(:func:`egostream.checkpoint.reading.load_checkpoint`'s ``load_restricted``)."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from egostream.checkpoint import reading
from egostream.cli import main
from egostream.model import ModelBundle
from tests.translation.models import tiny_model, translation

SOURCE_TASKS = ("oscc", "pnr")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Synthetic features, a short video, a tiny multi-task checkpoint and a translation checkpoint on it."""
    from egostream.io.synthetic_video import render_video

    root = tmp_path_factory.mktemp("reads")
    width = tiny_model().feature_dim
    assert main(["synth", str(root / "data"), "min_video_sec=120", "max_video_sec=150", f"feature_dim={width}",
                 "moments_per_video=3", "train_fraction=0.5", "--videos", "2", "--seed", "2"]) == 0
    model = root / "model.pt"
    replace(tiny_model(), tasks=SOURCE_TASKS).build(seed=0).save(model)
    translated = translation("oscc", sources=ModelBundle.from_checkpoints(model), source_tasks=SOURCE_TASKS)
    translated.sources.paths = {task: model for task in SOURCE_TASKS}
    clip = root / "clip.mp4"
    render_video(clip, [(frame // 45) % 3 for frame in range(30 * 4)], 30.0, num_classes=3, size=(48, 64))
    video = sorted(path.stem for path in (root / "data" / "features" / "synthetic").glob("*.pt"))[0]
    return {"data": root / "data", "video": video, "clip": clip, "width": width, "model": model,
            "translation": translated.save(root / "translation.pt")}


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[Path]:
    reads: Counter[Path] = Counter()
    read_file = reading.load_restricted

    def counted(path: Any, *args: Any, **kwargs: Any) -> Any:
        reads[Path(path)] += 1
        return read_file(path, *args, **kwargs)

    monkeypatch.setattr(reading, "load_restricted", counted)
    return reads


@pytest.mark.parametrize("kind", ["model", "translation"])
@pytest.mark.parametrize("command", ["replay --stream", "run --local"])
def test_each_checkpoint_file_is_read_once(world: dict[str, Any], kind: str, command: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint, out = world[kind], tmp_path / "windows.jsonl"
    if command == "replay --stream":
        argv = ["replay", "--stream", "--data", str(world["data"]), "--video", world["video"], "--features",
                "synthetic"]
    else:
        argv = ["run", str(world["clip"]), "--extractor", "pixel_projection", "--local", "--no-table",
                "--extractor-option", f"dim={world['width']}", "--extractor-option", "device=cpu"]
    reads = _count_reads(monkeypatch)
    assert main([*argv, "--checkpoint", str(checkpoint), "--out", str(out), "--format", "jsonl"]) == 0, \
        capsys.readouterr().err
    expected = {checkpoint: 1} if kind == "model" else {checkpoint: 1, world["model"]: 1}
    assert dict(reads) == expected
    assert out.read_text().strip()  # the windows were written
