"""CUDA path of :mod:`egostream.kernels.temporal_edges` (CuPy raw kernels; imported only when CuPy sees a GPU).

One thread per target node ``i``. Positions are sorted inside each segment, so the sources of ``i`` form one
contiguous run around it: the thread walks left and right from ``i`` while ``(p_j - p_i)^2 < r^2`` holds (the same
test, in the same dtype, as the CPU path and torch_cluster). A first launch counts the run, a prefix sum gives each
target its output offset, and a second launch writes the sources in increasing order, so the edges come out sorted
by target then source exactly like the CPU path.
"""
from __future__ import annotations

from functools import lru_cache

import cupy
import torch
from torch import Tensor

__all__ = ["radius_edges_cupy"]

_SOURCE = r"""
extern "C" __global__ void count_run_{name}(const {T}* pos, const long long* segment_of, const long long* ptr,
                                           const {T} r2, const long long n, long long* left, long long* right) {{
    long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= n) return;
    const long long s = segment_of[i];
    const long long begin = ptr[s], end = ptr[s + 1];
    const {T} p = pos[i];
    long long j = i - 1;
    while (j >= begin) {{ const {T} d = pos[j] - p; if (!(d * d < r2)) break; --j; }}
    left[i] = i - 1 - j;
    j = i + 1;
    while (j < end) {{ const {T} d = pos[j] - p; if (!(d * d < r2)) break; ++j; }}
    right[i] = j - i - 1;
}}

extern "C" __global__ void write_run_{name}(const long long* left, const long long* right, const long long* offset,
                                           const long long n, const int loop, long long* source,
                                           long long* target) {{
    long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= n) return;
    long long out = offset[i];
    for (long long j = i - left[i]; j <= i + right[i]; ++j) {{
        if (j == i && !loop) continue;
        source[out] = j;
        target[out] = i;
        ++out;
    }}
}}
"""

_THREADS = 256


@lru_cache(maxsize=None)
def _kernels(dtype: torch.dtype) -> tuple[cupy.RawKernel, cupy.RawKernel]:
    names = {torch.float32: ("f32", "float"), torch.float64: ("f64", "double")}
    if dtype not in names:
        raise ValueError(f"the CUDA radius kernel supports float32 and float64 positions, got {dtype}")
    name, ctype = names[dtype]
    module = cupy.RawModule(code=_SOURCE.format(name=name, T=ctype))
    return module.get_function(f"count_run_{name}"), module.get_function(f"write_run_{name}")


def radius_edges_cupy(pos: Tensor, ptr: Tensor, radius: float, loop: bool) -> Tensor:
    """``[2, E]`` radius edges for CUDA ``pos`` sorted inside each ``[ptr[s], ptr[s+1])`` (see the CPU path)."""
    count_run, write_run = _kernels(pos.dtype)
    n = len(pos)
    pos = pos.contiguous()
    ptr = ptr.contiguous()
    segment_of = torch.repeat_interleave(torch.arange(len(ptr) - 1, device=pos.device), ptr[1:] - ptr[:-1],
                                         output_size=n).contiguous()
    left = torch.empty(n, dtype=torch.long, device=pos.device)
    right = torch.empty_like(left)
    r2 = torch.tensor(radius * radius, dtype=pos.dtype).item()
    scalar = cupy.float32 if pos.dtype == torch.float32 else cupy.float64
    blocks = ((n + _THREADS - 1) // _THREADS,)
    stream = cupy.cuda.ExternalStream(torch.cuda.current_stream(pos.device).cuda_stream)
    with cupy.cuda.Device(pos.device.index or 0), stream:
        count_run(blocks, (_THREADS,), (cupy.from_dlpack(pos), cupy.from_dlpack(segment_of), cupy.from_dlpack(ptr),
                                        scalar(r2), cupy.int64(n), cupy.from_dlpack(left), cupy.from_dlpack(right)))
        per_target = left + right + (1 if loop else 0)
        offset = (torch.cumsum(per_target, 0) - per_target).contiguous()
        total = int(per_target.sum())
        source = torch.empty(total, dtype=torch.long, device=pos.device)
        target = torch.empty_like(source)
        if total:
            write_run(blocks, (_THREADS,), (cupy.from_dlpack(left), cupy.from_dlpack(right), cupy.from_dlpack(offset),
                                            cupy.int64(n), cupy.int32(int(loop)), cupy.from_dlpack(source),
                                            cupy.from_dlpack(target)))
    return torch.stack([source, target])
