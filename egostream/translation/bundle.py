"""A translation model with the surface of :class:`~egostream.model.ModelBundle` that replay, the validation meters
and the training loop use (and, with sources on one backbone, the ``backbones`` / ``backbone_index`` /
``forward_graphs`` that :class:`~egostream.stream.windows.WindowEmitter` and the stream readouts use), and its
checkpoint format.

:class:`TranslationBundle` holds the frozen sources, the :class:`~egostream.translation.translator.TaskTranslator`
and the primary task's head, built by the task's own class with ``input_size = d``: the head reads the translated
primary tokens as its level-0 node features, so ``run`` returns the task's own output type (``AROutput``, ...) and
its loss, decoding, submissions and metrics are the task's.

Checkpoint: our format (:func:`egostream.checkpoint.save_checkpoint`) with no backbone; ``tasks`` holds the primary
head (under its authors' name) and the translator (under ``"translation/translator"``); ``config.translation``
records the primary task, the :class:`TranslationConfig`, the view widths and each source checkpoint with its
path, sha256 and the tasks taken from it. Loading checks every source file against its sha256, so a translator is
never silently run on sources other than the ones it was trained on.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.backbone.hierarchy import HierarchicalBackbone
from egostream.backpack.prototypes import file_sha256
from egostream.checkpoint import LoadedCheckpoint, load_checkpoint, load_module_state, save_checkpoint
from egostream.config import from_dict, to_dict
from egostream.errors import InputError
from egostream.model import ModelBundle, ModelConfig
from egostream.tasks import Task, TaskInputs, task_class
from egostream.tasks.lta import LTATask
from egostream.translation.config import PRIMARY_TASKS, TranslationConfig
from egostream.translation.sources import FrozenSources, SourceViews
from egostream.translation.translator import TaskTranslator, Translation

__all__ = ["TranslationBundle", "build_translation", "is_translation_checkpoint", "TRANSLATOR_KEY",
           "TRANSLATION_FORMAT_VERSION"]

#: Key of the translator's state in the checkpoint's ``tasks``.
TRANSLATOR_KEY = "translation/translator"
TRANSLATION_FORMAT_VERSION = 1

PathLike = str | os.PathLike[str]


def primary_head_node(task: str, config: TranslationConfig, model: ModelConfig) -> dict[str, Any]:
    """The authors'-style config node of the primary head: the task's head of ``model`` reading ``d``-wide
    tokens, with a ``d``-wide neck."""
    sized = replace(model, hidden_size=config.d_model, features_size=config.d_model, tasks=(task,))
    return sized.task_node(task)


def translated_graphs(translation: Translation, views: SourceViews) -> LevelGraphs:
    """The translated primary tokens as a one-level :class:`LevelGraphs` (what the primary head reads)."""
    depth = torch.zeros_like(views.indices)
    return LevelGraphs(translation.tokens, views.pos, views.video, depth, torch.ones_like(views.pos),
                       views.indices, views.num_videos)


def last_nodes(views: SourceViews, window: int) -> Tensor:
    """``[N0]`` bool: the newest ``window`` level-0 nodes of each video."""
    counts = torch.bincount(views.video, minlength=views.num_videos)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(views.video), device=views.video.device) - starts[views.video]
    return slot >= (counts[views.video] - window)


class TranslationBundle(nn.Module):
    """Frozen sources, a translator and the primary task's head (see the module docstring).

    Args:
        sources: the frozen source models.
        translator: the translator (its ``primary`` is the primary task).
        head: the primary task's head, ``input_size == translator.config.d_model``.
        head_node: the head's authors'-style config node (saved with it).
    """

    def __init__(self, sources: FrozenSources, translator: TaskTranslator, head: Task,
                 head_node: Mapping[str, Any]) -> None:
        super().__init__()
        #: Source task -> share of the primary task's attention in the last :meth:`forward_graphs` call.
        self.last_attention_shares: dict[str, float] = {}
        if head.name != translator.primary:
            raise ValueError(f"head {head.name!r} for primary task {translator.primary!r}")
        if head.config.input_size != translator.config.d_model:
            raise InputError(None, "translation.d_model", f"the {head.name} head reads {head.config.input_size}-wide "
                                                          f"features, the translator gives {translator.config.d_model}")
        self.sources = sources
        self.translator = translator
        self.primary_head = head
        self.head_node = dict(head_node)

    # --------------------------------------------------------------------------------- the ModelBundle surface

    @property
    def primary(self) -> str:
        return self.translator.primary

    @property
    def config(self) -> TranslationConfig:
        return self.translator.config

    @property
    def tasks(self) -> list[str]:
        return [self.primary]

    @property
    def feature_dim(self) -> int:
        return self.sources.feature_dim

    def head(self, task: str) -> Task:
        self._check_task(task)
        return self.primary_head

    def _check_task(self, task: str) -> None:
        if task_class(task).name != self.primary:
            raise InputError(None, "task", f"this translation model predicts {self.primary!r} only, not {task!r}")

    def check_features(self, batch: VideoBatch) -> None:
        self.sources.bundle.check_features(batch)

    def translate(self, batch: VideoBatch, *, window: int | None = None,
                  report: bool = False) -> tuple[Translation, SourceViews]:
        """Translated primary tokens of the level-0 nodes of ``batch`` (the newest ``window`` per video, or all)."""
        views = self.sources.views(batch)
        if window is not None:
            views = views.select(last_nodes(views, window))
        return self.translator(views, report=report), views

    def forward_views(self, views: SourceViews, inputs: TaskInputs, *, report: bool = False,
                      base_tokens: Mapping[str, Tensor] | None = None) -> tuple[Any, Translation]:
        """The primary head's outputs on the translation of ``views``, and the translation."""
        translation = self.translator(views, report=report, base_tokens=base_tokens)
        return self.primary_head(translated_graphs(translation, views), inputs), translation

    def _single_backbone(self) -> HierarchicalBackbone:
        if len(self.sources.bundle.backbones) != 1:
            raise InputError(None, "translation.sources",
                             f"the sources run {len(self.sources.bundle.backbones)} backbones; reading one backbone's "
                             "graphs needs one multi-task source (or sources sharing one backbone)")
        return self.sources.bundle.backbones[0]  # type: ignore[return-value]

    @property
    def backbones(self) -> nn.ModuleList:
        """The sources' distinct backbones."""
        return self.sources.bundle.backbones

    @property
    def backbone_index(self) -> dict[str, int]:
        """``{primary: 0}``: the primary task reads the sources' (first) backbone's engine."""
        return {self.primary: 0}

    @property
    def egopack(self) -> dict[str, nn.Module]:
        """No EgoPack heads (what the stream readouts and evidence look for)."""
        return {}

    def backbone(self, task: str) -> HierarchicalBackbone:
        """The sources' one backbone (what a streaming engine runs); InputError with several."""
        self._check_task(task)
        return self._single_backbone()

    def graphs(self, batch: VideoBatch, tasks: Sequence[str] | None = None) -> dict[str, LevelGraphs]:
        """``{primary: graphs}`` of the sources' one backbone on ``batch``."""
        for task in tasks if tasks is not None else self.tasks:
            self._check_task(task)
        self.check_features(batch)
        with torch.no_grad():
            return {self.primary: self._single_backbone()(batch)[1]}

    def forward_graphs(self, task: str, graphs: LevelGraphs, inputs: TaskInputs) -> Any:
        """The primary outputs from graphs of the sources' one backbone (e.g. a stream readout's span): every
        source neck on their level-0 nodes, the translator over all of them, the primary head. The call's attention
        shares (source task -> share of the primary task's attention) are kept in ``last_attention_shares``, which
        the stream's windows report (``WindowResult.attention``)."""
        self._check_task(task)
        self._single_backbone()
        views = self.sources.views_from_graphs({source: graphs for source in self.sources.tasks})
        outputs, translation = self.forward_views(views, inputs, report=True)
        self.last_attention_shares = translation.attention_report()
        return outputs

    def run(self, task: str, batch: VideoBatch, inputs: TaskInputs) -> Any:
        """The primary task's outputs (its head's type) on one batch."""
        self._check_task(task)
        self.check_features(batch)
        return self.forward_views(self.sources.views(batch), inputs)[0]

    def decode(self, task: str, outputs: Any, inputs: TaskInputs | None = None,
               generator: torch.Generator | None = None) -> Any:
        head = self.head(task)
        if isinstance(head, LTATask):
            return head.decode(outputs, inputs, generator=generator)
        return head.decode(outputs, inputs)

    # ---------------------------------------------------------------------------------------------- checkpoints

    def source_record(self) -> list[dict[str, Any]]:
        """Each source checkpoint: ``path``, ``sha256`` and the tasks taken from it."""
        by_path: dict[Path, list[str]] = {}
        for task in self.sources.tasks:
            path = self.sources.paths.get(task)
            if path is None:
                raise InputError(None, "translation.sources", f"source task {task!r} has no checkpoint file")
            by_path.setdefault(path, []).append(task)
        return [{"path": str(path), "sha256": file_sha256(path), "tasks": tasks} for path, tasks in by_path.items()]

    def save(self, path: PathLike, *, config: Mapping[str, Any] | None = None, step: int | None = None,
             training_state: Mapping[str, Any] | None = None) -> Path:
        """Write the translator, the primary head and the record of the sources (module docstring)."""
        name = task_class(self.primary).authors_name
        record = {"version": TRANSLATION_FORMAT_VERSION, "primary": self.primary, "config": to_dict(self.config),
                  "widths": self.sources.widths(), "sources": self.source_record()}
        return save_checkpoint(path, tasks={name: self.primary_head, TRANSLATOR_KEY: self.translator},
                               task_configs={name: self.head_node},
                               config={**dict(config or {}), "translation": record}, step=step,
                               training_state=training_state)

    @classmethod
    def from_checkpoints(cls, checkpoint: PathLike | LoadedCheckpoint, *, sources: Sequence[PathLike] | None = None,
                         feature_dim: int | None = None) -> TranslationBundle:
        """Load a translation checkpoint and its sources (eval mode); each file is read once.

        Args:
            checkpoint: the file :meth:`save` wrote, or that file already read (:func:`load_checkpoint`).
            sources: the source checkpoints where they are now, in recorded order (default: the recorded paths);
                each must have the recorded sha256.
            feature_dim: the width ``D`` of the features the model will read.
        """
        loaded = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint)
        record = loaded.config.get("translation")
        if not isinstance(record, Mapping):
            raise InputError(loaded.path, "config.translation", "not a translation checkpoint")
        if record.get("version") != TRANSLATION_FORMAT_VERSION:
            raise InputError(loaded.path, "config.translation.version",
                             f"unsupported translation checkpoint version {record.get('version')!r}")
        config = from_dict(TranslationConfig, record["config"], source=str(loaded.path),
                           prefix="config.translation.config.")
        recorded = list(record["sources"])
        paths = [Path(item["path"]) for item in recorded] if sources is None else [Path(p) for p in sources]
        if len(paths) != len(recorded):
            raise InputError(loaded.path, "config.translation.sources",
                             f"{len(recorded)} source checkpoints recorded, {len(paths)} given")
        for i, (item, path) in enumerate(zip(recorded, paths)):
            if not path.is_file():
                raise InputError(path, f"config.translation.sources[{i}].path", "source checkpoint not found")
            if file_sha256(path) != item["sha256"]:
                raise InputError(path, f"config.translation.sources[{i}].sha256",
                                 "this file is not the source checkpoint the translator was trained on")
        chosen = {task: path for item, path in zip(recorded, paths) for task in item["tasks"]}
        tasks = list(record["widths"])
        bundle = ModelBundle.from_checkpoints({task: chosen[task] for task in tasks}, feature_dim=feature_dim)
        frozen = FrozenSources(bundle, tasks, {task: chosen[task] for task in tasks})
        if frozen.widths() != dict(record["widths"]):
            raise InputError(loaded.path, "config.translation.widths",
                             f"recorded view widths {dict(record['widths'])}, the sources give {frozen.widths()}")
        primary = str(record["primary"])
        name = task_class(primary).authors_name
        translator = TaskTranslator(frozen.widths(), primary, config)
        load_module_state(translator, loaded.task_state(TRANSLATOR_KEY), source=loaded.path,
                          field_name=f"tasks[{TRANSLATOR_KEY}]")
        node = dict((loaded.config.get("task_configs") or {}).get(name) or {})
        head = task_class(primary).from_authors_config(node)
        load_module_state(head, loaded.task_state(name), source=loaded.path, field_name=f"tasks[{name}]")
        return cls(frozen, translator, head, node).eval()


