"""CUDA path of :mod:`egostream.kernels.cosine_topk` (CuPy; imported only when CuPy sees a GPU).

The product is one cuBLAS SGEMM (``cupy.matmul``). Selection works on 64-bit composite keys, one per similarity:
the high 32 bits order floats by decreasing value (``-0.0`` is first turned into ``+0.0`` so the two tie, as torch
compares them), the low 32 bits hold the prototype index, so the smallest keys are the top-``k`` with ties broken by
the lowest index, the same rule as the CPU path. For ``k <= 32`` a raw kernel runs one block per query: each thread
keeps its ``k`` smallest keys, then the block merges the threads' lists ``k`` times by a min-reduction. Larger ``k``
sorts every row's keys.
"""
from __future__ import annotations

from functools import lru_cache

import cupy
import numpy as np
import torch
from torch import Tensor

__all__ = ["cosine_topk_cupy", "topk_lowest_index_cupy"]

_THREADS = 128
_MAX_KERNEL_K = 32

_KEY_SOURCE = r"""
__device__ __forceinline__ unsigned long long descending_key(float value, unsigned long long column) {
    unsigned int u = __float_as_uint(value + 0.0f);            // -0.0 -> +0.0
    unsigned int ascending = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((unsigned long long)(~ascending) << 32) | column;
}
"""

_SELECT_SOURCE = _KEY_SOURCE + r"""
#define THREADS 128
#define KMAX 32
#define NO_KEY 0xffffffffffffffffULL

extern "C" __global__ void topk_rows(const float* sims, const long long num_columns, const int k,
                                     float* out_values, long long* out_indices) {
    const int tid = threadIdx.x;
    const float* row = sims + (long long)blockIdx.x * num_columns;
    unsigned long long best[KMAX];
    int count = 0;
    for (long long c = tid; c < num_columns; c += THREADS) {
        const unsigned long long key = descending_key(row[c], (unsigned long long)c);
        if (count == k && key >= best[k - 1]) continue;
        int slot = count < k ? count++ : k - 1;
        while (slot > 0 && best[slot - 1] > key) { best[slot] = best[slot - 1]; --slot; }
        best[slot] = key;
    }
    __shared__ unsigned long long reduce[THREADS];
    int head = 0;
    for (int r = 0; r < k; ++r) {
        const unsigned long long mine = head < count ? best[head] : NO_KEY;
        reduce[tid] = mine;
        __syncthreads();
        for (int half = THREADS / 2; half > 0; half >>= 1) {
            if (tid < half && reduce[tid + half] < reduce[tid]) reduce[tid] = reduce[tid + half];
            __syncthreads();
        }
        const unsigned long long winner = reduce[0];
        if (mine == winner) ++head;                          // keys are unique inside a row
        if (tid == 0) {
            const long long column = (long long)(winner & 0xffffffffULL);
            out_indices[(long long)blockIdx.x * k + r] = column;
            out_values[(long long)blockIdx.x * k + r] = row[column];
        }
        __syncthreads();
    }
}
"""


@lru_cache(maxsize=None)
def _select_kernel() -> cupy.RawKernel:
    return cupy.RawKernel(_SELECT_SOURCE, "topk_rows")


@lru_cache(maxsize=None)
def _key_kernel() -> cupy.ElementwiseKernel:
    return cupy.ElementwiseKernel("float32 value, int64 columns", "uint64 key",
                                  "key = descending_key(value, (unsigned long long)(i % columns))",
                                  "descending_keys", preamble=_KEY_SOURCE)


def topk_lowest_index_cupy(similarities: cupy.ndarray, k: int) -> tuple[cupy.ndarray, cupy.ndarray]:
    """Row-wise top-``k`` of a C-contiguous ``[Q, P]`` float32 array: ``([Q, k] float32, [Q, k] int64)``."""
    num_queries, num_columns = similarities.shape
    values = cupy.empty((num_queries, k), dtype=cupy.float32)
    indices = cupy.empty((num_queries, k), dtype=cupy.int64)
    if num_queries == 0 or k == 0:
        return values, indices
    if k <= _MAX_KERNEL_K:
        _select_kernel()((num_queries,), (_THREADS,),
                         (similarities, np.int64(num_columns), np.int32(k), values, indices))
        return values, indices
    keys = cupy.sort(_key_kernel()(similarities, np.int64(num_columns)), axis=1)[:, :k]
    indices = (keys & np.uint64(0xFFFFFFFF)).astype(cupy.int64)
    return cupy.take_along_axis(similarities, indices, axis=1), indices


def cosine_topk_cupy(normalized_queries: Tensor, normalized_prototypes: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``[Q, D]`` x ``[P, D]`` normalised rows -> ``(similarities [Q, k], indices [Q, k])`` on the CUDA device."""
    device = normalized_prototypes.device if normalized_prototypes.is_cuda else torch.device("cuda")
    queries = cupy.from_dlpack(normalized_queries.to(device).contiguous())
    prototypes = cupy.from_dlpack(normalized_prototypes.to(device).contiguous())
    similarities = cupy.ascontiguousarray(cupy.matmul(queries, prototypes.T))
    values, indices = topk_lowest_index_cupy(similarities, k)
    return torch.from_dlpack(values), torch.from_dlpack(indices)
