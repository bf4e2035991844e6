"""A deliberately simple, sequential oracle of ActionFormer's 1-D NMS, for cross-checking egostream's kernels.

It follows the reference algorithm step by step on one candidate array per operator call, in float32 scalars:
happyharrycn/actionformer_release@61ea7eb:libs/utils/csrc/nms_cpu.cpp (``softnms_1d_cpu``, ``nms_1d_cpu``) and
libs/utils/nms.py (``SoftNMSop``, ``NMSop``, ``seg_voting``, ``batched_nms``). Nothing here is shared with
``egostream.kernels.nms``; the only choices not fixed by the reference are the order of exactly equal scores where it
uses torch's unstable sort, resolved as egostream documents it (lower input row first when hard NMS visits, earlier
output first in ``batched_nms``'s final sort).

Segments are ``[N, 2]`` (start, end) float32 arrays in any unit; every function returns input rows and scores.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

_AREA_EPS = np.float32(1e-6)  # nms_cpu.cpp: ``areas = x2 - x1 + 1e-6``, a float32 tensor op
_ZERO = np.float32(0.0)


class OraclePicks(NamedTuple):
    """Picks of the oracle, in output order.

    Attributes:
        rows: input row of each pick.
        scores: float32 score of each pick (decayed by soft-NMS).
        segs: ``[K, 2]`` segment of each pick; float64 when voting refined them, else the float32 input segment.
    """

    rows: list[int]
    scores: list[np.float32]
    segs: np.ndarray


def _overlap(x1_a: np.float32, x2_a: np.float32, area_a: np.float32, x1_b: np.float32, x2_b: np.float32,
             area_b: np.float32) -> np.float32:
    """nms_cpu.cpp's ``ovr``: ``inter / (area_a + area_b - inter)``, all float32."""
    inter = max(_ZERO, min(x2_a, x2_b) - max(x1_a, x1_b))
    return inter / ((area_a + area_b) - inter)


def soft_nms_rows(segs: np.ndarray, scores: np.ndarray, rows: list[int], *, sigma: float, min_score: float,
                  max_num: int) -> tuple[list[int], list[np.float32]]:
    """One Gaussian ``SoftNMSop`` call on the candidates ``rows`` (in that array order): ``(picked rows, scores)``."""
    x1 = [np.float32(segs[r, 0]) for r in rows]
    x2 = [np.float32(segs[r, 1]) for r in rows]
    area = [(b - a) + _AREA_EPS for a, b in zip(x1, x2)]
    score = [np.float32(scores[r]) for r in rows]
    ind = list(rows)
    arrays = (x1, x2, area, score, ind)
    f32_sigma, f32_min_score = np.float32(sigma), np.float32(min_score)

    size = len(ind)
    i = 0
    while i < size:  # the C loop bound ``nsegs`` shrinks as candidates drop
        best = i
        for pos in range(i + 1, size):
            if score[best] < score[pos]:  # strict: the first maximum in array order wins
                best = pos
        for values in arrays:
            values[i], values[best] = values[best], values[i]
        pos = i + 1
        while pos < size:
            iou = _overlap(x1[i], x2[i], area[i], x1[pos], x2[pos], area[pos])
            exponent = -(iou * iou) / f32_sigma
            score[pos] = score[pos] * np.float32(math.exp(float(exponent)))  # C expf, to within an ulp
            if score[pos] < f32_min_score:  # drop: the array's last candidate takes this place, examined next
                for values in arrays:
                    values[pos] = values[size - 1]
                size -= 1
            else:
                pos += 1
        i += 1
    keep = size if max_num <= 0 else min(size, max_num)  # nms.py::SoftNMSop truncates the full result
    return ind[:keep], score[:keep]


