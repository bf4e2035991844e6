"""1-D non-maximum suppression of temporal segments: Gaussian soft-NMS, hard NMS and ActionFormer's ``batched_nms``.

The semantics are those of ActionFormer's NMS, which Hier-EgoPack copies byte for byte
(happyharrycn/actionformer_release@61ea7eb:libs/utils/nms.py and libs/utils/csrc/nms_cpu.cpp;
sapeirone/hier-egopack@4fff4e5:libs/utils/nms.py). Every quirk below is reproduced on purpose:

* All arithmetic is float32. A segment's "area" is ``(x2 - x1) + 1e-6``; the overlap of two segments is
  ``inter / ((area_a + area_b) - inter)`` with ``inter = max(0, min(x2) - max(x1))``.
* **Soft-NMS** (``nms_cpu.cpp::softnms_1d_cpu``, method 2, Gaussian). ``iou_threshold`` is ignored. The candidates
  sit in an array, initially in input order. Each step picks the candidate with the highest *current* score
  (the first one in the array on a tie), swaps it to the front of the remaining part and outputs it with its current
  score. Every later candidate's score is multiplied by ``expf(-(iou * iou) / sigma)``; a candidate whose score
  falls strictly below ``min_score`` is dropped by moving the array's last candidate into its place (the moved one is
  then decayed in turn). Hence a pick may score below ``min_score`` only if it is picked before any decay, which
  happens to the very first pick of a call. The C ``expf`` is computed as ``float32(exp(float64(w)))``, which matches
  it to about one ulp (shared/fixtures/ego4d/golden/README.md, "Tolerances").
* **Hard NMS** (``nms.py::NMSop`` and ``nms_cpu.cpp::nms_1d_cpu``). If ``min_score > 0`` only candidates scoring
  strictly above ``min_score`` (compared in float32) enter. They are visited by decreasing score; a visited candidate
  that is not suppressed is kept and suppresses every later one with ``iou >= iou_threshold``.
* Each operator keeps at most ``max_num`` picks when ``max_num > 0`` (later picks never change earlier ones, so the
  kernels stop there instead of finishing the loop and truncating).
* **batched_nms.** ``multiclass=True``: the operator runs on each class separately, classes in ascending id, each
  capped at ``max_seg_num``; the results are concatenated; no voting. ``multiclass=False``: one operator call on all
  segments, then, if ``voting_thresh > 0``, every kept segment is replaced by the average of *all input* segments
  with ``iou >= voting_thresh`` (iou without the ``1e-6``), weighted by ``input score * iou``; scores are unchanged.
  Finally the outputs are sorted by decreasing score and the first ``max_seg_num`` are kept (``max_seg_num = 0``
  keeps none, as in the reference's final slice).

Ties. Where the reference sorts with torch's unstable sort (hard NMS's visiting order, the final sort), the order of
exactly equal scores is unspecified there; here it is resolved by position: the lower input row first when visiting,
and the earlier output (class order, then pick order) in the final sort. The soft-NMS tie rule (first in the
array, whose order the swaps and drops permute) is the reference's own and is reproduced exactly.

Paths: on a CUDA device a CuPy raw kernel runs the classes of a call in parallel; on the CPU the sequential loop of
every class is compiled by Numba (:mod:`egostream.kernels._nms_numba`, which says why Numba), or, only where Numba is
not installed, a NumPy loop that advances every class one pick per step (:data:`CPU_KERNEL` tells which). The picks
of one class are sequential by nature. All paths give identical results.
"""
from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from egostream import optional
from egostream.errors import InputError
from egostream.kernels._dispatch import Backend, use_cupy
from egostream.kernels._layout import GroupPicks

__all__ = ["NMSResult", "CPU_KERNEL", "batched_nms", "soft_nms", "nms"]

#: The CPU path: ``"compiled"`` (Numba, :mod:`egostream.kernels._nms_numba`) when Numba is installed, else
#: ``"numpy"`` (the fallback). Module-level so that tests can run both.
CPU_KERNEL: Literal["compiled", "numpy"] = "compiled" if optional.WITH_NUMBA else "numpy"

_AREA_EPS = np.float32(1e-6)


