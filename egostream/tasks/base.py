"""What every task head shares: the sample fields it reads, the :class:`Task` base class and the ``TASKS`` registry.

A task consumes the backbone's :class:`~egostream.backbone.graphs.LevelGraphs` plus a few fields of the sample
(:class:`TaskInputs`: segments, labels, clip metadata) and provides

* ``forward(graphs, inputs) -> outputs`` (a small NamedTuple of tensors per task),
* ``loss_terms(outputs, inputs) -> dict`` with ``"total"`` and the named parts, exactly as the authors'
  ``compute_loss`` (sapeirone/hier-egopack@4fff4e5:models/tasks/task.py and models/tasks/ego4d/*.py);
  ``loss(outputs, inputs)`` returns ``loss_terms(...)["total"]``,
* ``decode(outputs, inputs) -> predictions`` (top-k, sampling, argmax, keyframe, segments),
* ``fused_forward(graphs, inputs, fuse)``: the head with a cross-task module's fusion applied to its features
  (:mod:`egostream.crosstask`),
* ``preset_node(preset)``: its authors'-style config node from a model preset (:class:`egostream.model.ModelConfig`),

and declares what the layers above it look up by its name: ``annotation_file`` (the Ego4D file its samples and
evaluation read), ``result_field`` (the :class:`~egostream.stream.schema.WindowResult` field of its stream readout,
read by the readout registered under the same name in :mod:`egostream.stream.readouts`) and ``rank`` (its place in
the task list).

Each task registers itself in ``TASKS`` under its short name ("ar", "lta", "oscc", "pnr", "mq") and carries the
authors' name ("ego4d/ar", ...) in ``authors_name``; :func:`task_class` accepts either. :func:`task_names` is THE
task list (the CLI, replay, training, streaming and evaluation iterate over it): a new task is one module that
registers its class here and its hooks in the registries of the layers above.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import torch
from torch import Tensor, nn

from egostream.backbone.graphs import LevelGraphs
from egostream.errors import InputError
from egostream.registry import Registry
from egostream.tasks.neck import ProjectionNeck

__all__ = ["TASKS", "Task", "TaskConfig", "TaskInputs", "ModelPreset", "Fuse", "task_class", "task_names",
           "common_preset_node", "classifier_preset_node"]

TASKS: Registry[type[Task]] = Registry("task")

OutputT = TypeVar("OutputT")
ConfigT = TypeVar("ConfigT", bound="TaskConfig")


Fuse = Callable[..., Tensor]
"""A cross-task module's fusion: ``fuse(features [N, F], neck=None) -> [N, F]`` (see :mod:`egostream.crosstask`)."""


class ModelPreset(Protocol):
    """The sizes of a model preset a head's config node is built from (:class:`egostream.model.ModelConfig`)."""

    hidden_size: int
    features_size: int
    classifier_hidden: int
    depth: int
    num_verbs: int
    num_nouns: int
    num_mq_classes: int
    num_future: int
    mq_pool_features: str | None


@dataclass(frozen=True)
class TaskConfig:
    """Settings every task has (the authors' ``Task.__init__`` arguments).

    Attributes:
        input_size: width of the backbone features the neck reads (the backbone's ``hidden_size``).
        features_size: width of the task features after the neck.
        dropout: dropout of the neck input (training only).
        loss_weight: factor on the task's total loss.
    """

    input_size: int
    features_size: int
    dropout: float = 0.0
    loss_weight: float = 1.0

    @staticmethod
    def common_from_authors(cfg: Mapping[str, Any]) -> dict[str, Any]:
        """The shared fields of an authors' task config node (``configs/<checkpoint>.json`` ``tasks[name]``)."""
        return {
            "input_size": int(cfg["input_size"]),
            "features_size": int(cfg["features_size"]),
            "dropout": float(cfg.get("dropout", 0.0)),
            "loss_weight": float(cfg.get("loss_weight", 1.0)),
        }


