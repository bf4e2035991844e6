"""Object state change classification (OSCC): accuracy of the binary state-change decision.

Protocols (see :mod:`.protocol`), which count the same hits:

* ``official``: EGO4D/hands-and-objects@0aea0a4:state-change-localization-classification/i3d-resnet50/evaluation/
  metrics.py::state_change_accuracy on the whole set (correct / N). The repository's ``test.py`` instead prints the
  mean of per-batch accuracies, which is biased when the last batch is smaller; that logging is not emulated.
* ``hier-egopack``: sapeirone/hier-egopack@4fff4e5:utils/meters/ego4d/oscc.py::EvalMeter, torchmetrics
  ``MulticlassAccuracy(num_classes=2, average="micro")``, a float32 fraction logged times 100.
"""
from __future__ import annotations

import numpy as np

from egostream.ego4d.metrics.float32_meters import float32_accuracy_pct
from egostream.ego4d.metrics.protocol import check_protocol
from egostream.ego4d.metrics.validation import as_array, as_class_ids, require_same_length
from egostream.errors import InputError

__all__ = ["oscc_metrics", "state_change_predictions"]


def state_change_predictions(logits_or_preds: np.ndarray) -> np.ndarray:
    """Predicted state-change decisions (1 = state change) as int64 ``[N]``.

    Args:
        logits_or_preds: ``[N, 2]`` scores (column 1 = state change; the argmax decides, the lower index on a tie,
            as ``torch.argmax`` does), or ``[N]`` 0/1 (or boolean) decisions, the content of an official OSCC
            submission's ``state_change`` field.
    """
    values = as_array(logits_or_preds, "logits_or_preds", ndim=(1, 2))
    if values.ndim == 2:
        if values.shape[1] != 2:
            raise InputError(None, "logits_or_preds",
                             f"expected [N, 2] scores or [N] 0/1 decisions, got shape {values.shape}")
        return np.argmax(values, axis=1).astype(np.int64)
    return as_class_ids(values, "logits_or_preds", ndim=1, num_classes=2)


def oscc_metrics(logits_or_preds: np.ndarray, labels: np.ndarray, *, protocol: str) -> dict[str, float | int]:
    """State-change classification accuracy.

    Args:
        logits_or_preds: ``[N, 2]`` scores or ``[N]`` 0/1 decisions (see :func:`state_change_predictions`).
        labels: ``[N]`` int, 1 = the clip has a state change, 0 = it has none.
        protocol: ``"official"`` or ``"hier-egopack"``.

    Returns:
        ``n_samples`` (N), ``correct`` (int) and ``accuracy_pct`` (100 * correct / N, float64); under
        ``hier-egopack`` also ``accuracy_pct_float32`` (the meter's float32 accuracy, in percent).

    Raises:
        ValueError: unknown protocol.
        InputError: wrong shape, or a label or decision other than 0/1.
    """
    check_protocol(protocol)
    predictions = state_change_predictions(logits_or_preds)
    label_ids = as_class_ids(labels, "labels", ndim=1, num_classes=2)
    require_same_length("labels", label_ids, "logits_or_preds", predictions)
    total = len(label_ids)
    correct = int((predictions == label_ids).sum())
    metrics: dict[str, float | int] = {"n_samples": total, "correct": correct, "accuracy_pct": 100.0 * correct / total}
    if protocol == "hier-egopack":
        metrics["accuracy_pct_float32"] = float32_accuracy_pct(correct, total)
    return metrics
