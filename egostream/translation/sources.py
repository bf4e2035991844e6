"""The frozen source models of a translator and the per-task views they give of each level-0 node.

EgoT2-s (facebookresearch/EgoT2@686c305:HOI/models/pnr/video_model_transfer_3task.py ``TaskFusion3Task``) loads one
task-specific model per task, puts it in eval mode and freezes its parameters; the translator reads their
intermediate features. Here a source is a task head of a Hier-EgoPack :class:`~egostream.model.ModelBundle`: the
task's view of level-0 node ``i`` is its projection neck applied to the backbone feature of that node,
``head.project(x_i)`` (the same neck output EgoPack's prototypes are built from). With one multi-task checkpoint
the backbone runs once; with several single-task checkpoints each distinct backbone runs once
(:meth:`ModelBundle.graphs`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.errors import InputError
from egostream.model import ModelBundle, checkpoint_tasks

__all__ = ["SourceViews", "FrozenSources"]


@dataclass
class SourceViews:
    """The level-0 nodes of a batch as every source task sees them.

    Attributes:
        features: source task -> ``[N0, F_t]`` neck output per level-0 node (video-major, node order).
        pos: ``[N0]`` float32 node time in seconds.
        video: ``[N0]`` int64 video id (sorted).
        indices: ``[N0]`` int64 node index inside its video (absolute row index in a stream).
        num_videos: ``B``.
    """

    features: dict[str, Tensor]
    pos: Tensor
    video: Tensor
    indices: Tensor
    num_videos: int

    def select(self, keep: Tensor) -> SourceViews:
        """The views of the nodes where ``keep`` (``[N0]`` bool) is true."""
        return SourceViews({task: value[keep] for task, value in self.features.items()}, self.pos[keep],
                           self.video[keep], self.indices[keep], self.num_videos)


def _level0(graphs: LevelGraphs) -> Tensor:
    return graphs.depth == 0


class FrozenSources(nn.Module):
    """The source task heads and their backbones, frozen (no gradient, eval mode, weights never change).

    Args:
        bundle: the loaded source models (one bundle; tasks whose backbones are equal share one).
        tasks: the source tasks, in token order.
        paths: the checkpoint of each source task (recorded in the translation checkpoint).
    """

    def __init__(self, bundle: ModelBundle, tasks: Sequence[str], paths: Mapping[str, Path] | None = None) -> None:
        super().__init__()
        missing = [task for task in tasks if task not in bundle.tasks]
        if missing or not tasks:
            raise InputError(None, "translation.source_tasks",
                             f"source tasks {list(tasks)}: the sources provide {bundle.tasks}")
        self.bundle = bundle
        self.tasks = list(tasks)
        self.paths = {task: Path(path) for task, path in (paths or {}).items()}
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenSources:
        """Sources stay in eval mode whatever the mode of the model holding them."""
        return super().train(False)

    @classmethod
    def from_checkpoints(cls, paths: Sequence[str | os.PathLike[str]], tasks: Sequence[str] = (), *,
                         feature_dim: int | None = None) -> FrozenSources:
        """Load the sources: one multi-task checkpoint, or one checkpoint per task (the first that has a task wins).

        ``tasks`` empty: every task the checkpoints provide.
        """
        if not paths:
            raise InputError(None, "translation.sources", "a translator needs at least one source checkpoint")
        per_task: dict[str, Path] = {}
        for path in map(Path, paths):
            if not path.is_file():
                raise InputError(path, "translation.sources", "no such checkpoint file")
            for task in checkpoint_tasks(path):
                per_task.setdefault(task, path)
        wanted = list(tasks) if tasks else list(per_task)
        missing = [task for task in wanted if task not in per_task]
        if missing:
            raise InputError(None, "translation.source_tasks",
                             f"no source checkpoint provides {missing} (they provide {sorted(per_task)})")
        chosen = {task: per_task[task] for task in wanted}
        bundle = ModelBundle.from_checkpoints(dict(chosen), feature_dim=feature_dim)
        return cls(bundle, wanted, chosen)

    @property
    def feature_dim(self) -> int:
        """``D``, the width of the feature rows the sources read."""
        return self.bundle.feature_dim

    def widths(self) -> dict[str, int]:
        """Source task -> width of its view (its neck's ``features_size``)."""
        return {task: self.bundle.head(task).config.features_size for task in self.tasks}

    @torch.no_grad()
    def views(self, batch: VideoBatch) -> SourceViews:
        """Every source task's view of the level-0 nodes of ``batch`` (one pass per distinct backbone)."""
        return self.views_from_graphs(self.bundle.graphs(batch, self.tasks))

    @torch.no_grad()
    def views_from_graphs(self, graphs: Mapping[str, LevelGraphs]) -> SourceViews:
        """The views from precomputed backbone graphs (task -> graphs, e.g. of a streaming engine)."""
        features = {}
        first = graphs[self.tasks[0]]
        keep = _level0(first)
        for task in self.tasks:
            task_graphs = graphs[task]
            level0 = _level0(task_graphs)
            if not torch.equal(task_graphs.pos[level0], first.pos[keep]):
                raise InputError(None, "translation.sources", f"the source backbones of {self.tasks[0]!r} and "
                                                              f"{task!r} give different level-0 nodes")
            features[task] = self.bundle.head(task).project(task_graphs.x[level0])
        return SourceViews(features, first.pos[keep], first.video[keep], first.indices[keep], first.num_videos)
