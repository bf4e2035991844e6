"""CUDA path of :mod:`egostream.kernels.nms`: the raw kernel ``cuda/nms.cu``, one thread block per group (class).

:func:`greedy_groups_device` is written against an array module ``xp`` and a kernel object, so the same launch code
runs with CuPy on a GPU and, in the tests, with NumPy and the CUDA source compiled under a block emulator.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from egostream.kernels._cuda import CudaSource, compile_module, cuda_device_for, torch_stream
from egostream.kernels.nms import GroupPicks

__all__ = ["THREADS", "MIN_THREADS", "KERNEL", "nms_source", "block_threads", "greedy_groups_device",
           "greedy_groups_cupy"]

THREADS = 256
MIN_THREADS = 32
KERNEL = "greedy_nms_groups"


def nms_source(threads: int = THREADS) -> CudaSource:
    """The compilation unit of the NMS kernel for blocks of ``threads`` threads (a power of two)."""
    return CudaSource(("nms.cu",), (("THREADS", threads),))


def block_threads(width: int) -> int:
    """Block size for groups of at most ``width`` candidates: the smallest power of two that gives every candidate a
    thread, within ``[MIN_THREADS, THREADS]``. Every step of a pick ends in block-wide reductions whose depth is
    ``log2(threads)``, so small groups (the common case: many classes, few candidates each) take smaller blocks."""
    return min(THREADS, max(MIN_THREADS, 1 << max(width - 1, 0).bit_length()))


def greedy_groups_device(xp: ModuleType, kernel: Callable[..., Any], threads: int, segs: Tensor, scores: Tensor,
                         rows: Tensor, counts: Tensor, *, soft: bool, sigma: float, min_score: float,
                         iou_threshold: float, max_picks: int) -> GroupPicks:
    """Run the kernel on the device of the tensors through the array module ``xp``; same contract as
    ``nms._greedy_groups_numpy`` (``segs [N, 2]`` float32, ``scores [N]`` float32, ``rows [G, L]`` int64 input row of
    each candidate with -1 padding, ``counts [G]`` int64).
    """
    segs_x, scores_x, rows_x, counts_x = (xp.from_dlpack(t.detach().contiguous())
                                          for t in (segs, scores, rows, counts))
    num_groups, width = rows_x.shape
    candidates_f32 = [xp.empty((num_groups, width), dtype=xp.float32) for _ in range(4)]  # x1, x2, area, score
    candidate_row = xp.empty((num_groups, width), dtype=xp.int64)
    compaction_i32 = [xp.empty((num_groups, width), dtype=xp.int32) for _ in range(3)]  # dropped, ranks
    pick_row = xp.zeros((num_groups, width), dtype=xp.int64)
    pick_score = xp.zeros((num_groups, width), dtype=xp.float32)
    picks = xp.zeros(num_groups, dtype=xp.int64)
    if num_groups:
        kernel((num_groups,), (threads,),
               (segs_x, scores_x, rows_x, counts_x, np.int32(width), np.int32(soft), np.float32(sigma),
                np.float32(min_score), np.float32(iou_threshold), np.int64(max_picks),
                *candidates_f32, candidate_row, *compaction_i32, pick_row, pick_score, picks))
    return GroupPicks(torch.from_dlpack(pick_row), torch.from_dlpack(pick_score), torch.from_dlpack(picks))


def greedy_groups_cupy(segs: Tensor, scores: Tensor, rows: Tensor, counts: Tensor, *, soft: bool, sigma: float,
                       min_score: float, iou_threshold: float, max_picks: int) -> GroupPicks:
    """:func:`greedy_groups_device` with CuPy; tensors are moved to the current CUDA device if needed."""
    import cupy

    device = cuda_device_for(segs)
    threads = block_threads(rows.shape[1])
    kernel = compile_module(nms_source(threads)).get_function(KERNEL)
    with torch_stream(device):
        return greedy_groups_device(cupy, kernel, threads, *(t.to(device) for t in (segs, scores, rows, counts)),
                                    soft=soft, sigma=sigma, min_score=min_score, iou_threshold=iou_threshold,
                                    max_picks=max_picks)
