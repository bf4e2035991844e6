"""From benchmark-protocol samples to model inputs: one item per sample, collated into a :class:`ModelBatch`.

A sample of :mod:`egostream.ego4d.protocol` becomes a :class:`SampleItem` (its feature rows, node times and the
fields its head reads), and :func:`collate` joins items into a :class:`ModelBatch`: a
:class:`~egostream.backbone.graphs.VideoBatch` for the backbone and a :class:`~egostream.tasks.base.TaskInputs` for
the head, plus the samples themselves (for decoding into submission files).

The collated fields are those of the authors' ``torch_geometric.loader.DataLoader`` with
``follow_batch=["labels", "segments", ...]`` (sapeirone/hier-egopack@4fff4e5:utils/dataloading.py
``build_dataloader``; the per-sample fields come from data/ego4d/{AR,LTA,OSCC,PNR,MQ}.py ``get``; fixture README §7):

======  ======================================================================================================
task    fields (B samples, video-major)
======  ======================================================================================================
AR      ``segments`` [M, 2] s, ``segment_video`` [M] (``segments_batch``), ``verb_labels`` / ``noun_labels`` [M]
        (``labels.0`` / ``labels.1``)
LTA     ``verb_labels`` / ``noun_labels`` [B * Z] (the Z future actions, video-major; empty in test splits)
OSCC    ``segments`` [M, 2], ``segment_video`` [M], ``labels`` [M] in {0, 1}
PNR     ``labels`` [B * 16] float one-hot keyframe, ``indices`` [B * 16] frame index in its clip,
        ``candidate_frames`` [B, 16], ``start_frame`` [B]
MQ      ``segments`` [M, 2], ``segment_video`` [M] (``labels_batch``), ``labels`` [M] class ids, ``duration`` [B] s
======  ======================================================================================================

No padding: the authors pad AR, OSCC and MQ samples to 1024 rows and drop the padding first thing in the model, so
the outputs on the real rows are the same; here a sample of any length works. One padding-dependent value is kept
on purpose: the authors' MQ ``duration`` (to which detections are clipped) is the PADDED length,
``len(padded rows) * stride / fps`` (data/ego4d/MQ.py L193-197 and L212: ``duration`` is computed after padding,
546.13 s for 1024 rows of 16 frames at 30 fps). :class:`TaskDataset` reproduces it with ``mq_pad_rows=1024``
(the default, the ``hier-egopack`` protocol); ``mq_pad_rows=None`` clips to the clip's own end on the nodes' axis.

Batch composition: :func:`batch_loader` is a ``torch.utils.data.DataLoader`` over a :class:`TaskDataset`; samples
in order without ``shuffle`` (the authors' evaluation loaders), otherwise a permutation drawn from a
``torch.Generator`` seeded with ``seed`` (the same sampler the authors' loader uses with its ``rng_generator``), so
the composition of every batch is a function of the seed.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from egostream.backbone.graphs import VideoBatch
from egostream.ego4d.features import FeatureStore
from egostream.ego4d.protocol import ARSample, LTASample, MQSample, OSCCSample, PNRSample
from egostream.errors import InputError
from egostream.tasks.base import TaskInputs

__all__ = ["ProtocolSample", "SampleItem", "ModelBatch", "TaskDataset", "sample_item", "collate", "batch_loader",
           "mq_duration_s", "AUTHORS_PAD_ROWS", "BATCH_TASKS"]

ProtocolSample = Union[ARSample, LTASample, OSCCSample, PNRSample, MQSample]

AUTHORS_PAD_ROWS = 1024
"""Rows the authors pad AR, OSCC and MQ samples to (data/ego4d/AR.py L148-150, OSCC.py L130-132, MQ.py L193-195)."""

BATCH_TASKS = ("ar", "lta", "oscc", "pnr", "mq")

_SAMPLE_TYPES: dict[str, type] = {"ar": ARSample, "lta": LTASample, "oscc": OSCCSample, "pnr": PNRSample,
                                  "mq": MQSample}


@dataclass
class SampleItem:
    """One sample as model input (the authors' ``Data`` object of one sample, without padding).

    Attributes:
        sample: the protocol sample it came from.
        x: ``[n, D]`` float32 feature rows.
        pos: ``[n]`` float32 node times in seconds.
        segments: ``[M, 2]`` float32 (start, end) seconds on the nodes' axis (AR, OSCC, MQ).
        verb_labels, noun_labels: ``[M]`` (AR) or ``[Z]`` (LTA future actions) int64.
        labels: OSCC ``[M]`` int64; PNR ``[16]`` float32 one-hot; MQ ``[M]`` int64 class ids.
        candidate_frames: PNR ``[16]`` int64 parent-video frame of each node.
        start_frame: PNR first frame of the sampled window.
        duration_s: MQ seconds the detections are clipped to.
    """

    sample: ProtocolSample
    x: Tensor
    pos: Tensor
    segments: Tensor | None = None
    verb_labels: Tensor | None = None
    noun_labels: Tensor | None = None
    labels: Tensor | None = None
    candidate_frames: Tensor | None = None
    start_frame: int | None = None
    duration_s: float | None = None


@dataclass
class ModelBatch:
    """A collated batch: ``videos`` for the backbone, ``inputs`` for the head, and the ``samples`` in video order."""

    task: str
    videos: VideoBatch
    inputs: TaskInputs
    samples: list[ProtocolSample] = field(default_factory=list)

    @property
    def num_videos(self) -> int:
        return self.videos.num_videos


def mq_duration_s(sample: MQSample, num_nodes: int, pad_rows: int | None = AUTHORS_PAD_ROWS) -> float:
    """Seconds MQ detections are clipped to, on the nodes' time axis.

    ``pad_rows`` set: the authors' value ``max(num_nodes, pad_rows) * stride / fps`` (their duration of the padded
    sample, module docstring). ``None``: the clip's own end, ``clip_offset_s + clip_duration_s``.
    """
    spec = sample.spec
    if pad_rows is None:
        return sample.clip_offset_s + sample.clip_duration_s
    return max(num_nodes, pad_rows) * spec.stride_frames / spec.fps


def sample_item(sample: ProtocolSample, store: FeatureStore, *,
                mq_pad_rows: int | None = AUTHORS_PAD_ROWS) -> SampleItem:
    """The model input of one protocol sample (its feature rows are read from ``store``)."""
    if isinstance(sample, PNRSample):
        x = sample.read(store)
        return SampleItem(sample, x, sample.node_positions_s(len(x)), labels=sample.target.float(),
                          candidate_frames=sample.candidate_frames.long(), start_frame=sample.start_frame)
    x = sample.window.read(store)
    pos = sample.node_positions_s(len(x))
    if isinstance(sample, ARSample):
        return SampleItem(sample, x, pos, segments=sample.segments_s, verb_labels=sample.verb_labels,
                          noun_labels=sample.noun_labels)
    if isinstance(sample, LTASample):
        return SampleItem(sample, x, pos, verb_labels=sample.future_verb_labels,
                          noun_labels=sample.future_noun_labels)
    if isinstance(sample, OSCCSample):
        return SampleItem(sample, x, pos, segments=sample.segments_s, labels=sample.labels)
    if isinstance(sample, MQSample):
        return SampleItem(sample, x, pos, segments=sample.segments_s, labels=sample.labels,
                          duration_s=mq_duration_s(sample, len(x), mq_pad_rows))
    raise InputError(None, "sample", f"not a protocol sample: {type(sample).__name__}")


def _task_of(sample: ProtocolSample) -> str:
    for task, sample_type in _SAMPLE_TYPES.items():
        if isinstance(sample, sample_type):
            return task
    raise InputError(None, "sample", f"not a protocol sample: {type(sample).__name__}")


def _concatenated(items: Sequence[SampleItem], name: str) -> Tensor | None:
    """``torch.cat`` of one optional field over the items; ``None`` when no item has it (all or none must)."""
    values = [getattr(item, name) for item in items]
    present = [value is not None for value in values]
    if not any(present):
        return None
    if not all(present):
        raise InputError(None, name, "some samples of the batch have this field and others do not")
    return torch.cat(values)


def collate(items: Sequence[SampleItem]) -> ModelBatch:
    """Join items of one task into a :class:`ModelBatch` (see the module docstring for the fields)."""
    if not items:
        raise InputError(None, "items", "cannot collate an empty batch")
    tasks = {_task_of(item.sample) for item in items}
    if len(tasks) != 1:
        raise InputError(None, "items", f"a batch holds the samples of one task, got {sorted(tasks)}")
    task = tasks.pop()
    videos = VideoBatch.from_videos([item.x for item in items], [item.pos for item in items])
    segments = _concatenated(items, "segments")
    segment_video = None
    if segments is not None:
        counts = torch.tensor([len(item.segments) for item in items])  # type: ignore[arg-type]
        segment_video = torch.repeat_interleave(torch.arange(len(items)), counts)
    inputs = TaskInputs(segments=segments, segment_video=segment_video,
                        verb_labels=_concatenated(items, "verb_labels"),
                        noun_labels=_concatenated(items, "noun_labels"),
                        labels=_concatenated(items, "labels"))
    if task == "pnr":
        inputs.indices = videos.indices.clone()
        inputs.candidate_frames = torch.stack([item.candidate_frames for item in items])  # type: ignore[misc]
        inputs.start_frame = torch.tensor([item.start_frame for item in items], dtype=torch.long)
    if task == "mq":
        inputs.duration = torch.tensor([item.duration_s for item in items], dtype=torch.float32)
    return ModelBatch(task, videos, inputs, [item.sample for item in items])


class TaskDataset(Dataset[SampleItem]):
    """The samples of one task as a map-style dataset of :class:`SampleItem` (rows read lazily from ``store``)."""

    def __init__(self, samples: Sequence[ProtocolSample], store: FeatureStore, *,
                 mq_pad_rows: int | None = AUTHORS_PAD_ROWS) -> None:
        self.samples = list(samples)
        self.store = store
        self.mq_pad_rows = mq_pad_rows

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> SampleItem:
        return sample_item(self.samples[index], self.store, mq_pad_rows=self.mq_pad_rows)


def batch_loader(dataset: Dataset[SampleItem], batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, num_workers: int = 0,
                 collate_fn: Callable[[Sequence[SampleItem]], Any] = collate) -> DataLoader:
    """A DataLoader of :class:`ModelBatch` with a batch composition fixed by ``seed`` (module docstring)."""
    if batch_size < 1:
        raise InputError(None, "batch_size", f"must be at least 1, got {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, collate_fn=collate_fn, generator=generator)
