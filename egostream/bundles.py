"""One loader for every kind of model checkpoint: a translation (EgoT2-s) checkpoint loads as a
:class:`~egostream.translation.TranslationBundle` with its frozen sources, anything else (the authors' checkpoints,
ours, EgoPack) as a :class:`~egostream.model.ModelBundle`. Replay, stream replay and ``run`` load through here."""
from __future__ import annotations

from collections.abc import Mapping

from egostream.model import CheckpointSpec, ModelBundle
from egostream.translation import TranslationBundle, is_translation_checkpoint

__all__ = ["load_bundle"]


def load_bundle(checkpoints: CheckpointSpec, *, feature_dim: int | None = None) -> ModelBundle | TranslationBundle:
    """The model of ``checkpoints`` (one path, or ``{task: path}``), in eval mode; ``feature_dim`` is checked
    against each checkpoint. Raises :class:`~egostream.errors.InputError` as the bundle loaders do."""
    if not isinstance(checkpoints, Mapping) and is_translation_checkpoint(checkpoints):
        return TranslationBundle.from_checkpoints(checkpoints, feature_dim=feature_dim).eval()
    return ModelBundle.from_checkpoints(checkpoints, feature_dim=feature_dim).eval()
