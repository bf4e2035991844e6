"""Temporal action detection scores for Moment Queries: per-class interpolated AP and top-kx recall.

These are the ActivityNet-style rules shared by the official Ego4D evaluator
(EGO4D/episodic-memory@5275b95:MQ/Evaluation/ego4d/eval_detection.py::compute_average_precision_detection) and
ActionFormer's copy (happyharrycn/actionformer_release@61ea7eb:libs/utils/metrics.py::
compute_average_precision_detection and ::compute_topkx_recall_detection, also copied into
sapeirone/hier-egopack@4fff4e5:utils/meters/ego4d/mq.py).
The protocol-specific parts (which rows, which thresholds, which class order) live in :mod:`.mq`.

Every function takes flat arrays, one row per instance:

* ground truth: ``gt_clip`` int64 [G] (clip code), ``gt_segments`` float64 [G, 2] (start, end in seconds from the clip
  start), ``gt_class`` int64 [G] (column index in ``0..num_classes-1``), rows in annotation order;
* predictions: ``pred_clip`` int64 [P], ``pred_segments`` float64 [P, 2] (seconds), ``pred_scores`` float64 [P],
  ``pred_class`` int64 [P] (column index, or -1 for a label without ground truth: never counted), rows in file order.

Clip codes only need to be equal for the same clip; a prediction on a clip without ground truth of its class is a false
positive. Scores and AP/recall values are fractions in [0, 1].
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["segment_tiou", "interpolated_average_precision", "average_precision_per_class",
           "topkx_recall_per_class",
           "count_recalled_within_rank", "group_rows"]


def segment_tiou(pred_segments: np.ndarray, gt_segments: np.ndarray) -> np.ndarray:
    """Temporal IoU of every prediction with every ground-truth segment.

    Args:
        pred_segments: float [P, 2], (start, end) in seconds.
        gt_segments: float [G, 2], (start, end) in seconds.

    Returns:
        float64 [P, G]: intersection / (length_p + length_g - intersection). NaN where the union is 0 (two
        zero-length segments at the same instant), exactly as the reference ``segment_iou`` (a 0/0 division);
        :func:`average_precision_per_class` reproduces how the reference matching treats that NaN.
    """
    intersection = np.clip(np.minimum(pred_segments[:, None, 1], gt_segments[None, :, 1])
                           - np.maximum(pred_segments[:, None, 0], gt_segments[None, :, 0]), 0.0, None)
    union = ((pred_segments[:, 1] - pred_segments[:, 0])[:, None] + (gt_segments[:, 1] - gt_segments[:, 0])[None, :]
             - intersection)
    with np.errstate(invalid="ignore", divide="ignore"):
        return intersection / union


def interpolated_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC 2011 interpolated AP: area under the precision envelope (running maximum from the right) over recall.

    Args:
        precision: float64 [P], precision after each ranked prediction.
        recall: float64 [P], recall after each ranked prediction (non-decreasing).
    """
    envelope = np.concatenate(([0.0], precision, [0.0]))
    envelope = np.maximum.accumulate(envelope[::-1])[::-1]
    recall_points = np.concatenate(([0.0], recall, [1.0]))
    steps = np.flatnonzero(recall_points[1:] != recall_points[:-1]) + 1
    return float(np.sum((recall_points[steps] - recall_points[steps - 1]) * envelope[steps]))


