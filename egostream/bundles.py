"""One loader for every kind of model checkpoint: a translation (EgoT2-s) checkpoint loads as a
:class:`~egostream.translation.TranslationBundle` with its frozen sources, anything else (the authors' checkpoints,
ours, EgoPack) as a :class:`~egostream.model.ModelBundle`. Replay, stream replay and ``run`` load through here."""
from __future__ import annotations

from collections.abc import Mapping

import torch

from egostream.device import resolve_device
from egostream.model import CheckpointSpec, ModelBundle
from egostream.translation import TranslationBundle, is_translation_checkpoint

__all__ = ["load_bundle"]


def load_bundle(checkpoints: CheckpointSpec, *, feature_dim: int | None = None,
                device: str | torch.device = "cpu") -> ModelBundle | TranslationBundle:
    """The model of ``checkpoints`` (one path, or ``{task: path}``), in eval mode, on ``device`` (resolved once by
    :func:`~egostream.device.resolve_device`; ``auto``, ``cpu``, ``cuda:N``); ``feature_dim`` is checked against
    each checkpoint. Raises :class:`~egostream.errors.InputError` as the bundle loaders do (field ``device`` for a
    device this machine cannot use)."""
    target = resolve_device(device)
    if not isinstance(checkpoints, Mapping) and is_translation_checkpoint(checkpoints):
        return TranslationBundle.from_checkpoints(checkpoints, feature_dim=feature_dim).to(target).eval()
    return ModelBundle.from_checkpoints(checkpoints, feature_dim=feature_dim, device=target).eval()
