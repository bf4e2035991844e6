"""Loading the authors' Hier-EgoPack checkpoints as they are, and saving/loading egostream's own checkpoints.

Formats (detected from the top-level keys; fixture README §5):

``"multi_task"``  ``train_multi_task.py``: ``{"model", "task": {name: state}, "optimizer", "warmup_scheduler",
                  "scheduler", "step", "config"}``.
``"egopack"``     ``train_egopack.py``: ``{"model", "egopack_task", "tasks": {support name: state}, "egopack",
                  ..., "config"}``; the novel task's name is ``config.egopack_task.name``.
``"egopack_module"`` a plain ``EgoPack.state_dict()`` (keys ``task_prototypes.*`` and ``stages.*``).
``"egostream"``   ours, version 2: ``{"format": "egostream", "version": 2, "backbone_config", "backbone",
                  "tasks", "task_configs", "novel_task", "support_necks", "egopack", "egopack_config", "config",
                  "step", "training_state"}``: ``tasks`` holds every head of the bundle (the EgoPack novel task's
                  included), ``support_necks`` the EgoPack support tasks' projection necks under their own key (so
                  a novel task that is also a support task, the authors' default, keeps both), ``training_state``
                  what ``egostream train`` needs to resume (optimizer, schedule, epoch, RNG states) or ``None``.
                  Version 1 files (the novel head and the support necks sharing ``tasks``) still load. Only
                  plain containers, numbers, strings and tensors, so it loads with ``torch.load(weights_only=True)``.

The authors' training checkpoints pickle an ``omegaconf.DictConfig`` (``config``). They are read WITHOUT hydra or
omegaconf and without running pickled code: :class:`RestrictedUnpickler` admits only tensors, storages, dtypes and
plain containers, turns every ``omegaconf.*`` object into an inert stub holding its pickled state, and refuses any
other global with an :class:`~egostream.errors.InputError` naming the file and the global. The stubs are then
converted to plain dicts/lists (``DictConfig._content``, ``ListConfig._content``, value nodes' ``_val``), and
whole-string interpolations such as ``${model.hidden_size}`` or ``${..features_size}`` are resolved; anything else
(resolver calls, string templates) stays the literal string.

Backbone state dicts are returned in :class:`~egostream.backbone.hierarchy.HierarchicalBackbone`'s key layout (the
authors' ``layers.<d>.module_<k>`` keys are renamed by :func:`authors_backbone_keys`); task and EgoPack state dicts
keep the authors' keys, by the authors' task names (``"ego4d/ar"``, ...).
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from egostream.backbone.hierarchy import (BackboneConfig, HierarchicalBackbone, authors_backbone_keys,
                                          backbone_config_from_authors)
from egostream.config import from_dict, to_dict
from egostream.errors import InputError
from egostream.io.atomic import atomic_output
from egostream.restricted_pickle import OmegaConfStub, RestrictedUnpickler, load_restricted

__all__ = ["CheckpointFormat", "LoadedCheckpoint", "RestrictedUnpickler", "OmegaConfStub", "load_checkpoint",
           "load_backbone", "load_module_state", "save_checkpoint", "infer_backbone_config",
           "FORMAT_NAME", "FORMAT_VERSION", "READABLE_VERSIONS"]

CheckpointFormat = Literal["egostream", "multi_task", "egopack", "egopack_module"]

FORMAT_NAME = "egostream"
FORMAT_VERSION = 2
#: Versions of our format this egostream reads.
READABLE_VERSIONS = (1, 2)

StateDict = dict[str, Tensor]


def _plain(value: Any) -> Any:
    """Replace omegaconf stubs by the plain values they hold (dicts, lists, scalars)."""
    if isinstance(value, OmegaConfStub):
        state = value.state if isinstance(value.state, Mapping) else {}
        if "_content" in state:
            return _plain(state["_content"])
        if "_val" in state:
            return _plain(state["_val"])
        return None
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


_INTERPOLATION = re.compile(r"^\$\{(\.*)([A-Za-z0-9_/\.\-]+)\}$")


def _resolve_interpolations(root: Any, path: Path) -> Any:
    """Resolve whole-string ``${a.b}`` (absolute) and ``${..b}`` (relative) references; keep others verbatim.

    A reference that leads back to itself (``a: ${a}``, ``a: {x: ${a}}``, ``a: ${b}, b: ${a}``) is an
    :class:`InputError` naming ``path`` and the key holding it (omegaconf itself fails on such configs too).
    """

    def lookup(target: tuple[str, ...]) -> Any:
        node = root
        for part in target:
            if not isinstance(node, Mapping) or part not in node:
                raise KeyError(part)
            node = node[part]
        return node

    def resolve(value: Any, parents: tuple[str, ...], active: tuple[tuple[str, ...], ...]) -> Any:
        if isinstance(value, Mapping):
            return {k: resolve(v, (*parents, str(k)), active) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, (*parents, str(i)), active) for i, v in enumerate(value)]
        match = _INTERPOLATION.match(value) if isinstance(value, str) else None
        if match is None:
            return value
        dots, dotted = match.groups()
        # omegaconf: "${.x}" is a sibling of the node holding the reference, each extra dot goes one level up.
        base = parents[:len(parents) - len(dots)] if dots else ()
        target = (*base, *dotted.split("."))
        try:
            found = lookup(target)
        except KeyError:
            return value
        chain = (*active, parents)
        if any(node[:len(target)] == target for node in chain):
            raise InputError(path, "config." + ".".join(parents),
                             f"cyclic interpolation {value}: {' -> '.join('.'.join(node) for node in chain)} -> "
                             f"{'.'.join(target)}")
        return resolve(found, target, chain)

    return resolve(root, (), ())


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


# ----------------------------------------------------------------------------------------------------------------
# Loaded checkpoints


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint in any supported format, as plain data.

    Attributes:
        path: the file it came from (``None`` if built in memory).
        format: the detected :data:`CheckpointFormat`.
        backbone: backbone state dict in :class:`HierarchicalBackbone` keys, or ``None`` (standalone EgoPack).
        backbone_config: the backbone hyper-parameters (from the config, else inferred from the tensor shapes).
        tasks: task state dicts by the authors' task names (multi-task: all tasks; authors' EgoPack: the support
            tasks; ours: every head except the novel task's).
        novel_task: name of the EgoPack novel task (its state is ``novel_task_state``), or ``None``.
        novel_task_state: the EgoPack novel task's state dict (authors' ``egopack_task``), or ``None``.
        egopack: EgoPack module state dict (``task_prototypes.*``, ``stages.*``), or ``None``.
        config: the experiment config as a plain dict (the authors' composed hydra config, or ours).
        step: training step stored in the checkpoint, if any.
        support_necks: ours (version 2): the EgoPack support tasks' neck states (``projector.*`` keys) by task
            name; empty for the other formats, whose support tasks are in ``tasks``.
        training_state: ours: what a resumed ``egostream train`` run restores (``epoch``, ``step``,
            ``optimizer``, ``schedule``, ``rng``), or ``None``.
    """

    path: Path | None
    format: CheckpointFormat
    backbone: StateDict | None
    backbone_config: BackboneConfig | None
    tasks: dict[str, StateDict] = field(default_factory=dict)
    novel_task: str | None = None
    novel_task_state: StateDict | None = None
    egopack: StateDict | None = None
    config: dict[str, Any] = field(default_factory=dict)
    step: int | None = None
    support_necks: dict[str, StateDict] = field(default_factory=dict)
    training_state: dict[str, Any] | None = None

    def task_state(self, name: str) -> StateDict:
        """The state dict of task head ``name`` (the novel task's for the novel task, else the multi-task or
        support task's), or :class:`InputError` if absent."""
        if name == self.novel_task and self.novel_task_state is not None:
            return self.novel_task_state
        if name in self.tasks:
            return self.tasks[name]
        available = sorted(self.tasks) + ([self.novel_task] if self.novel_task else [])
        raise InputError(self.path, "tasks", f"no task {name!r} in this {self.format} checkpoint "
                                             f"(it has {available})")

    def support_state(self, name: str) -> StateDict:
        """The state dict holding support task ``name``'s neck (``projector.*`` keys): ours from
        ``support_necks``, the authors' from ``tasks``; :class:`InputError` if absent."""
        if name in self.support_necks:
            return self.support_necks[name]
        if name in self.tasks:
            return self.tasks[name]
        raise InputError(self.path, "support_necks", f"no support task {name!r} in this {self.format} checkpoint "
                                                     f"(it has {sorted(self.support_necks or self.tasks)})")

    def egopack_state(self) -> StateDict:
        """The EgoPack module state dict, or :class:`InputError` if this checkpoint has none."""
        if self.egopack is None:
            raise InputError(self.path, "egopack", f"this {self.format} checkpoint has no EgoPack module")
        return self.egopack


