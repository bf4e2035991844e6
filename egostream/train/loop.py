"""The training loop shared by the stages: epochs of optimizer steps, validation, metrics log, checkpoints.

Each optimizer step (sapeirone/hier-egopack@4fff4e5:train_single_task.py / train_multi_task.py / train_egopack.py
``train``): set the learning rate of the step (:class:`~egostream.train.schedule.WarmupCosineSchedule`), zero the
gradients, and for each trained task run the backbone and head on that task's batch and back-propagate the mean
of its loss (multi-task: one backward per task, gradients summed); clip the global gradient norm of all trained
parameters to ``gradient_clip``; Adam step.

After every epoch: validation when due (:mod:`egostream.train.evaluation`), one record in ``OUT/metrics.jsonl``, and
the checkpoint ``OUT/checkpoint.pt`` rewritten atomically. The checkpoint is our format
(:meth:`egostream.model.ModelBundle.save`, loadable by replay and the streaming engine): the bundle's weights (the
EgoPack support necks included) and, in its ``training_state``, what an exact resume needs besides them: the epoch
and step reached, the optimizer state, the schedule and the global RNG states. The data order is a function of the
step (:mod:`egostream.train.data`), so a run resumed from the end of epoch ``e`` continues bit-identically to the
uninterrupted run (same batches, dropout masks, losses, learning rates, metrics and weights).

Device: ``train(..., device=)`` puts the model, every batch tensor and hence the optimizer state on the resolved
device (:func:`egostream.device.resolve_device`); validation outputs come back to the CPU for the meters. The
checkpoint is written from the device tensors and loads on the CPU (:func:`egostream.checkpoint.load_checkpoint`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.nn.utils import clip_grad_norm_
from tqdm.auto import tqdm

from egostream.checkpoint import load_checkpoint
from egostream.config import to_dict
from egostream.device import module_device, move_tensors, resolve_device
from egostream.errors import InputError
from egostream.io.atomic import write_text_atomic
from egostream.model import ModelBundle
from egostream.train.data import TrainingData
from egostream.train.evaluation import validation_meter
from egostream.train.metrics_log import MetricsLog
from egostream.train.optim import build_optimizer, trainable_parameters
from egostream.train.recipe import TrainConfig
from egostream.train.schedule import WarmupCosineSchedule
from egostream.train.seeding import capture_rng_state, restore_rng_state, seed_everything
from egostream.train.stages import StageModel, build_stage_model
from egostream.translation import TranslationBundle

__all__ = ["TrainResult", "train", "evaluate_task", "CHECKPOINT_NAME", "METRICS_NAME", "RECIPE_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
RECIPE_NAME = "recipe.yaml"

#: Recipe fields a resumed run may change (they do not alter the computation).
_RESUMABLE_CHANGES = frozenset({"progress", "eval_every_epochs"})


@dataclass
class TrainResult:
    """What :func:`train` leaves behind: the trained bundle, its checkpoint, the metrics records, the epochs run."""

    bundle: ModelBundle | TranslationBundle
    checkpoint: Path
    records: list[dict[str, Any]]
    epochs_completed: int


@torch.no_grad()
def evaluate_task(bundle: ModelBundle | TranslationBundle, data: TrainingData, task: str,
                  recipe: TrainConfig, device: torch.device | None = None) -> dict[str, Any]:
    """Validation metrics of ``task`` over its val split (bundle in eval mode; LTA draws seeded by the recipe).
    Batches run on ``device`` (default: the bundle's); outputs come back to the CPU for the meter."""
    bundle.eval()
    target = device if device is not None else module_device(bundle)
    meter = validation_meter(task, data, protocol=recipe.protocol, seed=recipe.seed)
    for batch in data.val_loader(task):
        outputs = bundle.run(task, move_tensors(batch.videos, target), move_tensors(batch.inputs, target))
        meter.update(bundle.head(task), move_tensors(outputs, torch.device("cpu")), batch)
    return meter.compute()


def _comparable(recipe: TrainConfig) -> dict[str, Any]:
    return {key: value for key, value in to_dict(recipe).items() if key not in _RESUMABLE_CHANGES}


def _training_state(optimizer: torch.optim.Optimizer, schedule: WarmupCosineSchedule, epoch: int,
                    step: int) -> dict[str, Any]:
    return {"epoch": epoch, "step": step, "optimizer": optimizer.state_dict(), "schedule": to_dict(schedule),
            "rng": capture_rng_state()}


def _resume(path: Path, recipe: TrainConfig, stage: StageModel, optimizer: torch.optim.Optimizer,
            schedule: WarmupCosineSchedule) -> int:
    """Load a training checkpoint into the freshly built run; returns the number of epochs it completed."""
    loaded = load_checkpoint(path)
    state = loaded.training_state
    if state is None:
        raise InputError(path, "training_state", "not a training checkpoint of egostream train "
                                                 "(no optimizer and RNG state to resume from)")
    saved_recipe = loaded.config.get("train") or {}
    differences = sorted(key for key, value in _comparable(recipe).items() if saved_recipe.get(key) != value)
    if differences:
        raise InputError(path, f"config.train.{differences[0]}",
                         f"the checkpoint was trained with {differences[0]}={saved_recipe.get(differences[0])!r}, "
                         f"this run has {to_dict(recipe)[differences[0]]!r}; a resumed run must use the same recipe")
    if state.get("schedule") != to_dict(schedule):
        raise InputError(path, "training_state.schedule", "the data gives a different number of steps "
                                                          "per epoch than the run that wrote the checkpoint")
    stage.bundle.load_state_dict(type(stage.bundle).from_checkpoints(loaded).state_dict())
    optimizer.load_state_dict(state["optimizer"])
    restore_rng_state(state["rng"])
    return int(state["epoch"])


def _train_epoch(epoch: int, stage: StageModel, data: TrainingData, optimizer: torch.optim.Optimizer,
                 schedule: WarmupCosineSchedule, recipe: TrainConfig, device: torch.device) -> dict[str, float]:
    """One epoch of optimizer steps; returns the mean loss of each task and the last learning rate."""
    stage.train_mode()
    parameters = trainable_parameters(stage.trained)
    steps = data.steps_per_epoch
    sums = dict.fromkeys(recipe.tasks, 0.0)
    lr = 0.0
    bar = tqdm(range(epoch * steps, (epoch + 1) * steps), desc=f"Epoch {epoch + 1}/{recipe.num_epochs}", leave=False,
               disable=not recipe.progress)
    for step in bar:
        lr = schedule.apply(optimizer, step)
        optimizer.zero_grad(set_to_none=True)
        for task in recipe.tasks:
            batch = data.train_batch(task, step)
            inputs = move_tensors(batch.inputs, device)
            outputs = stage.bundle.run(task, move_tensors(batch.videos, device), inputs)
            loss = stage.bundle.head(task).loss(outputs, inputs).mean()
            loss.backward()
            sums[task] += float(loss.detach())
        if recipe.gradient_clip > 0:
            clip_grad_norm_(parameters, recipe.gradient_clip)
        optimizer.step()
        bar.set_postfix(loss=f"{sum(sums.values()) / (step - epoch * steps + 1):.4f}", lr=f"{lr:.2e}")
    return {**{f"loss/{task}": total / steps for task, total in sums.items()}, "lr": lr}


def train(recipe: TrainConfig, data_root: str | PathLike[str], out_dir: str | PathLike[str], *,
          resume: str | PathLike[str] | None = None, stop_after_epochs: int | None = None,
          device: str | torch.device = "auto") -> TrainResult:
    """Run (or resume) the training stage of ``recipe`` on the Ego4D data under ``data_root``.

    Args:
        recipe: the run's settings.
        data_root: the Ego4D data folder (annotations and ``features/<model.feature_name>/``).
        out_dir: receives ``checkpoint.pt``, ``metrics.jsonl`` and the resolved ``recipe.yaml``.
        resume: a ``checkpoint.pt`` written by this function with the same recipe; training continues after the
            epochs it completed.
        stop_after_epochs: stop (with a checkpoint) once this many epochs are completed in total, before
            ``recipe.num_epochs`` (the schedule still spans ``num_epochs``; resume later to finish).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` for the model, the batches and the optimizer state (not
            part of the recipe: a run may resume on another device); InputError (field ``device``) for one this
            machine cannot use.
    """
    target = resolve_device(device)
    out = Path(out_dir)
    seed_everything(recipe.seed)
    data = TrainingData(data_root, recipe)
    stage = build_stage_model(recipe, data)
    stage.bundle.to(target)
    optimizer = build_optimizer(stage.trained, recipe.optimizer)
    steps = data.steps_per_epoch
    schedule = WarmupCosineSchedule(total_steps=recipe.num_epochs * steps,
                                    warmup_steps=recipe.lr_warmup_epochs * steps if recipe.lr_warmup else 0,
                                    start_factor=recipe.lr_warmup_start_factor, min_lr=recipe.lr_min,
                                    authors_timing=recipe.authors_lr_timing)
    log = MetricsLog(out / METRICS_NAME)
    first_epoch = 0
    if resume is not None:
        first_epoch = _resume(Path(resume), recipe, stage, optimizer, schedule)
        log.keep_until(first_epoch)
    else:
        log.keep_until(0)
    write_text_atomic(out / RECIPE_NAME, yaml.safe_dump(to_dict(recipe), sort_keys=False))
    last_epoch = recipe.num_epochs if stop_after_epochs is None else min(stop_after_epochs, recipe.num_epochs)
    checkpoint = out / CHECKPOINT_NAME
    for epoch in range(first_epoch, last_epoch):
        record: dict[str, Any] = {"epoch": epoch + 1, "step": (epoch + 1) * steps,
                                  **_train_epoch(epoch, stage, data, optimizer, schedule, recipe, target)}
        if not all(math.isfinite(value) for key, value in record.items() if key.startswith("loss/")):
            raise FloatingPointError(f"non-finite training loss at epoch {epoch + 1}: {record}")
        due = recipe.eval_every_epochs and (epoch + 1) % recipe.eval_every_epochs == 0
        if due or epoch + 1 == recipe.num_epochs:
            record["val"] = {task: evaluate_task(stage.bundle, data, task, recipe, target)
                             for task in recipe.tasks}
        log.append(record)
        config = {"train": to_dict(recipe), "model": to_dict(recipe.model_for_tasks)}
        stage.bundle.save(checkpoint, config=config, step=(epoch + 1) * steps,
                          training_state=_training_state(optimizer, schedule, epoch + 1, (epoch + 1) * steps))
    stage.bundle.eval()
    return TrainResult(stage.bundle, checkpoint, log.records(), max(last_epoch, first_epoch))
