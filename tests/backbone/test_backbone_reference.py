"""Backbone parity with the authors' GraphHier on every reference case that records backbone outputs.

Cases are discovered from ``manifest.json`` of ``egostream.testing.reference_dir()``: every case whose expected file
holds ``expected.backbone.graphs.x`` (backbone cases also hold ``expected.backbone.final_x``). The model is built
from ``configs/<checkpoint>.json``, the checkpoint is loaded strictly with our loader, and the input batch is the
collated ``inputs/<input>.pt`` (padding rows dropped with ``input.mask``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from egostream.backbone.graphs import VideoBatch
from egostream.backbone.hierarchy import backbone_config_from_authors
from egostream.checkpoint import load_backbone
from egostream.kernels.temporal_edges import radius_edges
from egostream.testing import reference_dir

ATOL = 1e-5


def _backbone_cases() -> list[tuple[str, dict]]:
    manifest = reference_dir() / "manifest.json"
    if not manifest.is_file():
        return []
    cases = json.loads(manifest.read_text())["cases"]
    return [(name, case) for name, case in sorted(cases.items())
            if "expected.backbone.graphs.x" in case.get("tensors", {}) and isinstance(case.get("inputs_file"), str)]


CASES = _backbone_cases()


def edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return {tuple(pair) for pair in edge_index.t().tolist()}


@pytest.mark.skipif(not CASES, reason="no reference cases found")
@pytest.mark.parametrize("name,case", CASES, ids=[name for name, _ in CASES])
def test_backbone_reference(name: str, case: dict) -> None:
    root = reference_dir()
    checkpoint = root / case["checkpoint"]
    authors_config = json.loads((root / "configs" / f"{Path(checkpoint).stem}.json").read_text())["model"]
    backbone = load_backbone(checkpoint, backbone_config_from_authors(authors_config))
    fields = torch.load(root / case["inputs_file"], weights_only=True)
    batch = VideoBatch.from_padded(fields["input.x"], fields["input.pos"], fields["input.batch"],
                                   fields["input.indices"], fields["input.mask"],
                                   num_videos=len(fields["input.ptr"]) - 1)
    expected = torch.load(root / case["expected_file"], weights_only=True)

    conv_outputs: dict[str, torch.Tensor] = {}
    for level, block in enumerate(backbone.layers):
        for k, conv in enumerate(block.convs):
            conv.register_forward_hook(
                lambda _m, _i, out, key=f"aux.backbone.level{level}.tdgc{k}.out": conv_outputs.setdefault(key, out))
    with torch.no_grad():
        final_x, graphs = backbone(batch)

    if "expected.backbone.final_x" in expected:
        torch.testing.assert_close(final_x, expected["expected.backbone.final_x"], atol=ATOL, rtol=0)
    for attribute in ("x", "pos", "extent"):
        torch.testing.assert_close(getattr(graphs, attribute), expected[f"expected.backbone.graphs.{attribute}"],
                                   atol=ATOL, rtol=0)
    for attribute in ("video", "depth", "indices", "batch", "ptr"):
        key = f"expected.backbone.graphs.{attribute}"
        if key in expected:
            assert torch.equal(getattr(graphs, attribute), expected[key]), attribute
    if "expected.backbone.graphs.video_ptr" in expected:  # follow_batch=["video"] over levels: the level offsets
        assert torch.equal(graphs.ptr, expected["expected.backbone.graphs.video_ptr"])
    for key, value in conv_outputs.items():
        if key in expected:
            torch.testing.assert_close(value, expected[key], atol=ATOL, rtol=0)

    for level in range(graphs.num_levels):
        nodes = graphs.level_mask(level)
        if f"aux.backbone.edges.level{level}" in expected:
            ours = backbone.level_edges(graphs.pos[nodes], graphs.video[nodes], level)
            assert edge_set(ours) == edge_set(expected[f"aux.backbone.edges.level{level}"])
        if f"aux.backbone.pool_edges.level{level}" in expected:
            # Our pooling averages over rows whose indices differ by < 1.5 in the same video (plus the node twice):
            # the authors' pooling graph, radius_graph(indices, 1.5, loop=True).
            neighbourhood = radius_edges(graphs.indices[nodes].float(), graphs.video[nodes], 1.5, loop=True)
            assert edge_set(neighbourhood) == edge_set(expected[f"aux.backbone.pool_edges.level{level}"])
