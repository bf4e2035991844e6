"""``egostream demo``: the whole main job on synthetic data, with nothing downloaded.

Five steps, each a plain function of the :class:`DemoConfig` and the output folder (:class:`DemoPaths`):

1. :func:`synthesize`: a small Ego4D-format dataset (:func:`egostream.ego4d.synthetic.generate_dataset`) and one
   H.264 video per dataset video, rendered with PyAV from its annotations (:func:`frame_labels`,
   :func:`render_labelled_frames`): each frame shows the current action's verb and noun, the current MQ moment and
   the object state of the current OSCC/PNR sample as coloured, striped quadrants, so a tiny extractor sees the
   structure every task is about.
2. :func:`extract`: the videos' features in the Ego4D layout through
   :func:`egostream.actors.commands.extract_features` (the ``egostream extract`` code path), so training, replay and
   streaming read the same rows.
3. :func:`train_model`: a tiny multi-task Hier-EgoPack (all five heads) with :func:`egostream.train.loop.train`.
4. :func:`stream_held_out`: a held-out (val) video through decode → extract → engine → sink as Ray actors on a
   local Ray instance started and stopped here, a live table of the windows on the terminal, the windows written as
   msgpack frames.
5. :func:`evaluate`: the val split replayed with the trained model (:func:`egostream.replay.replay`) next to the
   class-prior chance level (:func:`egostream.ego4d.baselines.write_prior_submission`), and the streamed windows'
   current-action readout against the ground-truth action of their span.

:func:`run_demo` runs the steps in order. It is deterministic (every draw is seeded, torch runs on one thread) and
resumable: a finished step leaves ``OUT/steps/<step>.json`` and is reused by the next run (``force=True`` starts
afresh); an interrupted step resumes where its own machinery can (feature files, training epochs, replayed tasks).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from egostream.config import CONFIG_DIR, load_config, to_dict
from egostream.ego4d.annotations import (read_lta_annotations, read_moments_annotations,
                                         read_state_change_annotations, read_video_metadata)
from egostream.ego4d.layout import Ego4dLayout
from egostream.ego4d.synthetic import FPS, SynthConfig, generate_dataset
from egostream.errors import InputError
from egostream.io.atomic import write_json_atomic, write_text_atomic
from egostream.model import TASK_NAMES, ModelConfig
from egostream.stream.config import StreamConfig
from egostream.train.optim import OptimizerConfig
from egostream.train.recipe import TrainConfig
from egostream.train.seeding import torch_threads

__all__ = ["DemoConfig", "DemoPaths", "DemoReport", "FrameLabels", "StepResult", "DEFAULT_DEMO_CONFIG", "STEPS",
           "load_demo_config", "frame_labels", "render_labelled_frames", "synthesize", "extract", "train_model",
           "stream_held_out", "evaluate", "run_demo", "held_out_video", "window_truth", "metrics_table",
           "HEADLINE_METRICS"]

#: ``configs/demo.yaml`` of a source checkout.
DEFAULT_DEMO_CONFIG = CONFIG_DIR / "demo.yaml"

#: Frames per feature row (the Ego4D feature grid), also the stride of the extractor's windows.
_STRIDE_FRAMES = 16

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

    def owned(self) -> tuple[Path, ...]:
        """Everything a run writes (what ``force`` removes; nothing else under ``root`` is touched)."""
        return (self.config, self.data, self.videos, self.train, self.stream, self.replay, self.chance, self.steps,
                self.metrics)


# ------------------------------------------------------------------------------------------------ step 1: synthesize

@dataclass(frozen=True)
class FrameLabels:
    """Per-frame labels of one video (int16 ``[num_frames]``; -1: none at that frame).

    ``verb`` / ``noun``: the action in progress (index into ``verb_classes`` / ``noun_classes``, taxonomy ids);
    ``moment``: the MQ moment in progress (index into ``moment_classes``, label names); ``state``: the object state
    inside an OSCC/PNR sample, 0 before and 1 from the PNR frame on (a negative sample keeps one state throughout).
    """

    video_uid: str
    verb: np.ndarray
    noun: np.ndarray
    moment: np.ndarray
    state: np.ndarray
    verb_classes: tuple[int, ...]
    noun_classes: tuple[int, ...]
    moment_classes: tuple[str, ...]

    @property
    def num_frames(self) -> int:
        return int(self.verb.shape[0])


def frame_labels(data_root: str | PathLike[str], seed: int = 0) -> list[FrameLabels]:
    """The per-frame labels of every video of the dataset at ``data_root``, from its annotation files (both
    splits), in ``ego4d.json`` order. A negative OSCC sample's constant state is drawn from ``seed``."""
    layout = Ego4dLayout.from_root(data_root)
    metadata = read_video_metadata(layout.data_dir / "ego4d.json").videos
    splits = ("train", "val")
    actions = [action for split in splits for action in read_lta_annotations(layout.lta_annotations(split)).actions]
    samples = [sample for split in splits
               for sample in read_state_change_annotations(layout.state_change_annotations(split)).samples]
    moments = [(video.video_uid, label) for split in splits
               for video in read_moments_annotations(layout.moments_annotations(split)).videos
               for clip in video.clips for annotator in clip.annotations for label in annotator.labels]
    verb_classes = tuple(sorted({int(a.verb_label) for a in actions if a.verb_label is not None}))
    noun_classes = tuple(sorted({int(a.noun_label) for a in actions if a.noun_label is not None}))
    moment_classes = tuple(sorted({label.label for _, label in moments}))
    rng = np.random.default_rng(seed)
    tracks: dict[str, dict[str, np.ndarray]] = {}
    for uid, video in metadata.items():
        frames = video.num_frames if video.num_frames is not None else int(round(video.duration_sec * FPS))
        tracks[uid] = {name: np.full(frames, -1, dtype=np.int16) for name in ("verb", "noun", "moment", "state")}
    for action in actions:
        start = action.clip_parent_start_frame + action.action_clip_start_frame
        end = action.clip_parent_start_frame + action.action_clip_end_frame
        track = tracks[action.video_uid]
        track["verb"][start:end] = verb_classes.index(int(action.verb_label))  # type: ignore[arg-type]
        track["noun"][start:end] = noun_classes.index(int(action.noun_label))  # type: ignore[arg-type]
    for uid, label in moments:
        tracks[uid]["moment"][label.video_start_frame:label.video_end_frame] = moment_classes.index(label.label)
    for sample in samples:
        state = tracks[sample.video_uid]["state"]
        end = sample.parent_end_frame + 1  # the sample spans [start, end] frames
        if sample.state_change and sample.parent_pnr_frame is not None:
            state[sample.parent_start_frame:sample.parent_pnr_frame] = 0
            state[sample.parent_pnr_frame:end] = 1
        else:
            state[sample.parent_start_frame:end] = int(rng.integers(2))
    return [FrameLabels(uid, track["verb"], track["noun"], track["moment"], track["state"], verb_classes,
                        noun_classes, moment_classes) for uid, track in tracks.items()]


