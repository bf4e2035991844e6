"""Acceptance: on held-out synthetic videos, a translator trained on a frozen multi-task model's task views beats
chance clearly on every task it supports (AR, LTA, OSCC, PNR); an untrained one does not; training leaves the
sources unchanged; a run stopped early resumes to the same weights (the checkpoint round trip is
tests/translation/test_translator.py's).

The data, chance level, margins and multi-task source are those of tests/train/test_training_synthetic.py
(:data:`egostream.train.synthetic_benchmark.SYNTHETIC_DATA`, the class prior of the val file, its
:func:`clearly_better`); each model is scored by ``egostream.replay.replay``. One intra-op thread makes every number
reproducible.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from egostream.model import TASK_NAMES, ModelBundle
from egostream.train.loop import train
from egostream.train.synthetic_benchmark import (SYNTHETIC_DATA, TRANSLATION_TASKS, chance_metrics, replay_metrics,
                                                 stage_recipe, train_stage, translation_recipe,
                                                 untrained_translation)
from egostream.translation import TranslationBundle
from tests.synthetic_setup import data_root, one_thread, workdir
from tests.train.test_training_synthetic import assert_beats_chance, clearly_better

__all__ = ["one_thread", "workdir", "data_root"]

DATA = SYNTHETIC_DATA
Metrics = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def chance(data_root: Path, workdir: Path) -> Metrics:
    return chance_metrics(data_root, workdir / "chance", TRANSLATION_TASKS)


@pytest.fixture(scope="module")
def support(data_root: Path, workdir: Path) -> Path:
    train_stage(stage_recipe("multi", TASK_NAMES), data_root, workdir / "multi")
    return workdir / "multi" / "checkpoint.pt"


def test_untrained_translation_does_not_beat_chance(support: Path, data_root: Path, workdir: Path,
                                                    chance: Metrics) -> None:
    for task in TRANSLATION_TASKS:
        model = untrained_translation(translation_recipe(task, support))
        metrics = replay_metrics(model, data_root, workdir / f"untrained_{task}")
        verdicts = clearly_better(task, metrics[task], chance[task])
        assert not any(verdicts.values()), f"untrained translation {task}: {verdicts}"


@pytest.mark.parametrize("task", TRANSLATION_TASKS)
def test_translation_beats_chance_and_keeps_its_sources(task: str, support: Path, data_root: Path, workdir: Path,
                                                        chance: Metrics) -> None:
    bundle = train_stage(translation_recipe(task, support), data_root, workdir / f"translation_{task}")
    assert isinstance(bundle, TranslationBundle) and bundle.tasks == [task]
    source = ModelBundle.from_checkpoints(support)
    for name in bundle.sources.tasks:
        trained = bundle.sources.bundle.head(name).state_dict()
        assert all(torch.equal(value, trained[key]) for key, value in source.head(name).state_dict().items())
    trained_backbone = bundle.sources.bundle.backbones[0].state_dict()
    assert all(torch.equal(value, trained_backbone[key]) for key, value in source.backbones[0].state_dict().items())
    metrics = replay_metrics(bundle, data_root, workdir / f"translation_{task}" / "replay")
    assert_beats_chance(task, metrics, chance, "translation")


def test_translation_run_resumes_to_the_same_weights(support: Path, data_root: Path, workdir: Path) -> None:
    recipe = translation_recipe("pnr", support, ["num_epochs=3"])
    whole = train(recipe, data_root, workdir / "resume_whole").bundle
    train(recipe, data_root, workdir / "resume_parts", stop_after_epochs=2)
    resumed = train(recipe, data_root, workdir / "resume_parts",
                    resume=workdir / "resume_parts" / "checkpoint.pt").bundle
    expected = whole.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in resumed.state_dict().items())
