"""Acceptance: on held-out synthetic videos, trained models beat chance clearly on all five tasks; untrained do not.

One synthetic dataset (:data:`egostream.train.synthetic_benchmark.SYNTHETIC_DATA`: 12 train and 4 val videos with
planted action, state-change and moment structure) trains the tiny recipes: a single-task model per task, one
multi-task model, and an EgoPack model per task on the multi-task model (frozen shared backbone, one backpack).
Each model is scored by ``egostream.replay.replay`` on the val videos against the class-prior submission scored on
the same files (priors of the val annotations: the majority rate), by the headline metrics of
:data:`~egostream.train.synthetic_benchmark.HEADLINE_METRICS`. "Clearly" is :data:`MARGINS`; an untrained model of
the same architecture must NOT clear them. Torch runs on one intra-op thread, which makes every number reproducible
(see tests/train/test_resume.py) and keeps the run fast on a loaded machine. ``benchmarks/synthetic_training.py``
prints the same table.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from egostream.model import TASK_NAMES, ModelBundle
from egostream.train.synthetic_benchmark import (HEADLINE_METRICS, SYNTHETIC_DATA, build_shared_backpack,
                                                 chance_metrics, replay_metrics, stage_recipe, train_stage,
                                                 untrained_bundle)
from tests.synthetic_setup import data_root, one_thread, workdir

__all__ = ["one_thread", "workdir", "data_root"]

DATA = SYNTHETIC_DATA
Metrics = dict[str, dict[str, Any]]

#: How much better than chance counts as clearly better: points for percentages, mAP points, edit-distance points,
#: and for the PNR error a factor of chance's error.
MARGINS: dict[str, float] = {"verb_top1_pct": 10.0, "noun_top1_pct": 10.0, "verb_ed": 0.04, "noun_ed": 0.04,
                             "accuracy_pct": 15.0, "average_mAP": 0.05}
PNR_ERROR_FACTOR = 0.6


def clearly_better(task: str, metrics: Mapping[str, Any], chance: Mapping[str, Any]) -> dict[str, bool]:
    """Per headline metric of ``task``: is ``metrics`` better than ``chance`` by the margin?"""
    verdicts = {}
    for item in HEADLINE_METRICS[task]:
        value, reference = float(metrics[item.metric]), float(chance[item.metric])
        if item.metric == "mean_error_s":
            verdicts[item.metric] = value < PNR_ERROR_FACTOR * reference
        elif item.higher_is_better:
            verdicts[item.metric] = value > reference + MARGINS[item.metric]
        else:
            verdicts[item.metric] = value < reference - MARGINS[item.metric]
    return verdicts


@pytest.fixture(scope="module")
def chance(data_root: Path, workdir: Path) -> Metrics:
    return chance_metrics(data_root, workdir / "chance")


@pytest.fixture(scope="module")
def multi_task(data_root: Path, workdir: Path) -> ModelBundle:
    return train_stage(stage_recipe("multi", TASK_NAMES), data_root, workdir / "multi")


@pytest.fixture(scope="module")
def backpack(multi_task: ModelBundle, data_root: Path, workdir: Path) -> Path:
    return build_shared_backpack(workdir / "multi" / "checkpoint.pt", data_root, workdir / "backpack.pt")


def assert_beats_chance(task: str, metrics: Metrics, chance: Metrics, model: str) -> None:
    verdicts = clearly_better(task, metrics[task], chance[task])
    assert all(verdicts.values()), (f"{model} {task}: {verdicts}; model "
                                    f"{ {m.metric: metrics[task][m.metric] for m in HEADLINE_METRICS[task]} }, chance "
                                    f"{ {m.metric: chance[task][m.metric] for m in HEADLINE_METRICS[task]} }")


def test_untrained_model_does_not_beat_chance(data_root: Path, workdir: Path, chance: Metrics) -> None:
    metrics = replay_metrics(untrained_bundle(stage_recipe("multi", TASK_NAMES)), data_root, workdir / "untrained")
    assert sorted(metrics) == sorted(TASK_NAMES)
    for task in TASK_NAMES:
        verdicts = clearly_better(task, metrics[task], chance[task])
        assert not any(verdicts.values()), f"untrained {task}: {verdicts}"


@pytest.mark.parametrize("task", TASK_NAMES)
def test_single_task_model_beats_chance(task: str, data_root: Path, workdir: Path, chance: Metrics) -> None:
    bundle = train_stage(stage_recipe("single", [task]), data_root, workdir / f"single_{task}")
    assert bundle.tasks == [task]
    assert_beats_chance(task, replay_metrics(bundle, data_root, workdir / f"single_{task}" / "replay"), chance,
                        "single-task")


def test_multi_task_model_beats_chance_on_every_task(multi_task: ModelBundle, data_root: Path, workdir: Path,
                                                     chance: Metrics) -> None:
    metrics = replay_metrics(multi_task, data_root, workdir / "multi" / "replay")
    assert sorted(metrics) == sorted(TASK_NAMES)
    for task in TASK_NAMES:
        assert_beats_chance(task, metrics, chance, "multi-task")


@pytest.mark.parametrize("task", TASK_NAMES)
def test_egopack_model_beats_chance(task: str, multi_task: ModelBundle, backpack: Path, data_root: Path,
                                    workdir: Path, chance: Metrics) -> None:
    support = workdir / "multi" / "checkpoint.pt"
    recipe = stage_recipe("egopack", [task], [f"egopack.support_checkpoint={support}", f"egopack.backpack={backpack}"])
    assert not recipe.train_backbone and recipe.model.depth == multi_task.backbone(task).cfg.depth
    bundle = train_stage(recipe, data_root, workdir / f"egopack_{task}")
    assert task in bundle.egopack
    # Frozen backbone: the EgoPack model runs the support model's backbone unchanged (shareable by all five heads).
    support_weights = multi_task.backbone(task).state_dict()
    assert all(torch.equal(value, support_weights[key]) for key, value in bundle.backbone(task).state_dict().items())
    assert_beats_chance(task, replay_metrics(bundle, data_root, workdir / f"egopack_{task}" / "replay"), chance,
                        "EgoPack")
