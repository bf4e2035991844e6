"""The float32 arithmetic of torchmetrics meters, to reproduce the values the reference code logs.

torchmetrics keeps its states in float32: accuracies are ``tp / (tp + fn)`` in float32 and ``MeanMetric`` adds
each update to a float32 sum. The metric functions return exact float64 values and, under the protocol that logs
them, these float32 values next to them (keys ending in ``_float32``).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["float32_accuracy_pct", "float32_running_mean"]


def float32_accuracy_pct(correct: int, total: int) -> float:
    """``correct / total`` divided in float32 (as torchmetrics ``MulticlassAccuracy`` computes it), in percent."""
    return 100.0 * float(np.float32(correct) / np.float32(total))


def float32_running_mean(values: Iterable[float]) -> float:
    """Mean of scalars fed one ``MeanMetric.update`` call each: a float32 sum and count, divided in float32."""
    total, count = np.float32(0.0), np.float32(0.0)
    for value in values:
        total = np.float32(total + np.float32(value))
        count = np.float32(count + np.float32(1.0))
    return float(total / count)
