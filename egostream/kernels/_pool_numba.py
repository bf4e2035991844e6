"""Compiled CPU path of :func:`egostream.backbone.hierarchy.pool_consecutive`: the between-level pooling of a run of
consecutive nodes, computed for the kept (even-index) rows only, in one Numba loop.

Why: a streaming push pools every level's ~12-18 trailing outputs into the next level's inputs; PyTorch's eager
pooling (neighbour shifts, masks, sums, the even-row selection: ~20 ops) costs ~0.25 ms a level, almost all per-op
overhead. The arithmetic is PyTorch's, operation for operation in float32 (``fastmath`` off): the mean is
``((2 * x_i + x_left * has_left) + x_right * has_right) / (2 + has_left + has_right)`` with the masks as 0.0/1.0
factors (``x_left`` and ``x_right`` being row ``i`` itself at a run's ends, as the PyTorch path shifts), the max takes
``maximum`` with each present neighbour (NaN-propagating, as ``torch.maximum``); bit-identical results (tested).
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["pool_even_rows_compiled"]

MEAN, MAX, SUBSAMPLE = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def _maximum(a: np.float32, b: np.float32) -> np.float32:
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@numba.njit(cache=True, nogil=True)
def pool_even_rows_compiled(x: np.ndarray, first_parity: int, mode: int, out: np.ndarray) -> None:
    """Fill ``out [m, F]`` with the pooled rows ``first_parity, first_parity + 2, ...`` of ``x [n, F]`` (``n >= 2``)."""
    rows, width = x.shape
    two = np.float32(2.0)
    k = 0
    for r in range(first_parity, rows, 2):
        has_left, has_right = r > 0, r < rows - 1
        left = r - 1 if has_left else 0
        right = r + 1 if has_right else rows - 1
        left_factor = np.float32(1.0) if has_left else np.float32(0.0)
        right_factor = np.float32(1.0) if has_right else np.float32(0.0)
        count = (two + left_factor) + right_factor
        for c in range(width):
            if mode == MEAN:
                total = (two * x[r, c] + x[left, c] * left_factor) + x[right, c] * right_factor
                out[k, c] = total / count
            elif mode == MAX:
                value = _maximum(x[r, c], x[left, c]) if has_left else x[r, c]
                out[k, c] = _maximum(value, x[right, c]) if has_right else value
            else:
                out[k, c] = x[r, c]
        k += 1
