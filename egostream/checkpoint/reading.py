"""Reading a checkpoint file: :func:`load_checkpoint` reads it once, without running pickled code
(:func:`~egostream.restricted_pickle.load_restricted`), refuses non-finite weights, detects the format from the
top-level keys and hands the content to that format's reader (:mod:`egostream.checkpoint.native`,
:mod:`egostream.checkpoint.authors`). Everything that needs a checkpoint's contents gets them from here."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from egostream.checkpoint.authors import authors_format, from_authors
from egostream.checkpoint.loaded import CheckpointFormat, LoadedCheckpoint
from egostream.checkpoint.native import FORMAT_NAME, from_egostream
from egostream.errors import InputError
from egostream.restricted_pickle import load_restricted

__all__ = ["load_checkpoint", "detect_format"]

#: Top-level checkpoint entries that hold training state or configs, not model weights.
_NOT_WEIGHTS = frozenset({"optimizer", "warmup_scheduler", "scheduler", "training_state", "config", "step"})


def _check_finite(path: Path, content: Any, field: str = "") -> None:
    """InputError naming the first floating tensor of ``content`` (nested mappings) with a NaN or an infinity."""
    if isinstance(content, Tensor):
        if content.is_floating_point() and not bool(torch.isfinite(content).all()):
            bad = int((~torch.isfinite(content)).sum())
            raise InputError(path, field, f"{bad} non-finite weight(s) of {content.numel()} (NaN or infinity)")
        return
    if isinstance(content, Mapping):
        for key, value in content.items():
            if key in _NOT_WEIGHTS and not field:
                continue
            _check_finite(path, value, f"{field}.{key}" if field else str(key))


def detect_format(path: Path, content: Any) -> CheckpointFormat:
    """The :data:`~egostream.checkpoint.loaded.CheckpointFormat` of a checkpoint's top-level ``content``;
    :class:`InputError` naming ``path`` for anything else."""
    if not isinstance(content, Mapping):
        raise InputError(path, None, f"expected a dict at the top level, got {type(content).__name__}")
    if content.get("format") == FORMAT_NAME:
        return "egostream"
    kind = authors_format(content)
    if kind is not None:
        return kind
    raise InputError(path, None, "unknown checkpoint layout with top-level keys "
                                 f"{sorted(map(str, set(content)))[:12]}: expected train_multi_task.py ('model', "
                                 "'task'), train_egopack.py ('model', 'egopack_task', 'tasks', 'egopack'), a plain "
                                 "EgoPack state_dict, or an egostream checkpoint")


def load_checkpoint(path: str | os.PathLike[str]) -> LoadedCheckpoint:
    """Load any supported checkpoint file (see :mod:`egostream.checkpoint`) into a :class:`LoadedCheckpoint`.

    Raises:
        InputError: missing file, unknown layout, a refused pickle global, a malformed part (naming the key), a
            weight that is NaN or infinite (naming the first such key) or a cyclic config interpolation.
    """
    path = Path(path)
    content = load_restricted(path)
    kind = detect_format(path, content)
    _check_finite(path, content)
    if kind == "egostream":
        return from_egostream(path, content)
    return from_authors(path, content, kind)
