"""The one ``device`` setting: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``, resolved here and nowhere else.

``auto`` is the first CUDA device when one is usable (torch sees it and a one-element allocation on it succeeds),
otherwise the CPU. CPU float32 is the exact reference path; the model, the engine state, the readout caches, the
backpack and the kernel inputs all live on the resolved device (DESIGN §10).
"""
from __future__ import annotations

import torch
from torch import nn

from egostream.errors import InputError

__all__ = ["DEVICE_CHOICES", "resolve_device", "module_device"]

#: What ``--device`` / ``device=`` accept (``cuda:N`` for any device index N).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")


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
