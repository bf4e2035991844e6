"""Ego4D moment queries (MQ): temporal detection of moments on every level of the hierarchy.

Reproduces ``MQTask`` of sapeirone/hier-egopack@4fff4e5:models/tasks/ego4d/mq.py (itself adapted from
ActionFormer):

* every node of every level goes through the neck; the classifier reads ``concat(f, pooled f of the same video)``,
  where the pooling (mean or max) runs over ALL levels of the video (``graphs.video``, not the level id);
* the regressor predicts (left, right) offsets in units of ``2**d``: ``ReLU(head(f)) * scales[d]``;
* targets (:func:`assign_targets`): a node is positive for a moment it lies strictly inside whose larger offset is
  within the level's regression range; the shortest such moment wins, every moment within 1e-3 s of the shortest
  (float32 lengths) adds its class (multi-label), the regression target comes from the first shortest one;
* loss: sigmoid focal loss (alpha 0.25, gamma 2) summed over all nodes and classes plus 1-D DIoU summed over the
  positive nodes; in eval mode divided by the number of positives (0 when there is none), in training mode by an
  EMA normaliser kept in the plain attribute ``loss_normalizer`` (not in the state dict), updated by each call.

Decoding reproduces the authors' meter (utils/meters/ego4d/mq.py ``EvalMeter._inference``): per level, sigmoid
scores above 0.001, the 5000 best, segments ``pos -+ offset * 2**d`` longer than 0.05 s; then soft-NMS and clipping
to the clip by :func:`egostream.tasks.mq_postprocessing.postprocess_mq_detections`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.nn.pool import global_max_pool, global_mean_pool

from egostream.backbone.graphs import LevelGraphs
from egostream.errors import InputError
from egostream.tasks.base import (TASKS, Fuse, ModelPreset, Task, TaskConfig, TaskInputs, classifier_preset_node,
                                  common_preset_node)
from egostream.kernels.nms import NMSResult
from egostream.tasks.classifier import ClassifierConfig, MLPClassifier, OffsetRegressor, RegressorConfig
from egostream.tasks.mq_postprocessing import postprocess_mq_detections

__all__ = ["MQConfig", "MQOutput", "MQTargets", "MQCandidates", "MQTask", "assign_targets", "sigmoid_focal_loss",
           "diou_loss_1d", "mq_candidates"]


@dataclass(frozen=True)
class MQConfig(TaskConfig):
    """MQ settings (the authors' ``MQTask`` arguments, their ActionFormer loss constants and meter decoding values).

    Attributes:
        num_classes: number of moment classes.
        num_levels: number of hierarchy levels = length of ``scales`` (the authors' ``depth``).
        classifier: the classification MLP (its input width is set here: ``2 * features_size`` with pooling).
        regressor: the offset MLP.
        pool_features: concatenate the video's mean/max pooled features to the classifier input, or not.
        cls_loss: ``"focal"`` (sigmoid focal loss) or ``"bce"``.
        weight_cls, weight_reg: weights of the two loss parts.
        loss_normalizer_init, loss_normalizer_momentum: the training-mode EMA normaliser (ActionFormer: 100, 0.9).
        score_threshold, max_candidates_per_level, min_duration: decoding (seconds for the duration).
    """

    num_classes: int = 110
    num_levels: int = 8
    classifier: ClassifierConfig = ClassifierConfig(n_classes=110)
    regressor: RegressorConfig = RegressorConfig()
    pool_features: Literal["mean", "max"] | None = None
    cls_loss: Literal["focal", "bce"] = "focal"
    weight_cls: float = 1.0
    weight_reg: float = 1.0
    loss_normalizer_init: float = 100.0
    loss_normalizer_momentum: float = 0.9
    score_threshold: float = 0.001
    max_candidates_per_level: int = 5000
    min_duration: float = 0.05

    def __post_init__(self) -> None:
        if self.pool_features not in (None, "mean", "max"):
            raise ValueError(f"pool_features must be None, 'mean' or 'max', got {self.pool_features!r}")
        if self.cls_loss not in ("focal", "bce"):
            raise ValueError(f"cls_loss must be 'focal' or 'bce', got {self.cls_loss!r}")

    @classmethod
    def from_authors(cls, cfg: Mapping[str, Any]) -> MQConfig:
        return cls(**cls.common_from_authors(cfg),
                   num_classes=int(cfg["num_classes"]),
                   num_levels=int(cfg.get("depth", 8)),
                   classifier=ClassifierConfig.from_authors(cfg["classifier"]),
                   regressor=RegressorConfig.from_authors(cfg["regressor"]),
                   pool_features=cfg.get("pool_features"),
                   cls_loss=cfg.get("cls_loss", "focal"),
                   weight_cls=float(cfg.get("weight_cls", 1.0)),
                   weight_reg=float(cfg.get("weight_reg", 1.0)))


class MQOutput(NamedTuple):
    """``cls_logits`` ``[N_all, C]`` and ``reg_preds`` ``[N_all, 2]`` (left, right offsets in units of ``2**d``),
    one row per node of every level, in the order of ``graphs`` (the input graphs, whose times, levels and videos
    the loss and the decoding read)."""

    cls_logits: Tensor
    reg_preds: Tensor
    graphs: LevelGraphs


class MQTargets(NamedTuple):
    """Targets of one video's nodes (all levels, graphs order).

    ``cls`` ``[n, C]`` float32 multi-hot; ``reg`` ``[n, 2]`` float32 (left, right) / ``2**d`` of the chosen moment
    (meaningful on positives only); ``positive`` ``[n]`` bool (a non-empty class target).
    """

    cls: Tensor
    reg: Tensor
    positive: Tensor


class MQCandidates(NamedTuple):
    """Pre-NMS detections of one video: ``segments`` ``[K, 2]`` seconds, ``scores`` ``[K]``, ``labels`` ``[K]``, and
    ``nodes`` ``[K]`` int64, the row (in the arrays given to :func:`mq_candidates`) of the node that produced each."""

    segments: Tensor
    scores: Tensor
    labels: Tensor
    nodes: Tensor


def assign_targets(pos: Tensor, depth: Tensor, segments: Tensor, labels: Tensor, num_classes: int) -> MQTargets:
    """ActionFormer-style target assignment of one video (sapeirone/hier-egopack@4fff4e5:models/tasks/ego4d/mq.py
    ``MQTask.compute_loss``, the ``torch.no_grad`` block).

    Args:
        pos: ``[n]`` float32 node times in seconds (all levels of the video).
        depth: ``[n]`` int64 level of each node.
        segments: ``[M, 2]`` float32 moments (start, end) in seconds.
        labels: ``[M]`` int64 class of each moment.
        num_classes: ``C``.

    A moment is a candidate for node ``i`` at level ``d`` when ``min(left, right) > 0`` (strictly inside) and
    ``2**d <= max(left, right) <= 2**(d+2)``, with the lower bound 0 at level 0 and the upper bound 10000 at the
    video's top level. Lengths are float32; every candidate within 1e-3 of the shortest adds its class.
    """
    num_nodes = len(pos)
    if len(segments) == 0:  # the authors' code fails on a video without moments; it has no positive node
        return MQTargets(pos.new_zeros(num_nodes, num_classes), pos.new_zeros(num_nodes, 2),
                         torch.zeros(num_nodes, dtype=torch.bool, device=pos.device))
    left = pos[:, None] - segments[None, :, 0]
    right = segments[None, :, 1] - pos[:, None]
    offsets = torch.stack((left, right), dim=-1)  # [n, M, 2]
    inside = offsets.min(-1).values > 0
    low = torch.where(depth == 0, 0, 2 ** depth)
    high = torch.where(depth == depth.max(), 10000, 2 ** (depth + 2))
    reach = offsets.max(-1).values
    in_range = (reach >= low[:, None]) & (reach <= high[:, None])
    lengths = (segments[:, 1] - segments[:, 0])[None, :].repeat(num_nodes, 1)
    lengths = lengths.masked_fill(~(inside & in_range), float("inf"))
    shortest, shortest_index = lengths.min(dim=1)  # first index on ties
    chosen = (lengths <= shortest[:, None] + 1e-3) & (lengths < float("inf"))
    cls = (chosen.to(offsets.dtype) @ F.one_hot(labels, num_classes).to(offsets.dtype)).clamp(0.0, 1.0)
    reg = offsets[torch.arange(num_nodes, device=pos.device), shortest_index] / (2 ** depth)[:, None]
    return MQTargets(cls, reg, cls.sum(-1) > 0)


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Element-wise sigmoid focal loss (RetinaNet), as fvcore/ActionFormer define it; float32, no reduction."""
    logits, targets = logits.float(), targets.float()
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def diou_loss_1d(pred_offsets: Tensor, target_offsets: Tensor, eps: float = 1e-8) -> Tensor:
    """Per-row 1-D Distance-IoU loss of (left, right) offsets around a shared centre point; ``[K, 2] -> [K]``.

    ``1 - IoU + (centre distance)^2 / (enclosing length)^2``, as ActionFormer's ``ctr_diou_loss_1d``. Predicted
    offsets are clamped at 0.
    """
    pred = pred_offsets.float().clamp(min=0)
    target = target_offsets.float()
    lp, rp = -pred[:, 0], pred[:, 1]
    lg, rg = -target[:, 0], target[:, 1]
    intersection = (torch.min(rp, rg) - torch.max(lp, lg)).clamp(min=0)
    union = (rp - lp) + (rg - lg) - intersection
    iou = intersection / union.clamp(min=eps)
    enclosing = torch.max(rp, rg) - torch.min(lp, lg)
    centre_gap = (lp + rp) / 2 - (lg + rg) / 2
    return 1.0 - iou + centre_gap.pow(2) / enclosing.pow(2).clamp(min=eps)


def mq_candidates(cls_logits: Tensor, reg_preds: Tensor, pos: Tensor, extent: Tensor, *,
                  score_threshold: float = 0.001, max_per_level: int = 5000,
                  min_duration: float = 0.05) -> MQCandidates:
    """Pre-NMS detections of ONE video (sapeirone/hier-egopack@4fff4e5:utils/meters/ego4d/mq.py
    ``EvalMeter._inference``): for each level (increasing ``extent``), sigmoid scores above ``score_threshold``,
    the ``max_per_level`` best (descending), segment ``[pos - left * extent, pos + right * extent]`` seconds, kept
    when longer than ``min_duration``. ``nodes`` tells the input row of each candidate's node."""
    num_classes = cls_logits.shape[1]
    segments, scores, labels, nodes = [], [], [], []
    for level_extent in extent.unique():
        on_level = extent == level_extent
        level_rows = torch.nonzero(on_level, as_tuple=True)[0]
        prob = cls_logits[on_level].sigmoid().flatten()
        flat_index = torch.nonzero(prob > score_threshold, as_tuple=True)[0]
        prob, order = prob[flat_index].sort(descending=True)
        prob, flat_index = prob[:max_per_level], flat_index[order[:max_per_level]]
        node, label = flat_index // num_classes, flat_index % num_classes
        offsets, node_pos = reg_preds[on_level][node], pos[on_level][node]
        left = node_pos - offsets[:, 0] * level_extent
        right = node_pos + offsets[:, 1] * level_extent
        keep = (right - left) > min_duration
        segments.append(torch.stack((left, right), -1)[keep])
        scores.append(prob[keep])
        labels.append(label[keep])
        nodes.append(level_rows[node][keep])
    if not segments:
        empty = torch.zeros(0, dtype=torch.long, device=pos.device)
        return MQCandidates(pos.new_zeros(0, 2), pos.new_zeros(0), empty, empty)
    return MQCandidates(torch.cat(segments), torch.cat(scores), torch.cat(labels), torch.cat(nodes))


@TASKS.register("mq")
class MQTask(Task[MQConfig, MQOutput]):
    """Moment queries head (see the module docstring)."""

    name = "mq"
    authors_name = "ego4d/mq"
    config_class = MQConfig
    annotation_file = "moments"
    rank = 4

    def __init__(self, config: MQConfig) -> None:
        super().__init__(config)
        cls_width = config.features_size * (2 if config.pool_features else 1)
        self.classifier = MLPClassifier(cls_width, config.classifier)
        self.regressor = OffsetRegressor(config.features_size, config.regressor)
        self.scales = nn.Parameter(torch.ones(config.num_levels))
        # Training-mode loss normaliser (ActionFormer's EMA): a plain attribute, NOT in the state dict, exactly as in
        # the authors' MQTask; every training-mode loss call updates it.
        self.loss_normalizer: float = config.loss_normalizer_init

    def forward(self, graphs: LevelGraphs, inputs: TaskInputs | None = None) -> MQOutput:
        self.check_graphs(graphs)
        if int(graphs.depth.max()) >= self.config.num_levels:
            raise InputError(f"task {self.name}", "graphs.depth",
                             f"the head has {self.config.num_levels} level scales, the graphs reach level "
                             f"{int(graphs.depth.max())}")
        return self._detect(self.project(graphs.x), graphs)

    def fused_forward(self, graphs: LevelGraphs, inputs: TaskInputs, fuse: Fuse) -> MQOutput:
        """models/tasks/ego4d/mq.py EgoPackMQTask.forward: fusion of the projected features (the fusion may apply the
        neck again), then the classifier (with the video's pooled context) and scaled regressor on them."""
        self.check_graphs(graphs)
        return self._detect(fuse(self.project(graphs.x), neck=self.project), graphs)

    def _detect(self, features: Tensor, graphs: LevelGraphs) -> MQOutput:
        cls_features = features
        if self.config.pool_features is not None:
            pool = global_mean_pool if self.config.pool_features == "mean" else global_max_pool
            pooled = pool(features, graphs.video)
            cls_features = torch.cat([features, pooled.index_select(0, graphs.video)], dim=1)
        reg = self.regressor(features) * self.scales.index_select(0, graphs.depth)[:, None]
        return MQOutput(self.classifier(cls_features), reg, graphs)

    @classmethod
    def preset_node(cls, preset: ModelPreset) -> dict[str, Any]:
        return {**common_preset_node(preset), "num_classes": preset.num_mq_classes, "depth": preset.depth,
                "classifier": classifier_preset_node(preset, preset.num_mq_classes, 0.01),
                "regressor": {"hidden_size": preset.features_size, "n_layers": 1, "use_ln": True, "use_bias": True,
                              "dropout": 0.0},
                "pool_features": preset.mq_pool_features, "cls_loss": "focal", "weight_cls": 1.0, "weight_reg": 1.0}

    def check_backbone(self, depth: int, source: str | PathLike[str] | None = None) -> None:
        if self.config.num_levels < depth:
            raise InputError(source, f"task[{self.name}].depth", f"the MQ head has {self.config.num_levels} level "
                                                                 f"scales, the backbone has depth {depth}")

    def targets(self, graphs: LevelGraphs, inputs: TaskInputs) -> list[MQTargets]:
        """:func:`assign_targets` for every video of the batch (video ``v`` reads the moments with
        ``inputs.segment_video == v``)."""
        segments = inputs.require("segments", self.name)
        segment_video = inputs.require("segment_video", self.name)
        labels = inputs.require("labels", self.name)
        result = []
        for video in range(graphs.num_videos):
            nodes, moments = graphs.video == video, segment_video == video
            result.append(assign_targets(graphs.pos[nodes], graphs.depth[nodes], segments[moments],
                                         labels[moments], self.config.num_classes))
        return result

    def loss_terms(self, outputs: MQOutput, inputs: TaskInputs) -> dict[str, Tensor]:
        """``total``, ``cls``, ``reg`` (scalars) and ``num_positives``.

        Deviations from the authors' code, which raises in these cases: an eval-mode batch of several videos with
        different positive counts (their ``torch.cat`` of ``[1, a]`` and ``[1, b]``) gives the sum over all
        positives divided by their number, and a training-mode batch without any positive gives a zero DIoU part.
        """
        graphs = outputs.graphs
        cls_sum = outputs.cls_logits.new_zeros(())
        reg_sum = outputs.reg_preds.new_zeros(())
        num_positives = 0
        for video, target in enumerate(self.targets(graphs, inputs)):
            nodes = graphs.video == video
            logits = outputs.cls_logits[nodes]
            if self.config.cls_loss == "bce":
                cls_sum = cls_sum + F.binary_cross_entropy_with_logits(logits, target.cls, reduction="sum")
            else:
                cls_sum = cls_sum + sigmoid_focal_loss(logits, target.cls).sum()
            if bool(target.positive.any()):
                reg_sum = reg_sum + diou_loss_1d(outputs.reg_preds[nodes][target.positive],
                                                 target.reg[target.positive]).sum()
                num_positives += int(target.positive.sum())
        if self.training:
            momentum = self.config.loss_normalizer_momentum
            self.loss_normalizer = momentum * self.loss_normalizer + (1 - momentum) * max(num_positives, 1)
            cls_loss, reg_loss = cls_sum / self.loss_normalizer, reg_sum / self.loss_normalizer
        elif num_positives == 0:
            cls_loss, reg_loss = cls_sum.new_zeros(()), reg_sum.new_zeros(())
        else:
            cls_loss, reg_loss = cls_sum / num_positives, reg_sum / num_positives
        total = self.config.loss_weight * (self.config.weight_cls * cls_loss + self.config.weight_reg * reg_loss)
        return {"total": total, "cls": cls_loss, "reg": reg_loss,
                "num_positives": torch.tensor(num_positives, dtype=torch.long)}

    def candidates(self, outputs: MQOutput) -> list[MQCandidates]:
        """Pre-NMS detections of every video (:func:`mq_candidates`)."""
        graphs = outputs.graphs
        result = []
        for video in range(graphs.num_videos):
            nodes = graphs.video == video
            result.append(mq_candidates(outputs.cls_logits[nodes], outputs.reg_preds[nodes], graphs.pos[nodes],
                                        graphs.extent[nodes], score_threshold=self.config.score_threshold,
                                        max_per_level=self.config.max_candidates_per_level,
                                        min_duration=self.config.min_duration))
        return result

    def decode(self, outputs: MQOutput, inputs: TaskInputs) -> list[NMSResult]:
        """Detections of every video: :meth:`candidates`, then soft-NMS and clipping to ``inputs.duration`` (s)
        by :func:`~egostream.tasks.mq_postprocessing.postprocess_mq_detections` with the authors' settings.

        The authors' meter decodes one video per batch; each video is decoded alone here, which is the same.
        """
        durations = inputs.require("duration", self.name)
        if len(durations) != outputs.graphs.num_videos:
            raise InputError(f"task {self.name}", "inputs.duration",
                             f"expected one duration per video ({outputs.graphs.num_videos}), got {len(durations)}")
        return [postprocess_mq_detections(found.segments, found.scores, found.labels, duration)
                for found, duration in zip(self.candidates(outputs), durations)]