class NMSResult(NamedTuple):
    """Segments kept by NMS, in output order.

    Attributes:
        segs: ``[K, 2]`` float32 segment (start, end), in the unit of the input (seconds, feature rows, ...).
        scores: ``[K]`` float32 score after NMS (soft-NMS decays scores).
        cls_idxs: ``[K]`` int64 class id of each output.
        orig_idx: ``[K]`` int64 input row that each output comes from.
    """

    segs: Tensor
    scores: Tensor
    cls_idxs: Tensor
    orig_idx: Tensor


def pack_groups(group_of: Tensor) -> tuple[Tensor, Tensor]:
    """Lay out rows by group: ``([G, L] int64 input rows, -1 as padding; [G] int64 group sizes)``.

    Groups are the distinct values of ``group_of`` in ascending order; inside a group, rows keep input order.
    """
    order = torch.argsort(group_of, stable=True)
    _, counts = torch.unique_consecutive(group_of[order], return_counts=True)
    num_groups, width = len(counts), int(counts.max())
    starts = torch.cumsum(counts, 0) - counts
    group = torch.repeat_interleave(torch.arange(num_groups, device=group_of.device), counts)
    column = torch.arange(len(order), device=group_of.device) - starts[group]
    rows = torch.full((num_groups, width), -1, dtype=torch.long, device=group_of.device)
    rows[group, column] = order
    return rows, counts


def _greedy_groups_numpy(segs: Tensor, scores: Tensor, rows: Tensor, counts: Tensor, *, soft: bool, sigma: float,
                         min_score: float, iou_threshold: float, max_picks: int) -> GroupPicks:
    """Greedy (soft-)NMS on every group at once, one pick per group per step; see the module docstring.

    Per group, the candidates are held in position order exactly as the reference's array (``cand_*[g, :n[g]]``);
    soft-NMS breaks score ties by position, hard NMS by input row (its visiting order is the stable score sort).
    """
    seg_np = segs.detach().cpu().numpy()
    score_np = scores.detach().cpu().numpy()
    row_np = rows.cpu().numpy()
    num_groups, width = row_np.shape
    safe = np.where(row_np >= 0, row_np, 0)
    cand_x1, cand_x2 = seg_np[safe, 0], seg_np[safe, 1]
    cand_area = (cand_x2 - cand_x1) + _AREA_EPS
    cand_score = score_np[safe].copy()
    cand_row = row_np.copy()
    candidates = (cand_x1, cand_x2, cand_area, cand_score, cand_row)

    n = counts.cpu().numpy().astype(np.int64).copy()
    picks = np.zeros(num_groups, dtype=np.int64)
    pick_row = np.zeros((num_groups, width), dtype=np.int64)
    pick_score = np.zeros((num_groups, width), dtype=np.float32)
    column = np.arange(width)
    f32_sigma, f32_min_score, f32_iou = np.float32(sigma), np.float32(min_score), np.float32(iou_threshold)
    steps = width if max_picks <= 0 else min(width, max_picks)

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for step in range(steps):
            active = np.nonzero(n > step)[0]
            if active.size == 0:
                break
            end = int(n[active].max())
            live = column[step:end] < n[active, None]
            block = np.where(live, cand_score[active, step:end], -np.inf)
            if soft:  # nms_cpu.cpp: strict `<` scan, so the first maximum in array order wins
                best = step + block.argmax(axis=1)
            else:  # the stable descending sort visits equal scores by input row
                is_max = block == block.max(axis=1, keepdims=True)
                best = step + np.where(is_max, cand_row[active, step:end], np.iinfo(np.int64).max).argmin(axis=1)
            for values in candidates:  # swap the pick to the front of the remaining part
                picked = values[active, best]
                values[active, best] = values[active, step]
                values[active, step] = picked
            pick_row[active, step] = cand_row[active, step]
            pick_score[active, step] = cand_score[active, step]
            picks[active] += 1

            first = step + 1
            if first >= end:
                n[active] = first
                continue
            live = column[first:end] < n[active, None]
            px1, px2 = cand_x1[active, step, None], cand_x2[active, step, None]
            parea = cand_area[active, step, None]
            inter = np.maximum(np.float32(0.0), np.minimum(px2, cand_x2[active, first:end])
                               - np.maximum(px1, cand_x1[active, first:end]))
            iou = inter / ((parea + cand_area[active, first:end]) - inter)
            if soft:
                exponent = -(iou * iou) / f32_sigma
                decayed = cand_score[active, first:end] * np.exp(exponent.astype(np.float64)).astype(np.float32)
                cand_score[active, first:end] = decayed
                dropped = live & (decayed < f32_min_score)
            else:
                dropped = live & (iou >= f32_iou)
            n[active] = _drop_by_swap_with_last(candidates, active, first, live, dropped)
    return GroupPicks(torch.from_numpy(pick_row), torch.from_numpy(pick_score), torch.from_numpy(picks))


