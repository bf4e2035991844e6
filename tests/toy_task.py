"""A toy plug-in task in one file: *verb presence* ("presence"), which verbs occur anywhere in a clip.

Everything task-specific lives here and is registered by :func:`registered` (and removed again when it exits):

* head (:data:`egostream.tasks.base.TASKS`): max-pool of the projected level-0 nodes of each clip, one linear layer
  to ``num_verbs`` logits; loss: BCE against the clip's multi-hot verb set; decoding: the most likely verb;
* samples (:data:`egostream.ego4d.protocol.SAMPLE_BUILDERS`): the AR clips (``fho_lta_{split}.json``, its
  ``annotation_file``);
* validation meter (:data:`egostream.train.evaluation.VALIDATION_METERS`), prediction writer
  (:data:`egostream.replay.PREDICTION_WRITERS`: ``{clip_uid: verb id}`` JSON), evaluator hook
  (:data:`egostream.ego4d.evaluation.EVALUATORS`), all scoring ``hit_pct``: the percentage of clips whose predicted
  verb occurs in the clip;
* stream readout (:data:`egostream.stream.readouts.READOUTS`): the most likely verb of the trailing AR span, filed
  under the result field ``presence`` (``WindowResult.plugins["presence"]``).
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.nn.pool import global_max_pool

from egostream.backbone.graphs import LevelGraphs
from egostream.ego4d.batching import ModelBatch
from egostream.ego4d.evaluation import EVALUATORS, TaskEvaluator
from egostream.ego4d.protocol import SAMPLE_BUILDERS
from egostream.errors import InputError, PredictionCountError
from egostream.io.atomic import write_json_atomic
from egostream.registry import Registry
from egostream.replay import PREDICTION_WRITERS, PredictionWriter
from egostream.stream.readouts import READOUTS, NodeView, ReadoutHook, Readouts, span_graphs
from egostream.stream.schema import ScoredLabel, Span
from egostream.tasks.base import TASKS, Fuse, ModelPreset, Task, TaskConfig, TaskInputs, common_preset_node
from egostream.train.evaluation import VALIDATION_METERS, ValidationMeter

NAME = "presence"


@dataclass(frozen=True)
class PresenceConfig(TaskConfig):
    """Neck settings plus ``num_verbs``, the classes of the verb logits."""

    num_verbs: int = 1

    @classmethod
    def from_authors(cls, cfg: Mapping[str, Any]) -> PresenceConfig:
        return cls(**cls.common_from_authors(cfg), num_verbs=int(cfg["num_verbs"]))


class PresenceOutput(NamedTuple):
    logits: Tensor  # [B, num_verbs]


class PresencePrediction(NamedTuple):
    verb: Tensor  # [B] int64
    score: Tensor  # [B] sigmoid probability


class PresenceTask(Task[PresenceConfig, PresenceOutput]):
    """Verb presence head (see the module docstring)."""

    name = NAME
    authors_name = "toy/presence"
    config_class = PresenceConfig
    annotation_file = "fho_lta"

    def __init__(self, config: PresenceConfig) -> None:
        super().__init__(config)
        self.classifier = nn.Linear(config.features_size, config.num_verbs)

    def _pooled(self, graphs: LevelGraphs) -> Tensor:
        x, _, video = self.level0(graphs)
        return global_max_pool(self.project(x), video, size=graphs.num_videos)

    def forward(self, graphs: LevelGraphs, inputs: TaskInputs | None = None) -> PresenceOutput:
        return PresenceOutput(self.classifier(self._pooled(graphs)))

    def fused_forward(self, graphs: LevelGraphs, inputs: TaskInputs, fuse: Fuse) -> PresenceOutput:
        return PresenceOutput(self.classifier(fuse(self._pooled(graphs))))

    def loss_terms(self, outputs: PresenceOutput, inputs: TaskInputs) -> dict[str, Tensor]:
        """``total`` ``[B]`` = loss_weight * BCE per clip, averaged over the verbs."""
        targets = clip_verb_sets(inputs, outputs.logits.shape[0], outputs.logits.shape[1])
        bce = F.binary_cross_entropy_with_logits(outputs.logits, targets, reduction="none").mean(1)
        return {"total": self.config.loss_weight * bce, "bce": bce}

    def decode(self, outputs: PresenceOutput, inputs: TaskInputs | None = None) -> PresencePrediction:
        score, verb = torch.sigmoid(outputs.logits).max(1)
        return PresencePrediction(verb, score)

    @classmethod
    def preset_node(cls, preset: ModelPreset) -> dict[str, Any]:
        return {**common_preset_node(preset), "num_verbs": preset.num_verbs}


def clip_verb_sets(inputs: TaskInputs, num_clips: int, num_verbs: int) -> Tensor:
    """``[B, V]`` float32 multi-hot: the labelled verbs of each clip's segments."""
    verbs, video = inputs.require("verb_labels", NAME), inputs.require("segment_video", NAME)
    labelled = verbs >= 0
    targets = torch.zeros(num_clips, num_verbs)
    targets[video[labelled], verbs[labelled]] = 1.0
    return targets


