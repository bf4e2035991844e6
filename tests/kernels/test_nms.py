"""1-D NMS / soft-NMS: golden cases of ActionFormer's NMS, hand-computed cases, thousands of random cases against a
sequential oracle (tests/kernels/nms_oracle.py), the CuPy path against the CPU path, and the CPU path's two kernels
(compiled by Numba, and the NumPy fallback): every test runs once per CPU kernel, and the two are compared
bit for bit."""
from __future__ import annotations

import itertools
import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from egostream import optional
from egostream.errors import InputError
from egostream.kernels.nms import NMSResult, batched_nms, nms, soft_nms
from egostream.testing import golden_dir
from tests.kernels.device_backends import DeviceBackend
from tests.kernels.nms_cases import (
    RandomCase,
    case_rng,
    random_batched_call,
    random_cap,
    random_case,
    random_operator_params,
    rounded_segments,
)
from tests.kernels.nms_oracle import OraclePicks, batched_nms_oracle, hard_nms_rows, soft_nms_rows

# The module (the package re-exports a function of the same name).
nms_module = importlib.import_module("egostream.kernels.nms")
_COMPILED = pytest.param("compiled", marks=pytest.mark.skipif(not optional.WITH_NUMBA, reason="needs Numba"))


_ONE_CPU_KERNEL = {"test_device_path_matches_cpu_on_random_inputs",
                   "test_compiled_and_numpy_cpu_kernels_agree_bit_for_bit"}


