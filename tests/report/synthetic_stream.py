"""A real stream of the synthetic data for the report and server tests: a three-video synthetic Ego4D dataset, a
tiny model (random weights, seed 0), the first val video's features streamed through the engine into a msgpack
file, and a rendered video of that stream's length named after the video uid (for thumbnails)."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from egostream.stream.config import StreamConfig

SYNTH = ["videos=3", "seed=0", "min_video_sec=60", "max_video_sec=60", "state_change_samples_per_video=4",
         "moments_per_video=3", "min_moment_sec=4", "max_moment_sec=10", "min_action_sec=1", "max_action_sec=3"]
STREAM = StreamConfig(horizon_s=30.0, emit_every_s=4.0)


@dataclass(frozen=True)
class SyntheticStream:
    data: Path
    checkpoint: Path
    video_uid: str
    results: Path
    video: Path


@pytest.fixture(scope="session")
def synthetic_stream(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStream:
    from rich.console import Console

    from egostream.config import CONFIG_DIR, load_config
    from egostream.ego4d.annotations import read_lta_annotations
    from egostream.ego4d.layout import Ego4dLayout
    from egostream.ego4d.synthetic import SynthConfig, generate_dataset
    from egostream.io.synthetic_video import render_video
    from egostream.model import ModelConfig
    from egostream.replay_stream import replay_stream

    root = tmp_path_factory.mktemp("report_stream")
    data = root / "data"
    generate_dataset(data, load_config(SynthConfig, None, SYNTH))
    checkpoint = load_config(ModelConfig, CONFIG_DIR / "model" / "tiny.yaml").build(seed=0).save(root / "tiny.pth")
    uid = read_lta_annotations(Ego4dLayout.from_root(data).lta_annotations("val")).actions[0].video_uid
    results = root / "stream.msgpack"
    summary = replay_stream(data, uid, checkpoint, results, features="synthetic", stream_config=STREAM,
                            console=Console(file=io.StringIO()), live=False)
    frames = summary.rows * STREAM.stride_frames
    video = render_video(root / f"{uid}.mp4", [(frame // 90) % 6 for frame in range(frames)], num_classes=6)
    return SyntheticStream(data, Path(checkpoint), uid, results, Path(video))
