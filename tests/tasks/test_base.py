"""The task registry, the shared configs and the MLP heads."""
from __future__ import annotations

import json
import math

import pytest
import torch

from egostream.errors import InputError
from egostream.tasks import TASKS, TaskInputs, task_class
from egostream.tasks.classifier import ClassifierConfig, MLPClassifier
from tests.tasks.reference_cases import task_cases, task_state_dict


def test_registry_names_and_authors_names() -> None:
    assert TASKS.names() == ["ar", "lta", "mq", "oscc", "pnr"]
    for short in TASKS.names():
        cls = task_class(short)
        assert cls.name == short and cls.authors_name == f"ego4d/{short}"
        assert task_class(f"ego4d/{short}") is cls
    with pytest.raises(KeyError):
        task_class("ego4d/unknown")


@pytest.mark.parametrize("short", ["ar", "lta", "mq", "oscc", "pnr"])
def test_state_dict_keys_equal_the_authors_keys(short: str) -> None:
    """Built from the JSON config alone, each head has exactly the authors' keys and shapes (README §6.3)."""
    cases = task_cases(short)
    if not cases:
        pytest.skip("no reference cases")
    case = cases[0]
    cfg = json.loads(case.config.read_text())["tasks"][case.task]
    task = task_class(case.task).from_authors_config(cfg)
    theirs = task_state_dict(case)
    assert {k: tuple(v.shape) for k, v in task.state_dict().items()} == {k: tuple(v.shape) for k, v in theirs.items()}


def test_classifier_prior_bias_init() -> None:
    head = MLPClassifier(6, ClassifierConfig(n_classes=3, hidden_size=4, prior_prob=0.01))
    assert torch.allclose(torch.sigmoid(head.cls.bias), torch.full((3,), 0.01))
    assert head.cls.bias[0].item() == pytest.approx(-math.log(99))
    without = MLPClassifier(6, ClassifierConfig(n_classes=3, hidden_size=4, prior_prob=0.0))
    assert not torch.allclose(without.cls.bias, head.cls.bias)
    with pytest.raises(ValueError, match="prior_prob"):
        ClassifierConfig(n_classes=3, prior_prob=1.0)


def test_missing_sample_field_names_task_and_field() -> None:
    with pytest.raises(InputError, match=r"task ar: inputs\.verb_labels"):
        TaskInputs().require("verb_labels", "ar")
