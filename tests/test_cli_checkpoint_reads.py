"""``egostream run --local``, ``egostream replay --stream``, ``egostream replay`` and ``egostream backpack build``
read every checkpoint file once at start-up (the model, the fail-fast checks and the feature-set check share what
was read), for a plain model checkpoint and for a translation checkpoint with its frozen source; the count is taken
at the one function that reads a checkpoint file (:func:`egostream.checkpoint.reading.load_checkpoint`'s
``load_restricted``)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from egostream.checkpoint import reading
from egostream.cli import main
from tests.translation.models import saved_translation, tiny_model

SOURCE_TASKS = ("oscc", "pnr")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Synthetic features, a short video, a tiny multi-task checkpoint and a translation checkpoint on it."""
    from egostream.io.synthetic_video import render_video

    root = tmp_path_factory.mktemp("reads")
    width = tiny_model().feature_dim
    assert main(["synth", str(root / "data"), "min_video_sec=120", "max_video_sec=150", f"feature_dim={width}",
                 "moments_per_video=3", "train_fraction=0.5", "--videos", "2", "--seed", "2"]) == 0
    translated, model = saved_translation(root, "oscc", SOURCE_TASKS)
    clip = root / "clip.mp4"
    render_video(clip, [(frame // 45) % 3 for frame in range(30 * 4)], 30.0, num_classes=3, size=(48, 64))
    video = sorted(path.stem for path in (root / "data" / "features" / "synthetic").glob("*.pt"))[0]
    return {"data": root / "data", "video": video, "clip": clip, "width": width, "model": model,
            "translation": translated}


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[Path]:
    reads: Counter[Path] = Counter()
    read_file = reading.load_restricted

    def counted(path: Any, *args: Any, **kwargs: Any) -> Any:
        reads[Path(path)] += 1
        return read_file(path, *args, **kwargs)

    monkeypatch.setattr(reading, "load_restricted", counted)
    return reads


@pytest.mark.parametrize("kind", ["model", "translation"])
@pytest.mark.parametrize("command", ["replay --stream", "run --local", "replay"])
def test_each_checkpoint_file_is_read_once(world: dict[str, Any], kind: str, command: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint, out = world[kind], tmp_path / "out"
    if command == "replay --stream":
        argv = ["replay", "--stream", "--data", str(world["data"]), "--video", world["video"], "--features",
                "synthetic", "--format", "jsonl"]
    elif command == "run --local":
        argv = ["run", str(world["clip"]), "--extractor", "pixel_projection", "--local", "--no-table", "--format",
                "jsonl", "--extractor-option", f"dim={world['width']}", "--extractor-option", "device=cpu"]
    else:
        argv = ["replay", "--task", "oscc", "--protocol", "hier-egopack", "--data", str(world["data"]), "--split",
                "val", "--features", "synthetic"]
    reads = _count_reads(monkeypatch)
    assert main([*argv, "--checkpoint", str(checkpoint), "--out", str(out)]) == 0, capsys.readouterr().err
    expected = {checkpoint: 1} if kind == "model" else {checkpoint: 1, world["model"]: 1}
    assert dict(reads) == expected
    assert (out / "oscc.json").is_file() if command == "replay" else out.read_text().strip()  # results written


def test_backpack_build_reads_its_support_checkpoint_once(world: dict[str, Any], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    reads = _count_reads(monkeypatch)
    out = tmp_path / "backpack.pt"
    assert main(["backpack", "build", "--checkpoint", str(world["model"]), "--data", str(world["data"]),
                 "--features", "synthetic", "--out", str(out)]) == 0, capsys.readouterr().err
    assert dict(reads) == {world["model"]: 1} and out.is_file()
