"""AR head parity with the authors' code on every ``task_ar_*`` reference case, plus decoding and input checks."""
from __future__ import annotations

import math

import pytest
import torch

from egostream.errors import InputError
from egostream.tasks import TaskInputs
from egostream.tasks.alignment import segment_mean
from egostream.tasks.ar import ARConfig, AROutput, ARTask
from egostream.tasks.classifier import ClassifierConfig
from tests.tasks.reference_cases import (assert_close, assert_expected, build_task, case_ids, expected, expected_graphs,
                                         run_backbone, task_cases, task_inputs, verb_noun_results)

CASES = task_cases("ar")


def ar_results(task: ARTask, graphs, inputs: TaskInputs) -> dict[str, torch.Tensor]:
    return verb_noun_results(task, graphs, inputs, "ar", "segment")


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_ar_reference_from_expected_graphs(case) -> None:
    values = expected(case)
    task, graphs = build_task(case), expected_graphs(values)
    assert_expected(values, ar_results(task, graphs, task_inputs(case)), "expected.ar.")
    with torch.no_grad():
        projected = task.project(graphs.x[graphs.depth == 0])
    assert_close(projected, values["aux.ar.projected_level0"], "aux.ar.projected_level0")


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_ar_reference_end_to_end(case) -> None:
    values = expected(case)
    assert_expected(values, ar_results(build_task(case), run_backbone(case), task_inputs(case)), "expected.ar.")


def test_segment_mean_inclusive_bounds_and_empty_segments() -> None:
    features = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    pos = torch.tensor([0.5, 1.0, 1.5, 0.5])
    video = torch.tensor([0, 0, 0, 1])
    segments = torch.tensor([[0.5, 1.0], [1.1, 1.4], [0.0, 9.0]])
    segment_video = torch.tensor([0, 0, 1])
    clamped = segment_mean(features, pos, video, segments, segment_video, clamp_empty=True)
    # bounds are inclusive: nodes at 0.5 and 1.0 -> mean of rows 0, 1; no node in [1.1, 1.4]; video 1 -> row 3 only
    assert torch.equal(clamped, torch.tensor([[1.5, 15.0], [0.0, 0.0], [4.0, 40.0]]))
    unclamped = segment_mean(features, pos, video, segments, segment_video, clamp_empty=False)
    assert torch.isnan(unclamped[1]).all() and torch.equal(unclamped[[0, 2]], clamped[[0, 2]])


def test_ar_decode_top_k_hand_computed() -> None:
    task = ARTask(ARConfig(input_size=4, features_size=4, verb_classifier=ClassifierConfig(3, hidden_size=4),
                           noun_classifier=ClassifierConfig(2, hidden_size=4), top_k=2))
    verb_logits = torch.tensor([[0.0, 2.0, 1.0]])
    noun_logits = torch.tensor([[math.log(3.0), 0.0]])
    pred = task.decode(AROutput(verb_logits, noun_logits, torch.zeros(1, 4)))
    total = 1 + math.e ** 2 + math.e
    assert pred.verb_ids.tolist() == [[1, 2]]
    assert torch.allclose(pred.verb_scores, torch.tensor([[math.e ** 2 / total, math.e / total]]))
    assert pred.noun_ids.tolist() == [[0, 1]]  # k capped at the 2 classes
    assert torch.allclose(pred.noun_scores, torch.tensor([[0.75, 0.25]]))


@pytest.mark.parametrize("case", CASES[:1], ids=case_ids(CASES[:1]))
def test_ar_rejects_wrong_feature_width_and_missing_segments(case) -> None:
    task, graphs = build_task(case), expected_graphs(expected(case))
    narrow = type(graphs)(graphs.x[:, :5], graphs.pos, graphs.video, graphs.depth, graphs.extent, graphs.indices,
                          graphs.num_videos)
    with pytest.raises(InputError, match=rf"graphs\.x.*\[N, {graphs.x.shape[1]}\]"):  # the case's hidden size
        task(narrow, task_inputs(case))
    with pytest.raises(InputError, match=r"inputs\.segments"):
        task(graphs, TaskInputs())
