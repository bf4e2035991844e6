"""1-D NMS / soft-NMS: golden cases of ActionFormer's NMS, hand-computed cases, and the CuPy path against the CPU path."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from egostream.errors import InputError
from egostream.kernels.nms import NMSResult, batched_nms, nms, soft_nms
from egostream.testing import golden_dir, requires_cuda

BACKENDS = ["cpu", pytest.param("cupy", marks=requires_cuda)]


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


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("golden_file", "case_name"), _golden_cases())
def test_nms_golden(golden_file: Path, case_name: str, backend: str) -> None:
    golden = json.loads(golden_file.read_text())
    inputs = np.load(golden_file.parent / golden["inputs"]["file"])
    expected = np.load(golden_file.parent / golden["expected"]["arrays_file"])
    case = golden["expected"]["cases"][case_name]
    arrays = {key: expected[name] for key, name in case["arrays"].items()}

    result = _run_call(case["call"], torch.from_numpy(inputs["segs"]), torch.from_numpy(inputs["scores"]),
                       torch.from_numpy(inputs["cls_idxs"]), backend)

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


def _random_case(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Segments and scores with many exact ties and duplicates, to exercise every tie rule."""
    n = int(rng.integers(1, 300))
    start = np.round(rng.random(n) * rng.choice([1, 5, 50]), int(rng.integers(0, 3)))
    length = np.round(rng.random(n) * rng.choice([0.5, 5]), 1) + 0.1
    scores = rng.random(n)
    if rng.random() < 0.5:
        scores = np.round(scores * 10) / 10 + 0.05
    return (torch.from_numpy(np.stack([start, start + length], 1).astype(np.float32)),
            torch.from_numpy(scores.astype(np.float32)), torch.from_numpy(rng.integers(0, 8, n)))


@requires_cuda
def test_cupy_matches_cpu_on_random_inputs() -> None:
    rng = np.random.default_rng(0)
    for _ in range(2000):
        segs, scores, cls = _random_case(rng)
        call = dict(iou_threshold=float(rng.choice([0.1, 0.5])), min_score=float(rng.choice([0.0, 0.001, 0.3])),
                    max_seg_num=int(rng.choice([5, 2000])), use_soft_nms=bool(rng.random() < 0.7),
                    multiclass=bool(rng.random() < 0.5), sigma=float(rng.choice([0.5, 2.0])), voting_thresh=0.75)
        cpu = batched_nms(segs, scores, cls, **call, backend="cpu")
        gpu = batched_nms(segs.cuda(), scores.cuda(), cls.cuda(), **call, backend="cupy")
        assert gpu.orig_idx.is_cuda
        np.testing.assert_array_equal(gpu.orig_idx.cpu().numpy(), cpu.orig_idx.numpy())
        np.testing.assert_allclose(gpu.scores.cpu().numpy(), cpu.scores.numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(gpu.segs.cpu().numpy(), cpu.segs.numpy(), rtol=0, atol=1e-4)
