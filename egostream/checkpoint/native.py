"""egostream's own checkpoint format (``"egostream"``, version :data:`FORMAT_VERSION`): writing it
(:func:`save_checkpoint`) and reading its versions (:func:`from_egostream`).

``{"format": "egostream", "version": 2, "backbone_config", "backbone", "tasks", "task_configs", "novel_task",
"support_necks", "egopack", "egopack_config", "config", "step", "training_state"}``: ``tasks`` holds every head of
the bundle (the EgoPack novel task's included), ``support_necks`` the EgoPack support tasks' projection necks under
their own key (so a novel task that is also a support task, the authors' default, keeps both), ``training_state``
what ``egostream train`` needs to resume (optimizer, schedule, epoch, RNG states) or ``None``. Version 1 files (the
novel head and the support necks sharing ``tasks``) still load. Only plain containers, numbers, strings and
tensors, so it loads with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from egostream.backbone.hierarchy import BackboneConfig, HierarchicalBackbone
from egostream.checkpoint.loaded import LoadedCheckpoint, StateDict, state_dict_at, task_states_at
from egostream.config import from_dict, to_dict
from egostream.errors import InputError
from egostream.io.atomic import atomic_output

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "READABLE_VERSIONS", "from_egostream", "save_checkpoint"]

FORMAT_NAME = "egostream"
FORMAT_VERSION = 2
#: Versions of our format this egostream reads.
READABLE_VERSIONS = (1, 2)


def from_egostream(path: Path, content: Mapping[str, Any]) -> LoadedCheckpoint:
    """The :class:`LoadedCheckpoint` of one of our checkpoints (any of :data:`READABLE_VERSIONS`).

    Raises:
        InputError: an unsupported version or a malformed part (naming the key).
    """
    version = content.get("version")
    if version not in READABLE_VERSIONS:
        raise InputError(path, "version", f"unsupported egostream checkpoint version {version!r} "
                                          f"(this egostream reads versions {list(READABLE_VERSIONS)})")
    backbone_cfg = None
    if content.get("backbone_config") is not None:
        backbone_cfg = from_dict(BackboneConfig, content["backbone_config"], source=str(path),
                                 prefix="backbone_config.")
    backbone = state_dict_at(path, content, "backbone") if content.get("backbone") is not None else None
    egopack = state_dict_at(path, content, "egopack") if content.get("egopack") is not None else None
    tasks = task_states_at(path, content, "tasks")
    novel = content.get("novel_task")
    novel_state = tasks.pop(novel, None) if novel else None
    support_necks = task_states_at(path, content, "support_necks") if content.get("support_necks") else {}
    training_state = content.get("training_state")
    if training_state is not None and not isinstance(training_state, Mapping):
        raise InputError(path, "training_state", f"expected a mapping, got {type(training_state).__name__}")
    config = dict(content.get("config") or {})
    config.setdefault("task_configs", dict(content.get("task_configs") or {}))
    config.setdefault("egopack_config", content.get("egopack_config"))
    return LoadedCheckpoint(path, "egostream", backbone, backbone_cfg, tasks=tasks, novel_task=novel,
                            novel_task_state=novel_state, egopack=egopack, config=config, step=content.get("step"),
                            support_necks=support_necks,
                            training_state=None if training_state is None else dict(training_state))


def _as_state(value: nn.Module | Mapping[str, Tensor]) -> StateDict:
    state = value.state_dict() if isinstance(value, nn.Module) else value
    return {key: tensor.detach().cpu().clone() for key, tensor in state.items()}


def save_checkpoint(path: str | os.PathLike[str], *, backbone: HierarchicalBackbone | None = None,
                    tasks: Mapping[str, nn.Module | Mapping[str, Tensor]] | None = None,
                    task_configs: Mapping[str, Mapping[str, Any]] | None = None, novel_task: str | None = None,
                    egopack: nn.Module | Mapping[str, Tensor] | None = None,
                    egopack_config: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None,
                    step: int | None = None,
                    support_necks: Mapping[str, nn.Module | Mapping[str, Tensor]] | None = None,
                    training_state: Mapping[str, Any] | None = None) -> Path:
    """Write an egostream checkpoint (format ``"egostream"``, version :data:`FORMAT_VERSION`) atomically.

    The file is written to a temporary file in the same folder, flushed to disk and renamed over ``path``, so a
    crash never leaves a half-written checkpoint. Configs must be plain JSON-like values. ``novel_task`` names
    the entry of ``tasks`` that is the EgoPack novel task (if any); ``support_necks`` maps each EgoPack support
    task to its neck (a module, or a state with ``projector.*`` keys); ``training_state`` holds tensors and plain
    values only (the optimizer's ``state_dict()``, RNG states as tensors).
    """
    path = Path(path)
    if novel_task is not None and (tasks is None or novel_task not in tasks):
        raise ValueError(f"novel_task {novel_task!r} must be one of the saved tasks")
    content = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION,
        "backbone_config": None if backbone is None else to_dict(backbone.cfg),
        "backbone": None if backbone is None else _as_state(backbone),
        "tasks": {name: _as_state(module) for name, module in (tasks or {}).items()},
        "task_configs": {name: dict(cfg) for name, cfg in (task_configs or {}).items()},
        "novel_task": novel_task,
        "support_necks": {name: _as_state(neck) for name, neck in (support_necks or {}).items()},
        "egopack": None if egopack is None else _as_state(egopack),
        "egopack_config": None if egopack_config is None else dict(egopack_config),
        "config": dict(config or {}), "step": step,
        "training_state": None if training_state is None else dict(training_state),
    }
    with atomic_output(path) as stream:
        torch.save(content, stream)
    return path
