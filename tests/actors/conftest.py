"""Fixtures of the actor tests: a short H.264 video of coloured stretches and a tiny random model checkpoint."""
from __future__ import annotations

from pathlib import Path

import pytest

from egostream.actors.perception import ExtractorSpec
from egostream.config import CONFIG_DIR, load_config
from egostream.model import ModelConfig
from egostream.stream.config import StreamConfig

FRAMES = 30 * 9 + 7  # 9.2 s at 30 fps: 18 windows of 16 frames, the last backpadded
STREAM = StreamConfig(emit_every_s=16 / 30 * 4, horizon_s=60.0)  # a result every 4 rows
PIXELS = ExtractorSpec("pixel_projection", {"dim": 32, "device": "cpu"})


@pytest.fixture(scope="session")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from egostream.io.synthetic_video import render_video

    path = tmp_path_factory.mktemp("videos") / "clip.mp4"
    render_video(path, [(frame // 45) % 3 for frame in range(FRAMES)], 30.0, num_classes=3, size=(48, 64))
    return path


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = load_config(ModelConfig, CONFIG_DIR / "model" / "tiny.yaml", []).build(seed=0)
    return bundle.save(tmp_path_factory.mktemp("model") / "tiny.pt")
