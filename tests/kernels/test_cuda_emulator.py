"""The block emulator that runs the CUDA sources in CI: it must catch what a GPU would show (barrier divergence,
order-dependent races, wrong argument types), and the kernels must agree with the CPU paths at their production block
sizes under every thread order."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from egostream.kernels import _cosine_topk_cupy, _nms_cupy
from egostream.kernels._cuda import CudaSource
from egostream.kernels.cosine_topk import topk_lowest_index
from egostream.kernels.nms import _greedy_groups_numpy, pack_groups
from tests.kernels.cuda_emulator import EmulatedModule, requires_host_compiler
from tests.kernels.nms_cases import case_rng, random_case

pytestmark = requires_host_compiler


@dataclass(frozen=True)
class InlineSource(CudaSource):
    """A compilation unit given as text, for kernels that exist only in these tests."""

    text: str = ""

    def code(self) -> str:
        return self.text


_NEIGHBOUR_KERNEL = r"""
extern "C" __global__ void read_neighbour(const int* values, int* out) {
    __shared__ int slots[THREADS];
    const int tid = threadIdx.x;
    slots[tid] = values[tid];
    SYNC
    out[tid] = slots[(tid + 1) % THREADS];
}
"""


def _neighbour_module(build_dir: Path, synchronised: bool) -> EmulatedModule:
    text = _NEIGHBOUR_KERNEL.replace("SYNC", "__syncthreads();" if synchronised else "")
    return EmulatedModule(InlineSource((), (("THREADS", 16),), text), build_dir)


def _run_neighbour(module: EmulatedModule, order: int) -> np.ndarray:
    values, out = np.arange(16, dtype=np.int32) * 10, np.zeros(16, dtype=np.int32)
    module.get_function("read_neighbour", order=order)((1,), (16,), (values, out))
    return out


def test_a_race_between_barriers_depends_on_the_thread_order(emulated_build_dir: Path) -> None:
    racy = _neighbour_module(emulated_build_dir, synchronised=False)
    outputs = {tuple(_run_neighbour(racy, order)) for order in (0, 1, 2, 3)}
    assert len(outputs) > 1
    safe = _neighbour_module(emulated_build_dir, synchronised=True)
    expected = np.roll(np.arange(16, dtype=np.int32) * 10, -1)
    for order in (0, 1, 2, 3):
        np.testing.assert_array_equal(_run_neighbour(safe, order), expected)


_DIVERGENT_KERNELS = {
    "early_exit": r"""
extern "C" __global__ void early_exit(int* out) {
    if (threadIdx.x == 0) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}
""",
    "split_barriers": r"""
extern "C" __global__ void split_barriers(int* out) {
    if (threadIdx.x % 2) {
        __syncthreads();
        out[threadIdx.x] = 1;
    } else {
        __syncthreads();
        out[threadIdx.x] = 2;
    }
}
""",
}


@pytest.mark.parametrize("name", sorted(_DIVERGENT_KERNELS))
def test_barrier_divergence_is_reported(name: str, emulated_build_dir: Path) -> None:
    """Threads that return while others wait at a barrier, or that wait at different barriers."""
    module = EmulatedModule(InlineSource((), (), _DIVERGENT_KERNELS[name]), emulated_build_dir)
    with pytest.raises(RuntimeError, match="barrier divergence"):
        module.get_function(name)((1,), (4,), (np.zeros(4, dtype=np.int32),))


def test_an_access_past_the_end_of_an_argument_is_a_memory_fault(emulated_build_dir: Path) -> None:
    text = r"""
extern "C" __global__ void shifted_copy(const int* values, int* out) {
    out[threadIdx.x] = values[threadIdx.x + 1];
}
"""
    kernel = EmulatedModule(InlineSource((), (), text), emulated_build_dir).get_function("shifted_copy")
    values, out = np.arange(4, dtype=np.int32), np.zeros(4, dtype=np.int32)
    with pytest.raises(RuntimeError, match="memory fault"):
        kernel((1,), (4,), (values, out))
    np.testing.assert_array_equal(out, 0)  # nothing is copied back from a failed launch
    kernel((1,), (3,), (values, out[:3]))  # in bounds, the next launch runs normally
    np.testing.assert_array_equal(out, [1, 2, 3, 0])


def test_arguments_are_checked_against_the_kernel_signature(emulated_build_dir: Path) -> None:
    module = EmulatedModule(_cosine_topk_cupy.topk_source(4), emulated_build_dir)
    kernel = module.get_function("topk_rows")
    sims, values, indices = (np.zeros((2, 5), np.float32), np.zeros((2, 1), np.float32), np.zeros((2, 1), np.int64))
    kernel((2,), (4,), (sims, np.int64(5), np.int32(1), values, indices))
    with pytest.raises(TypeError, match=r"topk_rows\(k\): expected a int32 scalar"):
        kernel((2,), (4,), (sims, np.int64(5), 1, values, indices))
    with pytest.raises(TypeError, match=r"topk_rows\(indices\): expected a C-contiguous int64 array"):
        kernel((2,), (4,), (sims, np.int64(5), np.int32(1), values, indices.astype(np.int32)))
    with pytest.raises(TypeError, match="expected 5 arguments"):
        kernel((2,), (4,), (sims, np.int64(5), np.int32(1), values))


@pytest.mark.parametrize("order", [0, 1, 7])
def test_nms_kernel_at_production_block_sizes(order: int, emulated_build_dir: Path) -> None:
    for index in range(12):
        case = random_case(case_rng("production", order, index))
        if len(case.scores) == 0:
            continue
        rows, counts = pack_groups(case.cls_idxs)
        for threads in sorted({_nms_cupy.block_threads(rows.shape[1]), _nms_cupy.THREADS}):
            kernel = EmulatedModule(_nms_cupy.nms_source(threads), emulated_build_dir,
                                    order=order).get_function(_nms_cupy.KERNEL)
            for soft in (True, False):
                call = dict(soft=soft, sigma=0.5, min_score=0.001 if soft else 0.0, iou_threshold=0.5, max_picks=0)
                expected = _greedy_groups_numpy(case.segs, case.scores, rows, counts, **call)
                got = _nms_cupy.greedy_groups_device(np.from_dlpack, kernel, threads, case.segs, case.scores, rows,
                                                     counts, **call)
                assert torch.equal(got.counts, expected.counts)
                taken = torch.arange(rows.shape[1])[None, :] < expected.counts[:, None]
                assert torch.equal(got.rows[taken], expected.rows[taken])
                assert torch.equal(got.scores[taken], expected.scores[taken])


@pytest.mark.parametrize("order", [0, 1, 7])
def test_topk_kernels_at_production_block_size(order: int, emulated_build_dir: Path) -> None:
    module = EmulatedModule(_cosine_topk_cupy.topk_source(_cosine_topk_cupy.THREADS), emulated_build_dir, order=order)
    rng = np.random.default_rng(order)
    for index in range(10):
        values = torch.from_numpy(np.round(rng.standard_normal((3, int(rng.integers(1, 1500)))), 1).astype(np.float32))
        k = int(rng.integers(1, min(values.shape[1], _cosine_topk_cupy.KMAX) + 1))
        columns_per_block = [_cosine_topk_cupy.COLUMNS_PER_BLOCK, 100, k][index % 3]  # one part, several, k each
        got = _cosine_topk_cupy.topk_lowest_index_device(np.from_dlpack, module.get_function,
                                                         _cosine_topk_cupy.THREADS, values, k,
                                                         columns_per_block=columns_per_block)
        expected = topk_lowest_index(values, k)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
