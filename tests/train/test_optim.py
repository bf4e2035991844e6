"""The optimizer groups and the learning-rate schedule of the authors' training scripts."""
from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from egostream.errors import InputError
from egostream.train.optim import OptimizerConfig, build_optimizer, trainable_parameters
from egostream.train.schedule import WarmupCosineSchedule


def test_one_dimensional_parameters_get_no_weight_decay() -> None:
    backbone, head = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4)), nn.Linear(4, 2)
    head.bias.requires_grad_(False)
    optimizer = build_optimizer([backbone, head], OptimizerConfig(lr=0.01, weight_decay=0.5))
    assert isinstance(optimizer, torch.optim.Adam)
    no_decay, decay = optimizer.param_groups
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.5
    assert no_decay["lr"] == decay["lr"] == 0.01
    assert {id(p) for p in no_decay["params"]} == {id(backbone[0].bias), id(backbone[1].weight), id(backbone[1].bias)}
    assert {id(p) for p in decay["params"]} == {id(backbone[0].weight), id(head.weight)}


def test_decay_acts_as_l2_on_matrices_only() -> None:
    """Adam's L2 decay: with zero loss gradient, a matrix moves (by lr, Adam's first step) and a vector stays."""
    layer = nn.Linear(2, 2)
    optimizer = build_optimizer([layer], OptimizerConfig(lr=0.1, weight_decay=1.0))
    before_w, before_b = layer.weight.detach().clone(), layer.bias.detach().clone()
    (0.0 * layer(torch.ones(1, 2)).sum()).backward()
    optimizer.step()
    torch.testing.assert_close(layer.bias.detach(), before_b)
    torch.testing.assert_close(layer.weight.detach(), before_w - 0.1 * torch.sign(before_w), atol=1e-6, rtol=0)


def test_translation_recipes_optimizers() -> None:
    """EgoT2's recipes name AdamW (decoupled decay: with zero gradient a matrix shrinks by lr * decay, a vector
    stays) and SGD with momentum; both keep the two groups."""
    layer = nn.Linear(2, 2)
    adamw = build_optimizer([layer], OptimizerConfig(lr=0.1, weight_decay=0.5, name="adamw"))
    assert isinstance(adamw, torch.optim.AdamW)
    before_w, before_b = layer.weight.detach().clone(), layer.bias.detach().clone()
    (0.0 * layer(torch.ones(1, 2)).sum()).backward()
    adamw.step()
    torch.testing.assert_close(layer.bias.detach(), before_b)
    torch.testing.assert_close(layer.weight.detach(), before_w * (1 - 0.1 * 0.5), atol=1e-6, rtol=0)
    sgd = build_optimizer([layer], OptimizerConfig(lr=0.1, weight_decay=0.0, name="sgd", momentum=0.9))
    assert isinstance(sgd, torch.optim.SGD)
    assert [group["momentum"] for group in sgd.param_groups] == [0.9, 0.9]


def test_shared_and_frozen_parameters() -> None:
    layer = nn.Linear(2, 2)
    assert len(trainable_parameters([layer, layer])) == 2
    layer.requires_grad_(False)
    with pytest.raises(InputError, match="frozen"):
        build_optimizer([layer], OptimizerConfig())


def test_schedule_warmup_then_cosine_values() -> None:
    schedule = WarmupCosineSchedule(total_steps=12, warmup_steps=4, start_factor=0.001, min_lr=0.0)
    assert schedule.lr(2.0, 0) == pytest.approx(0.002)
    assert schedule.lr(2.0, 2) == pytest.approx(2.0 * (0.001 + 0.999 * 0.5))
    assert schedule.lr(2.0, 4) == pytest.approx(2.0)
    assert schedule.lr(2.0, 8) == pytest.approx(1.0)  # half-way through the 8 cosine steps
    assert schedule.lr(2.0, 11) == pytest.approx(2.0 * (1 + math.cos(math.pi * 7 / 8)) / 2)
    with_floor = WarmupCosineSchedule(total_steps=12, warmup_steps=4, min_lr=0.5)
    assert with_floor.lr(2.0, 8) == pytest.approx(0.5 + 1.5 / 2)


def _authors_lrs(total_steps: int, warmup_steps: int, min_lr: float, base_lr: float) -> list[float]:
    """The learning rate of each step of the authors' loop (train_single_task.py ``train`` + ``main``), run with
    torch's own schedulers in their deprecated ``step(epoch)`` mode."""
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=base_lr)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, 0.001, 1, warmup_steps) if warmup_steps else None
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total_steps - warmup_steps, min_lr)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(total_steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            if warmup is not None and step <= warmup_steps:
                warmup.step(step - 1)
            if step > warmup_steps:
                cosine.step(step - 1 - warmup_steps)
    return lrs


@pytest.mark.parametrize("total,warmup", [(20, 8), (15, 5), (9, 0)])
def test_authors_timing_equals_the_authors_scheduler_calls(total: int, warmup: int) -> None:
    schedule = WarmupCosineSchedule(total, warmup, min_lr=1e-3, authors_timing=True)
    ours = [schedule.lr(0.5, step) for step in range(total)]
    assert ours == pytest.approx(_authors_lrs(total, warmup, 1e-3, 0.5), rel=1e-9, abs=1e-12)
    if warmup:
        assert ours[1] < 0  # the authors' one negative step, reproduced on purpose in this mode


def test_apply_sets_every_group_and_rejects_bad_lengths() -> None:
    optimizer = build_optimizer([nn.Linear(2, 2)], OptimizerConfig(lr=1.0))
    schedule = WarmupCosineSchedule(total_steps=10, warmup_steps=2)
    assert schedule.apply(optimizer, 1) == pytest.approx(0.5005)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.5005, 0.5005])
    assert schedule.apply(optimizer, 2) == pytest.approx(1.0)  # from initial_lr, not the current lr
    with pytest.raises(InputError, match="warmup"):
        WarmupCosineSchedule(total_steps=4, warmup_steps=4)
