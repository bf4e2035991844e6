"""Shape and range checks shared by the AR, LTA, OSCC and PNR metrics.

Every failure raises :class:`egostream.errors.InputError` with no file (the arrays come from the caller) and the
argument name as the field.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from egostream.errors import InputError

__all__ = ["as_array", "as_class_ids", "require_same_length"]


def as_array(values: object, field: str, *, ndim: int | Sequence[int], integer: bool = False) -> np.ndarray:
    """``values`` as a NumPy array with one of the allowed numbers of dimensions and at least one row.

    With ``integer=True`` the dtype must be an integer (or boolean) kind; float arrays holding whole numbers are
    refused too, since class ids given as floats usually mean logits were passed by mistake.
    """
    array = np.asarray(values)
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if array.ndim not in allowed:
        shapes = " or ".join(f"{n}-D" for n in allowed)
        raise InputError(None, field, f"expected a {shapes} array, got shape {array.shape}")
    if array.shape[0] == 0:
        raise InputError(None, field, "no samples (first dimension is 0)")
    if integer and array.dtype.kind not in "iub":
        raise InputError(None, field, f"expected integer class ids, got dtype {array.dtype}")
    if not integer and array.dtype.kind not in "iubf":
        raise InputError(None, field, f"expected numbers, got dtype {array.dtype}")
    return array


def as_class_ids(values: object, field: str, *, ndim: int, num_classes: int | None = None) -> np.ndarray:
    """Integer class ids as ``int64``, each in ``[0, num_classes)`` (only ``>= 0`` when ``num_classes`` is None)."""
    ids = as_array(values, field, ndim=ndim, integer=True).astype(np.int64)
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or (num_classes is not None and high >= num_classes):
        valid = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        bad = low if low < 0 else high
        raise InputError(None, field, f"class id {bad} is out of range (valid: {valid})")
    return ids


def require_same_length(field: str, array: np.ndarray, reference_field: str, reference: np.ndarray) -> None:
    """Raise unless ``array`` and ``reference`` have the same number of samples (first dimension)."""
    if array.shape[0] != reference.shape[0]:
        raise InputError(None, field, f"{array.shape[0]} samples, but {reference_field} has {reference.shape[0]}")
