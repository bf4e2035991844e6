"""CUDA path of :mod:`egostream.kernels.cosine_topk`: the top-``k`` selection, by the raw kernels of ``cuda/topk.cu``.

The product itself is the CPU path's ``torch.mm``, run on the CUDA tensors, so both paths select from the same
similarities and the CuPy path equals torch CUDA's ``matmul`` + lowest-index top-``k`` exactly. Selection works on
64-bit composite keys, one per similarity (decreasing value, then lowest column; see topk.cu). For ``k <= KMAX`` thread
blocks keep and merge per-thread lists, one block per query or, for long rows, one per part of a row plus a merge;
larger ``k`` sorts every row's keys.
:func:`topk_lowest_index_device` keeps its buffers in torch and hands the kernels zero-copy views made by ``as_array``
(``cupy.from_dlpack`` on a GPU; ``numpy.from_dlpack`` in the tests, where the CUDA source runs under a block
emulator), so the same launch code serves both.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from egostream.kernels._cuda import ArrayView, CudaSource, compile_module, cuda_device_for, torch_stream

__all__ = ["THREADS", "KMAX", "COLUMNS_PER_BLOCK", "topk_source", "topk_lowest_index_device", "topk_lowest_index_cupy"]

THREADS = 128
KMAX = 32
COLUMNS_PER_BLOCK = 8 * THREADS
_KEY_THREADS = 256


def topk_source(threads: int = THREADS) -> CudaSource:
    """The compilation unit of the selection kernels for blocks of ``threads`` threads (a power of two)."""
    return CudaSource(("topk.cu",), (("THREADS", threads), ("KMAX", KMAX)))


def topk_lowest_index_device(as_array: ArrayView, get_function: Callable[[str], Any], threads: int,
                             similarities: Tensor, k: int, *,
                             columns_per_block: int = COLUMNS_PER_BLOCK) -> tuple[Tensor, Tensor]:
    """Row-wise top-``k`` of ``[Q, P]`` float32 similarities on their device: ``([Q, k] float32 values, [Q, k] int64
    columns)``, by decreasing value, ties by the lowest column. Buffers are torch tensors; ``as_array`` gives the
    kernels their zero-copy views of them.

    For ``k <= KMAX`` a row longer than ``columns_per_block`` is split into parts of that many columns, one block
    each, whose candidates one more block per row merges; larger ``k`` sorts every row's keys.
    """
    sims = similarities.detach().float().contiguous()
    num_queries, num_columns = sims.shape
    device = sims.device
    values = torch.empty((num_queries, k), dtype=torch.float32, device=device)
    indices = torch.empty((num_queries, k), dtype=torch.long, device=device)
    parts = -(-num_columns // columns_per_block)
    if num_queries == 0 or k == 0:
        return values, indices
    if k <= KMAX and parts == 1:
        get_function("topk_rows")((num_queries,), (threads,), (as_array(sims), np.int64(num_columns), np.int32(k),
                                                                 as_array(values), as_array(indices)))
    elif k <= KMAX:
        partial = torch.empty((num_queries, parts * k), dtype=torch.long, device=device)
        get_function("topk_partial")((num_queries * parts,), (threads,),
                                     (as_array(sims), np.int64(num_columns), np.int32(k), np.int64(columns_per_block),
                                      np.int64(parts), as_array(partial)))
        get_function("topk_merge")((num_queries,), (threads,),
                                   (as_array(partial), np.int64(parts), as_array(sims), np.int64(num_columns),
                                    np.int32(k), as_array(values), as_array(indices)))
    else:
        size = num_queries * num_columns
        keys = torch.empty((num_queries, num_columns), dtype=torch.long, device=device)
        get_function("row_keys")(((size + _KEY_THREADS - 1) // _KEY_THREADS,), (_KEY_THREADS,),
                                 (as_array(sims), np.int64(num_columns), np.int64(size), as_array(keys)))
        indices = torch.sort(keys, dim=1).values[:, :k] & 0xFFFFFFFF
        values = sims.gather(1, indices)
    return values, indices


def topk_lowest_index_cupy(similarities: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """:func:`topk_lowest_index_device` with CuPy, on torch's current stream; results on the device of
    ``similarities`` (CPU inputs are computed on the current CUDA device)."""
    import cupy

    module = compile_module(topk_source())
    device = cuda_device_for(similarities)
    with torch_stream(device):
        values, indices = topk_lowest_index_device(cupy.from_dlpack, module.get_function, THREADS,
                                                   similarities.to(device), k)
    return values.to(similarities.device), indices.to(similarities.device)
