"""MQ head parity with the authors' code on every ``task_mq_*`` reference case (outputs, targets, both loss modes,
per-video eval losses), plus hand-computed targets, losses and decoding."""
from __future__ import annotations

import math

import pytest
import torch

from egostream.backbone.graphs import LevelGraphs
from egostream.errors import InputError
from egostream.tasks import TaskInputs
from egostream.tasks.classifier import ClassifierConfig
from egostream.tasks.mq import (MQConfig, MQOutput, MQTask, assign_targets, diou_loss_1d, mq_candidates,
                                sigmoid_focal_loss)
from tests.tasks.reference_cases import (assert_close, assert_expected, build_task, case_ids, expected,
                                         expected_graphs, run_backbone, task_cases, task_inputs, video_graphs)

CASES = task_cases("mq")


def video_inputs(inputs: TaskInputs, video: int) -> TaskInputs:
    """The moments of one video, renumbered as video 0."""
    keep = inputs.segment_video == video
    return TaskInputs(segments=inputs.segments[keep], segment_video=torch.zeros(int(keep.sum()), dtype=torch.long),
                      labels=inputs.labels[keep])


def mq_results(task: MQTask, graphs: LevelGraphs, inputs: TaskInputs) -> dict[str, torch.Tensor]:
    """Batch outputs and the training-mode loss of a FRESH module, then every video alone in eval mode."""
    computed: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        out = task(graphs, inputs)
        computed["expected.mq.cls_logits"], computed["expected.mq.reg_preds"] = out.cls_logits, out.reg_preds
        task.train()
        terms = task.loss_terms(out, inputs)
        task.eval()
        computed.update({"expected.mq.loss_train_mode": terms["total"], "expected.mq.cls_loss_train_mode":
                         terms["cls"], "expected.mq.reg_loss_train_mode": terms["reg"],
                         "expected.mq.n_positives": terms["num_positives"],
                         "expected.mq.loss_normalizer_after_train_step": torch.tensor(task.loss_normalizer,
                                                                                      dtype=torch.float64)})
        for video in range(graphs.num_videos):
            alone, alone_inputs = video_graphs(graphs, video), video_inputs(inputs, video)
            out = task(alone, alone_inputs)
            terms = task.loss_terms(out, alone_inputs)
            prefix = f"expected.per_video.{video}.mq."
            computed.update({prefix + "cls_logits": out.cls_logits, prefix + "reg_preds": out.reg_preds,
                             prefix + "loss_eval": terms["total"], prefix + "cls_loss_eval": terms["cls"],
                             prefix + "reg_loss_eval": terms["reg"]})
    return computed


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_mq_reference_from_expected_graphs(case) -> None:
    values = expected(case)
    task, graphs, inputs = build_task(case), expected_graphs(values), task_inputs(case)
    computed = mq_results(task, graphs, inputs)
    assert_expected(values, computed, "expected.mq.")
    assert_expected(values, computed, "expected.per_video.")
    assert "loss_normalizer" not in " ".join(task.state_dict())


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_mq_reference_targets_exact(case) -> None:
    values = expected(case)
    task, graphs = build_task(case), expected_graphs(values)
    with torch.no_grad():
        out = task(graphs, task_inputs(case))
    for video, target in enumerate(task.targets(graphs, task_inputs(case))):
        assert torch.equal(target.cls, values[f"aux.mq.cls_targets.video{video}"])
        name = f"aux.mq.reg_targets_pos.video{video}"
        if name not in values:
            assert not target.positive.any()
            continue
        assert torch.equal(target.reg[target.positive], values[name])
        preds = out.reg_preds[graphs.video == video][target.positive]
        assert_close(diou_loss_1d(preds, target.reg[target.positive]), values[f"aux.mq.diou_per_pos.video{video}"],
                     f"aux.mq.diou_per_pos.video{video}")


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_mq_reference_end_to_end(case) -> None:
    values = expected(case)
    computed = mq_results(build_task(case), run_backbone(case), task_inputs(case))
    assert_expected(values, computed, "expected.mq.")
    assert_expected(values, computed, "expected.per_video.")


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_mq_decode_gives_clipped_sorted_detections(case) -> None:
    values = expected(case)
    task, graphs, inputs = build_task(case), expected_graphs(values), task_inputs(case)
    with torch.no_grad():
        detections = task.decode(task(graphs, inputs), inputs)
    assert len(detections) == graphs.num_videos
    for found, duration in zip(detections, inputs.duration):
        assert len(found.segs) > 0
        assert bool((found.segs >= 0).all()) and bool((found.segs <= duration).all())
        assert bool((found.scores[:-1] >= found.scores[1:]).all())
        assert bool((found.cls_idxs < task.config.num_classes).all())


def test_assign_targets_hand_computed() -> None:
    # three nodes: level 0 at 1.0 s and 3.0 s, level 1 (top level) at 2.0 s
    pos = torch.tensor([1.0, 3.0, 2.0])
    depth = torch.tensor([0, 0, 1])
    segments = torch.tensor([[0.5, 2.0], [0.0, 6.0], [0.8, 2.3], [2.0, 9.0]])
    labels = torch.tensor([0, 1, 2, 3])
    target = assign_targets(pos, depth, segments, labels, num_classes=4)
    # node 0 (level 0, range [0, 4]): inside 0 (len 1.5), 1 (max offset 5 > 4: out of range), 2 (len 1.5) -> tie
    # node 1 (level 0): inside 1 (max offset 3, len 6) and 3 (max offset 6 > 4) -> class 1
    # node 2 (level 1, top: range [2, 10000]): inside 1 (max 4, len 6); 0 and 2 are too short; 3 starts AT 2.0
    #   (not strictly inside) -> class 1
    assert target.cls.tolist() == [[1, 0, 1, 0], [0, 1, 0, 0], [0, 1, 0, 0]]
    assert target.positive.tolist() == [True, True, True]
    # regression from the FIRST shortest moment, in units of 2**d
    assert torch.allclose(target.reg, torch.tensor([[0.5, 1.0], [3.0, 3.0], [1.0, 2.0]]))


