"""Flags for optional dependencies and hardware, in the style of ``torch_geometric.typing``.

``WITH_CUPY`` is true only when CuPy imports *and* a CUDA device can be used: CuPy imports on a machine without a
GPU but cannot allocate there, and every kernel then takes its CPU path.
"""
from __future__ import annotations

import importlib.util

__all__ = ["WITH_CUPY", "WITH_NUMBA", "WITH_AV", "WITH_DECORD", "WITH_RAY", "WITH_OPEN_CLIP", "cuda_device_available"]


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def cuda_device_available() -> bool:
    """True when CuPy can see and allocate on at least one CUDA device."""
    if not _importable("cupy"):
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0 and bool(cupy.zeros(1).size)
    except Exception:  # CuPy raises several driver/runtime error types without a GPU
        return False


WITH_CUPY: bool = cuda_device_available()
WITH_NUMBA: bool = _importable("numba")
WITH_AV: bool = _importable("av")
WITH_DECORD: bool = _importable("decord")
WITH_RAY: bool = _importable("ray")
WITH_OPEN_CLIP: bool = _importable("open_clip")
