"""Ego4D long-term action anticipation (LTA): the next ``Z`` (verb, noun) actions after an observed span.

Reproduces ``LTATask`` of sapeirone/hier-egopack@4fff4e5:models/tasks/ego4d/lta.py: level-0 nodes, the neck, a
global max-pool per video, a small graph of ``Z`` future nodes per video (the pooled feature repeated, node ``k`` at
position ``k``, radius 2.5 edges), two TDGC layers each followed by ReLU, and verb/noun MLP classifiers (hard-coded
there: hidden 512, 2 layers, prior 0.01). Loss: per-step cross-entropy of verbs plus nouns (``ignore_index=-1``).

**Batch quirk** (fixture README §9.6). The authors build the future graph with
``radius_graph(pos, 2.5, batch=arange(B).repeat(Z))``: the batch vector is NOT sorted while the features are
video-major (``repeat_interleave``). torch_cluster 1.6.3 (torch_cluster/radius.py ``radius``) turns the batch vector
into row offsets with ``torch.bucketize(arange(B + 1), batch)``, a lower-bound binary search that assumes a sorted
array, and then joins nodes inside each offset range; with B > 1 those ranges straddle videos, so videos exchange
messages. By default this module builds one independent graph per video (what the authors meant, and what a B = 1
batch gives); ``authors_batched_graph=True`` reproduces the torch_cluster graph via :func:`torch_cluster_offsets`.

Decoding samples ``num_sequences`` (5) sequences of ``Z`` actions from the per-step softmax, as the authors' meter
(utils/meters/ego4d/lta.py ``generate_from_logits``) and the official Ego4D baseline
(EGO4D/forecasting:ego4d_forecasting/models/lta_models.py ``generate``) do, see :func:`sample_future_actions`.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch_geometric.nn.pool import global_max_pool

from egostream.backbone.graphs import LevelGraphs
from egostream.backbone.tdgc import DistanceGatedConv
from egostream.kernels.temporal_edges import radius_edges, radius_edges_ptr
from egostream.tasks.ar import verb_noun_cross_entropy
from egostream.tasks.base import TASKS, Fuse, ModelPreset, Task, TaskConfig, TaskInputs, common_preset_node
from egostream.tasks.classifier import ClassifierConfig, MLPClassifier

__all__ = ["LTAConfig", "LTAOutput", "LTAPrediction", "LTATask", "LTAGraphHead", "FutureGraph",
           "future_graph", "future_nodes", "torch_cluster_offsets", "sample_future_actions"]

# torch_cluster's default cap on the sources of one target; reproduced only while no node reaches it.
_TORCH_CLUSTER_MAX_NEIGHBOURS = 32


@dataclass(frozen=True)
class LTAConfig(TaskConfig):
    """LTA settings.

    Attributes:
        num_future: ``Z``, future actions per sample (the authors' ``K``; 20 in Ego4D).
        num_verbs, num_nouns: vocabulary sizes.
        head_dropout: dropout of the classifiers' input.
        future_radius: radius (in future steps) of the future graph (2.5 in the authors' code).
        pos_hidden_channels: hidden width of the head TDGC distance gate (the authors' default 256).
        num_sequences: sampled sequences per sample at decoding (5 in Ego4D).
        authors_batched_graph: reproduce the authors' cross-video future graph of a batch (module docstring).
    """

    num_future: int = 20
    num_verbs: int = 115
    num_nouns: int = 478
    head_dropout: float = 0.0
    future_radius: float = 2.5
    pos_hidden_channels: int = 256
    num_sequences: int = 5
    authors_batched_graph: bool = False

    def classifier(self, n_classes: int) -> ClassifierConfig:
        """The hard-coded classifier of the authors' LTA task (hidden 512, 2 layers, prior 0.01)."""
        return ClassifierConfig(n_classes=n_classes, hidden_size=512, n_layers=2, prior_prob=0.01,
                                dropout=self.head_dropout)

    @classmethod
    def from_authors(cls, cfg: Mapping[str, Any]) -> LTAConfig:
        return cls(**cls.common_from_authors(cfg), num_future=int(cfg.get("K", 5)),
                   num_verbs=int(cfg.get("num_verbs", 115)), num_nouns=int(cfg.get("num_nouns", 478)),
                   head_dropout=float(cfg.get("head_dropout", 0.0)))


class LTAOutput(NamedTuple):
    """``verb_logits`` ``[B * Z, V]``, ``noun_logits`` ``[B * Z, N]``, ``features`` ``[B * Z, F]`` (head output);
    row ``b * Z + k`` is video ``b``, future step ``k``."""

    verb_logits: Tensor
    noun_logits: Tensor
    features: Tensor


class LTAPrediction(NamedTuple):
    """Sampled futures: ``verbs`` and ``nouns`` ``[B, num_sequences, Z]`` int64 class ids."""

    verbs: Tensor
    nouns: Tensor


class FutureGraph(NamedTuple):
    """The future graph of a batch: ``x`` ``[B * Z, F]``, ``pos`` ``[B * Z]`` float32 future step, ``edge_index``
    ``[2, E]`` (source, target)."""

    x: Tensor
    pos: Tensor
    edge_index: Tensor


def torch_cluster_offsets(batch: Tensor, num_groups: int) -> Tensor:
    """The row offsets torch_cluster derives from a batch vector, reproduced for an UNSORTED one.

    torch_cluster 1.6.3 (torch_cluster/radius.py ``radius``) computes ``torch.bucketize(arange(num_groups + 1),
    batch)``; torch's CPU/CUDA bucketize (aten/src/ATen/native/Bucketization.cpp ``cus_lower_bound``) is a plain
    lower-bound binary search: ``lo, hi = 0, N``; while ``lo < hi``: ``mid = lo + (hi - lo) // 2``; go right when
    ``batch[mid] < value``, else left. On an unsorted vector the result is whatever that search lands on. It is
    implemented here explicitly so that it does not depend on bucketize's undefined behaviour on unsorted input.

    Args:
        batch: ``[N]`` int64 group id of each row (sorted or not).
        num_groups: ``B`` (torch_cluster uses ``batch.max() + 1``).

    Returns:
        ``[B + 1]`` int64 offsets.
    """
    values = batch.tolist()
    offsets = []
    for group in range(num_groups + 1):
        lo, hi = 0, len(values)
        while lo < hi:
            mid = lo + ((hi - lo) >> 1)
            if values[mid] < group:
                lo = mid + 1
            else:
                hi = mid
        offsets.append(lo)
    return torch.tensor(offsets, dtype=torch.long, device=batch.device)


def future_nodes(pooled: Tensor, num_future: int) -> Tensor:
    """``[B * Z, F]`` node features of the future graph: video ``b``'s ``pooled[b]`` repeated for its ``Z`` steps."""
    return torch.repeat_interleave(pooled, num_future, dim=0)


def future_graph(pooled: Tensor, num_future: int, radius: float, *, authors_batched: bool = False) -> FutureGraph:
    """The future graph of ``B`` videos from their pooled features ``[B, F]``.

    Node ``b * Z + k`` carries ``pooled[b]`` at position ``k``. Default: edges between the nodes of the same video
    with ``|k - k'| < radius``. ``authors_batched=True``: the edges of torch_cluster's
    ``radius_graph(pos, radius, batch=arange(B).repeat(Z), loop=False)`` (see :func:`torch_cluster_offsets`).
    """
    num_videos = pooled.shape[0]
    device = pooled.device
    x = future_nodes(pooled, num_future)
    # float64 arange cast to float32, as the authors build it.
    pos = torch.arange(num_future, device=device, dtype=torch.float64).repeat(num_videos).float()
    if not authors_batched:
        video = torch.arange(num_videos, device=device).repeat_interleave(num_future)
        return FutureGraph(x, pos, radius_edges(pos, video, radius))
    batch = torch.arange(num_videos, device=device).repeat(num_future)
    # torch_cluster skips the offsets for a single group (one range over all rows): the same as [0, N].
    offsets = torch_cluster_offsets(batch, num_videos)
    edge_index = radius_edges_ptr(pos, offsets, radius)
    if len(edge_index[1]) and int(torch.bincount(edge_index[1]).max()) > _TORCH_CLUSTER_MAX_NEIGHBOURS:
        warnings.warn(f"authors_batched_graph: a future node has more than {_TORCH_CLUSTER_MAX_NEIGHBOURS} "
                      "neighbours; torch_cluster would drop some (in KD-tree order), this graph keeps them all",
                      stacklevel=2)
    return FutureGraph(x, pos, edge_index)


class LTAGraphHead(nn.Module):
    """Two TDGC layers on the future graph, each followed by ReLU: ``[B * Z, F] -> [B * Z, F]``.

    The layers are named ``module_0`` and ``module_2`` because the authors build this head as a
    ``torch_geometric.nn.Sequential`` (TDGC, ReLU, TDGC, ReLU), whose children are named by position; the same names
    let their ``head.module_0.*`` / ``head.module_2.*`` state-dict keys load unchanged.
    """

    def __init__(self, features_size: int, pos_hidden_channels: int = 256) -> None:
        super().__init__()
        self.module_0 = DistanceGatedConv(features_size, features_size, aggregation="mean",
                                          pos_hidden_channels=pos_hidden_channels)
        self.module_2 = DistanceGatedConv(features_size, features_size, aggregation="mean",
                                          pos_hidden_channels=pos_hidden_channels)

    @property
    def convs(self) -> tuple[DistanceGatedConv, DistanceGatedConv]:
        return self.module_0, self.module_2

    def forward(self, x: Tensor, edge_index: Tensor, pos: Tensor,
                edge_weights: Sequence[Tensor | None] | None = None,
                linears: Sequence[Callable[[Tensor], tuple[Tensor, Tensor]]] | None = None) -> Tensor:
        """``edge_weights``: each layer's edge factors when the caller has them; ``linears``: each layer's two linear
        maps applied the caller's way (both as in ``DistanceGatedConv.forward``)."""
        weights = edge_weights if edge_weights is not None else (None, None)
        maps = linears if linears is not None else (None, None)
        x = torch.relu(self.module_0(x, edge_index, pos, weights[0], maps[0]))
        return torch.relu(self.module_2(x, edge_index, pos, weights[1], maps[1]))


def sample_future_actions(verb_logits: Tensor, noun_logits: Tensor, num_future: int, num_sequences: int = 5,
                          generator: torch.Generator | None = None) -> LTAPrediction:
    """Sample ``num_sequences`` futures from per-step logits ``[B * Z, C]`` (rows video-major).

    Reproduces the draws of ``torch.distributions.Categorical(logits=l).sample()`` called ``num_sequences`` times
    for the verbs, then for the nouns (the authors' ``generate_from_logits``, the official baseline's
    ``generate``): each call is one ``torch.multinomial(softmax(l), 1, replacement=True)``. With
    ``generator=None`` the global RNG is used, so ``torch.manual_seed(s)`` gives the authors' samples for seed
    ``s``; pass a seeded ``torch.Generator`` for draws independent of the global state.

    Returns:
        ``verbs`` ``[B, num_sequences, Z]`` and ``nouns`` likewise.
    """

    def draw(logits: Tensor) -> Tensor:
        probs = torch.softmax(logits - logits.logsumexp(dim=-1, keepdim=True), dim=-1)
        draws = [torch.multinomial(probs, 1, replacement=True, generator=generator)[:, 0]
                 for _ in range(num_sequences)]
        return torch.stack(draws, dim=1).reshape(-1, num_future, num_sequences).transpose(1, 2)

    verbs = draw(verb_logits)
    return LTAPrediction(verbs, draw(noun_logits))


@TASKS.register("lta")
class LTATask(Task[LTAConfig, LTAOutput]):
    """Long-term anticipation head (see the module docstring)."""

    name = "lta"
    authors_name = "ego4d/lta"
    config_class = LTAConfig
    annotation_file = "fho_lta"
    rank = 1
    decode_takes_generator = True

    def __init__(self, config: LTAConfig) -> None:
        super().__init__(config)
        self.head = LTAGraphHead(config.features_size, config.pos_hidden_channels)
        self.verb_classifier = MLPClassifier(config.features_size, config.classifier(config.num_verbs))
        self.noun_classifier = MLPClassifier(config.features_size, config.classifier(config.num_nouns))

    def pooled(self, graphs: LevelGraphs) -> Tensor:
        """``[B, F]`` max over each video's projected level-0 nodes (the observed span)."""
        x, _, video = self.level0(graphs)
        return global_max_pool(self.project(x), video, size=graphs.num_videos)

    def forward(self, graphs: LevelGraphs, inputs: TaskInputs | None = None) -> LTAOutput:
        return self._future(self.pooled(graphs))

    def fused_forward(self, graphs: LevelGraphs, inputs: TaskInputs, fuse: Fuse) -> LTAOutput:
        """The pooled clip features fused, then the same future graph and classifiers
        (models/tasks/ego4d/lta.py EgoPackLTATask.forward)."""
        return self._future(fuse(self.pooled(graphs)))

    def _future(self, pooled: Tensor) -> LTAOutput:
        graph = future_graph(pooled, self.config.num_future, self.config.future_radius,
                             authors_batched=self.config.authors_batched_graph)
        features = self.head(graph.x, graph.edge_index, graph.pos)
        return LTAOutput(self.verb_classifier(features), self.noun_classifier(features), features)

    @classmethod
    def preset_node(cls, preset: ModelPreset) -> dict[str, Any]:
        return {**common_preset_node(preset), "num_verbs": preset.num_verbs, "num_nouns": preset.num_nouns,
                "K": preset.num_future, "head_dropout": 0.0}

    def loss_terms(self, outputs: LTAOutput, inputs: TaskInputs) -> dict[str, Tensor]:
        """``total`` ``[B * Z]`` = loss_weight * (verb + noun) cross-entropy per step; ``verb``, ``noun``."""
        return verb_noun_cross_entropy(outputs.verb_logits, outputs.noun_logits,
                                       inputs.require("verb_labels", self.name),
                                       inputs.require("noun_labels", self.name), self.config.loss_weight)

    def decode(self, outputs: LTAOutput, inputs: TaskInputs | None = None,
               generator: torch.Generator | None = None) -> LTAPrediction:
        """``config.num_sequences`` sampled futures per video (:func:`sample_future_actions`)."""
        return sample_future_actions(outputs.verb_logits, outputs.noun_logits, self.config.num_future,
                                     self.config.num_sequences, generator)
