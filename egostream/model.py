"""The model bundle: task heads on one or more hierarchical backbones, with optional EgoPack interaction.

A :class:`ModelBundle` maps task names (the registered tasks, :func:`egostream.tasks.base.task_names`) to a
:class:`TaskModel`: a backbone, a head and, for a novel task, a cross-task module (:mod:`egostream.crosstask`;
EgoPack: the interaction module with the support tasks' prototypes, the support tasks' necks and the fusion rule).
The common deployment is five heads on ONE shared backbone (multi-task checkpoint, or EgoPack heads trained with a
frozen backbone); per-task backbones work too. :meth:`ModelBundle.graphs` runs each DISTINCT backbone once per batch; backbones are shared when they are the same
module or, when loaded from checkpoints, when their weights are equal.

Builders:

* :meth:`ModelBundle.from_checkpoints` from the authors' multi-task / EgoPack checkpoints or ours
  (:func:`egostream.checkpoint.load_checkpoint`), one file for all tasks or one per task, as paths or as
  checkpoints already read (:func:`read_checkpoints` reads each file of a spec once);
* :meth:`ModelConfig.build` from a preset (``configs/model/*.yaml``) with random weights;
* :meth:`ModelBundle.save` writes our checkpoint format.

The bundle holds no per-task code: presets, fused forwards, decoding and head checks are the task classes'
(:class:`egostream.tasks.base.Task`), and which cross-task module a checkpoint holds is asked of every registered
kind (:func:`egostream.crosstask.cross_task_module`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.backbone.hierarchy import BackboneConfig, HierarchicalBackbone
from egostream.checkpoint import LoadedCheckpoint, load_backbone, load_checkpoint, load_module_state, save_checkpoint
from egostream.crosstask import CrossTaskModule, EgoPackHead, cross_task_module
from egostream.device import resolve_device
from egostream.errors import InputError
from egostream.tasks import Task, TaskInputs, task_class, task_names

__all__ = ["ModelConfig", "TaskModel", "EgoPackHead", "ModelBundle", "TASK_NAMES", "CheckpointSpec", "LoadedSpec",
           "checkpoint_tasks", "read_checkpoints"]

TASK_NAMES = task_names()
"""The built-in tasks (ar, lta, oscc, pnr, mq); code that must see plug-in tasks calls :func:`task_names`."""

PathLike = str | os.PathLike[str]
CheckpointSpec = PathLike | Mapping[str, PathLike]
#: A :data:`CheckpointSpec` whose files are read (:func:`read_checkpoints`), or one mixing paths and read files.
LoadedSpec = PathLike | LoadedCheckpoint | Mapping[str, PathLike | LoadedCheckpoint]


def _short(task: str) -> str:
    """The registry name ("ar") of a short or authors' ("ego4d/ar") task name; InputError if unknown."""
    try:
        return task_class(task).name
    except KeyError:
        raise InputError(None, "task", f"unknown task {task!r}; known: {', '.join(task_names())}") from None


# ----------------------------------------------------------------------------------------------------------------
# Presets


@dataclass(frozen=True)
class ModelConfig:
    """A model preset: backbone and head sizes (``configs/model/*.yaml``, read with ``egostream.config.load_config``).

    Defaults are the authors' (sapeirone/hier-egopack@4fff4e5:configs/components/model/graph_hier.yaml,
    configs/components/task/ego4d/*.yaml, configs/components/classifier/MLP.yaml): hidden 768, two TDGC layers per
    level, radius 2 s, dropout 0.1, every task's neck 768 wide, classifiers 512 wide; depth 8 (MQ and the
    multi-task model; the single-task AR/LTA/OSCC/PNR experiments override it to 1).

    Attributes:
        feature_name: folder of the features under ``features/`` (``egovlp``, ``omnivore_video_swinl``).
        feature_dim: ``D``, width of one feature row (256 EgoVLP, 1536 Omnivore).
        hidden_size: backbone width ``F`` (every task's ``input_size``).
        depth: levels of the hierarchy (= the MQ head's number of scales).
        n_layers, radius_s, pos_hidden_channels, dropout: backbone (see :class:`BackboneConfig`).
        features_size: width of every task's neck output.
        classifier_hidden: hidden width of the AR and MQ classifiers (LTA/OSCC use the authors' hard-coded 512).
        num_verbs, num_nouns: LTA v1 vocabulary; num_mq_classes: MQ classes; num_future: LTA ``Z``.
        mq_pool_features: MQ global-context pooling ("mean", "max" or None).
        tasks: heads the preset builds.
    """

    feature_name: str = "egovlp"
    feature_dim: int = 256
    hidden_size: int = 768
    depth: int = 8
    n_layers: int = 2
    radius_s: float = 2.0
    pos_hidden_channels: int = 256
    dropout: float = 0.1
    features_size: int = 768
    classifier_hidden: int = 512
    num_verbs: int = 115
    num_nouns: int = 478
    num_mq_classes: int = 110
    num_future: int = 20
    mq_pool_features: str | None = "mean"
    tasks: tuple[str, ...] = TASK_NAMES

    def __post_init__(self) -> None:
        for task in self.tasks:
            _short(task)

    def backbone_config(self) -> BackboneConfig:
        return BackboneConfig(input_size=self.feature_dim, hidden_size=self.hidden_size, depth=self.depth,
                              n_layers=self.n_layers, radius_s=self.radius_s,
                              pos_hidden_channels=self.pos_hidden_channels, dropout=self.dropout)

    def task_node(self, task: str) -> dict[str, Any]:
        """The authors'-style config node of ``task`` (what ``Task.from_authors_config`` reads; stored in our
        checkpoints as ``task_configs``), from the task class's :meth:`~egostream.tasks.base.Task.preset_node`."""
        return task_class(_short(task)).preset_node(self)

    def build(self, seed: int | None = None) -> ModelBundle:
        """A bundle of :attr:`tasks` on one backbone with fresh weights (seeded when ``seed`` is given), eval mode."""
        if seed is not None:
            torch.manual_seed(seed)
        backbone = HierarchicalBackbone(self.backbone_config())
        models = {}
        for task in self.tasks:
            node = self.task_node(task)
            models[_short(task)] = TaskModel(backbone, task_class(task).from_authors_config(node), node)
        return ModelBundle(models).eval()


