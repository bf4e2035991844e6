"""Temporal Distance-Gated Convolution (TDGC), the graph convolution of every Hier-EgoPack level.

Reproduces ``DistanceGatedConv`` of sapeirone/hier-egopack@4fff4e5:models/conv/distance_gated_conv.py. For node
``i`` with incoming edges ``j -> i``::

    out_i = lin_root(x_i) + bias + AGG_{j in N(i)} [ sign(p_j - p_i) * gate(|p_j - p_i|) * LeakyReLU_0.2(lin_rel(x_j)) ]
    gate(d) = tanh(Linear(H, F)(LeakyReLU_0.01(Linear(1, H)(d))))

with ``AGG`` the mean over incoming edges (0 for a node without edges, e.g. a 1-node video); the message passing
itself is :func:`egostream.kernels.gated_messages.gated_messages` (compiled on the CPU without autograd, bit-identical
to its PyTorch ops). The parameter names are
the authors' (``lin_rel``, ``lin_root``, ``lin_pos``, ``bias``), so their state-dict keys load 1:1:

* ``lin_rel`` ``[F, D]`` + bias: transforms the NEIGHBOUR features (identity-initialised);
* ``lin_root`` ``[F, D]``, no bias: transforms the node's own feature;
* ``lin_pos.0`` ``[H, 1]`` and ``lin_pos.2`` ``[F, H]``: the distance gate (``lin_pos.1`` is LeakyReLU(0.01),
  ``lin_pos.3`` the gate activation);
* ``bias`` ``[1, F]``: the output bias.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from egostream.kernels.gated_messages import Aggregation, gated_messages

__all__ = ["DistanceGatedConv", "GateActivation", "Aggregation"]

GateActivation = Literal["tanh", "sigmoid", "relu"]

_GATE_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}


class DistanceGatedConv(nn.Module):
    """TDGC layer: ``[N, in_channels]`` node features -> ``[N, out_channels]``.

    Args:
        in_channels: input feature width ``D``.
        out_channels: output feature width ``F``.
        bias: add the ``[1, F]`` output bias.
        aggregation: reduction over incoming edges (the authors' ``aggr``; their configs use ``"mean"``).
        pos_hidden_channels: hidden width ``H`` of the distance gate MLP.
        gate_activation: last activation of the gate (the authors' ``pos_act``).
        signed: multiply each message by ``sign(p_j - p_i)`` (``use_signed_temporal_distance``).
        distance_gate: multiply each message by the gate (``use_pos_attr``).
    """

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True, aggregation: Aggregation = "mean",
                 pos_hidden_channels: int = 256, gate_activation: GateActivation = "tanh", signed: bool = True,
                 distance_gate: bool = True) -> None:
        super().__init__()
        if aggregation not in ("mean", "sum", "max"):
            raise ValueError(f"aggregation must be 'mean', 'sum' or 'max', got {aggregation!r}")
        if gate_activation not in _GATE_ACTIVATIONS:
            raise ValueError(f"gate_activation must be one of {sorted(_GATE_ACTIVATIONS)}, got {gate_activation!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.aggregation: Aggregation = aggregation
        self.signed = signed
        self.distance_gate = distance_gate
        self.lin_rel = nn.Linear(in_channels, out_channels, bias=True)
        self.lin_root = nn.Linear(in_channels, out_channels, bias=False)
        self.lin_pos = nn.Sequential(nn.Linear(1, pos_hidden_channels), nn.LeakyReLU(0.01),
                                     nn.Linear(pos_hidden_channels, out_channels),
                                     _GATE_ACTIVATIONS[gate_activation]())
        self.bias = nn.Parameter(torch.zeros(1, out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The authors' initialisation: identity ``lin_rel`` with zero bias, default ``lin_root``/gate, zero bias."""
        nn.init.eye_(self.lin_rel.weight)
        nn.init.zeros_(self.lin_rel.bias)
        self.lin_root.reset_parameters()
        for layer in self.lin_pos:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def edge_weights(self, edge_index: Tensor, pos: Tensor) -> Tensor | None:
        """``[E, F]`` (or ``[E, 1]``) factor of each edge message: ``sign(p_j - p_i) * gate(|p_j - p_i|)``.

        ``pos`` is in seconds and is NOT rescaled per level: the authors pass the unscaled node times to every
        level's TDGC (only the radius search uses ``pos / 2**d``), so the gate sees seconds everywhere.
        Returns ``None`` when neither the sign nor the gate is used.
        """
        offset = pos[edge_index[0]] - pos[edge_index[1]]
        gate = None
        if self.distance_gate:
            # Node times lie on a grid, so the E edges carry only a handful of distinct distances (about 3 per level
            # in a hierarchy): the gate MLP runs once per distinct distance, then is gathered per edge. Each row of
            # the MLP depends on its own input only, so this equals the per-edge evaluation.
            distances, per_edge = torch.unique(offset.abs(), return_inverse=True)
            gate = self.gate(distances)[per_edge]
        return self.signed_weights(offset, gate)

    def gate(self, distances: Tensor) -> Tensor:
        """``[K, F]`` distance gate of ``[K]`` absolute distances in seconds (no sign)."""
        return self.lin_pos(distances.unsqueeze(-1))

    def signed_weights(self, offset: Tensor, gate: Tensor | None) -> Tensor | None:
        """The ``[E, F]`` (or ``[E, 1]``) edge factors from the ``[E]`` offsets ``p_j - p_i`` (seconds) and the
        edges' gates ``[E, F]`` (``None`` without the distance gate): the sign applied if the layer is signed."""
        if not self.signed:
            return gate
        sign = torch.sign(offset).unsqueeze(1)
        return sign if gate is None else gate * sign

    def forward(self, x: Tensor, edge_index: Tensor, pos: Tensor, edge_weight: Tensor | None = None,
                linears: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None) -> Tensor:
        """Args: ``x`` ``[N, D]``; ``edge_index`` ``[2, E]`` (source ``j``, target ``i``); ``pos`` ``[N]`` seconds;
        ``edge_weight``: the edges' factors (:meth:`edge_weights`) when the caller already has them (the streaming
        engine caches the gates of its grid's distances), else computed from ``pos``; ``linears``: a callable
        returning ``(lin_rel(x), lin_root(x))`` when the caller applies the two maps its own way (the streaming
        engine and readouts stack them into one GEMM, :class:`~egostream.kernels.stacked_linear.StackedLinear`), else the
        layer's own.

        Returns ``[N, F]``.
        """
        weight = self.edge_weights(edge_index, pos) if edge_weight is None else edge_weight
        rel, root = (self.lin_rel(x), self.lin_root(x)) if linears is None else linears(x)
        return gated_messages(rel, root, edge_index, weight, self.bias, self.aggregation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, aggregation={self.aggregation}, signed={self.signed}, "
                f"distance_gate={self.distance_gate}")
