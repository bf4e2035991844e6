"""EgoPack novel-task cases (``egopack_ar_*``, ``egopack_mq_*``: manifest cases with ``support_tasks``) against the
authors' ``validate()`` outputs, stage by stage (from the stored intermediate tensors) and end to end (backbone on).
"""
from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor
from torch_geometric.nn import global_mean_pool

from tests.backpack.backpack_reference_cases import (ATOL, assert_interaction_matches, case, checkpoint_config, load_tensors,
                                      state_with_prefix)
from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.backpack import (EgoPackInteraction, InteractionResult, Segments, authors_interaction_keys,
                                consult_backpack, fusion_rule)
from egostream.checkpoint import load_backbone, load_checkpoint
from egostream.tasks.alignment import segment_mean
from egostream.tasks.ar import ARTask, verb_noun_cross_entropy
from egostream.tasks.mq import MQTask
from egostream.tasks.neck import ProjectionNeck
from egostream.testing import reference_dir
from tests.reference_fixtures import reference_manifest

CASES = sorted(name for name, entry in reference_manifest()["cases"].items()
               if "support_tasks" in entry and name.startswith("egopack_"))


class EgoPackCase:
    """The modules of one EgoPack checkpoint, built from its config and loaded strictly, in eval mode."""

    def __init__(self, name: str) -> None:
        entry, config = case(name), checkpoint_config(name)
        self.task: str = entry["task"]
        self.expected = load_tensors(entry["expected_file"])
        self.inputs = load_tensors(entry["inputs_file"])
        loaded = load_checkpoint(reference_dir() / entry["checkpoint"])
        assert loaded.novel_task == self.task
        self.support_necks: dict[str, ProjectionNeck] = {}
        for task in entry["support_tasks"]:
            neck = ProjectionNeck(config["tasks"][task]["input_size"], config["tasks"][task]["features_size"])
            neck.load_state_dict(state_with_prefix(loaded.task_state(task), "projector."))
            self.support_necks[task] = neck.eval()
        self.interaction = EgoPackInteraction.from_checkpoint(loaded).eval()
        egopack = config["egopack"]
        assert self.interaction.k == egopack["k"]
        assert self.interaction.stages[entry["support_tasks"][0]][0].convs[0].out_channels == egopack["hidden_size"]
        head_class = {"ego4d/ar": ARTask, "ego4d/mq": MQTask}[self.task]
        self.head = head_class.from_authors_config(config["egopack_task"])
        self.head.load_state_dict(loaded.task_state(self.task))
        self.head.eval()
        options = {"project_before_fusion": config["egopack_task"]["project_before_fusion"],
                   "dropout": config["egopack_task"]["fusion_dropout"]} if self.task == "ego4d/mq" else {}
        self.rule = fusion_rule(self.task, **options)
        self.backbone = load_backbone(loaded)
        self.segments = Segments(self.inputs["input.segments"], self.inputs["input.segments_batch"])

    def stored_graphs(self) -> LevelGraphs:
        fields = ("x", "pos", "video", "depth", "extent", "indices")
        values = {field: self.expected[f"expected.backbone.graphs.{field}"] for field in fields}
        return LevelGraphs(**values, num_videos=int(values["video"].max()) + 1)

    def video_batch(self) -> VideoBatch:
        mask = self.inputs["input.mask"]
        return VideoBatch(self.inputs["input.x"][mask], self.inputs["input.pos"][mask],
                          self.inputs["input.batch"][mask], self.inputs["input.indices"][mask],
                          len(self.inputs["input.ptr"]) - 1)

    def fused_outputs(self, graphs: LevelGraphs, result: InteractionResult) -> dict[str, Tensor]:
        """The novel task's head on the fused features (``EgoPack<Task>Task.forward``)."""
        if self.task == "ego4d/ar":
            level0 = graphs.depth == 0
            novel = segment_mean(self.head.project(graphs.x[level0]), graphs.pos[level0], graphs.video[level0],
                                 self.segments.bounds, self.segments.video, clamp_empty=True)
            fused = self.rule.fuse(novel, result.features)
            verb_logits, noun_logits = self.head.verb_classifier(fused), self.head.noun_classifier(fused)
            loss = verb_noun_cross_entropy(verb_logits, noun_logits, self.inputs["input.labels.0"],
                                           self.inputs["input.labels.1"], self.head.config.loss_weight)["total"]
            return {"egopack_ar.fused_features": fused, "egopack_ar.verb_logits": verb_logits,
                    "egopack_ar.noun_logits": noun_logits, "egopack_ar.loss_per_segment": loss,
                    "egopack_ar.loss_mean": loss.mean()}
        fused = self.rule.fuse(self.head.project(graphs.x), result.features, neck=self.head.project)
        cls_features = torch.cat([fused, global_mean_pool(fused, graphs.video).index_select(0, graphs.video)], dim=1)
        reg = self.head.regressor(fused) * self.head.scales.index_select(0, graphs.depth)[:, None]
        return {"egopack_mq.cls_logits": self.head.classifier(cls_features), "egopack_mq.reg_preds": reg}

    def assert_outputs(self, outputs: dict[str, Tensor]) -> None:
        for key, value in outputs.items():
            torch.testing.assert_close(value, self.expected[f"expected.{key}"], atol=ATOL, rtol=0, msg=key)