def hit_pct(predicted: Mapping[str, int], present: Mapping[str, set[int]]) -> float:
    """Percentage of clips whose predicted verb is among the clip's verbs."""
    return 100.0 * sum(predicted[clip] in verbs for clip, verbs in present.items()) / len(present)


class PresenceMeter(ValidationMeter):
    def __init__(self, protocol: str) -> None:
        super().__init__(protocol)
        self.predicted: dict[str, int] = {}
        self.present: dict[str, set[int]] = {}

    def update(self, task: Task, outputs: Any, batch: ModelBatch) -> None:
        sets = clip_verb_sets(batch.inputs, batch.num_videos, outputs.logits.shape[1])
        for sample, verb, row in zip(batch.samples, task.decode(outputs, batch.inputs).verb.tolist(), sets):
            self.predicted[sample.clip_uid] = verb
            self.present[sample.clip_uid] = set(torch.nonzero(row).flatten().tolist())

    def compute(self) -> dict[str, Any]:
        if not self.present:
            raise InputError(None, "validation", "PresenceMeter: no validation batch was evaluated")
        return {"hit_pct": hit_pct(self.predicted, self.present), "n_clips": len(self.present)}


class PresencePredictions(PredictionWriter):
    def _add(self, batch: ModelBatch, outputs: Any) -> None:
        verbs = self.context.bundle.decode(NAME, outputs, batch.inputs).verb.tolist()
        self.entries.update((sample.clip_uid, verb) for sample, verb in zip(batch.samples, verbs))

    def write(self, path: Path) -> Path:
        return write_json_atomic(path, self.entries)


def evaluate_presence(protocol: str, annotations: Path, predictions: Path, labels: Path | None) -> dict[str, Any]:
    """``hit_pct`` of a ``{clip_uid: verb id}`` file over the clips of ``annotations`` with a labelled verb."""
    present: dict[str, set[int]] = {}
    for action in json.loads(annotations.read_text())["clips"]:
        if action.get("verb_label") is not None:
            present.setdefault(action["clip_uid"], set()).add(int(action["verb_label"]))
    predicted = json.loads(predictions.read_text())
    missing, extra = sorted(set(present) - set(predicted)), sorted(set(predicted) - set(present))
    if missing or extra:
        raise PredictionCountError(predictions, None, missing, extra)
    return {"hit_pct": hit_pct(predicted, present), "n_clips": len(present)}


@dataclass(frozen=True)
class PresenceReadout:
    """The most likely verb over the trailing ``span``."""

    span: Span
    verb: ScoredLabel


@torch.no_grad()
def read_presence(readouts: Readouts, view: NodeView) -> PresenceReadout:
    end = view.rows * readouts.stream_config.row_period_s
    span = Span(max(0.0, end - readouts.config.ar_span_s), end)
    bundle = readouts.bundle
    graphs = span_graphs(view.graphs, span, level0_only=True)
    prediction = bundle.decode(NAME, bundle.forward_graphs(NAME, graphs, TaskInputs()))
    verb = int(prediction.verb[0])
    return PresenceReadout(span, ScoredLabel(verb, readouts.names.verb(verb).name, float(prediction.score[0])))


_HOOKS: tuple[tuple[Registry[Any], Any], ...] = (
    (TASKS, PresenceTask),
    (SAMPLE_BUILDERS, lambda *args, **kwargs: SAMPLE_BUILDERS.get("ar")(*args, **kwargs)),
    (VALIDATION_METERS, lambda protocol, seed, data: PresenceMeter(protocol)),
    (PREDICTION_WRITERS, PresencePredictions),
    (EVALUATORS, TaskEvaluator(evaluate_presence)),
    (READOUTS, ReadoutHook.stateless(read_presence, lambda readouts: readouts.config.ar_span_s)),
)


@contextmanager
def registered() -> Iterator[None]:
    """The task is known to every layer inside the ``with`` block (and to nothing after it)."""
    with ExitStack() as stack:
        for registry, hook in _HOOKS:
            registry.register(NAME)(hook)
            stack.callback(registry.unregister, NAME)
        yield
