"""The ``prototypes`` case: build_prototypes of the authors' train_egopack.py on the prototype batches."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.backpack.backpack_reference_cases import ATOL, case, case_names, load_tensors, state_with_prefix
from egostream.backbone.graphs import VideoBatch
from egostream.backpack import Backpack, PrototypeBuilder, Segments, fusion_rule, support_queries
from egostream.checkpoint import load_backbone, load_checkpoint
from egostream.tasks.neck import ProjectionNeck
from egostream.testing import reference_dir
from tests.reference_fixtures import reference_manifest

CASES = case_names("prototypes*")


def video_batch(inputs: dict[str, torch.Tensor]) -> VideoBatch:
    mask = inputs["input.mask"]
    return VideoBatch(inputs["input.x"][mask], inputs["input.pos"][mask], inputs["input.batch"][mask],
                      inputs["input.indices"][mask], len(inputs["input.ptr"]) - 1)


@torch.no_grad()
def build_case_backpack(name: str) -> Backpack:
    """The case's flow: a depth-1 backbone with the support checkpoint's level 0 (the authors load it with
    ``strict=False``, dropping deeper levels), support necks, AR alignment, accumulation over the batches in order."""
    entry = case(name)
    loaded = load_checkpoint(reference_dir() / entry["checkpoint"])
    assert loaded.backbone_config is not None
    backbone = load_backbone(loaded, replace(loaded.backbone_config, depth=1), allow_deeper_checkpoint=True)
    necks = {}
    for task, task_state in loaded.tasks.items():
        necks[task] = ProjectionNeck(backbone.hidden_size, task_state["projector.net.4.weight"].shape[0])
        necks[task].load_state_dict(state_with_prefix(task_state, "projector."))
        necks[task].eval()
    dims = reference_manifest()["dims"]  # the alignment ARTask's class counts (README §4)
    builder = PrototypeBuilder(necks, dims["V"], dims["N"], backbone.hidden_size)
    rule = fusion_rule("ego4d/ar")
    for relative in entry["inputs_order"]:
        inputs = load_tensors(relative)
        _, graphs = backbone(video_batch(inputs), max_depth=0)
        segments = Segments(inputs["input.segments"], inputs["input.segments_batch"])
        builder.add(support_queries(graphs, necks, rule, segments), inputs["input.verb_labels"],
                    inputs["input.noun_labels"])
    return builder.finish(manifest_sha256(entry["checkpoint"]))


def manifest_sha256(checkpoint: str) -> str:
    return reference_manifest()["checkpoint_sha256"][Path(checkpoint).name]


@pytest.mark.parametrize("name", CASES)
def test_prototypes_reference(name: str, tmp_path: Path) -> None:
    expected = load_tensors(case(name)["expected_file"])
    backpack = build_case_backpack(name)
    assert torch.equal(backpack.verb_labels, expected["expected.prototypes.verb_labels"])
    assert torch.equal(backpack.noun_labels, expected["expected.prototypes.noun_labels"])
    assert torch.equal(backpack.support, expected["aux.prototypes.support"])
    for task in backpack.support_tasks:
        torch.testing.assert_close(backpack.prototypes[task], expected[f"expected.prototypes.{task}"],
                                   atol=ATOL, rtol=0)
    # The stored file keeps everything, and its provenance is the support checkpoint's sha256.
    backpack.save(tmp_path / "backpack.pt")
    loaded = Backpack.load(tmp_path / "backpack.pt")
    assert loaded.source_checkpoint_sha256 == manifest_sha256(case(name)["checkpoint"])
    for task in backpack.support_tasks:
        assert torch.equal(loaded.prototypes[task], backpack.prototypes[task])
