"""Ego4D object state change classification (OSCC): did the object change state in each ~8 s sample?

Reproduces ``OSCCTask`` of sapeirone/hier-egopack@4fff4e5:models/tasks/ego4d/oscc.py: level-0 nodes, the neck, the
mean of the projected nodes inside each sample's segment (inclusive bounds, and NO clamp of the node count: an empty
segment gives NaN, as in the authors' ``OSCCTask.align``), a 2-class MLP classifier (hard-coded there: hidden 512,
2 layers, prior 0), and per-sample cross-entropy (``ignore_index=-1``, no reduction) times ``loss_weight``.
Decoding is the argmax, as the authors' meter scores accuracy (utils/meters/ego4d/oscc.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from egostream.backbone.graphs import LevelGraphs
from egostream.tasks.alignment import segment_mean
from egostream.tasks.base import TASKS, Fuse, ModelPreset, Task, TaskConfig, TaskInputs, common_preset_node
from egostream.tasks.classifier import ClassifierConfig, MLPClassifier

__all__ = ["OSCCConfig", "OSCCOutput", "OSCCPrediction", "OSCCTask"]


@dataclass(frozen=True)
class OSCCConfig(TaskConfig):
    """OSCC settings. The classifier is fixed by the authors' code (2 classes, hidden 512, 2 layers, prior 0);
    only its dropout (``head_dropout``) is configurable there."""

    head_dropout: float = 0.0

    @property
    def classifier(self) -> ClassifierConfig:
        return ClassifierConfig(n_classes=2, hidden_size=512, n_layers=2, prior_prob=0.0, dropout=self.head_dropout)

    @classmethod
    def from_authors(cls, cfg: Mapping[str, Any]) -> OSCCConfig:
        return cls(**cls.common_from_authors(cfg), head_dropout=float(cfg.get("head_dropout", 0.0)))


class OSCCOutput(NamedTuple):
    """``logits`` ``[M, 2]`` and the aligned ``features`` ``[M, F]``, one row per sample segment."""

    logits: Tensor
    features: Tensor


class OSCCPrediction(NamedTuple):
    """``state_change`` ``[M]`` bool (argmax is class 1) and its softmax probability ``[M]``."""

    state_change: Tensor
    probability: Tensor


@TASKS.register("oscc")
class OSCCTask(Task[OSCCConfig, OSCCOutput]):
    """Object state change classification head (see the module docstring)."""

    name = "oscc"
    authors_name = "ego4d/oscc"
    config_class = OSCCConfig
    annotation_file = "fho_oscc-pnr"
    rank = 2

    def __init__(self, config: OSCCConfig) -> None:
        super().__init__(config)
        self.classifier = MLPClassifier(config.features_size, config.classifier)

    def forward(self, graphs: LevelGraphs, inputs: TaskInputs) -> OSCCOutput:
        x, pos, video = self.level0(graphs)
        features = segment_mean(self.project(x), pos, video, inputs.require("segments", self.name),
                                inputs.require("segment_video", self.name), clamp_empty=False)
        return OSCCOutput(self.classifier(features), features)

    def fused_forward(self, graphs: LevelGraphs, inputs: TaskInputs, fuse: Fuse) -> OSCCOutput:
        """The segment features fused, then the same classifier (models/tasks/ego4d/oscc.py EgoPackOSCCTask)."""
        x, pos, video = self.level0(graphs)
        fused = fuse(segment_mean(self.project(x), pos, video, inputs.require("segments", self.name),
                                  inputs.require("segment_video", self.name), clamp_empty=False))
        return OSCCOutput(self.classifier(fused), fused)

    @classmethod
    def preset_node(cls, preset: ModelPreset) -> dict[str, Any]:
        return {**common_preset_node(preset), "head_dropout": 0.0}

    def loss_terms(self, outputs: OSCCOutput, inputs: TaskInputs) -> dict[str, Tensor]:
        """``total`` ``[M]`` = loss_weight * cross-entropy per sample; ``ce`` ``[M]`` unweighted."""
        ce = F.cross_entropy(outputs.logits, inputs.require("labels", self.name), ignore_index=-1, reduction="none")
        return {"total": self.config.loss_weight * ce, "ce": ce}

    def decode(self, outputs: OSCCOutput, inputs: TaskInputs | None = None) -> OSCCPrediction:
        return OSCCPrediction(outputs.logits.argmax(dim=-1) == 1, torch.softmax(outputs.logits, dim=-1)[:, 1])
