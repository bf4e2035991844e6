"""The optimizer of every training stage: Adam with weight decay on the matrices only.

sapeirone/hier-egopack@4fff4e5:utils/optimizers.py (``build_optimizer``) puts the trainable parameters of all the
given modules in two groups of the same learning rate: one-dimensional parameters (biases, LayerNorm gains) with
weight decay 0, and every parameter of two or more dimensions with the configured weight decay. The optimizer is
``torch.optim.Adam`` (configs/experiments/defaults.yaml ``optimizer._target_``), i.e. L2 decay added to the gradient,
not AdamW's decoupled decay.

The translation recipes (EgoT2's ``SOLVER.OPTIMIZING_METHOD``) also name ``adamw`` (``torch.optim.AdamW``) and
``sgd`` (``torch.optim.SGD`` with ``momentum``); the same two groups apply.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from egostream.errors import InputError

__all__ = ["OptimizerConfig", "build_optimizer", "trainable_parameters"]


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer settings (configs/experiments/defaults.yaml ``optimizer``).

    Attributes:
        lr: peak learning rate (reached at the end of the warmup).
        weight_decay: decay factor applied to parameters of two or more dimensions only (L2 for ``adam`` and
            ``sgd``, decoupled for ``adamw``).
        name: ``adam`` (the authors'), ``adamw`` or ``sgd``.
        momentum: ``sgd`` only.
    """

    lr: float = 1e-4
    weight_decay: float = 1e-5
    name: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = 0.9

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise InputError(None, "optimizer.lr", f"must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise InputError(None, "optimizer.weight_decay", f"must be >= 0, got {self.weight_decay}")


def trainable_parameters(modules: Iterable[nn.Module]) -> list[nn.Parameter]:
    """The parameters with ``requires_grad`` of ``modules``, in module then registration order, each once."""
    seen: set[int] = set()
    parameters = []
    for module in modules:
        for parameter in module.parameters():
            if parameter.requires_grad and id(parameter) not in seen:
                seen.add(id(parameter))
                parameters.append(parameter)
    return parameters


def build_optimizer(modules: Iterable[nn.Module], config: OptimizerConfig) -> torch.optim.Optimizer:
    """``config.name`` over the trainable parameters of ``modules``: group 0 the 1-D ones (no decay), group 1 the
    rest.

    Raises:
        InputError: if no parameter of ``modules`` is trainable.
    """
    parameters = trainable_parameters(modules)
    if not parameters:
        raise InputError(None, "modules", "nothing to train: every parameter is frozen")
    vectors = [p for p in parameters if p.dim() == 1]
    matrices = [p for p in parameters if p.dim() > 1]
    scalars = [p for p in parameters if p.dim() == 0]
    if scalars:
        # The authors' two groups ("== 1" and "> 1" dimensions) silently leave 0-d parameters out of the optimizer;
        # none of the Hier-EgoPack modules has one, so one appearing means a module this recipe does not know.
        raise InputError(None, "modules", f"{len(scalars)} zero-dimensional parameter(s): the authors' optimizer "
                                          "groups would leave them untrained")
    groups = [{"params": vectors, "lr": config.lr, "weight_decay": 0.0},
              {"params": matrices, "lr": config.lr, "weight_decay": config.weight_decay}]
    if config.name == "adamw":
        return torch.optim.AdamW(groups)
    if config.name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.Adam(groups)
