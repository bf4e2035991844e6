"""Kernels with a CuPy path on a CUDA device and a CPU path with identical results: temporal edges, cosine top-k, 1-D NMS /
soft-NMS; and the small-batch stacked linear maps of the streaming engine (oneDNN on the CPU)."""
from egostream.kernels.cosine_topk import PrototypeIndex, cosine_topk, normalize_rows
from egostream.kernels.nms import NMSResult, batched_nms, nms, soft_nms
from egostream.kernels.stacked_linear import PackedSequential, StackedLinear
from egostream.kernels.temporal_edges import radius_edges, radius_edges_incremental, radius_edges_ptr

__all__ = [
    "PrototypeIndex", "cosine_topk", "normalize_rows",
    "NMSResult", "batched_nms", "nms", "soft_nms",
    "PackedSequential", "StackedLinear",
    "radius_edges", "radius_edges_incremental", "radius_edges_ptr",
]
