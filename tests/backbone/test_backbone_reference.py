"""Backbone parity with the authors' GraphHier on every reference case that records backbone outputs.

Cases are discovered from ``manifest.json`` of ``egostream.testing.reference_dir()``: every case whose expected file
holds ``expected.backbone.graphs.x`` (backbone cases also hold ``expected.backbone.final_x``). The model is built
from ``configs/<checkpoint>.json``, the checkpoint is loaded strictly with our loader, and the input batch is the
collated ``inputs/<input>.pt`` (padding rows dropped with ``input.mask``).
"""
from __future__ import annotations

import pytest
import torch

from egostream.backbone.graphs import VideoBatch
from egostream.kernels.temporal_edges import radius_edges
from egostream.testing import reference_dir
from tests.reference_fixtures import backbone_cases, edge_set, reference_backbone

ATOL = 1e-5


CASES = backbone_cases()


@pytest.mark.skipif(not CASES, reason="no reference cases found")
@pytest.mark.parametrize("name,case", CASES, ids=[name for name, _ in CASES])
def test_backbone_reference(name: str, case: dict) -> None:
    root = reference_dir()
    backbone = reference_backbone(case)
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