def _drop_by_swap_with_last(candidates: tuple[np.ndarray, ...], active: np.ndarray, first: int, live: np.ndarray,
                            dropped: np.ndarray) -> np.ndarray:
    """Remove ``dropped`` columns ``first..`` of each active group as the reference's sequential sweep does.

    The sweep (nms_cpu.cpp::softnms_1d_cpu) walks forward; a dropped candidate is replaced by the array's last one,
    which is examined next. The net effect: with ``k`` survivors left, the holes below ``k`` are filled, in increasing
    position, by the survivors at or above ``k`` taken in decreasing position. Returns the new sizes ``k``.
    """
    kept = live & ~dropped
    new_size = first + kept.sum(axis=1)
    offset = np.arange(live.shape[1])[None, :] + first
    holes = dropped & (offset < new_size[:, None])
    movers = kept & (offset >= new_size[:, None])
    hole_rank = np.cumsum(holes, axis=1) - 1
    mover_rank_from_end = np.cumsum(movers[:, ::-1], axis=1)[:, ::-1] - 1
    mover_group, mover_col = np.nonzero(movers)
    mover_by_rank = np.zeros(live.shape, dtype=np.int64)
    mover_by_rank[mover_group, mover_rank_from_end[mover_group, mover_col]] = mover_col
    hole_group, hole_col = np.nonzero(holes)
    source_col = mover_by_rank[hole_group, hole_rank[hole_group, hole_col]]
    group = active[hole_group]
    for values in candidates:
        values[group, first + hole_col] = values[group, first + source_col]
    return new_size


def _greedy_groups(segs: Tensor, scores: Tensor, group_of: Tensor, *, soft: bool, sigma: float, min_score: float,
                   iou_threshold: float, max_picks: int, on_cupy: bool) -> tuple[Tensor, Tensor]:
    """Run the greedy kernel per group; returns ``(input rows [K], scores [K])``, groups ascending, picks in order."""
    rows, counts = pack_groups(group_of)
    kwargs = dict(soft=soft, sigma=sigma, min_score=min_score, iou_threshold=iou_threshold, max_picks=max_picks)
    if on_cupy:
        from egostream.kernels._nms_cupy import greedy_groups_cupy

        result = greedy_groups_cupy(segs, scores, rows, counts, **kwargs)
    elif CPU_KERNEL == "compiled":
        from egostream.kernels._nms_numba import greedy_groups_compiled

        pick_row, pick_score, picks = greedy_groups_compiled(
            segs.detach().cpu().numpy(), scores.detach().cpu().numpy(), rows.cpu().numpy(), counts.cpu().numpy(),
            area_eps=_AREA_EPS, **kwargs)
        result = GroupPicks(torch.from_numpy(pick_row), torch.from_numpy(pick_score), torch.from_numpy(picks))
    else:
        result = _greedy_groups_numpy(segs, scores, rows, counts, **kwargs)
    taken = torch.arange(result.rows.shape[1], device=result.rows.device)[None, :] < result.counts[:, None]
    return result.rows[taken].to(segs.device), result.scores[taken].to(segs.device)


def _check_inputs(segs: Tensor, scores: Tensor, cls_idxs: Tensor | None) -> tuple[Tensor, Tensor]:
    if segs.ndim != 2 or segs.shape[1] != 2:
        raise InputError(None, "segs", f"expected shape [N, 2], got {list(segs.shape)}")
    if scores.shape != (segs.shape[0],):
        raise InputError(None, "scores", f"expected shape [{segs.shape[0]}], got {list(scores.shape)}")
    if cls_idxs is not None and cls_idxs.shape != (segs.shape[0],):
        raise InputError(None, "cls_idxs", f"expected shape [{segs.shape[0]}], got {list(cls_idxs.shape)}")
    segs, scores = segs.detach().float().contiguous(), scores.detach().float().contiguous()
    segs_finite, scores_finite = torch.stack([torch.isfinite(segs).all(), torch.isfinite(scores).all()]).tolist()
    if not segs_finite:  # one device-to-host read for both checks
        raise InputError(None, "segs", "segments must be finite")
    if not scores_finite:
        raise InputError(None, "scores", "scores must be finite")
    return segs, scores


