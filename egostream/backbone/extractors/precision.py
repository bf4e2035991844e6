"""Numeric precision of an extractor's forward pass: ``float32`` (the reference every fixture is checked in) or
``bfloat16`` / ``float16`` autocast (faster on GPUs; reported separately, never mixed with float32 results)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["PRECISIONS", "autocast"]

PRECISIONS = ("float32", "bfloat16", "float16")


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Run the block under ``torch.autocast`` in ``precision`` on ``device``'s type; plain float32 otherwise."""
    if precision == "float32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=getattr(torch, precision)):
        yield
