"""What the kernels' CuPy paths share: their CUDA sources (package data in ``egostream/kernels/cuda``), compilation
through CuPy, and running on torch's current CUDA stream.

The CUDA sources are plain files so that the same text is compiled by NVRTC on a GPU and, in the test suite, by a
host C++ compiler under a thread-block emulator (``tests/kernels/cuda_emulator.py``). CuPy is imported only by the
functions that need a GPU.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Callable

import torch

if TYPE_CHECKING:
    import cupy

__all__ = ["ArrayView", "CudaSource", "compile_module", "cuda_device_for", "torch_stream"]

ArrayView = Callable[[torch.Tensor], Any]
"""A zero-copy array view of a tensor, passed to a raw kernel as a pointer: ``cupy.from_dlpack`` on a GPU,
``numpy.from_dlpack`` under the test emulator."""


@dataclass(frozen=True)
class CudaSource:
    """One compilation unit: source files of ``egostream/kernels/cuda`` (concatenated in order) and ``-D`` macros.

    Every unit is compiled with ``--fmad=false`` so that no multiply and add are contracted into one rounding, which
    keeps the float arithmetic identical to the CPU paths.
    """

    files: tuple[str, ...]
    defines: tuple[tuple[str, int | str], ...] = ()

    def code(self) -> str:
        root = files("egostream.kernels") / "cuda"
        return "\n".join((root / name).read_text() for name in self.files)

    def macro_options(self) -> tuple[str, ...]:
        return tuple(f"-D{name}={value}" for name, value in self.defines)

    def nvrtc_options(self) -> tuple[str, ...]:
        return ("--fmad=false", *self.macro_options())


@lru_cache(maxsize=None)
def compile_module(source: CudaSource) -> cupy.RawModule:
    """The CuPy module of ``source``, compiled once per process (CuPy also caches the binary on disk)."""
    import cupy

    return cupy.RawModule(code=source.code(), options=source.nvrtc_options())


def cuda_device_for(tensor: torch.Tensor) -> torch.device:
    """Where a CuPy path runs for ``tensor``: its own device if it is on a GPU, else the current CUDA device (a
    forced ``backend="cupy"`` on CPU tensors copies them there)."""
    return tensor.device if tensor.is_cuda else torch.device("cuda", torch.cuda.current_device())


@contextlib.contextmanager
def torch_stream(device: torch.device) -> Iterator[Any]:
    """Run the CuPy work inside on ``device`` and on torch's current stream there, ordered with torch's own work."""
    import cupy

    index = device.index if device.index is not None else torch.cuda.current_device()
    with cupy.cuda.Device(index):
        stream = cupy.cuda.ExternalStream(torch.cuda.current_stream(index).cuda_stream)
        with stream:
            yield stream