def build_translation(primary: str, config: TranslationConfig, model: ModelConfig, *,
                      sources: FrozenSources | None = None) -> TranslationBundle:
    """A fresh translator and primary head (weights from torch's global RNG) on frozen sources.

    ``sources`` default: loaded from ``config.sources`` (``config.source_tasks``, or every task they provide).
    """
    if primary not in PRIMARY_TASKS:
        raise InputError(None, "tasks", f"translation supports the primary tasks {list(PRIMARY_TASKS)}, "
                                        f"not {primary!r}")
    if sources is None:
        sources = FrozenSources.from_checkpoints(config.sources, config.source_tasks, feature_dim=model.feature_dim)
    if primary not in sources.tasks:
        raise InputError(None, "translation.source_tasks",
                         f"the primary task {primary!r} must be a source task (sources: {sources.tasks})")
    if sources.feature_dim != model.feature_dim:
        raise InputError(None, "model.feature_dim", f"the sources read D={sources.feature_dim} features, the recipe's "
                                                    f"model D={model.feature_dim}")
    node = primary_head_node(primary, config, model)
    head = task_class(primary).from_authors_config(node)
    translator = TaskTranslator(sources.widths(), primary, config)
    return TranslationBundle(sources, translator, head, node).eval()


def is_translation_checkpoint(checkpoint: PathLike | LoadedCheckpoint) -> bool:
    """Whether ``checkpoint`` (a file, or a file already read) is a translation checkpoint (what
    :func:`egostream.bundles.load_bundle` dispatches on)."""
    loaded = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint)
    return loaded.format == "egostream" and isinstance(loaded.config.get("translation"), Mapping)
