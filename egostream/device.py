"""The one ``device`` setting: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``, resolved here and nowhere else.

``auto`` is the first CUDA device when one is usable (torch sees it and a one-element allocation on it succeeds),
otherwise the CPU. CPU float32 is the exact reference path; the model, the engine state, the readout caches, the
backpack and the kernel inputs all live on the resolved device (DESIGN §10).
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import TypeVar

import torch
from torch import nn

from egostream.errors import InputError

__all__ = ["DEVICE_CHOICES", "PRECISIONS", "resolve_device", "module_device", "move_tensors", "check_precision",
           "autocast"]

#: What ``--device`` / ``device=`` accept (``cuda:N`` for any device index N).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")

#: What ``precision=`` / ``--precision`` accept; ``float32`` is the exact reference path (no autocast).
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

T = TypeVar("T")


def _cuda_usable(index: int) -> bool:
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        return False
    try:
        torch.empty(1, device=f"cuda:{index}")
    except RuntimeError:
        return False
    return True


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device for a ``device`` setting.

    Args:
        spec: ``"auto"`` (or ``None``), ``"cpu"``, ``"cuda"`` (= ``cuda:0``), ``"cuda:N"``, or a ``torch.device``.

    Raises:
        InputError: (field ``device``) an unknown name, or a CUDA device this machine cannot use.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    name = "auto" if spec is None else str(spec).strip().lower()
    if name == "auto":
        return torch.device("cuda:0") if _cuda_usable(0) else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        index_text = name.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise InputError(None, "device", f"{spec!r} is not a device; use one of {', '.join(DEVICE_CHOICES)}")
        index = int(index_text)
        if not _cuda_usable(index):
            seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
            raise InputError(None, "device", f"{spec!r} is not usable here ({seen} CUDA device(s) visible); "
                             "use device=cpu or device=auto")
        return torch.device(f"cuda:{index}")
    raise InputError(None, "device", f"{spec!r} is not a device; use one of {', '.join(DEVICE_CHOICES)}")


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter (or buffer); the CPU for a module without either."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def move_tensors(value: T, device: torch.device, *, float32: bool = False) -> T:
    """``value`` with every tensor it holds moved to ``device``: tensors, dataclasses (a new instance of the same
    class, non-tensor fields kept), named tuples, lists, tuples and dicts, recursively; anything else as is.

    ``float32=True`` also casts floating tensors to float32 (outputs of an autocast region, before decoding).
    """
    if isinstance(value, torch.Tensor):
        moved = value.to(device)
        return moved.float() if float32 and moved.is_floating_point() else moved  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {item.name: move_tensors(getattr(value, item.name), device, float32=float32)
                   for item in dataclasses.fields(value) if item.init}
        return dataclasses.replace(value, **changes)  # type: ignore[type-var]
    if isinstance(value, dict):
        return type(value)((key, move_tensors(item, device, float32=float32))  # type: ignore[call-arg]
                           for key, item in value.items())
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(move_tensors(item, device, float32=float32) for item in value))  # type: ignore[return-value]
    if isinstance(value, (list, tuple)):
        return type(value)(move_tensors(item, device, float32=float32) for item in value)  # type: ignore[call-arg]
    return value


def check_precision(precision: str) -> torch.dtype:
    """The dtype of a ``precision`` setting (``float32``, ``bfloat16``, ``float16``); InputError (field
    ``precision``) otherwise."""
    if precision not in PRECISIONS:
        raise InputError(None, "precision", f"{precision!r} is not a precision; use one of {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


@contextlib.contextmanager
def autocast(device: torch.device, precision: str = "float32") -> Iterator[None]:
    """``torch.autocast`` on ``device`` with the ``precision`` dtype; no autocast at all for ``float32`` (the exact
    path). CPU autocast supports bfloat16 and float16 (float16 is slow there)."""
    dtype = check_precision(precision)
    if dtype is torch.float32:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
