"""Loading a checkpoint's state dicts into modules strictly, saying what differs when they do not fit:
:func:`load_module_state` for any module, :func:`load_backbone` for the hierarchical backbone."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping

from torch import Tensor, nn

from egostream.backbone.hierarchy import BackboneConfig, HierarchicalBackbone
from egostream.checkpoint.loaded import LoadedCheckpoint
from egostream.checkpoint.reading import load_checkpoint
from egostream.errors import InputError

__all__ = ["describe_mismatch", "load_module_state", "load_backbone"]


def describe_mismatch(expected: Mapping[str, Tensor], given: Mapping[str, Tensor]) -> list[str]:
    """How ``given`` differs from ``expected`` (missing keys, unexpected keys, shape mismatches; at most six of
    each named), one text per kind of difference; ``[]`` when it fits."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [f"{k}: checkpoint {list(given[k].shape)} vs model {list(v.shape)}" for k, v in expected.items()
              if k in given and given[k].shape != v.shape]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", shapes)):
        if items:
            more = f" (+{len(items) - 6} more)" if len(items) > 6 else ""
            problems.append(f"{label}: {', '.join(items[:6])}{more}")
    return problems


def load_module_state(module: nn.Module, state: Mapping[str, Tensor], *, source: str | os.PathLike[str] | None,
                      field_name: str) -> nn.Module:
    """Load ``state`` into ``module`` strictly; on any difference raise :class:`InputError` saying what differs.

    ``field_name`` names the part of the checkpoint (e.g. ``"task[ego4d/ar]"``) for the message.
    """
    problems = describe_mismatch(module.state_dict(), state)
    if problems:
        raise InputError(source, field_name, f"does not fit {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(dict(state))
    return module


def load_backbone(checkpoint: str | os.PathLike[str] | LoadedCheckpoint, cfg: BackboneConfig | None = None, *,
                  allow_deeper_checkpoint: bool = False) -> HierarchicalBackbone:
    """Build a :class:`HierarchicalBackbone` and load a checkpoint's backbone weights into it (eval mode).

    Args:
        checkpoint: a file path or an already loaded checkpoint.
        cfg: the architecture to build; defaults to the checkpoint's own ``backbone_config``.
        allow_deeper_checkpoint: accept a checkpoint with MORE levels than ``cfg.depth`` and drop the extra levels'
            weights. This is what the authors' ``train_egopack.py`` does when it loads the depth-3 support
            checkpoint into a depth-1 EgoPack-AR model with ``load_state_dict(strict=False)`` (fixture README §5):
            ``layers.1.*`` and above are silently ignored there; here it must be asked for. Every other
            difference (missing level, widths) is still an error.

    Raises:
        InputError: no backbone in the checkpoint, or weights that do not fit ``cfg`` (naming what differs).
    """
    loaded = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint)
    if loaded.backbone is None:
        raise InputError(loaded.path, "model", f"this {loaded.format} checkpoint holds no backbone")
    cfg = cfg or loaded.backbone_config
    if cfg is None:
        raise InputError(loaded.path, "backbone_config", "no backbone config stored: pass cfg")
    level = re.compile(r"^layers\.(\d+)\.")
    extra_levels = {k for k in loaded.backbone if (m := level.match(k)) and int(m.group(1)) >= cfg.depth}
    state = {k: v for k, v in loaded.backbone.items() if not (allow_deeper_checkpoint and k in extra_levels)}
    backbone = HierarchicalBackbone(cfg)
    hint = " (pass allow_deeper_checkpoint=True to drop the extra levels)" if extra_levels and not (
        allow_deeper_checkpoint) else ""
    try:
        load_module_state(backbone, state, source=loaded.path, field_name="model")
    except InputError as err:
        raise InputError(loaded.path, "model", err.reason + hint) from None
    return backbone.eval()
