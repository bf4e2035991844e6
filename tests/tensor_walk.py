"""A test helper: every tensor inside a model input or output, whatever container holds it."""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

__all__ = ["tensors_in"]


def tensors_in(value: Any) -> list[torch.Tensor]:
    """Every tensor held by ``value`` (tensors, dataclasses, named tuples, sequences, dicts), recursively."""
    if isinstance(value, torch.Tensor):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [t for item in dataclasses.fields(value) for t in tensors_in(getattr(value, item.name))]
    if isinstance(value, dict):
        return [t for item in value.values() for t in tensors_in(item)]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in tensors_in(item)]
    return []
