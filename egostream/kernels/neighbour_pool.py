"""The between-level pooling of the hierarchy: each node averaged (or max-pooled) with its temporal neighbours.

:func:`neighbour_pool` is the reference (PyTorch ops, any device, autograd), used by the offline backbone.
:func:`pool_even_rows` is what the streaming engine needs per push: for a run of consecutive nodes of one video, the
pooled rows that the decimation keeps (even absolute index) only; on CPU float32 tensors without autograd it runs a
loop compiled by Numba (:mod:`egostream.kernels._pool_numba`), bit-identical to the reference. :data:`CPU_KERNEL`
tells which path the CPU uses.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from egostream import optional

__all__ = ["CPU_KERNEL", "Pooling", "neighbour_pool", "pool_even_rows", "warm_up"]

Pooling = Literal["mean", "max", "video_subsampling"]

#: The CPU path of :func:`pool_even_rows` without autograd: ``"compiled"`` (Numba) when installed, else ``"torch"``.
CPU_KERNEL: Literal["compiled", "torch"] = "compiled" if optional.WITH_NUMBA else "torch"

_MODES = {"mean": 0, "max": 1, "video_subsampling": 2}


def neighbour_pool(x: Tensor, video: Tensor, indices: Tensor, mode: Pooling) -> Tensor:
    """Pool each node with its temporal neighbours (rows ``i-1`` and ``i+1`` of the same video), before decimation.

    ``"mean"``: the authors' double-self-loop average, ``(x_{i-1} + 2 x_i + x_{i+1}) / 4`` inside a video,
    ``(2 x_i + x_{i±1}) / 3`` at its ends, ``x_i`` for a 1-node video
    (sapeirone/hier-egopack@4fff4e5:models/graph_hier.py ``time_pooling``: ``radius_graph(indices, 1.5, loop=True)``
    followed by ``avg_pool_neighbor_x``, which adds self-loops again). ``"max"``: the element-wise max over the
    same neighbourhood. ``"video_subsampling"``: no pooling.

    Rows are video-major with ``indices`` increasing inside a video; two rows are neighbours when their indices
    differ by less than 1.5, as in the authors' radius graph on indices. Returns ``[N, F]``.
    """
    if mode == "video_subsampling" or len(x) < 2:
        return x
    linked = (video[1:] == video[:-1]) & ((indices[1:] - indices[:-1]).abs() < 1.5)  # rows i, i+1 are neighbours
    has_left = torch.cat([linked.new_zeros(1), linked])
    has_right = torch.cat([linked, linked.new_zeros(1)])
    left = torch.cat([x[:1], x[:-1]])
    right = torch.cat([x[1:], x[-1:]])
    if mode == "max":
        out = torch.where(has_left.unsqueeze(1), torch.maximum(x, left), x)
        return torch.where(has_right.unsqueeze(1), torch.maximum(out, right), out)
    total = 2 * x + left * has_left.unsqueeze(1) + right * has_right.unsqueeze(1)
    count = 2 + has_left.to(x.dtype) + has_right.to(x.dtype)
    return total / count.unsqueeze(1)


def pool_even_rows(x: Tensor, first_index: int, mode: Pooling) -> Tensor:
    """``[m, F]``: the rows of even absolute index of ``neighbour_pool`` over ``x [n, F]``, consecutive nodes of one
    video whose row 0 has absolute index ``first_index`` (so row ``r`` is kept when ``first_index + r`` is even)."""
    parity = first_index % 2
    if CPU_KERNEL == "compiled" and len(x) >= 2 and x.device.type == "cpu" and x.dtype == torch.float32 and not (
            torch.is_grad_enabled() and x.requires_grad):
        from egostream.kernels._pool_numba import pool_even_rows_compiled

        out = x.new_empty((len(x) - parity + 1) // 2, x.shape[1])
        pool_even_rows_compiled(x.detach().contiguous().numpy(), parity, _MODES[mode], out.numpy())
        return out
    indices = torch.arange(first_index, first_index + len(x), device=x.device)
    return neighbour_pool(x, torch.zeros_like(indices), indices, mode)[parity::2]


def warm_up() -> None:
    """Compile :func:`pool_even_rows`' CPU kernel now (or load it from Numba's disk cache); see
    :func:`egostream.kernels.gated_messages.warm_up`."""
    if CPU_KERNEL == "compiled":
        with torch.no_grad():
            pool_even_rows(torch.zeros(2, 1), 0, "mean")
