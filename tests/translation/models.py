"""Shared helpers of the translation tests: a tiny random multi-task source model and input batches for it."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from egostream.backbone.graphs import VideoBatch
from egostream.config import load_config
from egostream.model import ModelBundle, ModelConfig
from egostream.stream import StreamConfig
from egostream.tasks import TaskInputs
from egostream.translation import FrozenSources, TranslationBundle, TranslationConfig, build_translation

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"
#: Four source tasks, as EgoT2's LTA model (AR, LTA, OSCC, PNR).
SOURCE_TASKS = ("ar", "lta", "oscc", "pnr")
PRIMARY_TASKS = ("ar", "lta", "oscc", "pnr")


def tiny_model() -> ModelConfig:
    return replace(load_config(ModelConfig, CONFIGS / "tiny.yaml"), tasks=SOURCE_TASKS, dropout=0.0)


def source_bundle(seed: int = 0) -> ModelBundle:
    """A tiny multi-task model (AR, LTA, OSCC, PNR on one backbone) with random weights, eval mode."""
    return tiny_model().build(seed=seed)


def translation(primary: str, *, sources: ModelBundle | None = None, seed: int = 1, d_model: int = 16,
                num_layers: int = 2, source_tasks: tuple[str, ...] = SOURCE_TASKS) -> TranslationBundle:
    """A fresh translation model (random weights from ``seed``) on ``sources`` (default :func:`source_bundle`)."""
    frozen = FrozenSources(sources if sources is not None else source_bundle(), source_tasks)
    torch.manual_seed(seed)
    config = TranslationConfig(d_model=d_model, num_heads=4, num_layers=num_layers, feature_dropout=0.1,
                               dropout=0.1, window_nodes=12)
    return build_translation(primary, config, tiny_model(), sources=frozen)


def saved_translation(folder: Path, primary: str, source_tasks: tuple[str, ...], seed: int = 1) -> tuple[Path, Path]:
    """A fresh (untrained) translation model for ``primary`` saved with its tiny multi-task source (the tasks
    ``source_tasks``): ``(folder / "translation.pt", folder / "source.pt")``."""
    source = replace(tiny_model(), tasks=source_tasks).build(seed=0).save(folder / "source.pt")
    model = translation(primary, sources=ModelBundle.from_checkpoints(source), seed=seed, source_tasks=source_tasks)
    model.sources.paths = {task: source for task in source_tasks}
    return model.save(folder / "translation.pt"), source


def clip_batch(lengths: tuple[int, ...], seed: int = 0) -> VideoBatch:
    """Random feature rows of videos of the given lengths, on the stream's row grid."""
    generator = torch.Generator().manual_seed(seed)
    width = tiny_model().feature_dim
    rows = [torch.randn(n, width, generator=generator) for n in lengths]
    return VideoBatch.from_videos(rows, [StreamConfig().row_positions_s(0, n) for n in lengths])


def task_inputs(task: str, batch: VideoBatch, *, labels: bool = True) -> TaskInputs:
    """Inputs of ``task`` for every video of ``batch``: the whole video as one segment (AR, OSCC), fixed labels,
    PNR one-hot keyframes on 16-row clips."""
    counts = torch.bincount(batch.video, minlength=batch.num_videos)
    last = torch.zeros(batch.num_videos).scatter_reduce(0, batch.video, batch.pos, "amax")
    segments = torch.stack([torch.zeros(batch.num_videos), last], dim=1)
    segment_video = torch.arange(batch.num_videos)
    if task == "ar":
        return TaskInputs(segments=segments, segment_video=segment_video,
                          verb_labels=torch.arange(batch.num_videos) % 3 if labels else None,
                          noun_labels=torch.arange(batch.num_videos) % 5 if labels else None)
    if task == "oscc":
        return TaskInputs(segments=segments, segment_video=segment_video,
                          labels=torch.arange(batch.num_videos) % 2 if labels else None)
    if task == "lta":
        steps = batch.num_videos * tiny_model().num_future
        return TaskInputs(verb_labels=torch.arange(steps) % 7, noun_labels=torch.arange(steps) % 11)
    keyframes = torch.zeros(int(counts.sum()))
    keyframes[torch.cumsum(counts, 0) - counts + 3] = 1.0
    return TaskInputs(labels=keyframes)