def _detect_format(path: Path, content: Any) -> CheckpointFormat:
    if not isinstance(content, Mapping):
        raise InputError(path, None, f"expected a dict at the top level, got {type(content).__name__}")
    keys = set(content)
    if content.get("format") == FORMAT_NAME:
        return "egostream"
    if {"model", "egopack_task", "tasks", "egopack"} <= keys:
        return "egopack"
    if {"model", "task"} <= keys:
        return "multi_task"
    if keys and all(isinstance(k, str) and k.startswith(("task_prototypes.", "stages.")) for k in keys):
        return "egopack_module"
    raise InputError(path, None, "unknown checkpoint layout with top-level keys "
                                 f"{sorted(map(str, keys))[:12]}: expected train_multi_task.py ('model', 'task'), "
                                 "train_egopack.py ('model', 'egopack_task', 'tasks', 'egopack'), a plain EgoPack "
                                 "state_dict, or an egostream checkpoint")


def _state_dict(path: Path, content: Mapping[str, Any], key: str) -> StateDict:
    value = content.get(key)
    if not isinstance(value, Mapping) or not all(isinstance(v, Tensor) for v in value.values()):
        raise InputError(path, key, "missing or not a state dict of tensors")
    return dict(value)


def _task_states(path: Path, content: Mapping[str, Any], key: str) -> dict[str, StateDict]:
    value = content.get(key)
    if not isinstance(value, Mapping):
        raise InputError(path, key, "missing or not a dict of task name -> state dict")
    return {name: _state_dict(path, value, name) for name in value}


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
    state = _state_dict(path, content, "model")
    if "proj.1.weight" not in state:
        raise InputError(path, "model", "not a GraphHier state dict (no 'proj.1.weight')")
    try:
        cfg = infer_backbone_config(state, config.get("model"))
    except ValueError as err:
        raise InputError(path, "config.model", str(err)) from err
    return authors_backbone_keys(state, cfg.n_layers), cfg


