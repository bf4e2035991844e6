"""A checkpoint in any supported format as plain data (:class:`LoadedCheckpoint`), and the checks that turn a
checkpoint's entries into its parts (state dicts of tensors, task name -> state dict)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from egostream.backbone.hierarchy import BackboneConfig
from egostream.errors import InputError

__all__ = ["CheckpointFormat", "LoadedCheckpoint", "StateDict", "state_dict_at", "task_states_at"]

CheckpointFormat = Literal["egostream", "multi_task", "egopack", "egopack_module"]

StateDict = dict[str, Tensor]


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


def state_dict_at(path: Path, content: Mapping[str, Any], key: str) -> StateDict:
    """``content[key]`` as a state dict of tensors; :class:`InputError` naming ``path`` and ``key`` otherwise."""
    value = content.get(key)
    if not isinstance(value, Mapping) or not all(isinstance(v, Tensor) for v in value.values()):
        raise InputError(path, key, "missing or not a state dict of tensors")
    return dict(value)


def task_states_at(path: Path, content: Mapping[str, Any], key: str) -> dict[str, StateDict]:
    """``content[key]`` as task name -> state dict; :class:`InputError` naming ``path`` and the bad key otherwise."""
    value = content.get(key)
    if not isinstance(value, Mapping):
        raise InputError(path, key, "missing or not a dict of task name -> state dict")
    return {name: state_dict_at(path, value, name) for name in value}