@dataclass
class TaskInputs:
    """The sample fields the heads read besides the backbone graphs (the authors' collated ``data`` batch).

    Every field is optional; a task raises :class:`InputError` naming the field it needs and did not get.

    Attributes:
        segments: ``[M, 2]`` float32 (start, end) in seconds, on the origin of the node times (AR, OSCC, MQ).
        segment_video: ``[M]`` int64 video of each segment (the authors' ``segments_batch``; for MQ
            ``labels_batch``, which equals it).
        verb_labels: AR ``[M]`` / LTA ``[B * Z]`` (video-major) int64 verb ids, ``-1`` ignored.
        noun_labels: like ``verb_labels``, for nouns.
        labels: OSCC ``[M]`` int64 in {0, 1}; PNR ``[B * 16]`` float32 one-hot keyframe; MQ ``[M]`` int64 class ids.
        indices: PNR ``[B * 16]`` int64 frame index inside its clip (default: the level-0 ``graphs.indices``).
        candidate_frames: PNR ``[B, 16]`` int64 absolute frame number of each sampled frame.
        start_frame: PNR ``[B]`` int64 first frame of each clip.
        duration: MQ ``[B]`` float32 clip duration in seconds (detections are clipped to it).
    """

    segments: Tensor | None = None
    segment_video: Tensor | None = None
    verb_labels: Tensor | None = None
    noun_labels: Tensor | None = None
    labels: Tensor | None = None
    indices: Tensor | None = None
    candidate_frames: Tensor | None = None
    start_frame: Tensor | None = None
    duration: Tensor | None = None

    def require(self, name: str, task: str) -> Tensor:
        """The field ``name``, or :class:`InputError` if the sample does not have it."""
        value = getattr(self, name)
        if value is None:
            raise InputError(f"task {task}", f"inputs.{name}", "this task needs the field, the sample lacks it")
        return value

    @classmethod
    def from_collated(cls, batch: Mapping[str, Tensor], prefix: str = "input.") -> TaskInputs:
        """Read a batch collated like the authors' DataLoader (torch_geometric ``follow_batch`` names).

        Tuple fields appear as ``labels.0`` / ``labels.1`` (verb, noun); ``segments_batch`` (or ``labels_batch``)
        gives the video of each segment; ``indices`` keeps only the rows with ``mask`` True.
        """

        def get(name: str) -> Tensor | None:
            return batch.get(prefix + name)

        labels, verbs, nouns = get("labels"), get("labels.0"), get("labels.1")
        segment_video = get("segments_batch")
        if segment_video is None:
            segment_video = get("labels_batch")
        indices, mask = get("indices"), get("mask")
        if indices is not None and mask is not None:
            indices = indices[mask]
        return cls(segments=get("segments"), segment_video=segment_video, verb_labels=verbs, noun_labels=nouns,
                   labels=labels, indices=indices, candidate_frames=get("candidate_frames"),
                   start_frame=get("start_frame"), duration=get("duration"))