def load_checkpoint(path: str | os.PathLike[str]) -> LoadedCheckpoint:
    """Load any supported checkpoint file (see the module docstring) into a :class:`LoadedCheckpoint`.

    Raises:
        InputError: missing file, unknown layout, a refused pickle global, a malformed part (naming the key), a
            weight that is NaN or infinite (naming the first such key) or a cyclic config interpolation.
    """
    path = Path(path)
    content = load_restricted(path)
    kind = _detect_format(path, content)
    _check_finite(path, content)
    if kind == "egostream":
        return _from_egostream(path, content)
    if kind == "egopack_module":
        return LoadedCheckpoint(path, kind, None, None, egopack=dict(content))
    config = _resolve_interpolations(_plain(content.get("config")), path) or {}
    if not isinstance(config, dict):
        raise InputError(path, "config", f"expected a config mapping, got {type(config).__name__}")
    backbone, backbone_cfg = _authors_backbone(path, content, config)
    step = content.get("step")
    step = int(step) if isinstance(step, int) else None
    if kind == "multi_task":
        return LoadedCheckpoint(path, kind, backbone, backbone_cfg, tasks=_task_states(path, content, "task"),
                                config=config, step=step)
    novel_config = config.get("egopack_task")
    novel = novel_config.get("name") if isinstance(novel_config, Mapping) else None
    return LoadedCheckpoint(path, kind, backbone, backbone_cfg, tasks=_task_states(path, content, "tasks"),
                            novel_task=novel, novel_task_state=_state_dict(path, content, "egopack_task"),
                            egopack=_state_dict(path, content, "egopack"), config=config, step=step)


# ----------------------------------------------------------------------------------------------------------------
# Our own format


def _from_egostream(path: Path, content: Mapping[str, Any]) -> LoadedCheckpoint:
    version = content.get("version")
    if version not in READABLE_VERSIONS:
        raise InputError(path, "version", f"unsupported egostream checkpoint version {version!r} "
                                          f"(this egostream reads versions {list(READABLE_VERSIONS)})")
    backbone_cfg = None
    if content.get("backbone_config") is not None:
        backbone_cfg = from_dict(BackboneConfig, content["backbone_config"], source=str(path),
                                 prefix="backbone_config.")
    backbone = _state_dict(path, content, "backbone") if content.get("backbone") is not None else None
    egopack = _state_dict(path, content, "egopack") if content.get("egopack") is not None else None
    tasks = _task_states(path, content, "tasks")
    novel = content.get("novel_task")
    novel_state = tasks.pop(novel, None) if novel else None
    support_necks = _task_states(path, content, "support_necks") if content.get("support_necks") else {}
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


# ----------------------------------------------------------------------------------------------------------------
# Loading into modules


def _describe_mismatch(expected: Mapping[str, Tensor], given: Mapping[str, Tensor]) -> list[str]:
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
    problems = _describe_mismatch(module.state_dict(), state)
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
