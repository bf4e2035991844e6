"""PNR head parity with the authors' code on every ``task_pnr_*`` reference case, plus the keyframe rule."""
from __future__ import annotations

import pytest
import torch

from egostream.backbone.graphs import LevelGraphs
from egostream.errors import InputError
from egostream.tasks import TaskInputs
from egostream.tasks.pnr import PNRConfig, PNROutput, PNRTask, keyframe_index
from tests.tasks.reference_cases import (assert_close, assert_expected, build_task, case_ids, expected, expected_graphs,
                                         forward_with_loss_terms, run_backbone, task_cases, task_inputs)

CASES = task_cases("pnr")


def pnr_results(task: PNRTask, graphs, inputs: TaskInputs) -> dict[str, torch.Tensor]:
    out, terms = forward_with_loss_terms(task, graphs, inputs)
    return {"expected.pnr.logits": out.logits, "expected.pnr.loss": terms["total"]}


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_pnr_reference_from_expected_graphs(case) -> None:
    values = expected(case)
    task, inputs = build_task(case), task_inputs(case)
    assert_expected(values, pnr_results(task, expected_graphs(values), inputs), "expected.pnr.")
    assert_close(task.pe(inputs.indices), values["aux.pnr.pe"], "aux.pnr.pe")


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_pnr_reference_end_to_end(case) -> None:
    assert_expected(expected(case), pnr_results(build_task(case), run_backbone(case), task_inputs(case)),
                    "expected.pnr.")


@pytest.mark.parametrize(("above", "wanted"), [
    ({}, 2),              # nothing reaches 0.7: the argmax (frame 2 holds 0.5)
    ({3: 1.0, 10: 0.9}, 10),  # |10 - 7| < |3 - 7|: closest to frame 7 wins, not the largest logit
    ({6: 0.8, 8: 2.0}, 6),    # equally close: the earlier frame
    ({7: 0.71}, 7),
    ({9: 0.7}, 9),            # exactly at the threshold and none above: the argmax
])
def test_keyframe_rule_hand_computed(above: dict[int, float], wanted: int) -> None:
    logits = torch.full((16,), -1.0)
    logits[2] = 0.5
    for frame, value in above.items():
        logits[frame] = value
    assert keyframe_index(logits) == wanted


def test_pnr_decode_maps_to_candidate_frames() -> None:
    task = PNRTask(PNRConfig(input_size=4, features_size=4))
    logits = torch.full((32, 1), -1.0)
    logits[5] = 3.0        # clip 0 -> frame index 5
    logits[16 + 12] = 0.2  # clip 1: nothing above 0.7 -> argmax 12
    candidates = torch.arange(32).reshape(2, 16) * 10 + 100
    inputs = TaskInputs(candidate_frames=candidates, start_frame=torch.tensor([100, 200]))
    pred = task.decode(PNROutput(logits), inputs)
    assert pred.index.tolist() == [5, 12]
    assert pred.frame.tolist() == [150 - 100, 380 - 200]


def test_pnr_rejects_indices_of_the_wrong_length() -> None:
    task = PNRTask(PNRConfig(input_size=4, features_size=4))
    graphs = LevelGraphs(torch.zeros(16, 4), torch.zeros(16), torch.zeros(16, dtype=torch.long),
                         torch.zeros(16, dtype=torch.long), torch.ones(16), torch.arange(16), 1)
    with pytest.raises(InputError, match=r"inputs\.indices"):
        task(graphs, TaskInputs(indices=torch.arange(15)))
    with pytest.raises(InputError, match=r"whole number"):
        task.decode(PNROutput(torch.zeros(20, 1)))