def hard_nms_rows(segs: np.ndarray, scores: np.ndarray, rows: list[int], *, iou_threshold: float, min_score: float,
                  max_num: int) -> tuple[list[int], list[np.float32]]:
    """One ``NMSop`` call on the candidates ``rows``: ``(kept rows by decreasing score, their scores)``."""
    score = {r: np.float32(scores[r]) for r in rows}
    if min_score > 0:  # nms.py::NMSop filters ``scores > min_score`` on the float32 tensor
        rows = [r for r in rows if score[r] > np.float32(min_score)]
    order = sorted(rows, key=lambda r: (-float(score[r]), r))
    x1 = {r: np.float32(segs[r, 0]) for r in rows}
    x2 = {r: np.float32(segs[r, 1]) for r in rows}
    area = {r: (x2[r] - x1[r]) + _AREA_EPS for r in rows}
    f32_iou = np.float32(iou_threshold)
    selected = [True] * len(order)
    for i, kept in enumerate(order):
        if not selected[i]:
            continue
        for j in range(i + 1, len(order)):
            other = order[j]
            if selected[j] and _overlap(x1[kept], x2[kept], area[kept], x1[other], x2[other],
                                        area[other]) >= f32_iou:
                selected[j] = False
    kept_rows = [r for r, flag in zip(order, selected) if flag]
    if max_num > 0:
        kept_rows = kept_rows[:max_num]
    return kept_rows, [score[r] for r in kept_rows]


def voted_segments(kept_rows: list[int], segs: np.ndarray, scores: np.ndarray, voting_thresh: float) -> np.ndarray:
    """nms.py::seg_voting: ``[K, 2]`` float64 weighted averages of the input segments around each kept one.

    The overlap and its threshold test are float32, as in the reference (this decides which segments vote); the
    weighted average is float64, since torch's float32 reduction order is unspecified.
    """
    f32_thresh = np.float32(voting_thresh)
    refined = np.zeros((len(kept_rows), 2), dtype=np.float64)
    for k, kept in enumerate(kept_rows):
        kx1, kx2 = np.float32(segs[kept, 0]), np.float32(segs[kept, 1])
        total, weighted = 0.0, np.zeros(2, dtype=np.float64)
        for j in range(len(segs)):
            x1, x2 = np.float32(segs[j, 0]), np.float32(segs[j, 1])
            inter = max(_ZERO, min(kx2, x2) - max(kx1, x1))
            iou = inter / (((kx2 - kx1) + (x2 - x1)) - inter)  # no 1e-6 here
            if iou >= f32_thresh:
                weight = float(np.float32(scores[j])) * float(iou)
                total += weight
                weighted += weight * segs[j].astype(np.float64)
        refined[k] = weighted / total
    return refined


def batched_nms_oracle(segs: np.ndarray, scores: np.ndarray, cls_idxs: np.ndarray, *, iou_threshold: float,
                       min_score: float, max_seg_num: int, use_soft_nms: bool = True, multiclass: bool = True,
                       sigma: float = 0.5, voting_thresh: float = 0.75) -> OraclePicks:
    """nms.py::batched_nms: per-class (ascending ids) or class-agnostic operator calls, then the final sort."""

    def operator(rows: list[int]) -> tuple[list[int], list[np.float32]]:
        if use_soft_nms:
            return soft_nms_rows(segs, scores, rows, sigma=sigma, min_score=min_score, max_num=max_seg_num)
        return hard_nms_rows(segs, scores, rows, iou_threshold=iou_threshold, min_score=min_score,
                             max_num=max_seg_num)

    kept_rows: list[int] = []
    kept_scores: list[np.float32] = []
    if multiclass:
        for class_id in sorted(set(cls_idxs.tolist())):
            rows, picked_scores = operator([r for r in range(len(cls_idxs)) if cls_idxs[r] == class_id])
            kept_rows += rows
            kept_scores += picked_scores
        kept_segs = segs[kept_rows].reshape(-1, 2)
    else:
        kept_rows, kept_scores = operator(list(range(len(scores))))
        kept_segs = segs[kept_rows].reshape(-1, 2)
        if voting_thresh > 0 and kept_rows:
            kept_segs = voted_segments(kept_rows, segs, scores, voting_thresh)
    # the final sort by decreasing score: equal scores keep their output order
    order = sorted(range(len(kept_rows)), key=lambda k: -float(kept_scores[k]))[:max_seg_num]
    return OraclePicks([kept_rows[k] for k in order], [kept_scores[k] for k in order], kept_segs[order])
