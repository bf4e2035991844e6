"""The CUDA compilation units of the CuPy paths compile with NVRTC, the runtime compiler CuPy uses, with the CuPy
path's options, and export the kernels its launch code looks up. No GPU is needed: NVRTC ships with torch's CUDA
dependencies (``cuda-bindings``); the test is skipped where it does not.

NVRTC runs in a child process: loading the CUDA 13 libraries into the test process disturbed later torch calls
there (tensor sizes read as 0), so the test process never loads them.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from egostream.kernels._cosine_topk_cupy import topk_source
from egostream.kernels._cuda import CudaSource
from egostream.kernels._nms_cupy import KERNEL, nms_source
from egostream.kernels._temporal_edges_cupy import edges_source

pytestmark = pytest.mark.skipif(importlib.util.find_spec("cuda.bindings") is None,
                                reason="NVRTC Python bindings (cuda-bindings) not installed")

UNITS = {
    "nms": (nms_source(), {KERNEL: 21}),
    "topk": (topk_source(), {"topk_rows": 5, "topk_partial": 6, "topk_merge": 7, "row_keys": 4}),
    "edges_float32": (edges_source(np.dtype(np.float32)), {"count_runs": 11, "write_runs": 9}),
    "edges_float64": (edges_source(np.dtype(np.float64)), {"count_runs": 11, "write_runs": 9}),
}

# Reads {"code", "name", "options"} on stdin; prints {"status", "log", "ptx"} (status "unavailable" when the NVRTC
# library cannot be loaded).
_COMPILE_SCRIPT = r"""
import json, sys
from cuda.bindings import nvrtc
request = json.load(sys.stdin)
try:
    status, program = nvrtc.nvrtcCreateProgram(request["code"].encode(), request["name"].encode(), 0, [], [])
except RuntimeError as error:
    print(json.dumps({"status": "unavailable", "log": str(error), "ptx": ""}))
    sys.exit(0)
options = [option.encode() for option in request["options"]]
(status,) = nvrtc.nvrtcCompileProgram(program, len(options), options)
_, size = nvrtc.nvrtcGetProgramLogSize(program)
log = b" " * size
nvrtc.nvrtcGetProgramLog(program, log)
ptx = b""
if status == nvrtc.nvrtcResult.NVRTC_SUCCESS:
    _, size = nvrtc.nvrtcGetPTXSize(program)
    ptx = b" " * size
    nvrtc.nvrtcGetPTX(program, ptx)
nvrtc.nvrtcDestroyProgram(program)
print(json.dumps({"status": status.name, "log": log.decode(errors="replace").rstrip("\x00"),
                  "ptx": ptx.decode(errors="replace").rstrip("\x00")}))
"""


def _compile_to_ptx(source: CudaSource, name: str) -> str:
    request = dict(code=source.code(), name=f"{name}.cu",
                   options=[*source.nvrtc_options(), "--gpu-architecture=compute_80"])
    child = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT], input=json.dumps(request), capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    if result["status"] == "unavailable":
        pytest.skip(f"NVRTC not loadable: {result['log']}")
    assert result["status"] == "NVRTC_SUCCESS", result["log"]
    return result["ptx"]


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_compiles_with_nvrtc_and_exports_the_launched_kernels(unit: str) -> None:
    source, kernels = UNITS[unit]
    ptx = _compile_to_ptx(source, unit)
    entries = {name: params for name, params in re.findall(r"\.visible \.entry (\w+)\(([^)]*)\)", ptx)}
    assert set(entries) == set(kernels)
    for name, num_parameters in kernels.items():  # extern "C": unmangled names, one .param per C parameter
        assert entries[name].count(".param") == num_parameters, name
