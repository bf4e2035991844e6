"""The CUDA compilation units of the CuPy paths compile with NVRTC, the runtime compiler CuPy uses, with the CuPy
path's options, and export the kernels its launch code looks up. No GPU is needed: NVRTC ships with torch's CUDA
dependencies (``cuda-bindings``); the test is skipped where it does not."""
from __future__ import annotations

import re

import numpy as np
import pytest

from egostream.kernels._cosine_topk_cupy import topk_source
from egostream.kernels._cuda import CudaSource
from egostream.kernels._nms_cupy import KERNEL, nms_source
from egostream.kernels._temporal_edges_cupy import edges_source

nvrtc = pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC Python bindings (cuda-bindings) not installed")

UNITS = {
    "nms": (nms_source(), {KERNEL: 21}),
    "topk": (topk_source(), {"topk_rows": 5, "topk_partial": 6, "topk_merge": 7, "row_keys": 4}),
    "edges_float32": (edges_source(np.dtype(np.float32)), {"count_runs": 11, "write_runs": 9}),
    "edges_float64": (edges_source(np.dtype(np.float64)), {"count_runs": 11, "write_runs": 9}),
}


def _check(result: tuple, what: str) -> tuple:
    status, *values = result
    assert status == nvrtc.nvrtcResult.NVRTC_SUCCESS, f"{what}: {status}"
    return tuple(values)


def _read(size_call: tuple, read: object, program: object) -> str:
    """NVRTC writes the log / PTX into a caller's buffer. It must be a ``bytearray``: ``b" " * size`` is, for size 1,
    the interpreter's shared one-byte object, and writing into it corrupts every later use of ``b" "``."""
    (size,) = _check(size_call, "size")
    buffer = bytearray(size)
    _check(read(program, buffer), "read")
    return buffer.decode(errors="replace").rstrip("\x00")


def _compile_to_ptx(source: CudaSource, name: str) -> str:
    try:
        (program,) = _check(nvrtc.nvrtcCreateProgram(source.code().encode(), f"{name}.cu".encode(), 0, [], []),
                            "create")
    except RuntimeError as error:  # the bindings import but the NVRTC library cannot be loaded
        pytest.skip(f"NVRTC not loadable: {error}")
    options = [option.encode() for option in source.nvrtc_options()] + [b"--gpu-architecture=compute_80"]
    (status,) = nvrtc.nvrtcCompileProgram(program, len(options), options)
    log = _read(nvrtc.nvrtcGetProgramLogSize(program), nvrtc.nvrtcGetProgramLog, program)
    assert status == nvrtc.nvrtcResult.NVRTC_SUCCESS, log
    ptx = _read(nvrtc.nvrtcGetPTXSize(program), nvrtc.nvrtcGetPTX, program)
    _check(nvrtc.nvrtcDestroyProgram(program), "destroy")
    return ptx


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_compiles_with_nvrtc_and_exports_the_launched_kernels(unit: str) -> None:
    source, kernels = UNITS[unit]
    ptx = _compile_to_ptx(source, unit)
    entries = {name: params for name, params in re.findall(r"\.visible \.entry (\w+)\(([^)]*)\)", ptx)}
    assert set(entries) == set(kernels)
    for name, num_parameters in kernels.items():  # extern "C": unmangled names, one .param per C parameter
        assert entries[name].count(".param") == num_parameters, name
