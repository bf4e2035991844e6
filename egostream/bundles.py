"""One loader for every kind of model checkpoint: a translation (EgoT2-s) checkpoint loads as a
:class:`~egostream.translation.TranslationBundle` with its frozen sources, anything else (the authors' checkpoints,
ours, EgoPack) as a :class:`~egostream.model.ModelBundle`. Replay (local and on a Ray cluster), stream replay and
``run`` load through here; each checkpoint file is read once (:func:`~egostream.model.read_checkpoints`), and files
already read can be given instead of paths."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from egostream.checkpoint import LoadedCheckpoint
from egostream.device import resolve_device
from egostream.model import LoadedSpec, ModelBundle, read_checkpoints
from egostream.translation import TranslationBundle, is_translation_checkpoint

__all__ = ["load_bundle"]


def load_bundle(checkpoints: LoadedSpec, *, tasks: Sequence[str] | None = None, feature_dim: int | None = None,
                device: str | torch.device = "cpu") -> ModelBundle | TranslationBundle:
    """The model of ``checkpoints`` (one path, or ``{task: path}``; paths or files already read), in eval mode, on
    ``device`` (resolved once by :func:`~egostream.device.resolve_device`; ``auto``, ``cpu``, ``cuda:N``);
    ``tasks`` picks the tasks of a single multi-task file (:meth:`ModelBundle.from_checkpoints`; a translation
    checkpoint has its one primary task); ``feature_dim`` is checked against each checkpoint. Raises
    :class:`~egostream.errors.InputError` as the bundle loaders do (field ``device`` for a device this machine
    cannot use)."""
    target = resolve_device(device)
    read = read_checkpoints(checkpoints)
    if isinstance(read, LoadedCheckpoint) and is_translation_checkpoint(read):
        return TranslationBundle.from_checkpoints(read, feature_dim=feature_dim).to(target).eval()
    return ModelBundle.from_checkpoints(read, tasks=tasks, feature_dim=feature_dim, device=target).eval()
