"""Seeding and capturing the random state of a run (torch, NumPy and Python), so a resumed run continues exactly.

Seeding follows sapeirone/hier-egopack@4fff4e5:utils/random.py (``seed_everything``: ``torch.manual_seed``,
``np.random.seed``, ``random.seed`` with the same seed). The run's data order does not depend on this global state (see
:mod:`egostream.train.sampling`); dropout and the LTA sampling draw from torch's global generator, whose state is
saved with every checkpoint and restored on resume.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

__all__ = ["seed_everything", "capture_rng_state", "restore_rng_state", "torch_threads"]


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and every CUDA device), NumPy's global generator and Python's ``random`` with ``seed``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Torch's intra-op CPU threads set to ``count`` for the block, restored after it.

    One thread makes CPU training bit-reproducible: multi-threaded reductions sum in an order that varies from run
    to run.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def capture_rng_state() -> dict[str, Any]:
    """The state of every global generator, as tensors and plain Python values (safe for a checkpoint)."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back a state returned by :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