def group_rows(codes: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(code, row indices) for each distinct code, codes ascending; indices keep their input order in a group.

    Args:
        codes: int [N].
    """
    if len(codes) == 0:
        return
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    for start, end in zip(starts, np.r_[starts[1:], len(order)]):
        yield int(sorted_codes[start]), order[start:end]


def _descending_score_order(scores: np.ndarray) -> np.ndarray:
    # The reference ranks with ``scores.argsort()[::-1]`` (default sort kind, then reversed), which fixes the order of
    # tied scores; the same call keeps ties in the same order here.
    return np.argsort(scores)[::-1]


def _greedy_true_positives(tiou: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """One clip's greedy matching at every threshold at once.

    Predictions (rows of ``tiou``, already in descending score order) each take the ground-truth segment with the
    highest tIoU among those not taken yet at that threshold, if that tIoU is >= the threshold (reference: the
    ``tiou_arr.argsort()[::-1]`` loop that stops at the first tIoU below the threshold and skips locked segments).
    A NaN tIoU is never "below the threshold" and sorts last, so it comes first in the reversed order and matches at
    every threshold, as in the reference.

    Args:
        tiou: float64 [P, G].
        thresholds: float64 [T].

    Returns:
        bool [T, P], True where the prediction is a true positive.
    """
    n_thresholds = len(thresholds)
    true_positive = np.zeros((n_thresholds, tiou.shape[0]), dtype=bool)
    taken = np.zeros((n_thresholds, tiou.shape[1]), dtype=bool)
    can_match = ~(tiou < thresholds.min()).all(axis=1)
    for row in np.flatnonzero(can_match):
        gt_order = np.argsort(tiou[row])[::-1]
        eligible = ~(tiou[row, gt_order][None, :] < thresholds[:, None]) & ~taken[:, gt_order]
        matched = np.flatnonzero(eligible.any(axis=1))
        chosen = gt_order[eligible[matched].argmax(axis=1)]
        true_positive[matched, row] = True
        taken[matched, chosen] = True
    return true_positive


def _class_rows(gt_class: np.ndarray, pred_class: np.ndarray, num_classes: int
                ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(class column, its ground-truth rows, its prediction rows), each in input order."""
    gt_rows = dict(group_rows(gt_class))
    pred_rows = dict(group_rows(pred_class))
    empty = np.zeros(0, dtype=np.int64)
    for column in range(num_classes):
        yield column, gt_rows.get(column, empty), pred_rows.get(column, empty)


def average_precision_per_class(gt_clip: np.ndarray, gt_segments: np.ndarray, gt_class: np.ndarray,
                                pred_clip: np.ndarray, pred_segments: np.ndarray, pred_scores: np.ndarray,
                                pred_class: np.ndarray, num_classes: int, tiou_thresholds: Sequence[float]
                                ) -> np.ndarray:
    """Interpolated AP of every class at every tIoU threshold (a match needs tIoU >= threshold).

    Predictions of a class are ranked by score over all clips; within a clip each ground-truth segment is matched at
    most once per threshold (greedy, highest tIoU first). A class without predictions has AP 0.

    Returns:
        float64 [T, num_classes], fractions.
    """
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64)
    ap = np.zeros((len(thresholds), num_classes))
    for column, gt_rows, pred_rows in _class_rows(gt_class, pred_class, num_classes):
        if len(pred_rows) == 0 or len(gt_rows) == 0:
            continue
        ranked = pred_rows[_descending_score_order(pred_scores[pred_rows])]
        true_positive = np.zeros((len(thresholds), len(ranked)), dtype=bool)
        gt_by_clip = dict(group_rows(gt_clip[gt_rows]))
        for clip, ranks in group_rows(pred_clip[ranked]):
            clip_gt = gt_by_clip.get(clip)
            if clip_gt is not None:
                tiou = segment_tiou(pred_segments[ranked[ranks]], gt_segments[gt_rows[clip_gt]])
                true_positive[:, ranks] = _greedy_true_positives(tiou, thresholds)
        tp_cumsum = np.cumsum(true_positive, axis=1).astype(np.float64)
        fp_cumsum = np.cumsum(~true_positive, axis=1).astype(np.float64)
        recall = tp_cumsum / float(len(gt_rows))
        precision = tp_cumsum / (tp_cumsum + fp_cumsum)
        for t in range(len(thresholds)):
            ap[t, column] = interpolated_average_precision(precision[t], recall[t])
    return ap


def topkx_recall_per_class(gt_clip: np.ndarray, gt_segments: np.ndarray, gt_class: np.ndarray,
                           pred_clip: np.ndarray, pred_segments: np.ndarray, pred_scores: np.ndarray,
                           pred_class: np.ndarray, num_classes: int, tiou_thresholds: Sequence[float],
                           top_k: Sequence[int]) -> np.ndarray:
    """ActionFormer's top-kx recall of every class (reported as ``Recall@kx``).

    For each clip with ground truth of the class, that class's predictions in the clip are ranked by score and the
    first ``k * n`` kept (``n`` = the clip's ground-truth count for the class); a ground-truth segment is recalled if
    ANY kept prediction has tIoU >= threshold (no one-to-one matching). Recall = recalled / ground-truth count of the
    class; 0 for a class without any prediction.

    Returns:
        float64 [T, K, num_classes], fractions.
    """
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64)
    ks = np.asarray(top_k, dtype=np.int64)
    recall = np.zeros((len(thresholds), len(ks), num_classes))
    for column, gt_rows, pred_rows in _class_rows(gt_class, pred_class, num_classes):
        if len(pred_rows) == 0 or len(gt_rows) == 0:
            continue
        recalled = np.zeros((len(thresholds), len(ks)), dtype=np.int64)
        preds_by_clip = dict(group_rows(pred_clip[pred_rows]))
        for clip, clip_gt in group_rows(gt_clip[gt_rows]):
            clip_preds = preds_by_clip.get(clip)
            if clip_preds is None:
                continue
            rows = pred_rows[clip_preds]
            n_gt = len(clip_gt)
            kept = rows[_descending_score_order(pred_scores[rows])[:ks.max() * n_gt]]
            tiou = segment_tiou(pred_segments[kept], gt_segments[gt_rows[clip_gt]])
            recalled += count_recalled_within_rank(tiou >= thresholds[:, None, None], ks * n_gt)
        recall[:, :, column] = recalled / float(len(gt_rows))
    return recall


def count_recalled_within_rank(hit: np.ndarray, rank_limits: np.ndarray) -> np.ndarray:
    """How many ground-truth segments have a hit among the first ``limit`` ranked predictions, per limit.

    Args:
        hit: bool [T, P, G], prediction p (ranked) hits ground truth g at threshold t.
        rank_limits: int [K], number of leading predictions considered.

    Returns:
        int64 [T, K].
    """
    first_hit = np.where(hit.any(axis=1), hit.argmax(axis=1), np.iinfo(np.int64).max)
    return (first_hit[:, None, :] < rank_limits[None, :, None]).sum(axis=2)
