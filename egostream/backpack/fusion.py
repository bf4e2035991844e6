"""How each novel task consults the backpack: which support features become kNN queries, and how the interaction
outputs are fused into the novel task's own features.

The flow follows ``validate()``/``train()`` of sapeirone/hier-egopack@4fff4e5:train_egopack.py:

1. every support task's neck runs on the DETACHED features of all backbone nodes (no gradient reaches the backbone
   through the support tasks);
2. the novel task aligns them to its own samples (``align_for_egopack``): these are the queries;
3. :class:`~egostream.backpack.interaction.EgoPackInteraction` interacts them with the prototypes;
4. the novel task fuses the interaction outputs ``f~_t`` with its own features (:meth:`FusionRule.fuse`).

Rules per novel task (the ``EgoPack*Task`` classes of models/tasks/ego4d/*.py, all with ``fusion_level: features``
as in configs/components/egopack_task/ego4d/*.yaml):

========  ======================================================  ============================================
task      queries (``align_for_egopack``)                         fusion
========  ======================================================  ============================================
AR        level-0 segment mean, empty segment -> zero vector      ``x + mean_t f~_t``
OSCC      level-0 segment mean, no clamp (empty -> NaN)           ``x + mean_t f~_t``
LTA       level-0 max over each video                             ``x + mean_t f~_t`` (before the LTA head)
PNR       every level-0 node                                      ``x + 0.01 * mean_t f~_t``
MQ        every node of every level, unchanged                    ``mean([x, N_MQ(f~_1), ..., N_MQ(f~_T)])``
========  ======================================================  ============================================

``x`` is the novel task's projected (and, for AR/OSCC/LTA, aligned) feature. AR, OSCC and PNR take a
``fusion_dropout`` argument but never apply it in features mode (the authors only store it); MQ applies its dropout
to the stacked features before the mean, in training mode only.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from egostream.backbone.graphs import LevelGraphs
from egostream.backpack.interaction import EgoPackInteraction, InteractionResult
from egostream.errors import InputError
from egostream.tasks.alignment import segment_mean

__all__ = ["Segments", "FusionRule", "SegmentFusion", "VideoFusion", "NodeFusion", "ProjectedMeanFusion",
           "fusion_rule", "support_queries", "consult_backpack"]

Neck = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Segments:
    """Ground-truth segments the AR/OSCC samples are aligned to.

    Attributes:
        bounds: ``[M, 2]`` float32 (start, end) in seconds, on the origin of the node times.
        video: ``[M]`` int64 video id of each segment.
    """

    bounds: Tensor
    video: Tensor


def _level0(features: Tensor, graphs: LevelGraphs) -> tuple[Tensor, Tensor, Tensor]:
    """The level-0 rows of ``features`` (aligned with ``graphs``), with their times and videos."""
    if features.shape[0] != graphs.x.shape[0]:
        raise InputError(None, "support_features", f"{features.shape[0]} rows for {graphs.x.shape[0]} backbone nodes")
    level0 = graphs.depth == 0
    return features[level0], graphs.pos[level0], graphs.video[level0]


def _mean_over_tasks(interacted: Mapping[str, Tensor]) -> Tensor:
    if not interacted:
        raise InputError(None, "interacted", "no support task output to fuse")
    return torch.stack(list(interacted.values())).mean(0)


class FusionRule(ABC):
    """One novel task's use of the backpack: queries from support features, fusion of interaction outputs."""

    @abstractmethod
    def queries(self, support_features: Tensor, graphs: LevelGraphs, segments: Segments | None = None) -> Tensor:
        """Align one support task's ``[N_all, F]`` node features (rows as in ``graphs``) to ``[Q, F]`` queries."""

    @abstractmethod
    def fuse(self, novel_features: Tensor, interacted: Mapping[str, Tensor], neck: Neck | None = None,
             training: bool = False) -> Tensor:
        """Fuse the novel task's ``[Q, F]`` features with each support task's ``[Q, F]`` interaction output.

        ``neck`` is the novel task's projection (used by MQ only); ``training`` enables fusion dropout (MQ only).
        """


@dataclass(frozen=True)
class SegmentFusion(FusionRule):
    """AR (``clamp_empty=True``) and OSCC (``clamp_empty=False``): one query per ground-truth segment.

    sapeirone/hier-egopack@4fff4e5:models/tasks/ego4d/ar.py ``EgoPackARTask`` and oscc.py ``EgoPackOSCCTask``.
    """

    clamp_empty: bool

    def queries(self, support_features: Tensor, graphs: LevelGraphs, segments: Segments | None = None) -> Tensor:
        if segments is None:
            raise InputError(None, "segments", "segment-level tasks (AR, OSCC) need the ground-truth segments")
        features, pos, video = _level0(support_features, graphs)
        return segment_mean(features, pos, video, segments.bounds, segments.video, clamp_empty=self.clamp_empty)

    def fuse(self, novel_features: Tensor, interacted: Mapping[str, Tensor], neck: Neck | None = None,
             training: bool = False) -> Tensor:
        return novel_features + _mean_over_tasks(interacted)