# ----------------------------------------------------------------------------------------------------------------
# The bundle


@dataclass
class TaskModel:
    """One task's modules: ``backbone``, ``head``, optional ``crosstask`` module (EgoPack, ...); ``config_node`` is
    the head's authors'-style config (saved with the bundle); ``source`` the checkpoint it came from."""

    backbone: HierarchicalBackbone
    head: Task
    config_node: dict[str, Any] = field(default_factory=dict)
    crosstask: CrossTaskModule | None = None
    source: Path | None = None


class ModelBundle(nn.Module):
    """Task heads on shared backbones (see the module docstring).

    Args:
        models: task name (short or authors') -> :class:`TaskModel`. Tasks whose ``backbone`` is the same module
            share it (it runs once per batch). Every backbone must read the same feature width.
    """

    def __init__(self, models: Mapping[str, TaskModel]) -> None:
        super().__init__()
        if not models:
            raise InputError(None, "tasks", "a model bundle needs at least one task")
        backbones: list[HierarchicalBackbone] = []
        self.backbone_index: dict[str, int] = {}
        self.heads = nn.ModuleDict()
        self.crosstask = nn.ModuleDict()
        self.config_nodes: dict[str, dict[str, Any]] = {}
        self.sources: dict[str, Path | None] = {}
        for name, model in models.items():
            task = _short(name)
            if not any(model.backbone is known for known in backbones):
                backbones.append(model.backbone)
            self.backbone_index[task] = next(i for i, known in enumerate(backbones) if known is model.backbone)
            _check_head_fits(task, model.head, model.backbone.cfg, model.source)
            self.heads[task] = model.head
            if model.crosstask is not None:
                self.crosstask[task] = model.crosstask
            self.config_nodes[task] = dict(model.config_node)
            self.sources[task] = model.source
        widths = {backbone.cfg.input_size for backbone in backbones}
        if len(widths) > 1:
            raise InputError(None, "backbones", f"the tasks' backbones read different feature widths {sorted(widths)}")
        self.backbones = nn.ModuleList(backbones)

    @property
    def tasks(self) -> list[str]:
        return list(self.heads.keys())

    @property
    def egopack(self) -> dict[str, EgoPackHead]:
        """Task -> its EgoPack module, for the novel tasks that have one."""
        return {task: module for task, module in self.crosstask.items() if isinstance(module, EgoPackHead)}

    @property
    def feature_dim(self) -> int:
        """``D``, the feature width every backbone reads."""
        return self.backbones[0].cfg.input_size  # type: ignore[index]

    def backbone(self, task: str) -> HierarchicalBackbone:
        return self.backbones[self.backbone_index[self._task(task)]]  # type: ignore[return-value]

    def head(self, task: str) -> Task:
        return self.heads[self._task(task)]  # type: ignore[return-value]

    def _task(self, task: str) -> str:
        short = _short(task)
        if short not in self.heads:
            raise InputError(None, "task", f"the bundle has no {short!r} head (it has {', '.join(self.tasks)})")
        return short

    def check_features(self, batch: VideoBatch) -> None:
        """InputError unless ``batch.x`` is ``[N, D]`` with the bundle's feature width."""
        if batch.x.dim() != 2 or batch.x.shape[1] != self.feature_dim:
            raise InputError(None, "features", f"the model reads feature rows of width D={self.feature_dim}, the "
                                               f"batch has shape {list(batch.x.shape)}")

    def graphs(self, batch: VideoBatch, tasks: Sequence[str] | None = None) -> dict[str, LevelGraphs]:
        """Task -> backbone graphs of ``batch``, running each distinct backbone once (tasks sharing a backbone get
        the same :class:`LevelGraphs` object). ``tasks`` defaults to all."""
        self.check_features(batch)
        wanted = [self._task(task) for task in (tasks if tasks is not None else self.tasks)]
        by_backbone: dict[int, LevelGraphs] = {}
        result = {}
        for task in wanted:
            index = self.backbone_index[task]
            if index not in by_backbone:
                by_backbone[index] = self.backbones[index](batch)[1]
            result[task] = by_backbone[index]
        return result

    def forward_graphs(self, task: str, graphs: LevelGraphs, inputs: TaskInputs) -> Any:
        """The head of ``task`` (through its cross-task module if it has one) on precomputed graphs."""
        task = self._task(task)
        head = self.heads[task]
        if task in self.crosstask:
            return self.crosstask[task](head, graphs, inputs)
        return head(graphs, inputs)

    def run(self, task: str, batch: VideoBatch, inputs: TaskInputs) -> Any:
        """Backbone then head of ``task`` on one batch; the output type is the task's (``AROutput``, ...)."""
        return self.forward_graphs(task, self.graphs(batch, [task])[self._task(task)], inputs)

    def decode(self, task: str, outputs: Any, inputs: TaskInputs | None = None,
               generator: torch.Generator | None = None) -> Any:
        """The head's decoding (top-k, sampled futures, argmax, keyframe, detections); ``generator`` seeds LTA."""
        return self.head(task).decode_with(outputs, inputs, generator)

    # ------------------------------------------------------------------------------------------------ checkpoints

    @classmethod
    def from_checkpoints(cls, checkpoints: LoadedSpec, *, tasks: Sequence[str] | None = None,
                         feature_dim: int | None = None, device: str | torch.device = "cpu") -> ModelBundle:
        """Load a bundle from checkpoint files (authors' multi-task or EgoPack format, or ours).

        Args:
            checkpoints: one path for every task, or ``{task: path}``; a path may be a checkpoint already read
                (:func:`read_checkpoints`), and each file is read once.
            tasks: the tasks to load from a single path (default: every task of a multi-task or egostream
                checkpoint; the novel task of an EgoPack one).
            feature_dim: the width ``D`` of the features the model will read; checked against each checkpoint.
            device: where the bundle lives (:func:`egostream.device.resolve_device`: ``auto``, ``cpu``, ``cuda:N``).

        Raises:
            InputError: a missing task, weights of another architecture, a feature width that differs (naming
            the file and what differs), or a device this machine cannot use (field ``device``).
        """
        target = resolve_device(device)
        if isinstance(checkpoints, Mapping) and tasks is not None:
            raise InputError(None, "tasks", "give tasks either as the keys of the mapping or as tasks=")
        names = [_short(task) for task in (checkpoints if isinstance(checkpoints, Mapping) else tasks or ())]
        read = read_checkpoints(checkpoints)
        if isinstance(read, LoadedCheckpoint):
            per_task = dict.fromkeys(names if tasks is not None else map(_short, _default_tasks(read)), read)
        else:
            per_task = dict(zip(names, read.values()))
        backbones: list[HierarchicalBackbone] = []
        models = {task: _task_model(task, checkpoint, _shared_backbone(backbones, checkpoint, feature_dim))
                  for task, checkpoint in per_task.items()}
        return cls(models).to(target).eval()

    def save(self, path: PathLike, *, config: Mapping[str, Any] | None = None, step: int | None = None,
             training_state: Mapping[str, Any] | None = None) -> Path:
        """Write the bundle in our checkpoint format (one shared backbone, at most one novel task with a cross-task
        module, which stores itself: :meth:`~egostream.crosstask.CrossTaskModule.checkpoint_fields`).

        ``training_state`` is what ``egostream train`` resumes from.
        """
        if len(self.backbones) != 1:
            raise InputError(path, "backbones", f"our checkpoint holds one backbone, the bundle has "
                                                f"{len(self.backbones)}: save each task's bundle separately")
        if len(self.crosstask) > 1:
            raise InputError(path, "egopack", "our checkpoint holds at most one novel task with a cross-task module")
        crosstask: dict[str, Any] = {}
        for task, module in self.crosstask.items():
            crosstask = module.checkpoint_fields(task_class(task).authors_name)  # type: ignore[operator]
        names = {task: task_class(task).authors_name for task in self.tasks}
        return save_checkpoint(path, backbone=self.backbones[0],  # type: ignore[arg-type]
                               tasks={names[task]: self.heads[task] for task in self.tasks},
                               task_configs={names[task]: self.config_nodes[task] for task in self.tasks},
                               config=dict(config or {}), step=step, training_state=training_state, **crosstask)