class Task(nn.Module, Generic[ConfigT, OutputT]):
    """Base class of the task heads: a projection neck (``projector``) plus a task-specific head.

    Subclasses set ``name`` (short registry name), ``authors_name`` (key in the authors' checkpoints),
    ``config_class``, ``annotation_file``, ``rank`` and (when it differs from ``name``) ``result_field``, and
    implement ``forward``, ``loss_terms``, ``decode`` and ``preset_node`` (and ``fused_forward`` when the task can
    be a cross-task module's novel task).

    Attributes:
        annotation_file: stem of its Ego4D annotation file, ``annotations/v1/<stem>_<split>.json``.
        rank: place in :func:`task_names` (the built-in tasks 0..4; plug-ins sort after them, then by name).
        result_field: name of its readout in a stream's results (default ``name``).
        decode_takes_generator: ``decode`` draws samples and takes a ``generator=`` (LTA).
    """

    name: ClassVar[str]
    authors_name: ClassVar[str]
    config_class: ClassVar[type[TaskConfig]]
    annotation_file: ClassVar[str]
    rank: ClassVar[int] = 100
    result_field: ClassVar[str] = ""
    decode_takes_generator: ClassVar[bool] = False

    def __init__(self, config: ConfigT) -> None:
        super().__init__()
        self.config = config
        self.projector = ProjectionNeck(config.input_size, config.features_size, config.dropout)

    @classmethod
    def from_authors_config(cls, cfg: Mapping[str, Any]) -> Task[ConfigT, OutputT]:
        """Build the task from the authors' hydra node of this task (``configs/<checkpoint>.json`` ``tasks[...]``)."""
        return cls(cls.config_class.from_authors(cfg))  # type: ignore[attr-defined]

    def project(self, x: Tensor) -> Tensor:
        """The task neck: ``[N, input_size] -> [N, features_size]``."""
        return self.projector(x)

    def check_graphs(self, graphs: LevelGraphs) -> None:
        """Raise :class:`InputError` unless the graphs' feature width equals the task's ``input_size``."""
        if graphs.x.dim() != 2 or graphs.x.shape[1] != self.config.input_size:
            raise InputError(f"task {self.name}", "graphs.x",
                             f"expected node features [N, {self.config.input_size}] (the task's input_size, the "
                             f"backbone's hidden_size), got {list(graphs.x.shape)}")

    def level0(self, graphs: LevelGraphs) -> tuple[Tensor, Tensor, Tensor]:
        """Features, times (s) and videos of the level-0 nodes (the tasks that read only the finest level)."""
        self.check_graphs(graphs)
        keep = graphs.depth == 0
        return graphs.x[keep], graphs.pos[keep], graphs.video[keep]

    def forward(self, graphs: LevelGraphs, inputs: TaskInputs) -> OutputT:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss_terms(self, outputs: OutputT, inputs: TaskInputs) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def loss(self, outputs: OutputT, inputs: TaskInputs) -> Tensor:
        """The task's total loss as the authors' ``compute_loss`` returns it (per sample or scalar, per task)."""
        return self.loss_terms(outputs, inputs)["total"]

    def decode(self, outputs: OutputT, inputs: TaskInputs) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def fused_forward(self, graphs: LevelGraphs, inputs: TaskInputs, fuse: Fuse) -> OutputT:
        """The head's outputs with ``fuse`` applied to its task features (a cross-task module's novel task)."""
        raise InputError(f"task {self.name}", "fused_forward", "this task cannot be a cross-task module's novel task")

    @classmethod
    def preset_node(cls, preset: ModelPreset) -> dict[str, Any]:  # pragma: no cover - abstract
        """The authors'-style config node of this head for a model preset (what :meth:`from_authors_config`
        reads)."""
        raise NotImplementedError

    def check_backbone(self, depth: int, source: str | PathLike[str] | None = None) -> None:
        """Raise :class:`InputError` naming ``source`` if the head cannot read a backbone of ``depth`` levels."""

    @classmethod
    def field_name(cls) -> str:
        """The name of the task's readout in a stream's results (``result_field``, else ``name``)."""
        return cls.result_field or cls.name

    def decode_with(self, outputs: OutputT, inputs: TaskInputs | None,
                    generator: torch.Generator | None = None) -> Any:
        """:meth:`decode`, passing ``generator`` to the tasks whose decoding samples."""
        if self.decode_takes_generator:
            return self.decode(outputs, inputs, generator=generator)  # type: ignore[call-arg]
        return self.decode(outputs, inputs)  # type: ignore[arg-type]


def common_preset_node(preset: ModelPreset) -> dict[str, Any]:
    """The config fields every head's preset node has: neck ``hidden_size -> features_size``, no dropout, weight 1."""
    return {"input_size": preset.hidden_size, "features_size": preset.features_size, "dropout": 0.0,
            "loss_weight": 1.0}


def classifier_preset_node(preset: ModelPreset, n_classes: int, prior_prob: float) -> dict[str, Any]:
    """A two-layer MLP classifier node of the preset's ``classifier_hidden`` width."""
    return {"n_classes": n_classes, "hidden_size": preset.classifier_hidden, "n_layers": 2, "prior_prob": prior_prob,
            "dropout": 0.0}


def task_names() -> tuple[str, ...]:
    """The registered tasks' short names, by ``rank`` then name (the built-ins: ar, lta, oscc, pnr, mq)."""
    return tuple(sorted(TASKS, key=lambda name: (TASKS.get(name).rank, name)))


def task_class(name: str) -> type[Task]:
    """The task class for a short name ("ar") or an authors' name ("ego4d/ar")."""
    for short in TASKS:
        cls = TASKS.get(short)
        if name in (short, cls.authors_name):
            return cls
    return TASKS.get(name)