@dataclass(frozen=True)
class VideoFusion(FusionRule):
    """LTA: one query per video, the max over its level-0 nodes (models/tasks/ego4d/lta.py ``EgoPackLTATask``)."""

    def queries(self, support_features: Tensor, graphs: LevelGraphs, segments: Segments | None = None) -> Tensor:
        features, _, video = _level0(support_features, graphs)
        # torch_geometric's global_max_pool: one row per video id 0..max(video), a video without nodes gives zeros.
        pooled = features.new_zeros((int(video.max()) + 1, features.shape[1]))
        return pooled.scatter_reduce(0, video[:, None].expand_as(features), features, reduce="amax",
                                     include_self=False)

    def fuse(self, novel_features: Tensor, interacted: Mapping[str, Tensor], neck: Neck | None = None,
             training: bool = False) -> Tensor:
        return novel_features + _mean_over_tasks(interacted)


@dataclass(frozen=True)
class NodeFusion(FusionRule):
    """PNR: every level-0 node is a query; the interaction output is added with weight ``scale`` (0.01 in the authors'
    code, models/tasks/ego4d/pnr.py ``EgoPackPNRTask.forward``).

    The authors' ``align_for_egopack`` keeps ALL nodes while their PNR head reads level 0 only, so their code only runs
    with a depth-1 backbone (where all nodes ARE level 0). Taking the level-0 nodes gives the same queries there and
    lets PNR EgoPack run on a deeper shared backbone (the streaming engine's five heads on one backbone).
    """

    scale: float = 0.01

    def queries(self, support_features: Tensor, graphs: LevelGraphs, segments: Segments | None = None) -> Tensor:
        return _level0(support_features, graphs)[0]

    def fuse(self, novel_features: Tensor, interacted: Mapping[str, Tensor], neck: Neck | None = None,
             training: bool = False) -> Tensor:
        support = _mean_over_tasks(interacted)
        if support.shape != novel_features.shape:
            raise InputError(None, "interacted", f"{list(support.shape)} support rows for {list(novel_features.shape)} "
                                                 "PNR level-0 rows")
        return novel_features + self.scale * support


@dataclass(frozen=True)
class ProjectedMeanFusion(FusionRule):
    """MQ: every node of every level is a query; the fused feature is the mean of the novel feature and each
    interaction output passed through the MQ neck (``project_before_fusion``), with ``dropout`` on the stacked
    features in training (models/tasks/ego4d/mq.py ``EgoPackMQTask.forward``).
    """

    project_before_fusion: bool = True
    dropout: float = 0.0

    def queries(self, support_features: Tensor, graphs: LevelGraphs, segments: Segments | None = None) -> Tensor:
        return support_features

    def fuse(self, novel_features: Tensor, interacted: Mapping[str, Tensor], neck: Neck | None = None,
             training: bool = False) -> Tensor:
        if self.project_before_fusion and neck is None:
            raise InputError(None, "neck", "MQ fusion with project_before_fusion needs the MQ neck")
        support = [neck(f) if self.project_before_fusion else f for f in interacted.values()]  # type: ignore[misc]
        stacked = torch.stack([novel_features, *support])
        return F.dropout(stacked, self.dropout, training=training).mean(0)


_RULES: dict[str, Callable[..., FusionRule]] = {
    "ego4d/ar": lambda: SegmentFusion(clamp_empty=True),
    "ego4d/oscc": lambda: SegmentFusion(clamp_empty=False),
    "ego4d/lta": VideoFusion,
    "ego4d/pnr": NodeFusion,
    "ego4d/mq": ProjectedMeanFusion,
}


def fusion_rule(task: str, **options: float | bool) -> FusionRule:
    """The fusion rule of novel task ``task`` (``ego4d/ar``, ``ego4d/lta``, ``ego4d/oscc``, ``ego4d/pnr``,
    ``ego4d/mq``); ``options`` are MQ's ``project_before_fusion`` and ``dropout``, or PNR's ``scale``."""
    if task not in _RULES:
        raise InputError(None, "egopack_task", f"no EgoPack fusion rule for {task!r}; known: {', '.join(_RULES)}")
    return _RULES[task](**options)


def support_queries(graphs: LevelGraphs, support_necks: Mapping[str, Neck], rule: FusionRule,
                    segments: Segments | None = None) -> dict[str, Tensor]:
    """Each support task's kNN queries: its neck on the detached features of all backbone nodes, then aligned."""
    nodes = graphs.x.detach()
    return {task: rule.queries(neck(nodes), graphs, segments) for task, neck in support_necks.items()}


def consult_backpack(graphs: LevelGraphs, support_necks: Mapping[str, Neck], interaction: EgoPackInteraction,
                     rule: FusionRule, segments: Segments | None = None) -> InteractionResult:
    """Steps 1-3 of the module docstring: support queries, then the interaction with the prototypes."""
    return interaction(support_queries(graphs, support_necks, rule, segments))