def _hard_nms_candidates(scores: Tensor, min_score: float) -> Tensor:
    """Rows entering hard NMS: ``scores > min_score`` in float32 when ``min_score > 0`` (NMSop), else all rows."""
    if min_score > 0:
        return torch.nonzero(scores > min_score, as_tuple=True)[0]  # torch casts the Python float to float32
    return torch.arange(len(scores), device=scores.device)


def _run_operator(segs: Tensor, scores: Tensor, group_of: Tensor, *, soft: bool, sigma: float, min_score: float,
                  iou_threshold: float, max_picks: int, on_cupy: bool) -> tuple[Tensor, Tensor]:
    """One soft or hard NMS operator per group; ``(input rows [K], scores [K])``, groups ascending."""
    kwargs = dict(soft=soft, sigma=sigma, min_score=min_score, iou_threshold=iou_threshold, max_picks=max_picks,
                  on_cupy=on_cupy)
    if soft:  # every row enters
        if len(scores) == 0:
            return torch.zeros(0, dtype=torch.long, device=scores.device), scores[:0]
        return _greedy_groups(segs, scores, group_of, **kwargs)
    rows = _hard_nms_candidates(scores, min_score)
    if len(rows) == 0:
        return rows, scores[:0]
    picked, picked_scores = _greedy_groups(segs[rows], scores[rows], group_of[rows], **kwargs)
    return rows[picked], picked_scores


def _result(segs: Tensor, cls_idxs: Tensor, rows: Tensor, scores: Tensor) -> NMSResult:
    return NMSResult(segs[rows], scores, cls_idxs[rows], rows)


def soft_nms(segs: Tensor, scores: Tensor, cls_idxs: Tensor, *, sigma: float = 0.5, min_score: float = 0.001,
             max_num: int = 0, backend: Backend = "auto") -> NMSResult:
    """Gaussian soft-NMS over all segments at once, outputs in selection order (ActionFormer's ``SoftNMSop``).

    Args:
        segs: ``[N, 2]`` segments (start, end), computed in float32.
        scores: ``[N]`` scores, computed in float32.
        cls_idxs: ``[N]`` int64 class ids, carried along (the operator ignores classes).
        sigma: Gaussian decay ``score *= exp(-iou^2 / sigma)``.
        min_score: a decayed score strictly below this drops the segment.
        max_num: keep at most this many picks; ``<= 0`` keeps all.
        backend: ``"auto"``, ``"cpu"`` or ``"cupy"``.
    """
    segs, scores = _check_inputs(segs, scores, cls_idxs)
    on_cupy = use_cupy(backend, segs)
    rows, picked_scores = _run_operator(segs, scores, torch.zeros_like(cls_idxs), soft=True, sigma=sigma,
                                        min_score=min_score, iou_threshold=0.0, max_picks=max_num, on_cupy=on_cupy)
    return _result(segs, cls_idxs, rows, picked_scores)


def nms(segs: Tensor, scores: Tensor, cls_idxs: Tensor, *, iou_threshold: float, min_score: float = 0.0,
        max_num: int = 0, backend: Backend = "auto") -> NMSResult:
    """Hard NMS over all segments at once, outputs by decreasing score (ActionFormer's ``NMSop``).

    Args:
        segs: ``[N, 2]`` segments (start, end), computed in float32.
        scores: ``[N]`` scores, computed in float32.
        cls_idxs: ``[N]`` int64 class ids, carried along (the operator ignores classes).
        iou_threshold: a segment with ``iou >= iou_threshold`` against a kept one is suppressed.
        min_score: when ``> 0``, only segments scoring strictly above it are considered.
        max_num: keep at most this many; ``<= 0`` keeps all.
        backend: ``"auto"``, ``"cpu"`` or ``"cupy"``.
    """
    segs, scores = _check_inputs(segs, scores, cls_idxs)
    on_cupy = use_cupy(backend, segs)
    rows, kept_scores = _run_operator(segs, scores, torch.zeros_like(cls_idxs), soft=False, sigma=1.0,
                                      min_score=min_score, iou_threshold=iou_threshold, max_picks=max_num,
                                      on_cupy=on_cupy)
    return _result(segs, cls_idxs, rows, kept_scores)


