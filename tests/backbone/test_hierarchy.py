"""Hierarchy pieces on tiny hand-computed examples: pooling weights, level edges, node bookkeeping, key mapping."""
from __future__ import annotations

import pytest
import torch

from egostream.backbone.graphs import VideoBatch
from egostream.backbone.hierarchy import (BackboneConfig, HierarchicalBackbone, authors_backbone_keys,
                                          backbone_config_from_authors, neighbour_pool)

STRIDE_S = 16 / 30


def test_mean_pooling_uses_double_self_loop_weights() -> None:
    x = torch.tensor([[1.0], [2.0], [4.0], [8.0], [16.0], [32.0], [64.0]])
    video = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    indices = torch.tensor([0, 1, 2, 3, 0, 1, 0])
    pooled = neighbour_pool(x, video, indices, "mean")
    expected = torch.tensor([(2 * 1 + 2) / 3, (1 + 2 * 2 + 4) / 4, (2 + 2 * 4 + 8) / 4, (4 + 2 * 8) / 3,
                             (2 * 16 + 32) / 3, (16 + 2 * 32) / 3, 64.0])
    torch.testing.assert_close(pooled[:, 0], expected)


def test_max_pooling_and_subsampling() -> None:
    x = torch.tensor([[3.0], [1.0], [2.0], [9.0]])
    video = torch.tensor([0, 0, 0, 1])
    indices = torch.tensor([0, 1, 2, 0])
    assert neighbour_pool(x, video, indices, "max")[:, 0].tolist() == [3.0, 3.0, 2.0, 9.0]
    assert torch.equal(neighbour_pool(x, video, indices, "video_subsampling"), x)


def tiny_backbone(depth: int, seed: int = 0) -> HierarchicalBackbone:
    torch.manual_seed(seed)
    return HierarchicalBackbone(BackboneConfig(input_size=3, hidden_size=4, depth=depth, pos_hidden_channels=5)).eval()


def tiny_batch(lengths: list[int]) -> VideoBatch:
    torch.manual_seed(1)
    return VideoBatch.from_videos([torch.randn(n, 3) for n in lengths],
                                  [(0.5 + torch.arange(n)) * STRIDE_S for n in lengths])


def test_level_edges_join_three_neighbours_each_side_at_every_level() -> None:
    backbone = tiny_backbone(depth=3)
    pos = (0.5 + torch.arange(10)) * STRIDE_S
    video = torch.zeros(10, dtype=torch.long)
    level0 = {tuple(e) for e in backbone.level_edges(pos, video, 0).t().tolist()}
    assert level0 == {(j, i) for i in range(10) for j in range(10) if 0 < abs(i - j) <= 3}
    # Level 1 keeps the even nodes (pos spacing 2 * 0.533 s) and searches on pos / 2: again +-3 neighbours.
    pos1 = pos[::2]
    level1 = {tuple(e) for e in backbone.level_edges(pos1, video[:5], 1).t().tolist()}
    assert level1 == {(j, i) for i in range(5) for j in range(5) if 0 < abs(i - j) <= 3}


def test_levels_bookkeeping() -> None:
    lengths = [5, 1, 2]
    with torch.no_grad():
        final_x, graphs = tiny_backbone(depth=2)(tiny_batch(lengths))
    # level sizes: ceil(n / 2**d) per video
    assert graphs.ptr.tolist() == [0, 8, 8 + 3 + 1 + 1]
    assert final_x.shape == (2 + 1 + 1, 4)
    level1 = graphs.level_mask(1)
    assert graphs.indices[level1].tolist() == [0, 1, 2, 0, 0]
    assert graphs.video[level1].tolist() == [0, 0, 0, 1, 2]
    torch.testing.assert_close(graphs.pos[level1], (0.5 + torch.tensor([0.0, 2.0, 4.0, 0.0, 0.0])) * STRIDE_S)
    assert graphs.extent[level1].tolist() == [2.0] * 5
    assert torch.equal(graphs.batch, graphs.depth)


def test_final_x_is_pooled_top_level() -> None:
    backbone = tiny_backbone(depth=1)
    batch = tiny_batch([4])
    with torch.no_grad():
        final_x, graphs = backbone(batch)
    top = graphs.x
    torch.testing.assert_close(final_x, torch.stack([(2 * top[0] + top[1]) / 3, (top[1] + 2 * top[2] + top[3]) / 4]))


def test_max_depth_stops_early_and_matches_full_run_prefix() -> None:
    backbone = tiny_backbone(depth=3)
    batch = tiny_batch([6, 3])
    with torch.no_grad():
        _, full = backbone(batch)
        _, first = backbone(batch, max_depth=0)
    assert first.num_levels == 1
    torch.testing.assert_close(first.x, full.x[full.level_mask(0)])


def test_one_node_video_is_independent_of_others() -> None:
    backbone = tiny_backbone(depth=2)
    batch = tiny_batch([4, 1])
    alone = VideoBatch(batch.x[4:], batch.pos[4:], torch.zeros(1, dtype=torch.long), batch.indices[4:], 1)
    with torch.no_grad():
        final_x, _ = backbone(batch)
        final_alone, _ = backbone(alone)
    torch.testing.assert_close(final_x[-1:], final_alone)


def test_authors_key_map_round_trips() -> None:
    backbone = HierarchicalBackbone(BackboneConfig(input_size=3, hidden_size=4, depth=2, n_layers=3))
    ours = backbone.state_dict()
    authors = authors_backbone_keys(ours, 3, to_authors=True)
    assert "layers.1.module_5.lin_rel.weight" in authors and "layers.1.module_6.weight" in authors
    assert "proj.1.weight" in authors
    assert authors_backbone_keys(authors, 3).keys() == ours.keys()


def test_config_from_authors_rejects_unsupported_options() -> None:
    model = {"hidden_size": 8, "depth": 2, "k": 2.0, "pool": "mean", "conv": {"pos_hidden_channels": 4}}
    cfg = backbone_config_from_authors(model, input_size=6)
    assert (cfg.input_size, cfg.hidden_size, cfg.depth, cfg.radius_s, cfg.pos_hidden_channels) == (6, 8, 2, 2.0, 4)
    with pytest.raises(ValueError, match="ffn"):
        backbone_config_from_authors({**model, "ffn": True}, input_size=6)
    with pytest.raises(ValueError, match="pool"):
        backbone_config_from_authors({**model, "pool": "batch_subsampling"}, input_size=6)
