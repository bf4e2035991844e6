"""Action recognition (AR): top-k verb and noun accuracy and action top-1 accuracy.

Protocols (see :mod:`.protocol`):

* ``official``: EGO4D/forecasting@38d1931:ego4d_forecasting/evaluation/lta_metrics.py::topk_errors, which reports the
  top-1 and top-5 *error* in percent, computed by torch in float32.
* ``hier-egopack``: sapeirone/hier-egopack@4fff4e5:utils/meters/ego4d/ar.py::EvalMeter, torchmetrics
  ``MulticlassAccuracy(top_k=1, 2, 3, 5, average="micro")``, a float32 fraction logged times 100; action accuracy from
  sapeirone/hier-egopack@4fff4e5:utils/metrics.py::MultitaskAccuracy (verb and noun both right at top-1).

Both protocols count the same hits; they differ in which k they report and in their float32 rounding, which is
returned next to the exact value under a ``*_float32`` key.
"""
from __future__ import annotations

import numpy as np

from egostream.ego4d.metrics.float32_meters import float32_accuracy_pct
from egostream.ego4d.metrics.protocol import check_protocol
from egostream.ego4d.metrics.validation import as_array, as_class_ids, require_same_length
from egostream.errors import InputError

__all__ = ["ar_metrics", "label_rank"]

# Which top-k accuracies each protocol reports: EGO4D/forecasting@38d1931:ego4d_forecasting/tasks/
# long_term_anticipation.py logs the top-1 and top-5 errors; the Hier-EgoPack AR meter builds top-1, 2, 3 and 5.
_TOP_KS: dict[str, tuple[int, ...]] = {"official": (1, 5), "hier-egopack": (1, 2, 3, 5)}


def label_rank(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Position of each true label in its row's classes sorted by descending score (0 = the argmax).

    Args:
        scores: ``[N, C]`` logits or probabilities.
        labels: ``[N]`` int class ids in ``[0, C)``.

    Returns:
        int64 ``[N]``. Tied scores are ordered by class id, lowest first, as ``argmax`` breaks ties; the reference
        code uses ``torch.topk``, whose order among exact ties is unspecified, so ties are the one place the two can
        disagree. A label is correct at top-k when its rank is below k.
    """
    label_scores = scores[np.arange(len(labels)), labels][:, None]
    higher = (scores > label_scores).sum(axis=1)
    tied_before = ((scores == label_scores) & (np.arange(scores.shape[1]) < labels[:, None])).sum(axis=1)
    return (higher + tied_before).astype(np.int64)


def _head_ranks(scores_or_ids: object, labels: object, head: str) -> tuple[np.ndarray, int | None]:
    """Label ranks for one head, and its class count (None when predicted ids were given instead of scores).

    Predicted ids ``[N]`` give rank 0 when right and a rank beyond any k when wrong, so only top-1 is defined.
    """
    predictions = as_array(scores_or_ids, f"{head}_logits", ndim=(1, 2))
    if predictions.ndim == 2:
        num_classes = predictions.shape[1]
        label_ids = as_class_ids(labels, f"{head}_labels", ndim=1, num_classes=num_classes)
        require_same_length(f"{head}_labels", label_ids, f"{head}_logits", predictions)
        return label_rank(predictions, label_ids), num_classes
    predicted_ids = as_class_ids(predictions, f"{head}_logits", ndim=1)
    label_ids = as_class_ids(labels, f"{head}_labels", ndim=1)
    require_same_length(f"{head}_labels", label_ids, f"{head}_logits", predicted_ids)
    return np.where(predicted_ids == label_ids, 0, np.iinfo(np.int64).max), None


def _float32_error_pct(correct: int, total: int) -> float:
    """``(1.0 - correct / total) * 100.0`` evaluated in float32, as
    EGO4D/forecasting@38d1931:ego4d_forecasting/evaluation/lta_metrics.py::topk_errors does on a float32 count."""
    fraction = np.float32(correct) / np.float32(total)
    return float((np.float32(1.0) - fraction) * np.float32(100.0))


def ar_metrics(verb_logits: np.ndarray, verb_labels: np.ndarray, noun_logits: np.ndarray,
               noun_labels: np.ndarray, *, protocol: str) -> dict[str, float | int]:
    """Verb, noun and action accuracy of action-recognition predictions.

    Args:
        verb_logits: ``[N, V]`` verb scores (logits or probabilities), or ``[N]`` int predicted verb ids (then only
            top-1 keys are produced).
        verb_labels: ``[N]`` int true verb ids in ``[0, V)``.
        noun_logits: ``[N, Nn]`` noun scores, or ``[N]`` int predicted noun ids.
        noun_labels: ``[N]`` int true noun ids in ``[0, Nn)``.
        protocol: ``"official"`` or ``"hier-egopack"``.

    Returns:
        A dict (``<head>`` is ``verb`` or ``noun``; percentages are 0-100, computed exactly in float64):

        * ``n_samples``: N.
        * ``<head>_top{k}_correct`` (int) and ``<head>_top{k}_pct``: samples whose label is among the k best scores,
          for k in (1, 5) under ``official`` and (1, 2, 3, 5) under ``hier-egopack``; k above the class count is
          skipped (the reference code would fail).
        * ``action_top1_correct``, ``action_top1_pct``: verb and noun both right at top-1 (no official code reports
          it; both protocols use Hier-EgoPack's ``MultitaskAccuracy`` rule).
        * ``official`` only: ``<head>_top{k}_err_pct`` (100 minus the accuracy, the quantity the official code
          reports) and ``<head>_top{k}_err_pct_float32`` (the official float32 value).
        * ``hier-egopack`` only: ``<head>_top{k}_pct_float32`` and ``action_top1_pct_float32`` (the meter's float32
          accuracies, in percent).

    Raises:
        ValueError: unknown protocol.
        InputError: shape mismatch, or a label out of range.
    """
    check_protocol(protocol)
    verb_ranks, num_verbs = _head_ranks(verb_logits, verb_labels, "verb")
    noun_ranks, num_nouns = _head_ranks(noun_logits, noun_labels, "noun")
    if len(noun_ranks) != len(verb_ranks):
        raise InputError(None, "noun_logits", f"{len(noun_ranks)} samples, but verb_logits has {len(verb_ranks)}")
    total = len(verb_ranks)
    metrics: dict[str, float | int] = {"n_samples": total}
    for head, ranks, num_classes in (("verb", verb_ranks, num_verbs), ("noun", noun_ranks, num_nouns)):
        reported_ks = (1,) if num_classes is None else tuple(k for k in _TOP_KS[protocol] if k <= num_classes)
        for k in reported_ks:
            correct = int((ranks < k).sum())
            metrics[f"{head}_top{k}_correct"] = correct
            metrics[f"{head}_top{k}_pct"] = 100.0 * correct / total
            if protocol == "official":
                metrics[f"{head}_top{k}_err_pct"] = 100.0 * (total - correct) / total
                metrics[f"{head}_top{k}_err_pct_float32"] = _float32_error_pct(correct, total)
            else:
                metrics[f"{head}_top{k}_pct_float32"] = float32_accuracy_pct(correct, total)
    action_correct = int(((verb_ranks == 0) & (noun_ranks == 0)).sum())
    metrics["action_top1_correct"] = action_correct
    metrics["action_top1_pct"] = 100.0 * action_correct / total
    if protocol == "hier-egopack":
        metrics["action_top1_pct_float32"] = float32_accuracy_pct(action_correct, total)
    return metrics

