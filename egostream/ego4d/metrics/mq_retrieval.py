"""Official Moment Queries retrieval recall: R@k at tIoU t, averaged over ground-truth instances.

Reproduces EGO4D/episodic-memory@5275b95:MQ/Evaluation/ego4d/get_retrieval_performance.py::Moment_Retrieval.evaluate
(with its ``iou`` function). Unlike the detection metrics in :mod:`.mq_detection`, this rule

* ranks a clip's predictions of a label in FILE order (the order of the prediction list), not by score;
* uses the span IoU (intersection over ``max(end) - min(start)``, equal to the union when the segments overlap);
* needs IoU strictly greater than t;
* keeps, for a clip with ``n`` ground-truth instances of a label, the first ``rank * n`` predictions of that label.

An instance is recalled if any kept prediction passes; recall = recalled instances / all evaluated instances.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from egostream.ego4d.metrics.mq_detection import count_recalled_within_rank

__all__ = ["OFFICIAL_RETRIEVAL_TIOUS", "OFFICIAL_RETRIEVAL_RANKS", "span_iou", "retrieval_recall"]

#: tIoU values and ranks of ``Moment_Retrieval.evaluate`` (hard-coded there).
OFFICIAL_RETRIEVAL_TIOUS: tuple[float, ...] = (0.3, 0.5, 0.7)
OFFICIAL_RETRIEVAL_RANKS: tuple[int, ...] = (1, 2, 3, 4, 5)


def span_iou(pred_segments: np.ndarray, gt_segments: np.ndarray) -> np.ndarray:
    """Intersection over span of every prediction with every ground-truth segment.

    Args:
        pred_segments: float [P, 2], (start, end) in seconds.
        gt_segments: float [G, 2], (start, end) in seconds.

    Returns:
        float64 [P, G]; NaN (never > t) where the span is 0, as the reference's 0/0.
    """
    intersection = np.maximum(0.0, np.minimum(pred_segments[:, None, 1], gt_segments[None, :, 1])
                              - np.maximum(pred_segments[:, None, 0], gt_segments[None, :, 0]))
    span = np.maximum(0.0, np.maximum(pred_segments[:, None, 1], gt_segments[None, :, 1])
                      - np.minimum(pred_segments[:, None, 0], gt_segments[None, :, 0]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return intersection / span


def retrieval_recall(groups: Sequence[tuple[np.ndarray, np.ndarray]],
                     tious: Sequence[float] = OFFICIAL_RETRIEVAL_TIOUS,
                     ranks: Sequence[int] = OFFICIAL_RETRIEVAL_RANKS) -> np.ndarray:
    """Recall at every (tIoU, rank).

    Args:
        groups: one ``(gt_segments [G, 2], pred_segments [P, 2])`` pair per (clip, ground-truth label), seconds;
            ``pred_segments`` are that clip's predictions of the label in file order (P may be 0).
        tious: tIoU thresholds t (strict: IoU > t).
        ranks: rank multipliers r (the first ``r * G`` predictions count).

    Returns:
        float64 [len(tious), len(ranks)], fractions; NaN when there is no ground-truth instance at all.
    """
    thresholds = np.asarray(tious, dtype=np.float64)
    rank_multipliers = np.asarray(ranks, dtype=np.int64)
    recalled = np.zeros((len(thresholds), len(rank_multipliers)), dtype=np.int64)
    n_instances = 0
    for gt_segments, pred_segments in groups:
        n_gt = len(gt_segments)
        n_instances += n_gt
        if len(pred_segments) == 0:
            continue
        hit = span_iou(pred_segments, gt_segments)[None, :, :] > thresholds[:, None, None]
        recalled += count_recalled_within_rank(hit, rank_multipliers * n_gt)
    if n_instances == 0:
        return np.full(recalled.shape, np.nan)
    return recalled / float(n_instances)
