"""CUDA path of :mod:`egostream.kernels.cosine_topk`: the top-``k`` selection, by the raw kernels of ``cuda/topk.cu``.

The product itself is the CPU path's ``torch.mm``, run on the CUDA tensors, so both paths select from the same
similarities and the CuPy path equals torch CUDA's ``matmul`` + lowest-index top-``k`` exactly. Selection works on
64-bit composite keys, one per similarity (decreasing value, then lowest column; see topk.cu). For ``k <= KMAX`` thread
blocks keep and merge per-thread lists, one block per query or, for long rows, one per part of a row plus a merge;
larger ``k`` sorts every row's keys.
:func:`topk_lowest_index_device` is written against an array module ``xp`` and a kernel lookup, so the same launch
code runs with CuPy on a GPU and, in the tests, with NumPy and the CUDA source compiled under a block emulator.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from egostream.kernels._cuda import CudaSource, compile_module, cuda_device_for, torch_stream

__all__ = ["THREADS", "KMAX", "COLUMNS_PER_BLOCK", "topk_source", "topk_lowest_index_device", "topk_lowest_index_cupy"]

THREADS = 128
KMAX = 32
COLUMNS_PER_BLOCK = 8 * THREADS
_KEY_THREADS = 256


def topk_source(threads: int = THREADS) -> CudaSource:
    """The compilation unit of the selection kernels for blocks of ``threads`` threads (a power of two)."""
    return CudaSource(("topk.cu",), (("THREADS", threads), ("KMAX", KMAX)))


def topk_lowest_index_device(xp: ModuleType, get_function: Callable[[str], Any], threads: int, similarities: Tensor,
                             k: int, *, columns_per_block: int = COLUMNS_PER_BLOCK) -> tuple[Tensor, Tensor]:
    """Row-wise top-``k`` of ``[Q, P]`` float32 similarities on their device, through the array module ``xp``:
    ``([Q, k] float32 values, [Q, k] int64 columns)``, by decreasing value, ties by the lowest column.

    For ``k <= KMAX`` a row longer than ``columns_per_block`` is split into parts of that many columns, one block
    each, whose candidates one more block per row merges.
    """
    sims = xp.from_dlpack(similarities.detach().float().contiguous())
    num_queries, num_columns = sims.shape
    values = xp.empty((num_queries, k), dtype=xp.float32)
    indices = xp.empty((num_queries, k), dtype=xp.int64)
    parts = -(-num_columns // columns_per_block)
    if num_queries == 0 or k == 0:
        pass
    elif k <= KMAX and parts == 1:
        get_function("topk_rows")((num_queries,), (threads,), (sims, np.int64(num_columns), np.int32(k), values,
                                                                 indices))
    elif k <= KMAX:
        partial = xp.empty((num_queries, parts * k), dtype=xp.uint64)
        get_function("topk_partial")((num_queries * parts,), (threads,),
                                     (sims, np.int64(num_columns), np.int32(k), np.int64(columns_per_block),
                                      np.int64(parts), partial))
        get_function("topk_merge")((num_queries,), (threads,),
                                   (partial, np.int64(parts), sims, np.int64(num_columns), np.int32(k), values,
                                    indices))
    else:
        size = num_queries * num_columns
        keys = xp.empty((num_queries, num_columns), dtype=xp.uint64)
        get_function("row_keys")(((size + _KEY_THREADS - 1) // _KEY_THREADS,), (_KEY_THREADS,),
                                 (sims, np.int64(num_columns), np.int64(size), keys))
        indices = (xp.sort(keys, axis=1)[:, :k] & np.uint64(0xFFFFFFFF)).astype(xp.int64)
        values = xp.take_along_axis(sims, indices, axis=1)
    return torch.from_dlpack(values), torch.from_dlpack(indices)


def topk_lowest_index_cupy(similarities: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """:func:`topk_lowest_index_device` with CuPy, on torch's current stream; results on the device of
    ``similarities`` (CPU inputs are computed on the current CUDA device)."""
    import cupy

    module = compile_module(topk_source())
    device = cuda_device_for(similarities)
    with torch_stream(device):
        values, indices = topk_lowest_index_device(cupy, module.get_function, THREADS, similarities.to(device), k)
    return values.to(similarities.device), indices.to(similarities.device)
