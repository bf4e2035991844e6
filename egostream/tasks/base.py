"""What every task head shares: the sample fields it reads, the :class:`Task` base class and the ``TASKS`` registry.

A task consumes the backbone's :class:`~egostream.backbone.graphs.LevelGraphs` plus a few fields of the sample
(:class:`TaskInputs`: segments, labels, clip metadata) and provides

* ``forward(graphs, inputs) -> outputs`` (a small NamedTuple of tensors per task),
* ``loss_terms(outputs, inputs) -> dict`` with ``"total"`` and the named parts, exactly as the authors'
  ``compute_loss`` (sapeirone/hier-egopack@4fff4e5:models/tasks/task.py and models/tasks/ego4d/*.py);
  ``loss(outputs, inputs)`` returns ``loss_terms(...)["total"]``,
* ``decode(outputs, inputs) -> predictions`` (top-k, sampling, argmax, keyframe, segments).

Each task registers itself in ``TASKS`` under its short name ("ar", "lta", "oscc", "pnr", "mq") and carries the
authors' name ("ego4d/ar", ...) in ``authors_name``; :func:`task_class` accepts either.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from torch import Tensor, nn

from egostream.backbone.graphs import LevelGraphs
from egostream.errors import InputError
from egostream.registry import Registry
from egostream.tasks.neck import ProjectionNeck

__all__ = ["TASKS", "Task", "TaskConfig", "TaskInputs", "task_class"]

TASKS: Registry[type[Task]] = Registry("task")

OutputT = TypeVar("OutputT")
ConfigT = TypeVar("ConfigT", bound="TaskConfig")


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

    Subclasses set ``name`` (short registry name), ``authors_name`` (key in the authors' checkpoints) and
    ``config_class``, and implement ``forward``, ``loss_terms`` and ``decode``.
    """

    name: ClassVar[str]
    authors_name: ClassVar[str]
    config_class: ClassVar[type[TaskConfig]]

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


def task_class(name: str) -> type[Task]:
    """The task class for a short name ("ar") or an authors' name ("ego4d/ar")."""
    for short in TASKS:
        cls = TASKS.get(short)
        if name in (short, cls.authors_name):
            return cls
    return TASKS.get(name)