def _check_head_fits(task: str, head: Task, backbone: BackboneConfig, source: Path | None) -> None:
    if head.config.input_size != backbone.hidden_size:
        raise InputError(source, f"task[{task}].input_size",
                         f"the head reads {head.config.input_size}-wide features, the backbone gives "
                         f"hidden_size={backbone.hidden_size}")
    head.check_backbone(backbone.depth, source)


def _default_tasks(checkpoint: LoadedCheckpoint) -> list[str]:
    """The tasks a single checkpoint file provides: an EgoPack checkpoint its novel task, a multi-task one all its
    tasks, ours every task with a stored config (support necks saved with an EgoPack task have none)."""
    if checkpoint.format == "egopack":
        return [checkpoint.novel_task] if checkpoint.novel_task else []
    if checkpoint.format == "egopack_module":
        raise InputError(checkpoint.path, None, "a standalone EgoPack module holds no backbone or task head")
    if checkpoint.format == "multi_task":
        return list(checkpoint.tasks)
    configured = checkpoint.config.get("task_configs") or {}
    names = list(checkpoint.tasks) + ([checkpoint.novel_task] if checkpoint.novel_task else [])
    return [name for name in dict.fromkeys(names) if name in configured]


def checkpoint_tasks(path: PathLike | LoadedCheckpoint) -> list[str]:
    """The tasks (short names) :meth:`ModelBundle.from_checkpoints` loads from the single file ``path`` (or from
    that file already read)."""
    return [_short(name) for name in _default_tasks(read_checkpoints(path))]  # type: ignore[arg-type]


