"""Long-term action anticipation (LTA): edit distance at Z future steps, best of K candidate sequences.

Protocols (see :mod:`.protocol`), which agree sample by sample:

* ``official``: EGO4D/forecasting@38d1931:ego4d_forecasting/evaluation/lta_metrics.py::edit_distance (ED@Z, the mean
  over samples) and ``::AUED`` (the edit distance on every prefix of the horizon and the area under that curve).
* ``hier-egopack``: sapeirone/hier-egopack@4fff4e5:utils/meters/ego4d/lta.py::EvalMeter._edit_distance, averaged by a
  torchmetrics ``MeanMetric``. That running mean is float32 and summed per batch in torch's reduction order, which is
  not emulated: it differs from the exact mean returned here by well under 1e-6.

Per sample, the distance is ``min over k of levenshtein(preds[n, :, k], labels[n]) / Z``, a fraction of Z (0 to 1).
"""
from __future__ import annotations

import numpy as np

from egostream.ego4d.metrics.edit_distance import prefix_levenshtein
from egostream.ego4d.metrics.protocol import check_protocol
from egostream.ego4d.metrics.validation import as_class_ids
from egostream.errors import InputError

__all__ = ["lta_metrics", "lta_edit_distances"]


def _checked_head(preds: object, labels: object, preds_field: str, labels_field: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``[N, Z, K]`` predictions and ``[N, Z]`` labels of one head, as int64."""
    pred_ids = as_class_ids(preds, preds_field, ndim=3)
    label_ids = as_class_ids(labels, labels_field, ndim=2)
    if pred_ids.shape[:2] != label_ids.shape:
        raise InputError(None, labels_field, f"shape {label_ids.shape} does not match {preds_field} "
                                             f"{pred_ids.shape} (expected [N, Z] for preds [N, Z, K])")
    return pred_ids, label_ids


def lta_edit_distances(preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Best-candidate edit distance of every sample on every prefix of the horizon.

    Args:
        preds: int ``[N, Z, K]``: sample, future step, candidate sequence (the layout the official
            ``edit_distance`` takes).
        labels: int ``[N, Z]``: the true future sequence of each sample.

    Returns:
        float64 ``[N, Z]`` whose entry ``[n, z]`` is ``min_k levenshtein(preds[n, :z+1, k], labels[n, :z+1]) / (z+1)``,
        a fraction of the prefix length. Column ``Z - 1`` is the per-sample ED@Z.
    """
    pred_ids, label_ids = _checked_head(preds, labels, "preds", "labels")
    return _prefix_edit_distances(pred_ids, label_ids)


def _prefix_edit_distances(pred_ids: np.ndarray, label_ids: np.ndarray) -> np.ndarray:
    num_samples, horizon, num_candidates = pred_ids.shape
    candidates = pred_ids.transpose(0, 2, 1).reshape(num_samples * num_candidates, horizon)
    targets = np.repeat(label_ids, num_candidates, axis=0)
    distances = prefix_levenshtein(candidates, targets).reshape(num_samples, num_candidates, horizon)
    return distances.min(axis=1) / np.arange(1, horizon + 1)


def _area_under_curve(curve: np.ndarray) -> float:
    """Trapezoidal area under the ED_z curve divided by Z - 1, as
    EGO4D/forecasting@38d1931:ego4d_forecasting/evaluation/lta_metrics.py::AUED computes it (``np.trapz`` with unit
    spacing). With Z = 1 the official division is 0 / 0; this returns NaN."""
    if len(curve) < 2:
        return float("nan")
    return float(((curve[1:] + curve[:-1]) / 2.0).sum() / (len(curve) - 1))


def lta_metrics(verb_preds: np.ndarray, verb_labels: np.ndarray, noun_preds: np.ndarray,
                noun_labels: np.ndarray, *, protocol: str) -> dict[str, float | int | list[float]]:
    """Edit distances of LTA predictions.

    Args:
        verb_preds: int ``[N, Z, K]`` predicted verb ids (sample, future step, candidate).
        verb_labels: int ``[N, Z]`` true verb ids.
        noun_preds: int ``[N, Z, K]`` predicted noun ids.
        noun_labels: int ``[N, Z]`` true noun ids.
        protocol: ``"official"`` or ``"hier-egopack"``.

    Returns:
        A dict; every edit distance is a fraction of the sequence length (0 = identical, 1 = all wrong):

        * ``n_samples`` (N), ``horizon_steps`` (Z), ``n_candidates`` (K).
        * ``verb_ed``, ``noun_ed``: ED@Z, mean over samples of the best candidate's distance.
        * ``action_ed``: the same with an action step being the (verb, noun) pair and the k-th verb candidate
          paired with the k-th noun candidate. No official code computes it; this is the project's assumed rule.
        * ``official`` only: ``verb_aued``, ``noun_aued`` (area under the ED_z curve over Z - 1; NaN when Z = 1) and
          ``verb_ed_by_steps``, ``noun_ed_by_steps`` (list of Z values: ED on the first 1, 2, ..., Z steps, the
          official ``ED_0`` ... ``ED_{Z-1}``; the last one equals ``<head>_ed``).

    Raises:
        ValueError: unknown protocol.
        InputError: shapes that disagree, or negative class ids.
    """
    check_protocol(protocol)
    verb_pred_ids, verb_label_ids = _checked_head(verb_preds, verb_labels, "verb_preds", "verb_labels")
    noun_pred_ids, noun_label_ids = _checked_head(noun_preds, noun_labels, "noun_preds", "noun_labels")
    if noun_pred_ids.shape != verb_pred_ids.shape:
        raise InputError(None, "noun_preds", f"shape {noun_pred_ids.shape} differs from verb_preds "
                                             f"{verb_pred_ids.shape}")
    num_samples, horizon, num_candidates = verb_pred_ids.shape
    metrics: dict[str, float | int | list[float]] = {
        "n_samples": num_samples, "horizon_steps": horizon, "n_candidates": num_candidates}
    for head, pred_ids, label_ids in (("verb", verb_pred_ids, verb_label_ids),
                                      ("noun", noun_pred_ids, noun_label_ids)):
        per_prefix = _prefix_edit_distances(pred_ids, label_ids)
        curve = per_prefix.mean(axis=0)
        metrics[f"{head}_ed"] = float(curve[-1])
        if protocol == "official":
            metrics[f"{head}_aued"] = _area_under_curve(curve)
            metrics[f"{head}_ed_by_steps"] = [float(value) for value in curve]
    noun_code_count = int(max(noun_pred_ids.max(), noun_label_ids.max())) + 1
    action_preds = verb_pred_ids * noun_code_count + noun_pred_ids
    action_labels = verb_label_ids * noun_code_count + noun_label_ids
    metrics["action_ed"] = float(_prefix_edit_distances(action_preds, action_labels)[:, -1].mean())
    return metrics
