"""The authors' Hier-EgoPack checkpoint formats (fixture README §5), recognised by their top-level keys:

``"multi_task"``  ``train_multi_task.py``: ``{"model", "task": {name: state}, "optimizer", "warmup_scheduler",
                  "scheduler", "step", "config"}``.
``"egopack"``     ``train_egopack.py``: ``{"model", "egopack_task", "tasks": {support name: state}, "egopack",
                  ..., "config"}``; the novel task's name is ``config.egopack_task.name``.
``"egopack_module"`` a plain ``EgoPack.state_dict()`` (keys ``task_prototypes.*`` and ``stages.*``).

The backbone state dict comes back in :class:`~egostream.backbone.hierarchy.HierarchicalBackbone`'s key layout (the
authors' ``layers.<d>.module_<k>`` keys are renamed by :func:`authors_backbone_keys`); task and EgoPack state dicts
keep the authors' keys, by the authors' task names (``"ego4d/ar"``, ...).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from egostream.backbone.hierarchy import BackboneConfig, authors_backbone_keys, backbone_config_from_authors
from egostream.checkpoint.authors_config import plain_config, resolve_interpolations
from egostream.checkpoint.loaded import (CheckpointFormat, LoadedCheckpoint, StateDict, state_dict_at,
                                         task_states_at)
from egostream.errors import InputError

__all__ = ["authors_format", "from_authors", "infer_backbone_config"]


def authors_format(content: Mapping[Any, Any]) -> CheckpointFormat | None:
    """Which of the authors' formats the top-level keys of ``content`` are, or ``None``."""
    keys = set(content)
    if {"model", "egopack_task", "tasks", "egopack"} <= keys:
        return "egopack"
    if {"model", "task"} <= keys:
        return "multi_task"
    if keys and all(isinstance(k, str) and k.startswith(("task_prototypes.", "stages.")) for k in keys):
        return "egopack_module"
    return None


def _level0_conv_count(state: Mapping[str, Tensor]) -> int:
    """Number of TDGC layers per level in an authors' backbone state dict (``n_layers``)."""
    children = {int(m.group(1)) for k in state if (m := re.match(r"^layers\.0\.module_(\d+)\.lin_rel\.weight$", k))}
    return max(len(children), 1)


def infer_backbone_config(state: Mapping[str, Tensor], model_config: Mapping[str, Any] | None = None,
                          input_size: int | None = None) -> BackboneConfig:
    """A :class:`BackboneConfig` from an authors' ``model`` config, filling sizes from the tensor shapes.

    Shapes win over the config for ``input_size``, ``hidden_size``, ``depth``, ``n_layers`` and
    ``pos_hidden_channels`` (the tensors are what will be loaded); the rest comes from the config or the defaults
    of the authors' experiment configs (``k=2.0``, ``pool="mean"``).
    """
    hidden, width = state["proj.1.weight"].shape
    levels = {int(m.group(1)) for k in state if (m := re.match(r"^layers\.(\d+)\.", k))}
    n_layers = _level0_conv_count(state)
    gate = next((v for k, v in state.items() if k.endswith("lin_pos.0.weight")), None)
    model = {"k": 2.0, "pool": "mean", **dict(model_config or {})}
    model.update(hidden_size=int(hidden), depth=len(levels), n_layers=n_layers)
    conv = dict(model.get("conv") or {})
    if gate is not None:
        conv["pos_hidden_channels"] = int(gate.shape[0])
    model["conv"] = conv
    return backbone_config_from_authors(model, input_size=int(width) if input_size is None else input_size)


def _authors_backbone(path: Path, content: Mapping[str, Any], config: Mapping[str, Any]
                      ) -> tuple[StateDict, BackboneConfig]:
    state = state_dict_at(path, content, "model")
    if "proj.1.weight" not in state:
        raise InputError(path, "model", "not a GraphHier state dict (no 'proj.1.weight')")
    try:
        cfg = infer_backbone_config(state, config.get("model"))
    except ValueError as err:
        raise InputError(path, "config.model", str(err)) from err
    return authors_backbone_keys(state, cfg.n_layers), cfg


def from_authors(path: Path, content: Mapping[str, Any], kind: CheckpointFormat) -> LoadedCheckpoint:
    """The :class:`LoadedCheckpoint` of an authors' checkpoint of format ``kind`` (:func:`authors_format`), its
    pickled config made plain with interpolations resolved (:mod:`egostream.checkpoint.authors_config`).

    Raises:
        InputError: a malformed part (naming the key) or a cyclic config interpolation.
    """
    if kind == "egopack_module":
        return LoadedCheckpoint(path, kind, None, None, egopack=dict(content))
    config = resolve_interpolations(plain_config(content.get("config")), path) or {}
    if not isinstance(config, dict):
        raise InputError(path, "config", f"expected a config mapping, got {type(config).__name__}")
    backbone, backbone_cfg = _authors_backbone(path, content, config)
    step = content.get("step")
    step = int(step) if isinstance(step, int) else None
    if kind == "multi_task":
        return LoadedCheckpoint(path, kind, backbone, backbone_cfg, tasks=task_states_at(path, content, "task"),
                                config=config, step=step)
    novel_config = config.get("egopack_task")
    novel = novel_config.get("name") if isinstance(novel_config, Mapping) else None
    return LoadedCheckpoint(path, kind, backbone, backbone_cfg, tasks=task_states_at(path, content, "tasks"),
                            novel_task=novel, novel_task_state=state_dict_at(path, content, "egopack_task"),
                            egopack=state_dict_at(path, content, "egopack"), config=config, step=step)
