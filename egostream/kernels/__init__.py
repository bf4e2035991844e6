"""Kernels with a CuPy path on a CUDA device and a CPU path with identical results: temporal edges, cosine top-k, 1-D NMS / soft-NMS."""
