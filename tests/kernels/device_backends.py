"""Fixtures for the kernels' device paths: the real CuPy path on a GPU, or the same CUDA sources under the emulator.

A pytest plugin, loaded by ``tests/conftest.py`` so that every test directory can use the fixtures.

``device_backend`` runs a test twice: ``cupy`` (CUDA tensors, skipped without CuPy and a GPU) and ``emulated`` (CPU
tensors; the kernels' CuPy launch code runs with NumPy views of the tensors and the CUDA sources compiled for the
host under ``cuda_emulator.h``, skipped without a host C++ compiler). Either way the test calls the public kernels with
``backend="cupy"``. ``kernel_backend`` adds the CPU path as a third run.
"""
from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch

from egostream.kernels import _cosine_topk_cupy, _nms_cupy, _temporal_edges_cupy
from egostream.testing import requires_cuda
from tests.kernels.cuda_emulator import HOST_COMPILER, EmulatedModule, requires_host_compiler

# Small blocks make every block-strided loop and multi-chunk scan of the kernels run several rounds on small inputs;
# the shuffled thread order of every phase exposes order-dependent (racy) code.
EMULATED_THREADS = 8
EMULATED_ORDER = 2


class DeviceBackend(NamedTuple):
    """``name`` to pass as ``backend=``; ``device`` for the input tensors; ``emulated`` when no GPU is involved."""

    name: str
    device: torch.device
    emulated: bool


class EmulatedBuilds:
    """The kernels' compilation units built for the host, once per test session; ``calls`` counts the emulated
    launches of each kernel family (``nms``, ``topk``, ``edges``) since the last :meth:`install`."""

    def __init__(self, build_dir: Path, threads: int, order: int) -> None:
        self.build_dir, self.threads, self.order = build_dir, threads, order
        self.nms = EmulatedModule(_nms_cupy.nms_source(threads), build_dir, order=order)
        self.topk = EmulatedModule(_cosine_topk_cupy.topk_source(threads), build_dir, order=order)
        self.edges = {dtype: EmulatedModule(_temporal_edges_cupy.edges_source(np.dtype(dtype)), build_dir,
                                            order=order) for dtype in ("float32", "float64")}
        self.calls: Counter[str] = Counter()

    def greedy_groups(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["nms"] += 1
        kernel = self.nms.get_function(_nms_cupy.KERNEL)
        return _nms_cupy.greedy_groups_device(np.from_dlpack, kernel, self.threads, *args, **kwargs)

    def topk_lowest_index(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["topk"] += 1
        return _cosine_topk_cupy.topk_lowest_index_device(np.from_dlpack, self.topk.get_function, self.threads, *args,
                                                          **kwargs)

    def radius_edges(self, pos: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.calls["edges"] += 1
        module = self.edges[str(pos.dtype).removeprefix("torch.")]
        return _temporal_edges_cupy.radius_runs_device(np.from_dlpack, module.get_function, self.threads, pos, *args,
                                                       **kwargs)

    def install(self, monkeypatch: pytest.MonkeyPatch, *, everywhere: bool = False) -> None:
        """Route ``backend="cupy"`` of every kernel to these builds for the current test; with ``everywhere`` also
        ``backend="auto"``, so that code calling the kernels with their defaults (engine, replay) takes them."""
        routed = ("cupy", "auto") if everywhere else ("cupy",)
        for name in ("nms", "cosine_topk", "temporal_edges"):  # modules (the package re-exports same-named functions)
            module = importlib.import_module(f"egostream.kernels.{name}")
            monkeypatch.setattr(module, "use_cupy", lambda backend, *tensors: backend in routed)
        monkeypatch.setattr(_nms_cupy, "greedy_groups_cupy", self.greedy_groups)
        monkeypatch.setattr(_cosine_topk_cupy, "topk_lowest_index_cupy", self.topk_lowest_index)
        monkeypatch.setattr(_temporal_edges_cupy, "radius_edges_cupy", self.radius_edges)
        self.calls.clear()


@pytest.fixture(scope="session")
def emulated_build_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Host builds of the CUDA sources, kept in pytest's cache (file names are hashes of the generated source), or
    in a temporary folder when the cache plugin is off (``-p no:cacheprovider``)."""
    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir("cuda_emulation")) if cache is not None else tmp_path_factory.mktemp("cuda_emulation")


@pytest.fixture(scope="session")
def emulated_builds(emulated_build_dir: Path) -> EmulatedBuilds:
    return EmulatedBuilds(emulated_build_dir, EMULATED_THREADS, EMULATED_ORDER)


def _select_backend(name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> DeviceBackend:
    if name == "cpu":
        return DeviceBackend("cpu", torch.device("cpu"), emulated=False)
    if name == "cupy":
        return DeviceBackend("cupy", torch.device("cuda"), emulated=False)
    request.getfixturevalue("emulated_builds").install(monkeypatch)
    return DeviceBackend("cupy", torch.device("cpu"), emulated=True)


_CUPY = pytest.param("cupy", marks=requires_cuda)
_EMULATED = pytest.param("emulated", marks=requires_host_compiler)


@pytest.fixture
def emulated_kernels_everywhere(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> EmulatedBuilds:
    """Every kernel call in the test, ``backend="auto"`` included, takes the emulated CuPy path."""
    if HOST_COMPILER is None:
        pytest.skip("needs a host C++ compiler (g++)")
    builds = request.getfixturevalue("emulated_builds")
    builds.install(monkeypatch, everywhere=True)
    return builds


@pytest.fixture(params=[_CUPY, _EMULATED])
def device_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> DeviceBackend:
    """The CuPy path, on a GPU or emulated."""
    return _select_backend(request.param, request, monkeypatch)


@pytest.fixture(params=["cpu", _CUPY, _EMULATED])
def kernel_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> DeviceBackend:
    """The CPU path, then the CuPy path on a GPU or emulated."""
    return _select_backend(request.param, request, monkeypatch)