#: Grey level of a quadrant with no label at that frame.
_EMPTY_GREY = 40


@lru_cache(maxsize=4096)
def _tile(label: int, num_classes: int, phase: int, size: tuple[int, int]) -> np.ndarray:
    """One quadrant: :func:`egostream.io.synthetic_video.render_frame` of ``label`` (the stripes repeat every 8
    frames, so ``phase`` = frame index mod 8 is all that changes), or flat grey for label -1."""
    from egostream.io.synthetic_video import render_frame

    if label < 0:
        return np.full((*size, 3), _EMPTY_GREY, dtype=np.uint8)
    return render_frame(label, phase, num_classes, size)


def render_labelled_frames(labels: FrameLabels, size: tuple[int, int] = (48, 64)) -> Iterator[np.ndarray]:
    """RGB uint8 frames [H, W, 3] of ``labels``: quadrants verb | noun over moment | state, each in the colour and
    stripe orientation of its label (:func:`egostream.io.synthetic_video.render_frame`), grey where there is none."""
    height, width = size
    quadrant = (height // 2, width // 2)
    tracks = ((labels.verb, len(labels.verb_classes)), (labels.noun, len(labels.noun_classes)),
              (labels.moment, len(labels.moment_classes)), (labels.state, 2))
    for frame in range(labels.num_frames):
        verb, noun, moment, state = (_tile(int(track[frame]), max(1, classes), frame % 8, quadrant)
                                     for track, classes in tracks)
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[:quadrant[0], :quadrant[1]] = verb
        image[:quadrant[0], quadrant[1]:2 * quadrant[1]] = noun
        image[quadrant[0]:2 * quadrant[0], :quadrant[1]] = moment
        image[quadrant[0]:2 * quadrant[0], quadrant[1]:2 * quadrant[1]] = state
        yield image


def _render_video(labels: FrameLabels, path: Path, size: tuple[int, int]) -> None:
    """Encode the video of ``labels`` at 30 fps to ``path`` atomically (a partial file never carries the name)."""
    from egostream.io.synthetic_video import write_video

    partial = path.with_name(f".{path.name}.partial")
    write_video(partial, render_labelled_frames(labels, size), FPS, format="mp4")
    os.replace(partial, path)


def synthesize(cfg: DemoConfig, paths: DemoPaths, console: Console) -> dict[str, Any]:
    """Step 1: the synthetic dataset under ``paths.data`` and its videos under ``paths.videos`` (existing videos are
    kept: they are a function of the annotations, which the seeded generator rewrites identically)."""
    from rich.progress import Progress

    summary = generate_dataset(paths.data, cfg.synth)
    paths.videos.mkdir(parents=True, exist_ok=True)
    videos = frame_labels(paths.data, cfg.synth.seed)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("rendering videos (PyAV, H.264)", total=len(videos))
        for labels in videos:
            path = paths.videos / f"{labels.video_uid}.mp4"
            if not path.is_file():
                _render_video(labels, path, cfg.frame_size)
            progress.advance(task)
    return {"videos": summary["videos"], "frames": sum(labels.num_frames for labels in videos),
            "seconds": round(sum(labels.num_frames for labels in videos) / FPS, 1)}


# ------------------------------------------------------------------------------------------------ step 2: extract

def extract(cfg: DemoConfig, paths: DemoPaths, console: Console) -> dict[str, Any]:
    """Step 2: ``egostream extract`` of every rendered video into ``data/features/<feature_name>/`` (resumable per
    video). Raises InputError when a video fails."""
    from egostream.actors.commands import extract_features

    with console.status(f"extracting {cfg.extractor} features of {len(list(paths.videos.glob('*.mp4')))} videos"):
        report = extract_features([str(paths.videos)], str(paths.features(cfg.feature_name)), cfg.extractor,
                                  extractor_options=cfg.extractor_options, window_frames=cfg.window_frames,
                                  decoder_backend=cfg.decoder)
    if report.failed:
        uid, reason = next(iter(report.failed.items()))
        raise InputError(paths.videos / f"{uid}.mp4", "frames", reason)
    return report.as_dict()


# ------------------------------------------------------------------------------------------------ step 3: train

def train_model(cfg: DemoConfig, paths: DemoPaths, console: Console) -> dict[str, Any]:
    """Step 3: train the multi-task model of ``cfg.train`` on the extracted features (an interrupted run resumes
    from its last epoch's checkpoint)."""
    from egostream.checkpoint import load_checkpoint
    from egostream.train.loop import train

    resume = None
    if paths.checkpoint.is_file():
        state = load_checkpoint(paths.checkpoint).training_state or {}
        resume = paths.checkpoint if 0 < int(state.get("epoch", 0)) else None
    console.print(f"  training {', '.join(cfg.train.tasks)} for {cfg.train.num_epochs} epochs"
                  + (f" (resuming {resume})" if resume else ""))
    result = train(cfg.train, paths.data, paths.train, resume=resume)
    last = result.records[-1]
    return {"checkpoint": str(result.checkpoint), "epochs": result.epochs_completed,
            "losses": {key.removeprefix("loss/"): round(value, 4) for key, value in last.items()
                       if key.startswith("loss/")}}


# ------------------------------------------------------------------------------------------------ step 4: stream

def held_out_video(cfg: DemoConfig, paths: DemoPaths) -> str:
    """The uid of the streamed video: the ``cfg.held_out_video``-th video of the val split."""
    annotations = read_lta_annotations(Ego4dLayout(paths.data).lta_annotations("val"))
    uids = list(dict.fromkeys(action.video_uid for action in annotations.actions))
    if cfg.held_out_video >= len(uids):
        raise InputError("DemoConfig", "held_out_video", f"{cfg.held_out_video} is past the {len(uids)} val videos")
    return uids[cfg.held_out_video]


@dataclass(frozen=True)
class _TruthAction:
    start_s: float
    end_s: float
    verb: int
    noun: int
    name: str


def _truth_actions(paths: DemoPaths, video_uid: str) -> list[_TruthAction]:
    """The ground-truth actions of ``video_uid`` (val split) in video seconds."""
    actions = read_lta_annotations(Ego4dLayout(paths.data).lta_annotations("val")).actions
    return [_TruthAction((a.clip_parent_start_frame + a.action_clip_start_frame) / FPS,
                         (a.clip_parent_start_frame + a.action_clip_end_frame) / FPS, int(a.verb_label or 0),
                         int(a.noun_label or 0), f"{a.verb} {a.noun}")
            for a in actions if a.video_uid == video_uid]


def window_truth(actions: Sequence[Any], start_s: float, end_s: float) -> Any | None:
    """The action overlapping the span ``[start_s, end_s]`` (seconds) the most, or None when none overlaps;
    ``actions`` have ``start_s`` / ``end_s``."""
    best, best_overlap = None, 0.0
    for action in actions:
        overlap = min(end_s, action.end_s) - max(start_s, action.start_s)
        if overlap > best_overlap:
            best, best_overlap = action, overlap
    return best


def _window_row(result: Any, truth: Sequence[_TruthAction]) -> tuple[str, ...]:
    """One live-table row of a :class:`~egostream.stream.schema.WindowResult`."""
    now = expected = nxt = state = pnr = moment = "-"
    if result.ar is not None and result.ar.verbs and result.ar.nouns:
        verb, noun = result.ar.verbs[0], result.ar.nouns[0]
        now = f"{verb.name} {noun.name}"
        actual = window_truth(truth, result.ar.span.start_s, result.ar.span.end_s)
        if actual is not None:
            hit = "[green]✓[/]" if (actual.verb, actual.noun) == (verb.id, noun.id) else "[red]✗[/]"
            expected = f"{hit} {actual.name}"
    if result.lta is not None:
        nxt = " → ".join(f"{step.verb.name} {step.noun.name}" for step in result.lta.top1[:2])
    if result.oscc is not None:
        state = f"{'yes' if result.oscc.state_change else 'no'} {result.oscc.probability:.2f}"
    if result.pnr is not None:
        pnr = f"{result.pnr.time_s:.1f}"
    if result.mq is not None and result.mq.moments:
        best = result.mq.moments[0]
        moment = f"{best.label.name} {best.start_s:.0f}-{best.end_s:.0f} s{'' if best.final else '?'}"
    return f"{result.time_s:.1f}", now, expected, nxt, state, pnr, moment


#: Live-table columns: (header, width in characters; None: a share of what the console's width leaves).
_COLUMNS: tuple[tuple[str, int | None], ...] = (("t (s)", 5), ("now (AR)", None), ("truth", None),
                                                  ("next (LTA)", None), ("OSCC", 8), ("PNR (s)", 7),
                                                  ("moment (MQ; ?: provisional)", None))


def _windows_table(title: str, results: Sequence[Any], truth: Sequence[_TruthAction], caption: str,
                   console_width: int) -> Table:
    """The newest windows, one line each: the name columns share the console's width (9 to 40 characters each),
    longer names are cut with an ellipsis."""
    fixed = sum(width for _, width in _COLUMNS if width is not None)
    shared = [header for header, width in _COLUMNS if width is None]
    borders = 3 * len(_COLUMNS) + 1
    name_width = max(9, min(40, (console_width - fixed - borders) // len(shared)))
    table = Table(title=title, caption=caption, header_style="bold", expand=False)
    for header, width in _COLUMNS:
        table.add_column(header, width=width or name_width, no_wrap=True, overflow="ellipsis")
    for result in results:
        table.add_row(*_window_row(result, truth))
    return table


@contextlib.contextmanager
def _local_ray(object_store_mb: int) -> Iterator[None]:
    """A new local Ray instance for the duration of the block (:func:`egostream.actors.ray_stages.connect`: no
    dashboard; no auth; a small object store), unless this process is already connected to one. Its worker processes
    inherit ``PYTHONPATH`` with this package's folder first, so a source checkout works uninstalled."""
    from egostream.actors.ray_stages import connect, disconnect

    package_root = str(Path(__file__).resolve().parent.parent)
    saved = {name: os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED", "PYTHONPATH")}
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
                      PYTHONPATH=os.pathsep.join(filter(None, [package_root, saved["PYTHONPATH"]])))
    try:
        owns_ray = connect(None, object_store_memory=object_store_mb * 1024 * 1024)
        try:
            yield
        finally:
            if owns_ray:
                disconnect()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stream_held_out(cfg: DemoConfig, paths: DemoPaths, console: Console) -> dict[str, Any]:
    """Step 4: stream the held-out video through decode → extract → engine → sink (one Ray actor each) into
    ``stream/<uid>.msgpack``, showing the newest windows live; returns the pipeline report."""
    from egostream.actors.perception import (EmitterEngineFactory, ExtractorSpec, ResultFileFactory, VideoWindows,
                                             annotate_latency)
    from egostream.actors.pipeline import Emitted, PipelineConfig, StreamPipeline

    uid = held_out_video(cfg, paths)
    truth = _truth_actions(paths, uid)
    output = paths.stream / f"{uid}.msgpack"
    dim = cfg.train.model.feature_dim
    extractor = ExtractorSpec(cfg.extractor, dict(cfg.extractor_options), dim, str(paths.checkpoint))
    extractor()  # a wrong width fails here, before Ray starts
    recent: deque[Any] = deque(maxlen=cfg.table_rows)
    title = f"held-out video {uid[:8]}: Ray actors decode → extract → engine → sink"

    def remember(emitted: Emitted) -> None:
        recent.append(emitted.result)

    def table(caption: str) -> Table:
        return _windows_table(title, list(recent), truth, caption, console.width)

    with _local_ray(cfg.ray_object_store_mb):
        pipeline = StreamPipeline.from_factories(
            VideoWindows(str(paths.videos / f"{uid}.mp4"), cfg.window_frames, _STRIDE_FRAMES, cfg.decoder),
            extractor, EmitterEngineFactory(str(paths.checkpoint), uid, cfg.stream, dim),
            ResultFileFactory(str(output), "msgpack"), live=False, backend="ray", config=PipelineConfig(), name=uid,
            on_result=remember, annotate=annotate_latency)
        report = _run_live(pipeline, table, console, cfg.live_table)
    summary = report.as_dict(cfg.stream.row_period_s)
    console.print(table(f"{report.results} windows, {report.rows} rows, x-real-time "
                        f"{summary['x_real_time']:.1f}, end-to-end p50 "
                        f"{summary['latency_ms'].get('end_to_end', {}).get('p50_ms', 0.0):.0f} ms → {output}"))
    return {"video_uid": uid, "results_file": str(output), "report": summary}


def _run_live(pipeline: Any, table: Callable[[str], Table], console: Console, live: bool) -> Any:
    """Run ``pipeline`` in a thread while the table is redrawn (when ``live``); returns its report."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            outcome["report"] = pipeline.run()
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=body, name="egostream-demo-stream", daemon=True)
    context = Live(console=console, refresh_per_second=4, transient=True) if live else contextlib.nullcontext()
    with context as view:
        worker.start()
        try:
            while worker.is_alive():
                worker.join(timeout=0.25)
                if view is not None:
                    view.update(table(f"windows so far: {pipeline.snapshot_report().results}"))
        except KeyboardInterrupt:
            pipeline.stop()
            worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["report"]


# ------------------------------------------------------------------------------------------------ step 5: evaluate

def _annotation_file(layout: Ego4dLayout, task: str, split: str) -> Path:
    if task in ("ar", "lta"):
        return layout.lta_annotations(split)
    if task in ("oscc", "pnr"):
        return layout.state_change_annotations(split)
    return layout.moments_annotations(split)


def _chance_metrics(cfg: DemoConfig, paths: DemoPaths) -> dict[str, Any]:
    """Every task's metrics of the class-prior predictor (train-split frequencies) on the val split."""
    from egostream.ego4d.baselines import write_prior_submission
    from egostream.ego4d.evaluation import evaluate_files

    layout = Ego4dLayout(paths.data)
    metrics = {}
    for task in cfg.train.tasks:
        annotations = _annotation_file(layout, task, "val")
        submission = write_prior_submission(task, annotations, paths.chance / f"{task}.json",
                                            prior=_annotation_file(layout, task, "train"), seed=cfg.synth.seed,
                                            protocol=cfg.protocol)
        metrics[task] = evaluate_files(task, cfg.protocol, annotations, submission,
                                       labels=layout.mq_labels() if task == "mq" else None)
    write_json_atomic(paths.chance / "metrics.json", metrics, indent=2)
    return metrics


def _streaming_check(cfg: DemoConfig, paths: DemoPaths, stream: Mapping[str, Any]) -> dict[str, Any]:
    """Per-window AR accuracy of the streamed windows against the ground-truth action overlapping each window's AR
    span the most (windows with no action there are left out), next to the majority class of the train split."""
    from egostream.io.sinks import read_results

    read = read_results(stream["results_file"])
    truth = _truth_actions(paths, stream["video_uid"])
    train_actions = read_lta_annotations(Ego4dLayout(paths.data).lta_annotations("train")).actions
    majority_verb = Counter(int(a.verb_label or 0) for a in train_actions).most_common(1)[0][0]
    majority_noun = Counter(int(a.noun_label or 0) for a in train_actions).most_common(1)[0][0]
    hits = Counter[str]()
    windows = 0
    for result in read.results:
        if result.ar is None:
            continue
        actual = window_truth(truth, result.ar.span.start_s, result.ar.span.end_s)
        if actual is None:
            continue
        windows += 1
        hits["verb"] += result.ar.verbs[0].id == actual.verb
        hits["noun"] += result.ar.nouns[0].id == actual.noun
        hits["majority_verb"] += majority_verb == actual.verb
        hits["majority_noun"] += majority_noun == actual.noun
    share = {key: 100.0 * hits[key] / windows if windows else 0.0
             for key in ("verb", "noun", "majority_verb", "majority_noun")}
    return {"windows": len(read.results), "windows_with_action": windows, "truncated": not read.report.ok,
            "verb_top1_pct": share["verb"], "noun_top1_pct": share["noun"],
            "chance_verb_top1_pct": share["majority_verb"], "chance_noun_top1_pct": share["majority_noun"]}


def evaluate(cfg: DemoConfig, paths: DemoPaths, console: Console, stream: Mapping[str, Any]) -> dict[str, Any]:
    """Step 5: replay the val split with the trained model, the chance level of every task, and the streaming
    check; writes ``OUT/metrics.json``."""
    from egostream.replay import replay

    with console.status("replaying the val split with the trained model (AR, LTA, OSCC, PNR, MQ)"):
        trained = replay("all", cfg.protocol, paths.data, "val", paths.checkpoint, paths.replay,
                         features=cfg.feature_name, progress=False)
    chance = _chance_metrics(cfg, paths)
    summary = {"protocol": cfg.protocol, "tasks": _headlines(trained, chance),
               "streaming": _streaming_check(cfg, paths, stream)}
    write_json_atomic(paths.metrics, summary, indent=2)
    return summary


def _headlines(trained: Mapping[str, Any], chance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per headline metric: the trained model's value, the chance level's, and whether it is better."""
    rows = []
    for task, label, key, higher in HEADLINE_METRICS:
        value, baseline = float(trained[task][key]), float(chance[task][key])
        rows.append({"task": task, "metric": label, "trained": value, "chance": baseline,
                     "higher_is_better": higher, "beats_chance": value > baseline if higher else value < baseline})
    return rows


# ------------------------------------------------------------------------------------------------ orchestration

STEPS = ("synthesize", "extract", "train", "stream", "evaluate")


@dataclass(frozen=True)
class StepResult:
    """One step of a run: its summary and whether this run computed it (``reused``: a previous run did)."""

    name: str
    summary: dict[str, Any]
    reused: bool
    wall_s: float


@dataclass(frozen=True)
class DemoReport:
    """What :func:`run_demo` did: each step's result, the final metrics and the output folder."""

    out: Path
    steps: tuple[StepResult, ...]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.step("evaluate").summary

    def step(self, name: str) -> StepResult:
        return next(step for step in self.steps if step.name == name)


def _check_config(cfg: DemoConfig, paths: DemoPaths, force: bool) -> None:
    """Start afresh under ``force``; otherwise refuse an output folder made with another config."""
    text = json.dumps(to_dict(cfg), sort_keys=True)
    if force:
        for path in paths.owned():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    elif paths.config.is_file() and json.loads(paths.config.read_text()) != json.loads(text):
        raise InputError(paths.config, None, "this output folder was made with another demo config; re-run with "
                                             "--force (starts afresh) or choose another --out")
    paths.root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(paths.config, text + "\n")


def run_demo(cfg: DemoConfig, out: str | PathLike[str] = "demo_out", *, force: bool = False,
             console: Console | None = None) -> DemoReport:
    """Run the five steps into ``out`` (see the module docstring); finished steps of an earlier run with the same
    config are reused unless ``force``."""
    console = console or Console()
    paths = DemoPaths(Path(out))
    _check_config(cfg, paths, force)
    results: dict[str, StepResult] = {}
    bodies: dict[str, Callable[[], dict[str, Any]]] = {
        "synthesize": lambda: synthesize(cfg, paths, console),
        "extract": lambda: extract(cfg, paths, console),
        "train": lambda: train_model(cfg, paths, console),
        "stream": lambda: stream_held_out(cfg, paths, console),
        "evaluate": lambda: evaluate(cfg, paths, console, results["stream"].summary),
    }
    # One torch thread: multi-threaded CPU reductions sum in a varying order, so two threads give different weights
    # on every run (the model is tiny: one thread is as fast).
    with torch_threads(1):
        for number, name in enumerate(STEPS, start=1):
            results[name] = _run_step(number, name, bodies[name], paths, console)
    report = DemoReport(paths.root, tuple(results[name] for name in STEPS))
    console.print(metrics_table(report.metrics))
    return report


def _run_step(number: int, name: str, body: Callable[[], dict[str, Any]], paths: DemoPaths,
              console: Console) -> StepResult:
    """Run one step (or reuse its summary from an earlier run), with a header and its wall time."""
    marker = paths.steps / f"{name}.json"
    console.rule(f"[bold]{number}/{len(STEPS)} {name}")
    began = time.monotonic()
    if marker.is_file():
        summary, reused = json.loads(marker.read_text()), True
        console.print(f"  reusing the finished step ({marker})")
    else:
        summary, reused = body(), False
        write_json_atomic(marker, summary, indent=2)
    result = StepResult(name, summary, reused, time.monotonic() - began)
    console.print(f"  {name} {'reused' if reused else 'done'} in {result.wall_s:.1f} s")
    return result


def metrics_table(metrics: Mapping[str, Any]) -> Group:
    """The final view: trained vs chance per task (val split), and the streamed windows' AR accuracy."""
    table = Table(title=f"held-out (val) metrics, {metrics['protocol']} protocol", header_style="bold")
    for column in ("task", "metric", "trained", "chance", ""):
        table.add_column(column, justify="right" if column in ("trained", "chance") else "left")
    for row in metrics["tasks"]:
        arrow = "↑" if row["higher_is_better"] else "↓"
        table.add_row(row["task"].upper(), f"{row['metric']} {arrow}", f"{row['trained']:.2f}",
                      f"{row['chance']:.2f}", "[green]above chance[/]" if row["beats_chance"] else "[red]not above[/]")
    streaming = metrics["streaming"]
    check = Table(title="streamed held-out video: per-window current action vs ground truth", header_style="bold")
    for column in ("", "verb top-1 %", "noun top-1 %"):
        check.add_column(column, justify="left" if not column else "right")
    check.add_row("trained", f"{streaming['verb_top1_pct']:.1f}", f"{streaming['noun_top1_pct']:.1f}")
    check.add_row("chance (train majority)", f"{streaming['chance_verb_top1_pct']:.1f}",
                  f"{streaming['chance_noun_top1_pct']:.1f}")
    check.caption = (f"{streaming['windows_with_action']} of {streaming['windows']} windows overlap an annotated "
                     "action")
    return Group(table, check)
