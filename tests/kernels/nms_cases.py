"""Random NMS inputs for the cross-checks: one generator built to hit every tie rule (exact score ties, duplicated and
identical segments, scores equal to ``min_score``, caps of 0 and 1), shared by the CPU-vs-oracle and the
device-vs-CPU tests."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

__all__ = ["RandomCase", "case_rng", "random_batched_call", "random_cap", "random_case", "random_operator_params",
           "rounded_segments"]


class RandomCase(NamedTuple):
    """An NMS input: ``[N, 2]`` float32 segments (start, end; seconds), ``[N]`` float32 scores, ``[N]`` int64 ids."""

    segs: torch.Tensor
    scores: torch.Tensor
    cls_idxs: torch.Tensor


def rounded_segments(rng: np.random.Generator, n: int) -> np.ndarray:
    start = np.round(rng.random(n) * rng.choice([1, 5, 50]), int(rng.integers(0, 3)))
    length = np.round(rng.random(n) * rng.choice([0.5, 5]), 1) + 0.1
    return np.stack([start, start + length], 1)


def _random_segments(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.choice(["rounded", "duplicated", "identical"], p=[0.5, 0.35, 0.15])
    if kind == "rounded":
        return rounded_segments(rng, n)
    pool = rounded_segments(rng, 1 if kind == "identical" else int(rng.integers(1, max(2, n // 3 + 1))))
    return pool[rng.integers(0, len(pool), n)]


def _random_scores(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.choice(["continuous", "tenths", "few", "identical"], p=[0.3, 0.35, 0.2, 0.15])
    if kind == "continuous":
        return 1.0 - rng.random(n)  # in (0, 1]: voting weights never all vanish
    if kind == "tenths":  # exact ties, and scores equal to the min_score choices 0.3 and 0.5
        return rng.integers(1, 11, n) / 10
    values = rng.integers(1, 11, 1 if kind == "identical" else int(rng.integers(2, 4))) / 10
    return values[rng.integers(0, len(values), n)]


def random_case(rng: np.random.Generator) -> RandomCase:
    """0 to 299 segments (mostly at most 60) of 1 to 8 classes (sparse ids), with many duplicates and exact ties."""
    n = int(rng.choice([0, 1, int(rng.integers(2, 9)), int(rng.integers(9, 61)), int(rng.integers(61, 300))],
                       p=[0.03, 0.05, 0.22, 0.62, 0.08]))
    class_ids = rng.choice(20, size=int(rng.integers(1, 9)), replace=False)
    return RandomCase(torch.from_numpy(_random_segments(rng, n).astype(np.float32).reshape(n, 2)),
                      torch.from_numpy(_random_scores(rng, n).astype(np.float32)),
                      torch.from_numpy(class_ids[rng.integers(0, len(class_ids), n)].astype(np.int64)))


def _random_min_score(rng: np.random.Generator, scores: torch.Tensor) -> float:
    """0, small, a tie with the score grid, or at/above the best score (hard NMS keeps none, soft-NMS the first)."""
    best = float(scores.max()) if len(scores) else 0.5
    choices, weights = [0.0, 0.001, 0.3, 0.5, best, best + 0.01, 2.0], [0.25, 0.25, 0.15, 0.1, 0.1, 0.1, 0.05]
    return float(rng.choice(choices, p=weights))


def random_operator_params(rng: np.random.Generator, scores: torch.Tensor) -> dict:
    """Parameters common to every operator: ``min_score``, ``sigma`` and ``iou_threshold`` (each op takes its own)."""
    return dict(min_score=_random_min_score(rng, scores), sigma=float(rng.choice([0.01, 0.5, 2.0, 1000.0])),
                iou_threshold=float(rng.choice([0.0, 0.1, 0.5, 0.75, 1.0], p=[0.08, 0.2, 0.3, 0.3, 0.12])))


def random_cap(rng: np.random.Generator) -> int:
    """``max_num`` / ``max_seg_num``: 0 (no cap for an operator; none kept by ``batched_nms``), small or large."""
    return int(rng.choice([0, 1, 3, 5, 1000], p=[0.07, 0.08, 0.15, 0.2, 0.5]))


def random_batched_call(rng: np.random.Generator, scores: torch.Tensor) -> dict:
    """Keyword arguments of a random ``batched_nms`` call (all but the tensors and the backend)."""
    return dict(random_operator_params(rng, scores), max_seg_num=random_cap(rng),
                use_soft_nms=bool(rng.random() < 0.6), multiclass=bool(rng.random() < 0.5),
                voting_thresh=float(rng.choice([0.0, 0.5, 0.75])))


def case_rng(test: str, block: int, index: int) -> np.random.Generator:
    """One generator per case, so that a failing case is rebuilt from its ``(block, index)`` alone."""
    return np.random.default_rng([sum(test.encode()), block, index])
