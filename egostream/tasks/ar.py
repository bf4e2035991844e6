"""Ego4D action recognition (AR): verb and noun of each ground-truth segment.

Reproduces ``ARTask`` of sapeirone/hier-egopack@4fff4e5:models/tasks/ego4d/ar.py: level-0 nodes only, the neck, the
mean of the projected nodes inside each segment (inclusive bounds, an empty segment gives a zero vector), two MLP
classifiers, and per-segment cross-entropy (``ignore_index=-1``, no reduction) times ``loss_weight``.
Decoding is top-k over the softmax, as the authors' meter scores top-1/2/3/5 accuracy
(utils/meters/ego4d/ar.py).
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
from egostream.tasks.base import (TASKS, Fuse, ModelPreset, Task, TaskConfig, TaskInputs, classifier_preset_node,
                                  common_preset_node)
from egostream.tasks.classifier import ClassifierConfig, MLPClassifier

__all__ = ["ARConfig", "AROutput", "ARPrediction", "ARTask", "verb_noun_cross_entropy"]


@dataclass(frozen=True)
class ARConfig(TaskConfig):
    """AR task settings: the two classifiers (sizes and prior are configurable in the authors' hydra configs)."""

    verb_classifier: ClassifierConfig = ClassifierConfig(n_classes=115)
    noun_classifier: ClassifierConfig = ClassifierConfig(n_classes=478)
    top_k: int = 5

    @classmethod
    def from_authors(cls, cfg: Mapping[str, Any]) -> ARConfig:
        return cls(**cls.common_from_authors(cfg),
                   verb_classifier=ClassifierConfig.from_authors(cfg["verb_classifier"]),
                   noun_classifier=ClassifierConfig.from_authors(cfg["noun_classifier"]))


class AROutput(NamedTuple):
    """``verb_logits`` ``[M, V]``, ``noun_logits`` ``[M, N]``, ``features`` ``[M, F]`` (one row per segment)."""

    verb_logits: Tensor
    noun_logits: Tensor
    features: Tensor


class ARPrediction(NamedTuple):
    """Top-k classes per segment, best first: ids ``[M, k]`` int64 and softmax probabilities ``[M, k]``."""

    verb_ids: Tensor
    verb_scores: Tensor
    noun_ids: Tensor
    noun_scores: Tensor


def verb_noun_cross_entropy(verb_logits: Tensor, noun_logits: Tensor, verb_labels: Tensor, noun_labels: Tensor,
                            loss_weight: float) -> dict[str, Tensor]:
    """Per-row cross-entropy of verbs and nouns (``ignore_index=-1``, no reduction) and their weighted sum.

    The AR and LTA losses of the authors (models/tasks/ego4d/ar.py and lta.py ``compute_loss``) are both this.
    """
    verb_loss = F.cross_entropy(verb_logits, verb_labels, ignore_index=-1, reduction="none")
    noun_loss = F.cross_entropy(noun_logits, noun_labels, ignore_index=-1, reduction="none")
    return {"total": loss_weight * (verb_loss + noun_loss), "verb": verb_loss, "noun": noun_loss}


def top_k_softmax(logits: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` best classes of each row (ids, softmax probabilities), best first; ``k`` capped at the classes."""
    scores, ids = torch.softmax(logits, dim=-1).topk(min(k, logits.shape[-1]), dim=-1)
    return ids, scores


@TASKS.register("ar")
class ARTask(Task[ARConfig, AROutput]):
    """Action recognition head (see the module docstring)."""

    name = "ar"
    authors_name = "ego4d/ar"
    config_class = ARConfig
    annotation_file = "fho_lta"
    rank = 0

    def __init__(self, config: ARConfig) -> None:
        super().__init__(config)
        self.verb_classifier = MLPClassifier(config.features_size, config.verb_classifier)
        self.noun_classifier = MLPClassifier(config.features_size, config.noun_classifier)

    def forward(self, graphs: LevelGraphs, inputs: TaskInputs) -> AROutput:
        """Classify every segment of ``inputs.segments`` (``[M, 2]`` seconds, video ``inputs.segment_video``)."""
        x, pos, video = self.level0(graphs)
        features = segment_mean(self.project(x), pos, video, inputs.require("segments", self.name),
                                inputs.require("segment_video", self.name), clamp_empty=True)
        return AROutput(self.verb_classifier(features), self.noun_classifier(features), features)

    def fused_forward(self, graphs: LevelGraphs, inputs: TaskInputs, fuse: Fuse) -> AROutput:
        """The segment features fused, then the same classifiers (models/tasks/ego4d/ar.py EgoPackARTask.forward)."""
        x, pos, video = self.level0(graphs)
        fused = fuse(segment_mean(self.project(x), pos, video, inputs.require("segments", self.name),
                                  inputs.require("segment_video", self.name), clamp_empty=True))
        return AROutput(self.verb_classifier(fused), self.noun_classifier(fused), fused)

    @classmethod
    def preset_node(cls, preset: ModelPreset) -> dict[str, Any]:
        return {**common_preset_node(preset), "verb_classifier": classifier_preset_node(preset, preset.num_verbs, 0.0),
                "noun_classifier": classifier_preset_node(preset, preset.num_nouns, 0.0)}

    def loss_terms(self, outputs: AROutput, inputs: TaskInputs) -> dict[str, Tensor]:
        """``total`` ``[M]`` = loss_weight * (verb + noun) cross-entropy per segment; ``verb``, ``noun`` ``[M]``."""
        return verb_noun_cross_entropy(outputs.verb_logits, outputs.noun_logits,
                                       inputs.require("verb_labels", self.name),
                                       inputs.require("noun_labels", self.name), self.config.loss_weight)

    def decode(self, outputs: AROutput, inputs: TaskInputs | None = None) -> ARPrediction:
        """Top-``config.top_k`` verbs and nouns of each segment."""
        verb_ids, verb_scores = top_k_softmax(outputs.verb_logits, self.config.top_k)
        noun_ids, noun_scores = top_k_softmax(outputs.noun_logits, self.config.top_k)
        return ARPrediction(verb_ids, verb_scores, noun_ids, noun_scores)
