"""The learning-rate schedule of every training stage: linear warmup, then cosine annealing, per optimizer step.

The authors' recipe (sapeirone/hier-egopack@4fff4e5:train_single_task.py, train_multi_task.py, train_egopack.py,
``main``): with ``S`` steps per epoch, ``LinearLR(start_factor=0.001, end_factor=1, total_iters=warmup_epochs * S)``
followed by ``CosineAnnealingLR(T_max=(num_epochs - warmup_epochs) * S, eta_min=lr_min)``. ``lr_min`` is the config's
``lr_min`` (1e-8, configs/experiments/defaults.yaml) in the single-task and EgoPack stages and 0 in the multi-task
stage, which hard-codes ``eta_min=0``. Without warmup the cosine spans all ``num_epochs * S`` steps.

Timing. :meth:`WarmupCosineSchedule.factor` is the schedule those two schedulers describe: step ``s`` (0-based) runs
at ``lr * (0.001 + 0.999 * s / W)`` during the ``W`` warmup steps, then at the cosine value for ``s - W``. The
authors' loop calls ``warmup_scheduler.step(step - 1)`` / ``scheduler.step(step - 1 - W)`` AFTER optimizer step
``step``, in the deprecated closed-form ``step(epoch)`` mode, which runs the same curve two steps late and makes step 1
use ``0.001 - 0.999 / W`` (negative when ``W < 999``, i.e. one gradient-ascent step). ``authors_timing=True``
reproduces that sequence exactly (including the negative value); the default follows the curve itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from egostream.errors import InputError

__all__ = ["WarmupCosineSchedule"]


@dataclass(frozen=True)
class WarmupCosineSchedule:
    """Learning rate of each optimizer step (0-based), as a pure function of the step.

    Attributes:
        total_steps: optimizer steps of the whole run (``num_epochs * steps_per_epoch``).
        warmup_steps: linear warmup steps ``W`` (``warmup_epochs * steps_per_epoch``; 0 disables the warmup).
        start_factor: learning-rate factor at step 0 of the warmup (the authors' 0.001).
        min_lr: learning rate the cosine ends at (absolute, not a factor).
        authors_timing: run the curve as the authors' loop does (see the module docstring).
    """

    total_steps: int
    warmup_steps: int
    start_factor: float = 0.001
    min_lr: float = 1e-8
    authors_timing: bool = False

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise InputError(None, "num_epochs", f"the run has {self.total_steps} optimizer steps; at least 1 needed")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise InputError(None, "warmup_epochs", f"the warmup ({self.warmup_steps} steps) must be shorter than "
                                                    f"the run ({self.total_steps} steps)")

    def _curve(self, base_lr: float, step: int) -> float:
        """The learning rate the two schedulers' closed forms give at ``step`` (linear for ``step < W``)."""
        if step < self.warmup_steps:
            return base_lr * (self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps)
        cosine_steps = self.total_steps - self.warmup_steps
        progress = (step - self.warmup_steps) / cosine_steps
        return self.min_lr + (base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0

    def lr(self, base_lr: float, step: int) -> float:
        """Learning rate of optimizer step ``step`` for a group whose configured (peak) rate is ``base_lr``."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if not self.authors_timing:
            return self._curve(base_lr, step)
        if step == 0:
            return base_lr * (self.start_factor if self.warmup_steps else 1.0)
        # Step 1 runs at the warmup line's value at -1; without warmup the rate is still the initial one.
        return self._curve(base_lr, max(step - 2, -1 if self.warmup_steps else 0))

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's ``lr`` for optimizer step ``step`` from its ``initial_lr``; returns group 0's rate."""
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = self.lr(group["initial_lr"], step)
        return float(optimizer.param_groups[0]["lr"])