@pytest.fixture(autouse=True, params=[_COMPILED, "numpy"])
def cpu_kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test of this module once with the compiled CPU kernel and once with the NumPy fallback (the device
    comparison and the kernel comparison, slow and choosing their kernels themselves, run once)."""
    if request.param == "numpy" and request.function.__name__ in _ONE_CPU_KERNEL:
        pytest.skip("runs once, with the default CPU kernel")
    monkeypatch.setattr(nms_module, "CPU_KERNEL", request.param)
    return request.param



def _golden_cases() -> list:
    cases = []
    for path in sorted(golden_dir().glob("nms__*.json")):
        golden = json.loads(path.read_text())
        cases += [pytest.param(path, name, id=f"{path.stem}:{name}") for name in golden["expected"]["cases"]]
    return cases


def _run_call(call: dict, segs: torch.Tensor, scores: torch.Tensor, cls_idxs: torch.Tensor, backend: str) -> NMSResult:
    call = dict(call)
    operator = call.pop("op", None)
    if operator == "NMSop":
        return nms(segs, scores, cls_idxs, iou_threshold=call["iou_threshold"], min_score=call["min_score"],
                   max_num=call["max_num"], backend=backend)
    if operator == "SoftNMSop":
        assert call["method"] == 2, "only the Gaussian operator is reproduced"
        return soft_nms(segs, scores, cls_idxs, sigma=call["sigma"], min_score=call["min_score"],
                        max_num=call["max_num"], backend=backend)
    return batched_nms(segs, scores, cls_idxs, **call, backend=backend)


@pytest.mark.parametrize(("golden_file", "case_name"), _golden_cases())
def test_nms_golden(golden_file: Path, case_name: str, kernel_backend: DeviceBackend) -> None:
    golden = json.loads(golden_file.read_text())
    inputs = np.load(golden_file.parent / golden["inputs"]["file"])
    expected = np.load(golden_file.parent / golden["expected"]["arrays_file"])
    case = golden["expected"]["cases"][case_name]
    arrays = {key: expected[name] for key, name in case["arrays"].items()}

    segs, scores, cls_idxs = (torch.from_numpy(inputs[key]).to(kernel_backend.device)
                              for key in ("segs", "scores", "cls_idxs"))
    result = _run_call(case["call"], segs, scores, cls_idxs, kernel_backend.name)

    assert len(result.orig_idx) == case["n_out"]
    np.testing.assert_array_equal(result.orig_idx.cpu().numpy(), arrays["orig_idx"])
    np.testing.assert_array_equal(result.cls_idxs.cpu().numpy(), arrays["cls_idxs"])
    np.testing.assert_allclose(result.scores.cpu().numpy(), arrays["scores"], rtol=0, atol=2e-6)
    voted = "voting" in case_name and case["call"].get("voting_thresh", 0) > 0
    np.testing.assert_allclose(result.segs.cpu().numpy(), arrays["segs"], rtol=0, atol=2e-4 if voted else 0)


def _tensors(segs: list[list[float]], scores: list[float], cls_idxs: list[int] | None = None):
    cls = cls_idxs if cls_idxs is not None else [0] * len(scores)
    return (torch.tensor(segs, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32),
            torch.tensor(cls, dtype=torch.long))


def _gaussian(iou: float, sigma: float) -> float:
    return math.exp(-iou * iou / sigma)


def test_soft_nms_decays_overlapping_scores() -> None:
    segs, scores, cls = _tensors([[0, 1], [0, 1], [0.5, 1.5]], [0.9, 0.8, 0.7])
    result = soft_nms(segs, scores, cls, sigma=0.5, min_score=0.001, backend="cpu")
    same = 1.0 / (1.0 + 2e-6)  # identical segments: inter / (area + area - inter), area = len + 1e-6
    half = 0.5 / (2.0 + 2e-6 - 0.5)
    # row 1 decays to 0.8 * g(same) = 0.108, row 2 to 0.7 * g(half) = 0.561: row 2 is picked second
    second = 0.7 * _gaussian(half, 0.5)
    third_iou = 0.5 / (2.0 + 2e-6 - 0.5)
    third = 0.8 * _gaussian(same, 0.5) * _gaussian(third_iou, 0.5)
    assert result.orig_idx.tolist() == [0, 2, 1]
    np.testing.assert_allclose(result.scores.numpy(), [0.9, second, third], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result.segs.numpy(), segs[[0, 2, 1]].numpy())


def test_soft_nms_drop_moves_the_last_candidate_forward() -> None:
    # Row 1 duplicates row 0 and decays below min_score; the reference moves its array's last candidate (row 3)
    # into row 1's place, so row 3 now precedes row 2 and wins the tie between them (0.5 each, never decayed).
    segs, scores, cls = _tensors([[0, 1], [0, 1], [5, 6], [10, 11]], [0.9, 0.5, 0.5, 0.5])
    result = soft_nms(segs, scores, cls, sigma=0.5, min_score=0.1, backend="cpu")
    assert result.orig_idx.tolist() == [0, 3, 2]
    np.testing.assert_array_equal(result.scores.numpy(), np.float32([0.9, 0.5, 0.5]))


def test_soft_nms_min_score_rules() -> None:
    # The first pick survives below min_score; later candidates below it are dropped even without overlap;
    # a score equal to min_score (in float32) survives.
    segs, scores, cls = _tensors([[0, 1], [5, 6]], [0.05, 0.04])
    assert soft_nms(segs, scores, cls, sigma=0.5, min_score=0.1, backend="cpu").orig_idx.tolist() == [0]
    segs, scores, cls = _tensors([[0, 1], [5, 6]], [0.9, 0.1])
    assert soft_nms(segs, scores, cls, sigma=0.5, min_score=0.1, backend="cpu").orig_idx.tolist() == [0, 1]


def test_hard_nms_threshold_and_strict_min_score() -> None:
    segs, scores, cls = _tensors([[0, 10], [1, 10], [20, 30], [40, 41]], [0.9, 0.8, 0.7, 0.1])
    # iou(row 0, row 1) = 9 / 10 >= 0.5: suppressed; row 3 scores exactly float32(0.1), not > 0.1
    assert nms(segs, scores, cls, iou_threshold=0.5, min_score=0.1, backend="cpu").orig_idx.tolist() == [0, 2]
    assert nms(segs, scores, cls, iou_threshold=0.95, min_score=0.0, backend="cpu").orig_idx.tolist() == [0, 1, 2, 3]
    assert nms(segs, scores, cls, iou_threshold=0.5, min_score=0.0, max_num=2, backend="cpu").orig_idx.tolist() == [0, 2]


def test_identical_scores_visit_lower_rows_first() -> None:
    segs, scores, cls = _tensors([[0, 1], [3, 4], [0, 1], [6, 7]], [0.5, 0.5, 0.5, 0.5])
    assert nms(segs, scores, cls, iou_threshold=0.5, min_score=0.0, backend="cpu").orig_idx.tolist() == [0, 1, 3]
    result = batched_nms(segs, scores, cls, iou_threshold=0.5, min_score=0.0, max_seg_num=10, use_soft_nms=False,
                         backend="cpu")
    assert result.orig_idx.tolist() == [0, 1, 3]


def test_all_suppressed_but_one() -> None:
    segs, scores, cls = _tensors([[2, 4]] * 5, [0.3, 0.9, 0.5, 0.7, 0.1])
    for use_soft_nms in (False, True):
        result = batched_nms(segs, scores, cls, iou_threshold=0.5, min_score=0.5, max_seg_num=10, sigma=0.01,
                             use_soft_nms=use_soft_nms, backend="cpu")
        assert result.orig_idx.tolist() == [1]
        np.testing.assert_array_equal(result.scores.numpy(), np.float32([0.9]))


def test_empty_and_single_input() -> None:
    segs, scores, cls = _tensors([], [], [])
    segs = segs.reshape(0, 2)
    result = batched_nms(segs, scores, cls, iou_threshold=0.1, min_score=0.001, max_seg_num=10, backend="cpu")
    assert result.segs.shape == (0, 2) and result.scores.shape == (0,) and result.orig_idx.shape == (0,)
    assert result.cls_idxs.dtype == torch.long
    segs, scores, cls = _tensors([[1, 2]], [0.0001], [7])
    for use_soft_nms in (False, True):
        result = batched_nms(segs, scores, cls, iou_threshold=0.1, min_score=0.0, max_seg_num=10,
                             use_soft_nms=use_soft_nms, backend="cpu")
        assert result.orig_idx.tolist() == [0] and result.cls_idxs.tolist() == [7]


def test_multiclass_caps_each_class_then_sorts() -> None:
    segs, scores, cls = _tensors([[0, 1], [2, 3], [4, 5], [0, 1], [2, 3]], [0.9, 0.8, 0.7, 0.85, 0.95],
                                 [1, 1, 1, 0, 0])
    result = batched_nms(segs, scores, cls, iou_threshold=0.5, min_score=0.0, max_seg_num=2, use_soft_nms=False,
                         backend="cpu")
    # class 0 keeps rows 4, 3; class 1 keeps rows 0, 1 (cap 2); the final sort keeps the two best overall
    assert result.orig_idx.tolist() == [4, 0]
    assert result.cls_idxs.tolist() == [0, 1]
    unlimited = batched_nms(segs, scores, cls, iou_threshold=0.5, min_score=0.0, max_seg_num=0, backend="cpu")
    assert len(unlimited.orig_idx) == 0  # the reference's final slice [:0]


def test_class_agnostic_voting_refines_segments() -> None:
    segs, scores, cls = _tensors([[0, 10], [0, 12], [30, 31]], [0.9, 0.6, 0.5], [3, 4, 5])
    result = batched_nms(segs, scores, cls, iou_threshold=0.5, min_score=0.0, max_seg_num=10, use_soft_nms=False,
                         multiclass=False, voting_thresh=0.5, backend="cpu")
    assert result.orig_idx.tolist() == [0, 2] and result.cls_idxs.tolist() == [3, 5]
    iou = 10 / 12
    end = (0.9 * 10 + 0.6 * iou * 12) / (0.9 + 0.6 * iou)
    np.testing.assert_allclose(result.segs.numpy(), [[0, end], [30, 31]], rtol=0, atol=1e-5)


def test_cuda_block_size_follows_the_largest_group() -> None:
    from egostream.kernels._nms_cupy import block_threads

    assert [block_threads(width) for width in (1, 32, 33, 64, 65, 129, 256, 257, 5000)] == [
        32, 32, 64, 64, 128, 256, 256, 256, 256]


def test_bad_inputs_name_the_field() -> None:
    segs, scores, cls = _tensors([[0, 1]], [0.5])
    with pytest.raises(InputError, match="segs"):
        batched_nms(segs[:, :1], scores, cls, iou_threshold=0.1, min_score=0.0, max_seg_num=1)
    with pytest.raises(InputError, match="scores"):
        batched_nms(segs, torch.tensor([0.5, 0.4]), cls, iou_threshold=0.1, min_score=0.0, max_seg_num=1)
    with pytest.raises(InputError, match="max_seg_num"):
        batched_nms(segs, scores, cls, iou_threshold=0.1, min_score=0.0, max_seg_num=-1)
    with pytest.raises(InputError, match="scores"):
        soft_nms(segs, torch.tensor([float("nan")]), cls)


# ---------------------------------------------------------------------------------------------------------------------
# Random cross-checks: the CPU path against the sequential oracle of tests/kernels/nms_oracle.py, and the CuPy path
# against the CPU path, on the cases of tests/kernels/nms_cases.py.

def _assert_matches_oracle(result: NMSResult, expected: OraclePicks, case: RandomCase, *, voted: bool,
                           context: str) -> None:
    """Same rows, classes and order; bit-equal scores; bit-equal segments unless voting refined them."""
    rows = np.asarray(expected.rows, dtype=np.int64)
    np.testing.assert_array_equal(result.orig_idx.numpy(), rows, err_msg=context)
    np.testing.assert_array_equal(result.cls_idxs.numpy(), case.cls_idxs.numpy()[rows], err_msg=context)
    assert result.scores.dtype == torch.float32 and result.orig_idx.dtype == torch.long, context
    np.testing.assert_array_equal(result.scores.numpy(), np.asarray(expected.scores, dtype=np.float32).reshape(-1),
                                  err_msg=context)
    if voted:  # torch's float32 sum and matmul against the oracle's float64 weighted average
        np.testing.assert_allclose(result.segs.numpy(), expected.segs, rtol=1e-5, atol=1e-5, err_msg=context)
    else:
        np.testing.assert_array_equal(result.segs.numpy(), expected.segs.reshape(-1, 2), err_msg=context)


def _check_batched_nms(case: RandomCase, call: dict, context: str) -> None:
    result = batched_nms(*case, **call, backend="cpu")
    expected = batched_nms_oracle(case.segs.numpy(), case.scores.numpy(), case.cls_idxs.numpy(), **call)
    voted = not call["multiclass"] and call["voting_thresh"] > 0
    _assert_matches_oracle(result, expected, case, voted=voted, context=f"{context}: {call}")


def _check_soft_nms(case: RandomCase, params: dict, max_num: int, context: str) -> None:
    result = soft_nms(case.segs, case.scores, case.cls_idxs, sigma=params["sigma"], min_score=params["min_score"],
                      max_num=max_num, backend="cpu")
    rows, scores = soft_nms_rows(case.segs.numpy(), case.scores.numpy(), list(range(len(case.scores))),
                                 sigma=params["sigma"], min_score=params["min_score"], max_num=max_num)
    expected = OraclePicks(rows, scores, case.segs.numpy()[rows].reshape(-1, 2))
    _assert_matches_oracle(result, expected, case, voted=False, context=f"{context}: {params}, max_num={max_num}")


def _check_nms(case: RandomCase, params: dict, max_num: int, context: str) -> None:
    result = nms(case.segs, case.scores, case.cls_idxs, iou_threshold=params["iou_threshold"],
                 min_score=params["min_score"], max_num=max_num, backend="cpu")
    rows, scores = hard_nms_rows(case.segs.numpy(), case.scores.numpy(), list(range(len(case.scores))),
                                 iou_threshold=params["iou_threshold"], min_score=params["min_score"],
                                 max_num=max_num)
    expected = OraclePicks(rows, scores, case.segs.numpy()[rows].reshape(-1, 2))
    _assert_matches_oracle(result, expected, case, voted=False, context=f"{context}: {params}, max_num={max_num}")


RANDOM_BLOCKS = 6
BATCHED_CASES_PER_BLOCK = 250
OPERATOR_CASES_PER_BLOCK = 140  # each for soft_nms and for nms


@pytest.mark.parametrize("block", range(RANDOM_BLOCKS))
def test_batched_nms_matches_oracle_on_random_cases(block: int) -> None:
    for index in range(BATCHED_CASES_PER_BLOCK):
        rng = case_rng("batched_nms", block, index)
        case = random_case(rng)
        _check_batched_nms(case, random_batched_call(rng, case.scores), f"batched_nms case ({block}, {index})")


@pytest.mark.parametrize("block", range(RANDOM_BLOCKS))
def test_soft_nms_and_nms_match_oracle_on_random_cases(block: int) -> None:
    for index in range(OPERATOR_CASES_PER_BLOCK):
        rng = case_rng("operators", block, index)
        case = random_case(rng)
        params, max_num = random_operator_params(rng, case.scores), random_cap(rng)
        _check_soft_nms(case, params, max_num, f"soft_nms case ({block}, {index})")
        _check_nms(case, params, max_num, f"nms case ({block}, {index})")


def _degenerate_cases() -> dict[str, RandomCase]:
    """Empty input, one segment, and 7 rows of 3 classes with all segments or all scores identical."""
    rng = np.random.default_rng(7)
    cls = torch.tensor([2, 0, 2, 5, 0, 2, 5])
    segs = torch.from_numpy(rounded_segments(rng, 7).astype(np.float32))
    scores = torch.from_numpy((rng.integers(1, 11, 7) / 10).astype(np.float32))
    return {"empty": RandomCase(segs[:0], scores[:0], cls[:0]),
            "one": RandomCase(segs[:1], scores[:1], cls[:1]),
            "identical_segments": RandomCase(segs[:1].repeat(7, 1), scores, cls),
            "identical_scores": RandomCase(segs, torch.full((7,), 0.3), cls)}


@pytest.mark.parametrize("name", ["empty", "one", "identical_segments", "identical_scores"])
def test_degenerate_inputs_match_oracle(name: str) -> None:
    case = _degenerate_cases()[name]
    grid = dict(min_score=[0.0, 0.3, 2.0], sigma=[0.01, 2.0], iou_threshold=[0.0, 0.5, 1.0], max_num=[0, 1, 1000])
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        max_num = params.pop("max_num")
        context = f"{name} {params} max_num={max_num}"
        _check_soft_nms(case, params, max_num, context)
        _check_nms(case, params, max_num, context)
        for use_soft_nms, multiclass, voting_thresh in itertools.product([False, True], [False, True], [0.0, 0.75]):
            call = dict(params, max_seg_num=max_num, use_soft_nms=use_soft_nms, multiclass=multiclass,
                        voting_thresh=voting_thresh)
            _check_batched_nms(case, call, context)


def test_device_path_matches_cpu_on_random_inputs(device_backend: DeviceBackend) -> None:
    for index in range(2000):
        rng = case_rng("device", 0, index)
        case = random_case(rng)
        call = random_batched_call(rng, case.scores)
        cpu = batched_nms(*case, **call, backend="cpu")
        on_device = batched_nms(*(t.to(device_backend.device) for t in case), **call, backend=device_backend.name)
        assert on_device.orig_idx.device.type == device_backend.device.type
        context = f"case {index}: {call}"
        np.testing.assert_array_equal(on_device.orig_idx.cpu().numpy(), cpu.orig_idx.numpy(), err_msg=context)
        np.testing.assert_array_equal(on_device.scores.cpu().numpy(), cpu.scores.numpy(), err_msg=context)
        np.testing.assert_allclose(on_device.segs.cpu().numpy(), cpu.segs.numpy(), rtol=0, atol=1e-4, err_msg=context)


@pytest.mark.skipif(not optional.WITH_NUMBA, reason="needs Numba")
def test_compiled_and_numpy_cpu_kernels_agree_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(600):
        rng = case_rng("cpu_kernels", 0, index)
        case = random_case(rng)
        call = random_batched_call(rng, case.scores)
        results = {}
        for kernel in ("compiled", "numpy"):
            monkeypatch.setattr(nms_module, "CPU_KERNEL", kernel)
            results[kernel] = batched_nms(*case, **call, backend="cpu")
        context = f"case {index}: {call}"
        for field in NMSResult._fields:
            np.testing.assert_array_equal(getattr(results["compiled"], field).numpy(),
                                          getattr(results["numpy"], field).numpy(), err_msg=f"{field}, {context}")