@pytest.fixture(scope="module", params=CASES)
def egopack_case(request: Any) -> EgoPackCase:
    return EgoPackCase(request.param)


@torch.no_grad()
def test_support_queries_from_stored_graphs(egopack_case: EgoPackCase) -> None:
    graphs = egopack_case.stored_graphs()
    for task, neck in egopack_case.support_necks.items():
        projected = neck(graphs.x)
        torch.testing.assert_close(projected, egopack_case.expected[f"aux.egopack.support_projected.{task}"],
                                   atol=ATOL, rtol=0)
        queries = egopack_case.rule.queries(projected, graphs, egopack_case.segments)
        torch.testing.assert_close(queries, egopack_case.expected[f"expected.egopack.support_aligned.{task}"],
                                   atol=ATOL, rtol=0)


@torch.no_grad()
def test_interaction_from_stored_queries(egopack_case: EgoPackCase) -> None:
    expected = egopack_case.expected
    tasks = egopack_case.interaction.support_tasks
    result = egopack_case.interaction({t: expected[f"expected.egopack.support_aligned.{t}"] for t in tasks})
    assert assert_interaction_matches(result, expected, egopack_case.interaction) > 0
    egopack_case.assert_outputs(egopack_case.fused_outputs(egopack_case.stored_graphs(), result))


@torch.no_grad()
def test_end_to_end(egopack_case: EgoPackCase) -> None:
    _, graphs = egopack_case.backbone(egopack_case.video_batch())
    torch.testing.assert_close(graphs.x, egopack_case.expected["expected.backbone.graphs.x"], atol=ATOL, rtol=0)
    result = consult_backpack(graphs, egopack_case.support_necks, egopack_case.interaction, egopack_case.rule,
                              egopack_case.segments)
    assert assert_interaction_matches(result, egopack_case.expected, egopack_case.interaction) > 0
    egopack_case.assert_outputs(egopack_case.fused_outputs(graphs, result))


def test_authors_keys_round_trip(egopack_case: EgoPackCase) -> None:
    conv_depth = len(egopack_case.interaction.stages[egopack_case.interaction.support_tasks[0]][0].convs)
    ours = egopack_case.interaction.state_dict()
    authors = authors_interaction_keys(ours, conv_depth, to_authors=True)
    assert all(".module_" in key for key in authors if key.startswith("stages."))
    assert authors_interaction_keys(authors, conv_depth).keys() == ours.keys()
