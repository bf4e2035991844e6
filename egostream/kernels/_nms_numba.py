"""Compiled CPU path of :mod:`egostream.kernels.nms`: the greedy (soft-)NMS loop of every group, JIT-compiled by Numba.

Why Numba. Soft-NMS is sequential per class (each pick decays the rest), so a vectorised NumPy step per pick costs a
Python round trip per pick: 640 ms for one MQ window of the authors' model (issue #12). The authors compile the loop
in C++ (happyharrycn/actionformer_release@61ea7eb:libs/utils/csrc/nms_cpu.cpp, built by ``python setup.py install``
on the user's machine with a compiler). Numba is a maintained JIT from PyPI whose wheels ship LLVM (``llvmlite``), so
``pip install`` on a fresh machine needs no compiler, and its wheels support the pinned Python 3.11 / NumPy 2.4. A
wheel-shipped custom op would need one build per platform and torch ABI, which this project does not publish. The
compiled function is cached on disk (``cache=True``) so only the first process of a checkout pays the ~1 s
compilation. Without Numba, :mod:`egostream.kernels.nms` falls back to its NumPy path.

Semantics (the module docstring of :mod:`egostream.kernels.nms`): per group, the candidates sit in an array in
input order; each step picks the highest current score (soft: the first in array order on a tie, the reference's
strict ``<`` scan; hard: the lowest input row, the reference's stable score sort), swaps it to the front of the
remaining part, then sweeps the rest: soft decays each score by ``float32(exp(float64(-(iou * iou) / sigma)))`` and
drops a score strictly below ``min_score``; hard drops ``iou >= iou_threshold``. A dropped candidate is replaced by
the array's last one, which is examined next (``nms_cpu.cpp::softnms_1d_cpu``). All arithmetic is float32.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["greedy_groups_compiled"]


@numba.njit(cache=True, nogil=True)
def _greedy_groups(x1_in: np.ndarray, x2_in: np.ndarray, score_in: np.ndarray, rows: np.ndarray, counts: np.ndarray,
                   soft: bool, sigma: np.float32, min_score: np.float32, iou_threshold: np.float32,
                   area_eps: np.float32, max_picks: int, pick_row: np.ndarray, pick_score: np.ndarray,
                   picks: np.ndarray) -> None:
    """Fill ``pick_row [G, L]``, ``pick_score [G, L]`` and ``picks [G]`` (see the module docstring)."""
    zero = np.float32(0.0)
    width = rows.shape[1]
    x1 = np.empty(width, dtype=np.float32)
    x2 = np.empty(width, dtype=np.float32)
    area = np.empty(width, dtype=np.float32)
    score = np.empty(width, dtype=np.float32)
    row = np.empty(width, dtype=np.int64)
    for g in range(rows.shape[0]):
        n = counts[g]
        for i in range(n):
            r = rows[g, i]
            x1[i] = x1_in[r]
            x2[i] = x2_in[r]
            area[i] = (x2[i] - x1[i]) + area_eps
            score[i] = score_in[r]
            row[i] = r
        steps = n if max_picks <= 0 else min(n, max_picks)
        step = 0
        while step < steps and step < n:
            best = step
            for i in range(step + 1, n):
                if score[i] > score[best] or (not soft and score[i] == score[best] and row[i] < row[best]):
                    best = i
            x1[step], x1[best] = x1[best], x1[step]
            x2[step], x2[best] = x2[best], x2[step]
            area[step], area[best] = area[best], area[step]
            score[step], score[best] = score[best], score[step]
            row[step], row[best] = row[best], row[step]
            pick_row[g, step] = row[step]
            pick_score[g, step] = score[step]
            px1, px2, parea = x1[step], x2[step], area[step]
            i = step + 1
            while i < n:
                inter = max(zero, min(px2, x2[i]) - max(px1, x1[i]))
                iou = inter / ((parea + area[i]) - inter)
                if soft:
                    if iou != zero:  # exp(-0) = 1 exactly: a disjoint candidate keeps its score bit for bit
                        exponent = -(iou * iou) / sigma
                        score[i] = score[i] * np.float32(np.exp(np.float64(exponent)))
                    dropped = score[i] < min_score
                else:
                    dropped = iou >= iou_threshold
                if dropped:
                    n -= 1
                    x1[i], x2[i], area[i], score[i], row[i] = x1[n], x2[n], area[n], score[n], row[n]
                else:
                    i += 1
            step += 1
        picks[g] = step


def greedy_groups_compiled(segs: np.ndarray, scores: np.ndarray, rows: np.ndarray, counts: np.ndarray, *, soft: bool,
                           sigma: float, min_score: float, iou_threshold: float, area_eps: np.float32,
                           max_picks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy (soft-)NMS of every group: ``segs [N, 2]`` float32, ``scores [N]`` float32, ``rows [G, L]`` int64
    input rows (``-1`` padding), ``counts [G]`` int64 group sizes -> ``(pick rows [G, L] int64, pick scores [G, L]
    float32, picks [G] int64)``; entries past ``picks[g]`` are 0."""
    num_groups, width = rows.shape
    pick_row = np.zeros((num_groups, width), dtype=np.int64)
    pick_score = np.zeros((num_groups, width), dtype=np.float32)
    picks = np.zeros(num_groups, dtype=np.int64)
    _greedy_groups(np.ascontiguousarray(segs[:, 0]), np.ascontiguousarray(segs[:, 1]), np.ascontiguousarray(scores),
                   np.ascontiguousarray(rows), np.ascontiguousarray(counts, dtype=np.int64), bool(soft),
                   np.float32(sigma), np.float32(min_score), np.float32(iou_threshold), np.float32(area_eps),
                   int(max_picks), pick_row, pick_score, picks)
    return pick_row, pick_score, picks
