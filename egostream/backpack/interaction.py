"""The EgoPack cross-task interaction: novel-task queries meet the frozen prototypes of each support task.

Reproduces ``EgoPack.interact`` of the authors' code (sapeirone/hier-egopack@4fff4e5:models/egopack/egopack.py) with the
``sage`` interaction GNN and the ``cosine`` distance of every released EgoPack experiment
(configs/experiments/egopack/_base_.yaml). For each support task ``t`` and each stage ``s``:

1. the ``k`` prototypes of ``t`` nearest to each query (cosine similarity, i.e. ascending ``1 - cos``) are found
   against the ORIGINAL prototypes, whatever the stage;
2. the graph ``[prototypes; queries]`` gets one edge ``prototype -> P + query`` per match;
3. Dropout, SAGEConv(mean) ``F -> h``, LeakyReLU(0.2), SAGEConv(mean) ``h -> h``, Linear ``h -> F`` run on that graph.
   A prototype receives no message, so the second SAGEConv sees the prototype rows as updated by the first one
   (``lin_r(p) + lin_l.bias``, then LeakyReLU), exactly as the authors' single ``gnn.Sequential`` does;
4. the query rows of the result, without residual, are the next stage's queries.

State-dict keys: ``task_prototypes.<task>.weight`` (frozen) as the authors'. The authors' stage is a
``torch_geometric.nn.Sequential`` whose children are numbered (``stages.<task>.<s>.module_<i>``); here the stage names
its parts (``convs.<i>``, ``output``). :func:`authors_interaction_keys` maps one layout to the other, so an authors'
checkpoint ``egopack`` entry loads with a strict ``load_state_dict`` after one renaming.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import SAGEConv

from egostream.checkpoint import LoadedCheckpoint
from egostream.errors import InputError
from egostream.kernels.cosine_topk import PrototypeIndex

__all__ = ["InteractionStage", "EgoPackInteraction", "InteractionResult", "knn_edge_index", "authors_interaction_keys"]

_LEAKY_SLOPE = 0.2


def knn_edge_index(neighbours: Tensor, num_prototypes: int) -> Tensor:
    """The interaction graph's edges from the kNN table.

    Args:
        neighbours: ``[Q, k]`` int64 prototype index of each query's ``k`` nearest prototypes, nearest first.
        num_prototypes: ``P``; query ``q`` is node ``P + q`` of the graph ``[prototypes; queries]``.

    Returns:
        ``[2, Q * k]`` int64 edge index, row 0 the source prototype, row 1 the target query node, query-major
        (sapeirone/hier-egopack@4fff4e5:models/egopack/egopack.py, ``EgoPack._compute_edges``).
    """
    num_queries, k = neighbours.shape
    targets = torch.arange(num_prototypes, num_prototypes + num_queries, device=neighbours.device)
    return torch.stack([neighbours.reshape(-1), targets.repeat_interleave(k)])


class InteractionStage(nn.Module):
    """One interaction stage: Dropout, ``conv_depth`` SAGEConv(mean) layers with LeakyReLU(0.2) between them, Linear.

    Args:
        features_size: ``F``, the width of the prototypes and queries.
        hidden_size: ``h``, the SAGEConv width.
        conv_depth: number of SAGEConv layers.
        dropout: dropout on the stage input (training only).
    """

    def __init__(self, features_size: int, hidden_size: int, conv_depth: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        if conv_depth < 1:
            raise InputError(None, "egopack.conv_depth", f"must be >= 1, got {conv_depth}")
        self.dropout = nn.Dropout(dropout)
        self.convs = nn.ModuleList(
            SAGEConv(features_size if i == 0 else hidden_size, hidden_size, aggr="mean", root_weight=True)
            for i in range(conv_depth))
        self.activation = nn.LeakyReLU(_LEAKY_SLOPE)
        self.output = nn.Linear(hidden_size, features_size)

    def forward(self, nodes: Tensor, edge_index: Tensor) -> Tensor:
        """Run the stage on the ``[P + Q, F]`` graph ``[prototypes; queries]``; returns ``[P + Q, F]``."""
        nodes = self.dropout(nodes)
        for i, conv in enumerate(self.convs):
            nodes = conv(nodes, edge_index)
            if i < len(self.convs) - 1:
                nodes = self.activation(nodes)
        return self.output(nodes)


@dataclass
class InteractionResult:
    """Output of :meth:`EgoPackInteraction.forward`.

    Attributes:
        features: task -> ``[Q, F]`` query features after the last stage (no residual).
        neighbours: task -> one ``[Q, k]`` int64 table per stage: the prototypes matched to each query, nearest first.
        similarities: task -> one ``[Q, k]`` float table per stage: the cosine similarity of each match.
    """

    features: dict[str, Tensor]
    neighbours: dict[str, list[Tensor]]
    similarities: dict[str, list[Tensor]]

    @property
    def matches(self) -> dict[str, list[Tensor]]:
        """task -> per stage ``[Q]`` int64 nearest prototype of each query (the authors' second output)."""
        return {task: [table[:, 0] for table in tables] for task, tables in self.neighbours.items()}


class EgoPackInteraction(nn.Module):
    """The EgoPack interaction module over the frozen prototypes of the support tasks.

    Args:
        task_prototypes: support task name -> ``[P_t, F]`` prototypes (stored frozen; never updated by interaction).
        features_size: ``F``, the width of the queries and prototypes.
        hidden_size: ``h``, the SAGEConv width.
        k: prototypes matched per query.
        depth: interaction stages per task.
        conv_depth: SAGEConv layers per stage.
        dropout: dropout on the stage input (training only).
        conv: only ``"sage"`` (the authors' experiment setting) is supported.
        distance_func: only ``"cosine"`` (the authors' experiment setting) is supported.
    """

    def __init__(self, task_prototypes: Mapping[str, Tensor], features_size: int, hidden_size: int = 256, k: int = 8,
                 depth: int = 3, conv_depth: int = 2, dropout: float = 0.0, conv: str = "sage",
                 distance_func: str = "cosine") -> None:
        super().__init__()
        if conv != "sage":
            raise InputError(None, "egopack.conv", f"only 'sage' is supported (the authors' experiments), got {conv!r}")
        if distance_func != "cosine":
            raise InputError(None, "egopack.distance_func", f"only 'cosine' is supported, got {distance_func!r}")
        if not task_prototypes:
            raise InputError(None, "egopack.task_prototypes", "at least one support task is needed")
        for task, prototypes in task_prototypes.items():
            if prototypes.dim() != 2 or prototypes.shape[1] != features_size:
                raise InputError(None, f"egopack.task_prototypes[{task}]",
                                 f"expected [P, {features_size}] prototypes, got {list(prototypes.shape)}")
            if prototypes.shape[0] < k:
                raise InputError(None, f"egopack.task_prototypes[{task}]",
                                 f"{prototypes.shape[0]} prototypes, fewer than k={k}")
        self.features_size = features_size
        self.k = k
        self.task_prototypes = nn.ModuleDict({
            task: nn.Embedding.from_pretrained(prototypes.detach().float(), freeze=True)
            for task, prototypes in task_prototypes.items()})
        self.stages = nn.ModuleDict({
            task: nn.ModuleList([InteractionStage(features_size, hidden_size, conv_depth, dropout) for _ in range(depth)])
            for task in task_prototypes})
        self._indices: dict[str, tuple[tuple[torch.device, int, int], PrototypeIndex]] = {}

    @property
    def support_tasks(self) -> list[str]:
        return list(self.task_prototypes.keys())

    def prototypes(self, task: str) -> Tensor:
        """``[P_t, F]`` frozen prototypes of support task ``task``."""
        return self.task_prototypes[self._check_task(task)].weight

    def prototype_index(self, task: str) -> PrototypeIndex:
        """The cosine top-k index over ``task``'s prototypes, normalised once and rebuilt only if they change."""
        weight = self.prototypes(task)
        key = (weight.device, weight.data_ptr(), weight._version)
        cached = self._indices.get(task)
        if cached is None or cached[0] != key:
            cached = (key, PrototypeIndex(weight.detach()))
            self._indices[task] = cached
        return cached[1]

    def nearest_prototypes(self, task: str, queries: Tensor) -> tuple[Tensor, Tensor]:
        """``([Q, k] int64 indices, [Q, k] cosine similarities)`` of ``task``'s ``k`` nearest prototypes, nearest first.

        Through :class:`~egostream.kernels.cosine_topk.PrototypeIndex`: the same sets and top-1 as the authors'
        ``argsort(1 - cos)`` wherever their order is determined; exact ties go to the lowest prototype index (the
        authors' unstable argsort leaves them unspecified), and a zero query gets similarity 0 instead of NaN.
        """
        with torch.no_grad():
            similarities, indices = self.prototype_index(task).topk(queries.detach(), self.k)
        return indices, similarities

    def forward(self, task_features: Mapping[str, Tensor]) -> InteractionResult:
        """Interact each support task's ``[Q_t, F]`` queries with its prototypes (see the module docstring)."""
        result = InteractionResult({}, {}, {})
        for task, queries in task_features.items():
            self._check_task(task)
            if queries.dim() != 2 or queries.shape[1] != self.features_size:
                raise InputError(None, f"task_features[{task}]",
                                 f"expected [Q, {self.features_size}] queries, got {list(queries.shape)}")
            prototypes = self.prototypes(task)
            result.neighbours[task], result.similarities[task] = [], []
            for stage in self.stages[task]:  # type: ignore[union-attr]
                neighbours, similarities = self.nearest_prototypes(task, queries)
                graph = torch.cat([prototypes, queries], dim=0)
                queries = stage(graph, knn_edge_index(neighbours, prototypes.shape[0]))[prototypes.shape[0]:]
                result.neighbours[task].append(neighbours)
                result.similarities[task].append(similarities)
            result.features[task] = queries
        return result

    def _check_task(self, task: str) -> str:
        if task not in self.task_prototypes:
            raise InputError(None, "task_features", f"unknown support task {task!r}; the backpack holds "
                                                    f"{', '.join(self.support_tasks)}")
        return task

    @classmethod
    def from_authors_state_dict(cls, state_dict: Mapping[str, Tensor], k: int,
                                dropout: float = 0.0) -> EgoPackInteraction:
        """Build a module shaped after an authors' ``EgoPack.state_dict()`` and load it strictly.

        Tasks, widths, ``depth`` and ``conv_depth`` are read from the keys; ``k`` and ``dropout`` are not stored there.
        """
        prefix, suffix = "task_prototypes.", ".weight"
        prototypes = {key[len(prefix):-len(suffix)]: value for key, value in state_dict.items()
                      if key.startswith(prefix) and key.endswith(suffix)}
        if not prototypes:
            raise InputError(None, "egopack", "no 'task_prototypes.<task>.weight' entry in the state dict")
        task = next(iter(prototypes))
        first_stage = [key for key in state_dict if key.startswith(f"stages.{task}.0.")]
        conv_depth = sum(1 for key in first_stage if key.endswith(".lin_l.weight"))
        depth = len({key.split(".")[2] for key in state_dict if key.startswith(f"stages.{task}.")})
        hidden_size = state_dict[f"stages.{task}.0.module_1.lin_l.weight"].shape[0]
        features_size = next(iter(prototypes.values())).shape[1]
        module = cls(prototypes, features_size, hidden_size, k=k, depth=depth, conv_depth=conv_depth, dropout=dropout)
        module.load_state_dict(authors_interaction_keys(state_dict, conv_depth))
        return module


    @classmethod
    def from_checkpoint(cls, checkpoint: LoadedCheckpoint) -> EgoPackInteraction:
        """The EgoPack module of a loaded EgoPack checkpoint (authors' ``train_egopack.py`` format, a standalone
        ``EgoPack.state_dict()`` with ``k`` absent, or ours), with ``k``, ``conv``, ``distance_func`` and ``dropout``
        from its ``egopack`` config (the authors' defaults where the config is silent)."""
        config = checkpoint.config.get("egopack") or checkpoint.config.get("egopack_config") or {}
        if "k" not in config:
            raise InputError(checkpoint.path, "config.egopack.k", "the checkpoint does not say how many prototypes "
                                                                  "each query is matched to")
        for option, supported in (("conv", "sage"), ("distance_func", "cosine")):
            if config.get(option, supported) != supported:
                raise InputError(checkpoint.path, f"config.egopack.{option}",
                                 f"only {supported!r} is supported, got {config[option]!r}")
        return cls.from_authors_state_dict(checkpoint.egopack_state(), k=int(config["k"]),
                                           dropout=float(config.get("dropout", 0.0)))


_AUTHORS_STAGE_KEY = re.compile(r"^(stages\..+\.\d+)\.module_(\d+)\.(.+)$")
_OUR_STAGE_KEY = re.compile(r"^(stages\..+\.\d+)\.(convs\.(\d+)|output)\.(.+)$")


def authors_interaction_keys(state_dict: Mapping[str, Tensor], conv_depth: int, *,
                             to_authors: bool = False) -> dict[str, Tensor]:
    """Rename interaction state-dict keys between the authors' layout and :class:`EgoPackInteraction`'s.

    The authors' stage (sapeirone/hier-egopack@4fff4e5:models/egopack/egopack.py ``build_interaction_layer``) numbers
    its children: ``module_0`` Dropout, SAGEConv ``i`` at ``module_{2i+1}`` with LeakyReLUs between, the Linear at
    ``module_{2*conv_depth}``. Only the SAGEConvs and the Linear have parameters:

    ``stages.<t>.<s>.module_<2i+1>.<p>`` <-> ``stages.<t>.<s>.convs.<i>.<p>``;
    ``stages.<t>.<s>.module_<2*conv_depth>.<p>`` <-> ``stages.<t>.<s>.output.<p>``.
    ``task_prototypes.*`` is unchanged; a key that fits neither pattern is kept as is, so a strict load reports it.
    """
    return {_rename_stage_key(key, conv_depth, to_authors): value for key, value in state_dict.items()}


def _rename_stage_key(key: str, conv_depth: int, to_authors: bool) -> str:
    if to_authors:
        match = _OUR_STAGE_KEY.match(key)
        if match is None:
            return key
        stage, _, conv, rest = match.groups()
        child = 2 * int(conv) + 1 if conv is not None else 2 * conv_depth
        return f"{stage}.module_{child}.{rest}"
    match = _AUTHORS_STAGE_KEY.match(key)
    if match is None:
        return key
    stage, child, rest = match.group(1), int(match.group(2)), match.group(3)
    if child % 2 == 1 and child < 2 * conv_depth:
        return f"{stage}.convs.{child // 2}.{rest}"
    if child == 2 * conv_depth:
        return f"{stage}.output.{rest}"
    return key
