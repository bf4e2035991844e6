"""Choosing between a kernel's CuPy path and its CPU path."""
from __future__ import annotations

from typing import Literal

from torch import Tensor

from egostream import optional
from egostream.errors import InputError

__all__ = ["Backend", "use_cupy"]

Backend = Literal["auto", "cpu", "cupy"]


def use_cupy(backend: Backend, *tensors: Tensor) -> bool:
    """True when a kernel should take its CuPy path.

    ``"auto"`` takes it when CuPy sees a CUDA device (:data:`egostream.optional.WITH_CUPY`) and the first tensor
    lives on a CUDA device; ``"cpu"`` never does; ``"cupy"`` always does and fails without CuPy and a GPU.
    The non-CuPy path is torch (run on the tensors' own device, so a CUDA tensor without CuPy still runs on the GPU)
    or, for NMS, a NumPy loop on the host.
    """
    if backend == "cpu":
        return False
    if backend == "cupy":
        if not optional.WITH_CUPY:
            raise RuntimeError("backend='cupy' needs CuPy and a CUDA device (egostream.optional.WITH_CUPY is False)")
        return True
    if backend == "auto":
        return optional.WITH_CUPY and bool(tensors) and tensors[0].is_cuda
    raise InputError(None, "backend", f"unknown backend {backend!r} (expected 'auto', 'cpu' or 'cupy')")