def vote_segments(kept_segs: Tensor, segs: Tensor, scores: Tensor, voting_thresh: float) -> Tensor:
    """Segment voting (ActionFormer ``nms.py::seg_voting``): ``[K, 2]`` refined segments, float32.

    Each kept segment becomes ``sum_j w_j seg_j / sum_j w_j`` over all input segments ``j`` with
    ``w_j = [iou_j >= voting_thresh] * score_j * iou_j``, the iou here without the ``1e-6`` of the NMS area.
    """
    left = torch.maximum(kept_segs[:, None, 0], segs[None, :, 0])
    right = torch.minimum(kept_segs[:, None, 1], segs[None, :, 1])
    inter = (right - left).clamp(min=0)
    kept_len = (kept_segs[:, 1] - kept_segs[:, 0])[:, None]
    seg_len = (segs[:, 1] - segs[:, 0])[None, :]
    iou = inter / ((kept_len + seg_len) - inter)
    weights = (iou >= voting_thresh).to(scores.dtype) * scores[None, :] * iou
    weights = weights / weights.sum(dim=1, keepdim=True)
    return weights @ segs


def batched_nms(segs: Tensor, scores: Tensor, cls_idxs: Tensor, *, iou_threshold: float, min_score: float,
                max_seg_num: int, use_soft_nms: bool = True, multiclass: bool = True, sigma: float = 0.5,
                voting_thresh: float = 0.75, backend: Backend = "auto") -> NMSResult:
    """ActionFormer's ``batched_nms`` (libs/utils/nms.py@61ea7eb), with the input row of every output.

    Args:
        segs: ``[N, 2]`` segments (start, end) in any unit (seconds in MQ), computed in float32.
        scores: ``[N]`` scores, computed in float32.
        cls_idxs: ``[N]`` int64 class ids.
        iou_threshold: hard NMS suppression threshold (unused by soft-NMS, as in the reference).
        min_score: hard NMS: pre-filter ``score > min_score``; soft-NMS: drop when a decayed score falls below it.
        max_seg_num: cap per class (multiclass) or per call, and on the final sorted output; must be ``>= 0``.
        use_soft_nms: Gaussian soft-NMS (True) or hard NMS.
        multiclass: NMS per class (no voting) or class-agnostic (with voting when ``voting_thresh > 0``).
        sigma: soft-NMS Gaussian parameter.
        voting_thresh: class-agnostic segment voting iou threshold; ``<= 0`` disables voting.
        backend: ``"auto"``, ``"cpu"`` or ``"cupy"``.

    Returns:
        :class:`NMSResult` sorted by decreasing score, at most ``max_seg_num`` rows, on the device of ``segs``.
    """
    segs, scores = _check_inputs(segs, scores, cls_idxs)
    if max_seg_num < 0:
        raise InputError(None, "max_seg_num", f"must be >= 0, got {max_seg_num}")
    on_cupy = use_cupy(backend, segs)
    if len(scores) == 0:
        empty = torch.zeros(0, dtype=torch.long, device=segs.device)
        return NMSResult(segs[:0], scores[:0], cls_idxs[:0], empty)

    group_of = cls_idxs if multiclass else torch.zeros_like(cls_idxs)
    rows, kept_scores = _run_operator(segs, scores, group_of, soft=use_soft_nms, sigma=sigma, min_score=min_score,
                                      iou_threshold=iou_threshold, max_picks=max_seg_num, on_cupy=on_cupy)
    kept_segs = segs[rows]
    if not multiclass and voting_thresh > 0 and len(rows) > 0:
        kept_segs = vote_segments(kept_segs, segs, scores, voting_thresh)
    order = torch.argsort(kept_scores, descending=True, stable=True)[:max_seg_num]
    return NMSResult(kept_segs[order], kept_scores[order], cls_idxs[rows][order], rows[order])
