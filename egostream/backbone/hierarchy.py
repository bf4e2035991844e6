"""The hierarchical temporal GNN of Hier-EgoPack (the authors' ``GraphHier``).

Reproduces sapeirone/hier-egopack@4fff4e5:models/graph_hier.py with ``pool="mean"`` and TDGC layers
(fixture README §9.1-§9.4). For a batch of videos whose node ``i`` is feature row ``i`` at ``pos_i`` seconds:

1. ``proj``: flatten ``[N, S, D] -> [N, S*D]`` and a Linear to the hidden width ``F``.
2. For each level ``d = 0 .. depth-1``:

   * edges: every pair of nodes of the same video with ``|pos_j - pos_i| / 2**d < radius_s`` (strict, no self
     loops; ±3 neighbours for 16-frame windows at 30 fps at every level);
   * residual block ``h = h + LeakyReLU_0.2(LayerNorm(TDGC(LeakyReLU_0.2(TDGC(Dropout(h))))))`` (for ``n_layers=2``);
     the TDGC gate sees the UNSCALED seconds ``pos_j - pos_i`` at every level (the authors pass ``pos``, not
     ``pos / 2**d``, to the convolutions);
   * the level's nodes are recorded in :class:`LevelGraphs` (after the block, before pooling);
   * pooling: each node becomes the weighted mean of its video neighbours ``(i-1, i, i+1)`` with weights
     ``(1, 2, 1) / 4``, or ``(2, 1) / 3`` at a video's first/last node, and stays unchanged in a 1-node video. The
     authors build ``radius_graph(indices, 1.5, loop=True)`` and ``avg_pool_neighbor_x`` adds self-loops a second
     time, so the centre counts twice. Then only even ``indices`` are kept, ``indices //= 2``, and ``pos`` keeps the
     kept node's seconds.

3. ``final_x`` is the feature after the LAST pooling (one row per node of level ``depth``).

The authors compute one more radius graph after the last pooling and never use it; it is not computed here.
A video with a single node has no edges, so its TDGC output is ``lin_root(x) + bias`` (mean over no messages = 0).

State-dict keys: ``proj.*`` and the TDGC parameter names are the authors'. The authors' level block is a
``torch_geometric.nn.Sequential`` whose children are numbered (``layers.<d>.module_<k>``); here the block names its
parts (``layers.<d>.convs.<k>``, ``layers.<d>.norm``). :func:`authors_backbone_keys` maps one layout to the other.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.backbone.tdgc import Aggregation, DistanceGatedConv, GateActivation
from egostream.kernels.neighbour_pool import Pooling, neighbour_pool
from egostream.kernels.temporal_edges import radius_edges

__all__ = ["BackboneConfig", "HierarchicalBackbone", "LevelBlock", "build_backbone", "neighbour_pool",
           "authors_backbone_keys", "backbone_config_from_authors"]

ProjectionType = Literal["simple", "mlp"]

_NEGATIVE_SLOPE = 0.2


@dataclass(frozen=True)
class BackboneConfig:
    """Hyper-parameters of :class:`HierarchicalBackbone` (authors' ``model`` config names in brackets).

    Attributes:
        input_size: feature width ``D`` of one input row (``input_size``, = ``features.size``).
        hidden_size: node feature width ``F`` (``hidden_size``).
        depth: number of levels (``depth``).
        n_layers: TDGC layers per level (``n_layers``).
        radius_s: edge radius in seconds at level 0, applied to ``pos / 2**d`` at level ``d`` (``k``).
        pos_hidden_channels: hidden width of each TDGC distance gate (``conv.pos_hidden_channels``).
        dropout: dropout at the start of each level block (``dropout``; inactive in eval).
        use_norm: LayerNorm after the last TDGC of a level (``use_norm``).
        pool: between-level pooling (``pool``).
        projection_type: ``"simple"`` Linear or ``"mlp"`` Linear-ReLU-Dropout-Linear input projection.
        projection_dropout: dropout inside the ``"mlp"`` projection.
        gate_activation: TDGC gate activation (``conv.pos_act``).
        signed_distance: TDGC sign factor (``conv.use_signed_temporal_distance``).
        distance_gate: TDGC distance gate (``conv.use_pos_attr``).
        aggregation: TDGC neighbour reduction (``conv.aggr``).
        conv_bias: TDGC output bias (``conv.bias``).
    """

    input_size: int
    hidden_size: int = 1024
    depth: int = 3
    n_layers: int = 2
    radius_s: float = 2.0
    pos_hidden_channels: int = 256
    dropout: float = 0.1
    use_norm: bool = True
    pool: Pooling = "mean"
    projection_type: ProjectionType = "simple"
    projection_dropout: float = 0.0
    gate_activation: GateActivation = "tanh"
    signed_distance: bool = True
    distance_gate: bool = True
    aggregation: Aggregation = "mean"
    conv_bias: bool = True

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "depth", "n_layers", "pos_hidden_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"BackboneConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.radius_s > 0:
            raise ValueError(f"BackboneConfig.radius_s must be positive, got {self.radius_s}")
        if self.pool not in ("mean", "max", "video_subsampling"):
            raise ValueError(f"BackboneConfig.pool must be 'mean', 'max' or 'video_subsampling', got {self.pool!r}")
        if self.projection_type not in ("simple", "mlp"):
            raise ValueError(f"BackboneConfig.projection_type must be 'simple' or 'mlp', got {self.projection_type!r}")


def backbone_config_from_authors(model: Mapping[str, Any], input_size: int | None = None) -> BackboneConfig:
    """A :class:`BackboneConfig` from the authors' ``model`` config (hydra ``models.graph_hier.GraphHier``).

    ``input_size`` overrides the config's own (the scripts pass ``features.size`` at instantiation). Options this
    implementation does not have (``ffn``, ``pre_norm``, ``batch_subsampling`` pooling, another conv class) raise
    ``ValueError`` naming the option.
    """
    conv = dict(model.get("conv") or {})
    target = conv.get("_target_", "models.conv.distance_gated_conv.DistanceGatedConv")
    if not str(target).endswith("DistanceGatedConv"):
        raise ValueError(f"model.conv._target_: only DistanceGatedConv is implemented, got {target!r}")
    for flag in ("ffn", "pre_norm"):
        if model.get(flag):
            raise ValueError(f"model.{flag}=true is not implemented (the released configs use false)")
    size = input_size if input_size is not None else model.get("input_size")
    if size is None:
        raise ValueError("model.input_size is missing; pass input_size (the features.size of the experiment)")
    return BackboneConfig(
        input_size=int(size), hidden_size=int(model.get("hidden_size", 1024)), depth=int(model.get("depth", 3)),
        n_layers=int(model.get("n_layers", 2)), radius_s=float(model.get("k", 2.0)),
        pos_hidden_channels=int(conv.get("pos_hidden_channels", 256)), dropout=float(model.get("dropout", 0.0)),
        use_norm=bool(model.get("use_norm", True)), pool=model.get("pool", "batch_subsampling"),
        projection_type=model.get("projection_type", "simple"),
        projection_dropout=float(model.get("projection_dropout", 0.0)),
        gate_activation=conv.get("pos_act", "tanh"),
        signed_distance=bool(conv.get("use_signed_temporal_distance", True)),
        distance_gate=bool(conv.get("use_pos_attr", True)), aggregation=conv.get("aggr", "mean"),
        conv_bias=bool(conv.get("bias", True)))


class LevelBlock(nn.Module):
    """One level: ``Dropout -> (TDGC -> LeakyReLU_0.2) x (n-1) -> TDGC -> [LayerNorm] -> LeakyReLU_0.2``.

    The residual ``h + block(h)`` is added by :class:`HierarchicalBackbone`.
    """

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        width = cfg.hidden_size
        self.dropout = nn.Dropout(cfg.dropout)
        self.convs = nn.ModuleList(
            DistanceGatedConv(width, width, bias=cfg.conv_bias, aggregation=cfg.aggregation,
                              pos_hidden_channels=cfg.pos_hidden_channels, gate_activation=cfg.gate_activation,
                              signed=cfg.signed_distance, distance_gate=cfg.distance_gate)
            for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(width) if cfg.use_norm else nn.Identity()

    def forward(self, x: Tensor, edge_index: Tensor, pos: Tensor,
                edge_weights: Sequence[Tensor | None] | None = None,
                linears: Sequence[Callable[[Tensor], tuple[Tensor, Tensor]]] | None = None) -> Tensor:
        """``x`` ``[N, F]``, ``edge_index`` ``[2, E]``, ``pos`` ``[N]`` seconds -> ``[N, F]`` (without residual).

        ``edge_weights``: each conv's edge factors when the caller has them (see ``DistanceGatedConv.forward``).
        ``linears``: per conv, its two linear maps applied the caller's way (see ``DistanceGatedConv.forward``).
        """
        h = self.dropout(x)
        for k, conv in enumerate(self.convs):
            h = conv(h, edge_index, pos, None if edge_weights is None else edge_weights[k],
                     None if linears is None else linears[k])
            if k < len(self.convs) - 1:
                h = nn.functional.leaky_relu(h, _NEGATIVE_SLOPE)
        return nn.functional.leaky_relu(self.norm(h), _NEGATIVE_SLOPE)


class HierarchicalBackbone(nn.Module):
    """Hier-EgoPack's hierarchical temporal GNN (authors' ``GraphHier``), see the module docstring.

    Args:
        cfg: the hyper-parameters.
    """

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        linear = nn.Linear(cfg.input_size, cfg.hidden_size)
        if cfg.projection_type == "simple":
            self.proj = nn.Sequential(nn.Flatten(1), linear)
        else:
            self.proj = nn.Sequential(nn.Flatten(1), linear, nn.ReLU(), nn.Dropout(cfg.projection_dropout),
                                      nn.Linear(cfg.hidden_size, cfg.hidden_size))
        self.layers = nn.ModuleList(LevelBlock(cfg) for _ in range(cfg.depth))

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        return self.cfg.hidden_size

    def level_edges(self, pos: Tensor, video: Tensor, level: int) -> Tensor:
        """``[2, E]`` edges of level ``level``: ``radius_edges(pos / 2**level, video, radius_s)``; ``pos`` in s."""
        return radius_edges(pos / (2.0 ** level), video, self.cfg.radius_s)

    def forward(self, batch: VideoBatch, max_depth: int | None = None) -> tuple[Tensor, LevelGraphs]:
        """Run every level (or levels ``0..max_depth``, as the authors' ``max_depth`` argument).

        Args:
            batch: level-0 rows (only real rows: drop padding first). ``batch.x`` is ``[N, D]`` or ``[N, S, D]``
                with ``S * D == input_size``; ``batch.pos`` in seconds; ``batch.video`` sorted.
            max_depth: stop after this level (the authors build prototypes with ``max_depth=0``).

        Returns:
            ``final_x`` ``[N_top, F]``, the features after the last pooling, and the :class:`LevelGraphs` of the
            levels that ran.
        """
        feat = self.proj(batch.x.unsqueeze(1) if batch.x.dim() == 2 else batch.x)
        pos, video, indices = batch.pos, batch.video, batch.indices
        levels: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
        last = self.depth - 1 if max_depth is None else min(max_depth, self.depth - 1)
        for level in range(last + 1):
            edge_index = self.level_edges(pos, video, level)
            feat = feat + self.layers[level](feat, edge_index, pos)
            levels.append((feat, pos, video, indices))
            feat, pos, video, indices = self.pool(feat, pos, video, indices)
        return feat, _stack_levels(levels, batch.num_videos)

    def pool(self, x: Tensor, pos: Tensor, video: Tensor, indices: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Neighbour pooling (:func:`neighbour_pool`), then keep even ``indices`` and halve them."""
        pooled = neighbour_pool(x, video, indices, self.cfg.pool)
        keep = indices % 2 == 0
        return pooled[keep], pos[keep], video[keep], indices[keep] // 2


def _stack_levels(levels: list[tuple[Tensor, Tensor, Tensor, Tensor]], num_videos: int) -> LevelGraphs:
    """Concatenate per-level ``(x, pos, video, indices)`` level-major into :class:`LevelGraphs`."""
    depth = torch.cat([torch.full_like(video, level) for level, (_, _, video, _) in enumerate(levels)])
    return LevelGraphs(
        x=torch.cat([x for x, _, _, _ in levels]), pos=torch.cat([pos for _, pos, _, _ in levels]),
        video=torch.cat([video for _, _, video, _ in levels]), depth=depth,
        extent=(2.0 ** depth).to(levels[0][1].dtype), indices=torch.cat([idx for _, _, _, idx in levels]),
        num_videos=num_videos)


def build_backbone(cfg: BackboneConfig) -> HierarchicalBackbone:
    """A freshly initialised backbone (the authors' initialisation)."""
    return HierarchicalBackbone(cfg)


_AUTHORS_BLOCK_KEY = re.compile(r"^layers\.(\d+)\.module_(\d+)\.(.+)$")
_OUR_BLOCK_KEY = re.compile(r"^layers\.(\d+)\.(convs\.(\d+)|norm)\.(.+)$")


def authors_backbone_keys(state_dict: Mapping[str, Tensor], n_layers: int, *,
                          to_authors: bool = False) -> dict[str, Tensor]:
    """Rename backbone state-dict keys between the authors' layout and :class:`HierarchicalBackbone`'s.

    The authors' level block (sapeirone/hier-egopack@4fff4e5:models/graph_hier.py ``build_layer``) numbers its
    children: ``module_0`` Dropout, then TDGC ``k`` at ``module_{2k+1}`` with LeakyReLUs between, the LayerNorm at
    ``module_{2*n_layers}``, the final LeakyReLU after it. Only TDGCs and the LayerNorm have parameters:

    ``layers.<d>.module_<2k+1>.<p>`` <-> ``layers.<d>.convs.<k>.<p>``;  ``layers.<d>.module_<2n>.<p>`` <->
    ``layers.<d>.norm.<p>``. Every other key (``proj.*``) is unchanged. A key that fits neither pattern is kept as is,
    so a later strict load reports it.
    """
    renamed: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        renamed[_rename_block_key(key, n_layers, to_authors)] = value
    return renamed


def _rename_block_key(key: str, n_layers: int, to_authors: bool) -> str:
    if to_authors:
        match = _OUR_BLOCK_KEY.match(key)
        if match is None:
            return key
        level, part, conv, rest = match.groups()
        child = 2 * int(conv) + 1 if conv is not None else 2 * n_layers
        return f"layers.{level}.module_{child}.{rest}"
    match = _AUTHORS_BLOCK_KEY.match(key)
    if match is None:
        return key
    level, child, rest = int(match.group(1)), int(match.group(2)), match.group(3)
    if child % 2 == 1 and child < 2 * n_layers:
        return f"layers.{level}.convs.{child // 2}.{rest}"
    if child == 2 * n_layers:
        return f"layers.{level}.norm.{rest}"
    return key
