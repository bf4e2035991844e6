"""OSCC head parity with the authors' code on every ``task_oscc_*`` reference case, plus decoding."""
from __future__ import annotations

import pytest
import torch

from egostream.tasks import TaskInputs
from egostream.tasks.oscc import OSCCConfig, OSCCOutput, OSCCTask
from tests.tasks.reference_cases import (assert_expected, build_task, case_ids, expected, expected_graphs,
                                         forward_with_loss_terms, run_backbone, task_cases, task_inputs)

CASES = task_cases("oscc")


def oscc_results(task: OSCCTask, graphs, inputs: TaskInputs) -> dict[str, torch.Tensor]:
    out, terms = forward_with_loss_terms(task, graphs, inputs)
    return {"expected.oscc.logits": out.logits, "expected.oscc.features": out.features,
            "expected.oscc.loss_per_sample": terms["total"], "expected.oscc.loss_mean": terms["total"].mean()}


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_oscc_reference_from_expected_graphs(case) -> None:
    values = expected(case)
    assert_expected(values, oscc_results(build_task(case), expected_graphs(values), task_inputs(case)),
                    "expected.oscc.")


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_oscc_reference_end_to_end(case) -> None:
    assert_expected(expected(case), oscc_results(build_task(case), run_backbone(case), task_inputs(case)),
                    "expected.oscc.")


def test_oscc_decode_is_the_argmax() -> None:
    task = OSCCTask(OSCCConfig(input_size=4, features_size=4))
    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    pred = task.decode(OSCCOutput(logits, torch.zeros(3, 4)))
    assert pred.state_change.tolist() == [True, False, False]  # a tie goes to class 0, like argmax
    assert torch.allclose(pred.probability, torch.softmax(logits, -1)[:, 1])