def read_checkpoints(checkpoints: LoadedSpec) -> LoadedCheckpoint | dict[str, LoadedCheckpoint]:
    """``checkpoints`` (one path, or ``{task: path}``) with every file read by
    :func:`~egostream.checkpoint.load_checkpoint`, each distinct file once (tasks that share a file share its
    :class:`LoadedCheckpoint`); checkpoints already read are kept as they are."""
    read: dict[Path, LoadedCheckpoint] = {}

    def one(source: PathLike | LoadedCheckpoint) -> LoadedCheckpoint:
        if isinstance(source, LoadedCheckpoint):
            return source
        path = Path(source)
        if path not in read:
            read[path] = load_checkpoint(path)
        return read[path]

    if isinstance(checkpoints, Mapping):
        return {task: one(source) for task, source in checkpoints.items()}
    return one(checkpoints)


def _shared_backbone(known: list[HierarchicalBackbone], checkpoint: LoadedCheckpoint,
                     feature_dim: int | None) -> HierarchicalBackbone:
    """The checkpoint's backbone, or an already loaded one with the same config and equal weights."""
    cfg = checkpoint.backbone_config
    if cfg is not None and feature_dim is not None and cfg.input_size != feature_dim:
        raise InputError(checkpoint.path, "model.proj.1.weight",
                         f"the checkpoint's backbone reads features of width D={cfg.input_size}, the features "
                         f"have D={feature_dim}")
    backbone = load_backbone(checkpoint)
    for other in known:
        if other.cfg == backbone.cfg and all(torch.equal(value, backbone.state_dict()[key])
                                             for key, value in other.state_dict().items()):
            return other
    known.append(backbone)
    return backbone


def _task_node(checkpoint: LoadedCheckpoint, name: str) -> dict[str, Any]:
    """The authors'-style config node of task ``name`` stored in a checkpoint."""
    config = checkpoint.config
    if checkpoint.format == "egostream":
        node, where = (config.get("task_configs") or {}).get(name), f"task_configs[{name}]"
    elif name == checkpoint.novel_task:
        node, where = config.get("egopack_task"), "config.egopack_task"
    else:
        node, where = (config.get("tasks") or {}).get(name), f"config.tasks[{name}]"
    if not isinstance(node, Mapping):
        raise InputError(checkpoint.path, where, f"no config for task {name!r}: cannot tell the head's sizes")
    return dict(node)


def _task_model(task: str, checkpoint: LoadedCheckpoint, backbone: HierarchicalBackbone) -> TaskModel:
    name = task_class(task).authors_name
    state = checkpoint.task_state(name)
    node = _task_node(checkpoint, name)
    try:
        head = task_class(name).from_authors_config(node)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(checkpoint.path, f"config of task {name}", f"cannot build the head: {err!r}") from None
    load_module_state(head, state, source=checkpoint.path, field_name=f"task[{name}]")
    return TaskModel(backbone, head.eval(), node, cross_task_module(task, checkpoint, node), checkpoint.path)
