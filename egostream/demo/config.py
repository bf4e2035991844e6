"""Settings and paths of ``egostream demo``: :class:`DemoConfig` (``configs/demo.yaml``), :class:`DemoPaths`."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from egostream.config import CONFIG_DIR, load_config
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.synthetic import SynthConfig
from egostream.errors import InputError
from egostream.model import TASK_NAMES, ModelConfig
from egostream.stream.config import StreamConfig
from egostream.train.optim import OptimizerConfig
from egostream.train.recipe import TrainConfig

__all__ = ["DEFAULT_DEMO_CONFIG", "STRIDE_FRAMES", "HEADLINE_METRICS", "DemoConfig", "load_demo_config", "DemoPaths"]


#: ``configs/demo.yaml`` of a source checkout.
DEFAULT_DEMO_CONFIG = CONFIG_DIR / "demo.yaml"

#: Frames per feature row (the Ego4D feature grid), also the stride of the extractor's windows.
STRIDE_FRAMES = 16

#: The headline numbers of the final table: (task, label, key in the task's metrics, higher is better).
HEADLINE_METRICS: tuple[tuple[str, str, str, bool], ...] = (
    ("ar", "verb top-1 %", "verb_top1_pct", True),
    ("ar", "noun top-1 %", "noun_top1_pct", True),
    ("lta", "verb ED@20", "verb_ed", False),
    ("lta", "noun ED@20", "noun_ed", False),
    ("oscc", "accuracy %", "accuracy_pct", True),
    ("pnr", "keyframe error (s)", "mean_error_s", False),
    ("mq", "average mAP", "average_mAP", True),
)


def _demo_dataset() -> SynthConfig:
    """Twelve 90-120 s videos with short actions, so that every clip holds the 8 + 20 actions of an LTA window, and
    two action recipes followed without switching, so that a few minutes of training learn to anticipate."""
    return SynthConfig(videos=12, seed=0, min_video_sec=90.0, max_video_sec=120.0, feature_dim=8, num_recipes=2,
                       recipe_switch_probability=0.0, min_action_sec=1.0, max_action_sec=3.0, max_action_gap_sec=0.5,
                       state_change_samples_per_video=6, moments_per_video=4, min_moment_sec=4.0, max_moment_sec=12.0)


def _demo_recipe() -> TrainConfig:
    """A tiny multi-task model (all five heads) on the 32-wide features of the rendered videos."""
    model = ModelConfig(feature_name="video_pixels", feature_dim=32, hidden_size=32, depth=2, pos_hidden_channels=16,
                        dropout=0.1, features_size=32, classifier_hidden=32)
    return TrainConfig(stage="multi", tasks=TASK_NAMES, seed=0, num_epochs=40, batch_size=2, lr_warmup_epochs=1,
                       lr_min=0.0, optimizer=OptimizerConfig(lr=3e-3), eval_every_epochs=0, progress=True,
                       model=model)


@dataclass(frozen=True)
class DemoConfig:
    """Settings of ``egostream demo``. The defaults are the demo (``configs/demo.yaml`` spells them out); any field
    can be overridden as ``key=value`` (``train.num_epochs=4``, ``synth.videos=8``).

    Attributes:
        synth: the synthetic dataset (its ``seed`` also seeds the rendering of negative OSCC samples). Its planted
            features (``features/<synth.feature_name>/``) are not used: the model reads the rendered videos'.
        frame_size: (height, width) of the rendered video frames, in pixels (even, for H.264 4:2:0).
        extractor: registered feature extractor reading the rendered videos.
        extractor_options: its constructor options (its width must be ``train.model.feature_dim``).
        window_frames: frames per extractor window (16: the EgoVLP-style grid).
        decoder: video decoder of the extraction and of the stream (``pyav`` or ``decord``).
        train: the training recipe (multi-task, all five heads); ``train.model.feature_name`` names the features
            folder the extractor writes and the model reads.
        stream: the streaming engine's settings for the held-out video.
        protocol: metrics of the final evaluation (``official``: the Ego4D evaluators; ``hier-egopack``: the paper's).
        held_out_video: which video of the val split is streamed (index in the val annotations' order).
        ray_object_store_mb: object store of the local Ray instance, in MiB (Ray's minimum is 75).
        table_rows: windows shown in the live table (the newest ones).
        live_table: redraw the table as windows arrive (otherwise it is printed once at the end).
    """

    synth: SynthConfig = field(default_factory=_demo_dataset)
    frame_size: tuple[int, int] = (48, 64)
    extractor: str = "pixel_projection"
    extractor_options: dict[str, Any] = field(default_factory=lambda: {"dim": 32, "grid": 8, "seed": 0,
                                                                       "device": "cpu"})
    window_frames: int = 16
    decoder: Literal["pyav", "decord"] = "pyav"
    train: TrainConfig = field(default_factory=_demo_recipe)
    stream: StreamConfig = field(default_factory=lambda: StreamConfig(horizon_s=120.0, emit_every_s=2.0))
    protocol: Literal["hier-egopack", "official"] = "official"
    held_out_video: int = 0
    ray_object_store_mb: int = 80
    table_rows: int = 12
    live_table: bool = True

    def __post_init__(self) -> None:
        height, width = self.frame_size
        if height < 2 or width < 2 or height % 2 or width % 2:
            raise InputError("DemoConfig", "frame_size", f"{self.frame_size} must be two even sizes >= 2 (H.264)")
        if self.train.stage != "multi" or set(self.train.tasks) != {"ar", "lta", "oscc", "pnr", "mq"}:
            raise InputError("DemoConfig", "train.tasks", "the demo trains one multi-task model with all five heads "
                                                          f"(stage multi), got {self.train.stage} {self.train.tasks}")
        if self.held_out_video < 0:
            raise InputError("DemoConfig", "held_out_video", f"must not be negative, got {self.held_out_video}")
        if self.ray_object_store_mb < 75:
            raise InputError("DemoConfig", "ray_object_store_mb",
                             f"Ray needs at least 75, got {self.ray_object_store_mb}")
        if self.table_rows < 1:
            raise InputError("DemoConfig", "table_rows", f"must be positive, got {self.table_rows}")

    @property
    def feature_name(self) -> str:
        """The features folder (``data/features/<feature_name>/``) written by the extractor, read by the model."""
        return self.train.model.feature_name


def load_demo_config(path: str | PathLike[str] | None = None, overrides: Sequence[str] = ()) -> DemoConfig:
    """:class:`DemoConfig` from ``path`` (default ``configs/demo.yaml``) and ``key=value`` overrides."""
    return load_config(DemoConfig, path if path is not None else DEFAULT_DEMO_CONFIG, overrides)


@dataclass(frozen=True)
class DemoPaths:
    """Where every artefact of a demo run lives under ``root``."""

    root: Path

    @property
    def config(self) -> Path:
        """The resolved :class:`DemoConfig` of the run (a later run with another config needs ``force``)."""
        return self.root / "demo.yaml"

    @property
    def data(self) -> Path:
        """The synthetic Ego4D data folder (annotations, ``features/``)."""
        return self.root / "data"

    @property
    def videos(self) -> Path:
        """One ``<video_uid>.mp4`` per dataset video."""
        return self.root / "videos"

    @property
    def train(self) -> Path:
        """``checkpoint.pt``, ``metrics.jsonl``, ``recipe.yaml`` of the training run."""
        return self.root / "train"

    @property
    def checkpoint(self) -> Path:
        from egostream.train.loop import CHECKPOINT_NAME

        return self.train / CHECKPOINT_NAME

    @property
    def stream(self) -> Path:
        """The held-out video's window stream (``<video_uid>.msgpack``) and its pipeline report."""
        return self.root / "stream"

    @property
    def replay(self) -> Path:
        """The trained model's submissions on the val split and their ``metrics.json``."""
        return self.root / "replay"

    @property
    def chance(self) -> Path:
        """The class-prior submissions on the val split and their ``metrics.json``."""
        return self.root / "chance"

    @property
    def steps(self) -> Path:
        """``<step>.json``: the summary of each finished step (its presence marks the step done)."""
        return self.root / "steps"

    @property
    def metrics(self) -> Path:
        """The final summary: trained vs chance per task, and the streaming check."""
        return self.root / "metrics.json"

    def features(self, name: str) -> Path:
        return Ego4dLayout(self.data).features_dir(name)

    @property
    def report(self) -> Path:
        """The timeline report of the streamed video (``report.html`` and PNGs)."""
        return self.root / "report"

    def owned(self) -> tuple[Path, ...]:
        """Everything a run writes (what ``force`` removes; nothing else under ``root`` is touched)."""
        return (self.config, self.data, self.videos, self.train, self.stream, self.replay, self.chance, self.steps,
                self.metrics, self.report)
