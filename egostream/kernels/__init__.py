"""Kernels with a CuPy path on a CUDA device and a CPU path with identical results: temporal edges, cosine top-k, 1-D NMS / soft-NMS."""
from egostream.kernels.temporal_edges import radius_edges, radius_edges_incremental, radius_edges_ptr
