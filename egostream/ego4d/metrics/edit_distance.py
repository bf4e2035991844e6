"""Plain Levenshtein edit distance (insertions, deletions and substitutions, each costing 1).

This is the distance ``editdistance.eval`` computes in the official LTA evaluator
(EGO4D/forecasting@38d1931:ego4d_forecasting/evaluation/lta_metrics.py::edit_distance) and in the Hier-EgoPack LTA
meter (sapeirone/hier-egopack@4fff4e5:utils/meters/ego4d/lta.py::EvalMeter._edit_distance). Both docstrings call it
Damerau-Levenshtein, but a swap of two adjacent items costs 2, not 1: it is plain Levenshtein.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

__all__ = ["levenshtein", "prefix_levenshtein"]


def levenshtein(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Number of single-item insertions, deletions and substitutions that turn ``a`` into ``b``."""
    previous = list(range(len(b) + 1))
    for i, item_a in enumerate(a, start=1):
        current = [i]
        for j, item_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (item_a != item_b)))
        previous = current
    return previous[-1]


def prefix_levenshtein(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Levenshtein distances between equal-length prefixes, for a batch of sequence pairs.

    Args:
        a: int array ``[B, L]``, one sequence per row.
        b: int array ``[B, L]``, compared row by row with ``a``.

    Returns:
        int64 array ``[B, L]`` whose entry ``[r, z]`` is ``levenshtein(a[r, :z + 1], b[r, :z + 1])``; the last column
        is the distance between the whole sequences. One dynamic-programming table per pair yields every prefix
        distance, on its diagonal.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two [B, L] arrays of one shape, got {a.shape} and {b.shape}")
    batch, length = a.shape
    previous = np.broadcast_to(np.arange(length + 1, dtype=np.int64), (batch, length + 1)).copy()
    diagonal = np.empty((batch, length), dtype=np.int64)
    for i in range(1, length + 1):
        current = np.empty_like(previous)
        current[:, 0] = i
        substitution = previous[:, :-1] + (a[:, i - 1 : i] != b)
        deletion = previous[:, 1:] + 1
        best = np.minimum(substitution, deletion)
        for j in range(1, length + 1):
            current[:, j] = np.minimum(best[:, j - 1], current[:, j - 1] + 1)
        diagonal[:, i - 1] = current[:, i]
        previous = current
    return diagonal
