"""The cross-task module interface and its registry.

A cross-task module sits between the backbone and ONE task head (the *novel* task): it computes what the other
(*support*) tasks say about the same nodes and hands the head a fusion of it (:meth:`Task.fused_forward`), so the
head's outputs, decoding, metrics, submissions and stream readouts stay those of the plain task. A kind owns how it
is loaded from a checkpoint, what it writes into one, and the stream evidence it can offer.

Adding a kind (e.g. EgoT2-style translation) is one module here that subclasses :class:`CrossTaskModule` and
registers itself in ``CROSS_TASK``; :meth:`egostream.model.ModelBundle.from_checkpoints` asks every registered kind,
in registration order, whether the checkpoint holds one for its novel task.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import nn

from egostream.backbone.graphs import LevelGraphs
from egostream.checkpoint import LoadedCheckpoint
from egostream.registry import Registry
from egostream.tasks.base import Task, TaskInputs

__all__ = ["CROSS_TASK", "CrossTaskModule", "cross_task_module"]


class CrossTaskModule(nn.Module):
    """What a novel task's head is run through (see the module docstring).

    Attributes:
        kind: the registry name.
        support_tasks: the authors' names of the tasks it draws on.
    """

    kind: ClassVar[str]

    @property
    def support_tasks(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, head: Task, graphs: LevelGraphs, inputs: TaskInputs) -> Any:  # pragma: no cover - abstract
        """The novel task's outputs (the plain head's output type) through the module."""
        raise NotImplementedError

    @classmethod
    def from_checkpoint(cls, task: str, checkpoint: LoadedCheckpoint,
                        novel_node: Mapping[str, Any]) -> CrossTaskModule | None:  # pragma: no cover - abstract
        """The module of novel task ``task`` (short name) stored in ``checkpoint``, or None if it holds none of
        this kind."""
        raise NotImplementedError

    def checkpoint_fields(self, novel_task: str) -> dict[str, Any]:  # pragma: no cover - abstract
        """The keyword arguments of :func:`egostream.checkpoint.save_checkpoint` that store this module for novel
        task ``novel_task`` (authors' name)."""
        raise NotImplementedError


CROSS_TASK: Registry[type[CrossTaskModule]] = Registry("cross-task module")


def cross_task_module(task: str, checkpoint: LoadedCheckpoint,
                      novel_node: Mapping[str, Any]) -> CrossTaskModule | None:
    """The cross-task module ``checkpoint`` holds for novel task ``task``: the first registered kind that finds
    one, or None (a plain head)."""
    for kind in CROSS_TASK.in_order():
        module = CROSS_TASK.get(kind).from_checkpoint(task, checkpoint, novel_node)
        if module is not None:
            return module
    return None
