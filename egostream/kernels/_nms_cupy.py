"""CUDA path of :mod:`egostream.kernels.nms`: the raw kernel ``cuda/nms.cu``, one thread block per group (class).

:func:`greedy_groups_device` keeps its buffers in torch and hands the kernel zero-copy views made by ``as_array``
(``cupy.from_dlpack`` on a GPU; ``numpy.from_dlpack`` in the tests, where the CUDA source runs under a block emulator),
so the same launch code serves both.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from egostream.kernels._cuda import ArrayView, CudaSource, compile_module, cuda_device_for, torch_stream
from egostream.kernels._layout import GroupPicks

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


def greedy_groups_device(as_array: ArrayView, kernel: Callable[..., Any], threads: int, segs: Tensor, scores: Tensor,
                         rows: Tensor, counts: Tensor, *, soft: bool, sigma: float, min_score: float,
                         iou_threshold: float, max_picks: int) -> GroupPicks:
    """Run the kernel on the device of the tensors; same contract as ``nms._greedy_groups_numpy`` (``segs [N, 2]``
    float32, ``scores [N]`` float32, ``rows [G, L]`` int64 input row of each candidate with -1 padding, ``counts [G]``
    int64). Buffers are torch tensors; ``as_array`` gives the kernel its zero-copy views of them.
    """
    num_groups, width = rows.shape
    device = segs.device

    def buffer(dtype: torch.dtype, fill: bool = False) -> Tensor:
        return (torch.zeros if fill else torch.empty)((num_groups, width), dtype=dtype, device=device)

    candidates = [buffer(torch.float32) for _ in range(4)] + [buffer(torch.long)]  # x1, x2, area, score, row
    compaction = [buffer(torch.int32) for _ in range(3)]  # dropped, hole rank, mover by rank
    picks = GroupPicks(buffer(torch.long, fill=True), buffer(torch.float32, fill=True),
                       torch.zeros(num_groups, dtype=torch.long, device=device))
    if num_groups:
        inputs = [as_array(t.detach().contiguous()) for t in (segs, scores, rows, counts)]
        kernel((num_groups,), (threads,),
               (*inputs, np.int32(width), np.int32(soft), np.float32(sigma), np.float32(min_score),
                np.float32(iou_threshold), np.int64(max_picks), *map(as_array, candidates + compaction),
                *map(as_array, picks)))
    return picks


def greedy_groups_cupy(segs: Tensor, scores: Tensor, rows: Tensor, counts: Tensor, *, soft: bool, sigma: float,
                       min_score: float, iou_threshold: float, max_picks: int) -> GroupPicks:
    """:func:`greedy_groups_device` with CuPy; tensors are moved to the current CUDA device if needed."""
    import cupy

    device = cuda_device_for(segs)
    threads = block_threads(rows.shape[1])
    kernel = compile_module(nms_source(threads)).get_function(KERNEL)
    with torch_stream(device):
        tensors = (t.to(device) for t in (segs, scores, rows, counts))
        return greedy_groups_device(cupy.from_dlpack, kernel, threads, *tensors, soft=soft, sigma=sigma,
                                    min_score=min_score, iou_threshold=iou_threshold, max_picks=max_picks)
