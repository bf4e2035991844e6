"""Fusion rules per novel task, against hand-computed values (the fixtures cover AR and MQ end to end)."""
from __future__ import annotations

import pytest
import torch

from egostream.backbone.graphs import LevelGraphs
from egostream.backpack import (NodeFusion, ProjectedMeanFusion, SegmentFusion, Segments, VideoFusion, fusion_rule,
                                support_queries)
from egostream.errors import InputError


def two_level_graphs() -> LevelGraphs:
    """Video 0: level-0 nodes at 0.5, 1.5, 2.5 s, one level-1 node; video 1: one level-0 node at 0.5 s."""
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, -4.0], [7.0, 1.0], [100.0, 100.0]])
    x = x[[0, 1, 2, 4, 3]]  # level-major: level 0 of both videos, then level 1
    return LevelGraphs(x=x, pos=torch.tensor([0.5, 1.5, 2.5, 0.5, 0.5]), video=torch.tensor([0, 0, 0, 1, 0]),
                       depth=torch.tensor([0, 0, 0, 0, 1]), extent=torch.tensor([1.0, 1, 1, 1, 2]),
                       indices=torch.tensor([0, 1, 2, 0, 0]), num_videos=2)


def test_segment_queries_average_level0_nodes_inclusively() -> None:
    graphs = two_level_graphs()
    segments = Segments(torch.tensor([[0.5, 1.5], [1.6, 2.4], [0.0, 9.0]]), torch.tensor([0, 0, 1]))
    ar = SegmentFusion(clamp_empty=True).queries(graphs.x, graphs, segments)
    torch.testing.assert_close(ar, torch.tensor([[2.0, 1.0], [0.0, 0.0], [100.0, 100.0]]))
    oscc = SegmentFusion(clamp_empty=False).queries(graphs.x, graphs, segments)
    assert torch.isnan(oscc[1]).all() and torch.equal(oscc[0], ar[0])


def test_segment_fusion_adds_the_mean_of_support_outputs() -> None:
    novel = torch.tensor([[1.0, 1.0]])
    fused = fusion_rule("ego4d/ar").fuse(novel, {"a": torch.tensor([[2.0, 0.0]]), "b": torch.tensor([[4.0, -2.0]])})
    torch.testing.assert_close(fused, torch.tensor([[4.0, 0.0]]))


def test_video_queries_take_the_level0_max_per_video() -> None:
    graphs = two_level_graphs()
    queries = VideoFusion().queries(graphs.x, graphs)
    torch.testing.assert_close(queries, torch.tensor([[5.0, 2.0], [100.0, 100.0]]))


def test_node_fusion_queries_level0_nodes_and_scales_support_by_one_hundredth() -> None:
    graphs = two_level_graphs()
    rule = fusion_rule("ego4d/pnr")
    # Level 0 only (the rows the PNR head reads); at depth 1 that is every node, as the authors' code.
    assert isinstance(rule, NodeFusion) and torch.equal(rule.queries(graphs.x, graphs), graphs.x[:4])
    fused = rule.fuse(torch.ones(2, 2), {"a": torch.full((2, 2), 100.0), "b": torch.full((2, 2), 300.0)})
    torch.testing.assert_close(fused, torch.full((2, 2), 3.0))
    with pytest.raises(InputError, match="level-0 rows"):
        rule.fuse(torch.ones(2, 2), {"a": torch.ones(3, 2)})


def test_mq_fusion_averages_novel_and_projected_support() -> None:
    rule = fusion_rule("ego4d/mq")
    assert isinstance(rule, ProjectedMeanFusion)

    def neck(v: torch.Tensor) -> torch.Tensor:
        return 2 * v + 1

    novel, a, b = torch.tensor([[3.0]]), torch.tensor([[1.0]]), torch.tensor([[4.0]])
    torch.testing.assert_close(rule.fuse(novel, {"a": a, "b": b}, neck=neck), torch.tensor([[(3.0 + 3.0 + 9.0) / 3]]))
    raw = ProjectedMeanFusion(project_before_fusion=False)
    torch.testing.assert_close(raw.fuse(novel, {"a": a, "b": b}), torch.tensor([[8.0 / 3]]))
    with pytest.raises(InputError, match="MQ neck"):
        rule.fuse(novel, {"a": a})


def test_mq_fusion_dropout_only_in_training() -> None:
    rule = ProjectedMeanFusion(project_before_fusion=False, dropout=0.5)
    novel, support = torch.ones(64, 4), {"a": torch.ones(64, 4)}
    assert torch.equal(rule.fuse(novel, support, training=False), novel)
    torch.manual_seed(0)
    trained = rule.fuse(novel, support, training=True)
    assert set(trained.unique().tolist()) <= {0.0, 1.0, 2.0} and not torch.equal(trained, novel)


def test_support_queries_use_detached_nodes() -> None:
    graphs = two_level_graphs()
    graphs.x.requires_grad_(True)
    weight = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    queries = support_queries(graphs, {"t": lambda v: v @ weight}, VideoFusion())
    queries["t"].sum().backward()
    assert graphs.x.grad is None and weight.grad is not None
    torch.testing.assert_close(queries["t"], torch.tensor([[10.0, 2.0], [200.0, 100.0]]))


def test_unknown_novel_task_and_missing_segments() -> None:
    with pytest.raises(InputError, match="no EgoPack fusion rule"):
        fusion_rule("ego4d/nlq")
    graphs = two_level_graphs()
    with pytest.raises(InputError, match="segments"):
        fusion_rule("ego4d/oscc").queries(graphs.x, graphs)
