"""``--device`` on every command that runs a model: a device this machine cannot use is one error line naming the
field ``device`` and exit status 2, before any output is written; ``--device cpu`` runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from egostream.cli import main
from egostream.config import load_config
from egostream.ego4d.synthetic import SynthConfig, generate_dataset
from egostream.model import ModelConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
MISSING = f"cuda:{torch.cuda.device_count() if torch.cuda.is_available() else 0}"


def commands(tmp: Path) -> dict[str, list[str]]:
    data, ckpt, out = str(tmp / "data"), str(tmp / "model.pt"), str(tmp / "out")
    return {
        "replay": ["replay", "--task", "oscc", "--data", data, "--checkpoint", ckpt, "--out", out],
        "replay --stream": ["replay", "--stream", "--video", "v", "--data", data, "--checkpoint", ckpt, "--out",
                            f"{out}.msgpack"],
        "train": ["train", "single", "--task", "ar", "--data", data, "--out", out],
        "run": ["run", str(tmp / "video.mp4"), "--checkpoint", ckpt, "--extractor", "pixel_projection", "--out",
                f"{out}.msgpack", "--local"],
        "extract": ["extract", str(tmp / "videos"), "--out", out, "--extractor", "pixel_projection"],
        "demo": ["demo", "--out", out],
        "backpack build": ["backpack", "build", "--checkpoint", ckpt, "--data", data, "--out", f"{out}.pt"],
    }


@pytest.mark.parametrize("name", ["replay", "replay --stream", "train", "run", "extract", "demo", "backpack build"])
@pytest.mark.parametrize("device", [MISSING, "tpu"])
def test_an_unusable_device_is_one_line_naming_device(tmp_path: Path, capsys, name: str, device: str) -> None:
    argv = commands(tmp_path)[name]
    assert main([*argv, "--device", device]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "device" in lines[0] and device in lines[0], captured.err
    assert captured.out == "" and not (tmp_path / "out").exists()


def test_replay_on_the_cpu_through_the_flag(tmp_path: Path, capsys) -> None:
    generate_dataset(tmp_path / "data", SynthConfig(videos=3, min_video_sec=150, max_video_sec=160, seed=1))
    checkpoint = load_config(ModelConfig, CONFIGS / "tiny.yaml").build(seed=0).save(tmp_path / "tiny.pth")
    runs = {}
    for device in ("cpu", "auto"):
        out = tmp_path / device
        assert main(["replay", "--task", "oscc", "--data", str(tmp_path / "data"), "--checkpoint", str(checkpoint),
                     "--out", str(out), "--features", "synthetic", "--device", device]) == 0
        runs[device] = json.loads(capsys.readouterr().out)
        assert runs[device] == json.loads((out / "metrics.json").read_text())
    assert (tmp_path / "cpu" / "oscc.json").read_bytes() == (tmp_path / "auto" / "oscc.json").read_bytes() or \
        torch.cuda.is_available()
    assert main(["replay", "--task", "oscc", "--data", str(tmp_path / "data"), "--checkpoint", str(checkpoint),
                 "--out", str(tmp_path / "bad"), "--features", "synthetic", "precision=float8"]) == 2
    assert "precision" in capsys.readouterr().err