def test_focal_and_diou_hand_computed() -> None:
    logit, p = torch.tensor([[0.0]]), 0.5
    assert math.isclose(float(sigmoid_focal_loss(logit, torch.ones(1, 1))), 0.25 * (1 - p) ** 2 * math.log(2),
                        rel_tol=1e-6)
    assert math.isclose(float(sigmoid_focal_loss(logit, torch.zeros(1, 1))), 0.75 * p ** 2 * math.log(2),
                        rel_tol=1e-6)
    target = torch.tensor([[1.0, 1.0]])
    assert float(diou_loss_1d(target, target)) == pytest.approx(0.0, abs=1e-7)
    # pred [-0, 2] vs target [-1, 1]: IoU 1/3, centres 1 and 0, enclosing 3 -> 1 - 1/3 + 1/9
    assert float(diou_loss_1d(torch.tensor([[0.0, 2.0]]), target)) == pytest.approx(1 - 1 / 3 + 1 / 9, rel=1e-6)


def test_candidates_hand_computed() -> None:
    logits = torch.tensor([[10.0, -10.0], [-10.0, 0.0], [3.0, -10.0]])
    reg = torch.tensor([[1.0, 2.0], [0.5, 0.5], [0.01, 0.01]])
    pos = torch.tensor([5.0, 6.0, 8.0])
    extent = torch.tensor([1.0, 1.0, 2.0])
    found = mq_candidates(logits, reg, pos, extent)
    # level 1: node 0 class 0 [4, 7] (sigmoid(10)), node 1 class 1 [5.5, 6.5] (0.5); node 1 class 0 is below 0.001
    # level 2: node 2 class 0 spans 0.04 s < 0.05 -> dropped
    assert found.labels.tolist() == [0, 1]
    assert torch.allclose(found.segments, torch.tensor([[4.0, 7.0], [5.5, 6.5]]))
    assert torch.allclose(found.scores, torch.sigmoid(torch.tensor([10.0, 0.0])))
    assert found.nodes.tolist() == [0, 1]
    # the same nodes with the levels interleaved: the same candidates, each naming its node's row in this order
    order = torch.tensor([2, 0, 1])
    shuffled = mq_candidates(logits[order], reg[order], pos[order], extent[order])
    assert torch.equal(shuffled.segments, found.segments) and torch.equal(shuffled.labels, found.labels)
    assert shuffled.nodes.tolist() == [1, 2]


def test_mq_training_normaliser_is_an_ema() -> None:
    task = MQTask(MQConfig(input_size=4, features_size=4, num_classes=2, num_levels=1,
                           classifier=ClassifierConfig(2, hidden_size=4)))
    graphs = LevelGraphs(torch.randn(3, 4), torch.tensor([1.0, 2.0, 3.0]), torch.zeros(3, dtype=torch.long),
                         torch.zeros(3, dtype=torch.long), torch.ones(3), torch.arange(3), 1)
    inputs = TaskInputs(segments=torch.tensor([[0.5, 3.5]]), segment_video=torch.tensor([0]), labels=torch.tensor([1]))
    task.train()
    out = task(graphs, inputs)
    task.loss_terms(out, inputs)  # 3 positives
    assert task.loss_normalizer == pytest.approx(0.9 * 100 + 0.1 * 3)
    task.loss_terms(out, TaskInputs(segments=torch.zeros(0, 2), segment_video=torch.zeros(0, dtype=torch.long),
                                    labels=torch.zeros(0, dtype=torch.long)))  # no positive counts as 1
    assert task.loss_normalizer == pytest.approx(0.9 * (0.9 * 100 + 0.1 * 3) + 0.1 * 1)


def test_mq_rejects_too_deep_graphs_and_wrong_width() -> None:
    task = MQTask(MQConfig(input_size=4, features_size=4, num_classes=2, num_levels=1,
                           classifier=ClassifierConfig(2, hidden_size=4)))
    deep = LevelGraphs(torch.randn(2, 4), torch.zeros(2), torch.zeros(2, dtype=torch.long), torch.tensor([0, 1]),
                       torch.tensor([1.0, 2.0]), torch.zeros(2, dtype=torch.long), 1)
    with pytest.raises(InputError, match=r"graphs\.depth"):
        task(deep)
    wide = LevelGraphs(torch.randn(2, 6), torch.zeros(2), torch.zeros(2, dtype=torch.long),
                       torch.zeros(2, dtype=torch.long), torch.ones(2), torch.arange(2), 1)
    with pytest.raises(InputError, match=r"graphs\.x"):
        task(wide)
    with pytest.raises(InputError, match=r"inputs\.duration"):
        task.decode(MQOutput(torch.zeros(2, 2), torch.zeros(2, 2), wide), TaskInputs())
