"""A TDGC layer's message passing: the gated, aggregated neighbour messages plus the node's own term.

For node ``i`` with incoming edges ``e = (j -> i)``::

    out_i = AGG_e [ LeakyReLU_s(rel_j) * weight_e ] + root_i + bias

with ``rel = lin_rel(x)``, ``root = lin_root(x)`` (``[N, F]``), ``weight_e`` the edge's ``[F]`` (or ``[1]``) factor
(sign times distance gate, :meth:`~egostream.backbone.tdgc.DistanceGatedConv.edge_weights`) and ``AGG`` the mean, sum
or max over the incoming edges (0 for a node without any, PyG's rule).

Two paths with the same results: the PyTorch ops (autograd, any device, every aggregation: the reference) and, for
CPU float32 tensors without autograd and the mean or sum, a loop compiled by Numba
(:mod:`egostream.kernels._gated_messages_numba`; bit-identical, ~4x faster on a streaming window).
:data:`CPU_KERNEL` tells which the CPU uses.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from egostream import optional

__all__ = ["CPU_KERNEL", "Aggregation", "aggregate_messages", "gated_messages", "warm_up"]

Aggregation = Literal["mean", "sum", "max"]

#: The CPU path without autograd: ``"compiled"`` (Numba) when Numba is installed, else ``"torch"``.
CPU_KERNEL: Literal["compiled", "torch"] = "compiled" if optional.WITH_NUMBA else "torch"


def aggregate_messages(messages: Tensor, target: Tensor, num_nodes: int, aggregation: Aggregation) -> Tensor:
    """Reduce ``[E, F]`` edge messages onto their ``[E]`` target nodes; nodes without edges get 0 (PyG's rule)."""
    out = messages.new_zeros(num_nodes, messages.shape[1])
    index = target.unsqueeze(1).expand_as(messages)
    if aggregation == "max":
        return out.scatter_reduce(0, index, messages, reduce="amax", include_self=False)
    out = out.index_add(0, target, messages)
    if aggregation == "mean":
        count = torch.bincount(target, minlength=num_nodes).clamp_min(1).to(messages.dtype)
        out = out / count.unsqueeze(1)
    return out


def gated_messages(rel: Tensor, root: Tensor, edge_index: Tensor, weight: Tensor | None, bias: Tensor | None,
                   aggregation: Aggregation, negative_slope: float = 0.2) -> Tensor:
    """``out [N, F]`` (see the module docstring) from ``rel``/``root`` ``[N, F]``, ``edge_index [2, E]`` (source
    ``j``, target ``i``), ``weight [E, F]``, ``[E, 1]`` or ``None`` and ``bias [1, F]`` or ``None``."""
    if _compiled_applies(rel, root, weight, bias, aggregation):
        return _compiled(rel, root, edge_index, weight, bias, aggregation, negative_slope)
    messages = torch.nn.functional.leaky_relu(rel, negative_slope=negative_slope)[edge_index[0]]
    if weight is not None:
        messages = messages * weight
    out = aggregate_messages(messages, edge_index[1], len(root), aggregation) + root
    return out if bias is None else out + bias


def _compiled_applies(rel: Tensor, root: Tensor, weight: Tensor | None, bias: Tensor | None,
                      aggregation: Aggregation) -> bool:
    if CPU_KERNEL != "compiled" or aggregation == "max":
        return False
    tensors = [t for t in (rel, root, weight, bias) if t is not None]
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    return weight is None or (weight.dim() == 2 and weight.shape[1] in (1, rel.shape[1]))


def _compiled(rel: Tensor, root: Tensor, edge_index: Tensor, weight: Tensor | None, bias: Tensor | None,
              aggregation: Aggregation, negative_slope: float) -> Tensor:
    from egostream.kernels._gated_messages_numba import gated_messages_compiled

    width = root.shape[1]
    out = torch.empty_like(root, memory_format=torch.contiguous_format)
    edges = edge_index.to(torch.int64).contiguous()
    factors = weight if weight is not None else root.new_ones(edges.shape[1], 1)
    offsets = bias.reshape(width) if bias is not None else root.new_zeros(width)
    gated_messages_compiled(rel.detach().contiguous().numpy(), root.detach().contiguous().numpy(),
                            edges[0].numpy(), edges[1].numpy(), factors.detach().contiguous().numpy(),
                            offsets.detach().contiguous().numpy(), aggregation == "mean",
                            np.float32(negative_slope), out.numpy())
    return out


def warm_up() -> None:
    """Compile the CPU kernel now (or load it from Numba's disk cache), so that its first real call is not the one
    that pays ~1 s of compilation: the streaming engine calls this when it is built."""
    if CPU_KERNEL == "compiled":
        with torch.no_grad():
            nodes = torch.zeros(2, 1)
            gated_messages(nodes, nodes, torch.tensor([[0], [1]]), nodes[:1], None, "mean")
