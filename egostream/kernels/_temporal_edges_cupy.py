"""CUDA path of :mod:`egostream.kernels.temporal_edges`: the raw kernels of ``cuda/temporal_edges.cu``.

One thread per target node walks the contiguous run of its sources (positions are sorted inside each segment), a
prefix sum of the per-target counts gives the output offsets, and a second launch writes the edges sorted by target
then source, like the CPU path. :func:`radius_runs_device` keeps its buffers in torch and hands the kernels
zero-copy views made by ``as_array`` (``cupy.from_dlpack`` on a GPU; ``numpy.from_dlpack`` in the tests, where the
CUDA source runs under a block emulator), so the same launch code serves both.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from egostream.kernels._cuda import ArrayView, CudaSource, compile_module, cuda_device_for, torch_stream
from egostream.kernels._layout import segment_of_rows

__all__ = ["THREADS", "edges_source", "radius_runs_device", "radius_edges_cupy"]

THREADS = 256
_POSITION_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def edges_source(dtype: np.dtype) -> CudaSource:
    """The compilation unit of the edge kernels for positions of ``dtype`` (float32 or float64)."""
    if np.dtype(dtype) not in _POSITION_TYPES:
        raise ValueError(f"the CUDA radius kernels support float32 and float64 positions, got {dtype}")
    return CudaSource(("temporal_edges.cu",), (("POSITION_T", _POSITION_TYPES[np.dtype(dtype)]),))


def radius_runs_device(as_array: ArrayView, get_function: Callable[[str], Any], threads: int, pos: Tensor, ptr: Tensor,
                       radius: float, loop: bool, *, first_target: int = 0, num_old: int = 0) -> Tensor:
    """``[2, E]`` int64 edges (source, target) on the device of ``pos``, sorted by target then source.

    Args:
        as_array: zero-copy array view of a tensor for a kernel argument (``cupy.from_dlpack``, or
            ``numpy.from_dlpack`` under the test emulator); the buffers themselves are torch tensors.
        get_function: kernel lookup of the compiled :func:`edges_source` for the dtype of ``pos``.
        threads: block size.
        pos: ``[N]`` float32/float64 positions, sorted inside each segment ``[ptr[s], ptr[s+1])``.
        ptr: ``[S + 1]`` int64 segment offsets from 0 to ``N``.
        radius: strict radius (``(p_j - p_i)^2 < radius^2`` in the dtype of ``pos``).
        loop: keep ``i -> i``.
        first_target: only targets ``i >= first_target``.
        num_old: targets ``i < num_old`` keep only sources ``j >= num_old`` (the edges that appending the nodes
            ``num_old..`` adds); ``0`` gives the whole graph.
    """
    device, n = pos.device, len(pos)
    num_targets = max(n - first_target, 0)
    left, right, count = (torch.zeros(num_targets, dtype=torch.long, device=device) for _ in range(3))
    blocks = ((num_targets + threads - 1) // threads,)
    scalars = (np.int64(first_target), np.int64(n), np.int64(num_old), np.int32(loop))
    if num_targets:
        pos_x = as_array(pos.detach().contiguous())
        segment_of = as_array(segment_of_rows(ptr, n).contiguous())
        get_function("count_runs")(blocks, (threads,),
                                   (pos_x, segment_of, as_array(ptr.contiguous()), pos_x.dtype.type(radius * radius),
                                    *scalars, as_array(left), as_array(right), as_array(count)))
    offset = torch.cumsum(count, 0) - count
    total = int(count.sum())
    edges = torch.empty(2, total, dtype=torch.long, device=device)
    if total:
        get_function("write_runs")(blocks, (threads,), (as_array(left), as_array(right), as_array(offset), *scalars,
                                                        as_array(edges[0]), as_array(edges[1])))
    return edges


def radius_edges_cupy(pos: Tensor, ptr: Tensor, radius: float, loop: bool, *, first_target: int = 0,
                      num_old: int = 0) -> Tensor:
    """:func:`radius_runs_device` with CuPy, on torch's current stream; edges on the device of ``pos`` (CPU inputs are
    computed on the current CUDA device)."""
    import cupy

    module = compile_module(edges_source(np.dtype(str(pos.dtype).removeprefix("torch."))))
    device = cuda_device_for(pos)
    with torch_stream(device):
        edges = radius_runs_device(cupy.from_dlpack, module.get_function, THREADS, pos.to(device), ptr.to(device),
                                   radius, loop, first_target=first_target, num_old=num_old)
    return edges.to(pos.device)
