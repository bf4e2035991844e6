"""Prefix exactness: after every push, the engine's nodes equal the offline backbone on the rows received so far.

Truths: the offline :class:`HierarchicalBackbone` on the whole prefix (node times from the protocol's formula), and
the authors' recorded outputs for the reference cases. Finality is checked against the offline model on longer
prefixes: a node the engine calls final never changes, and the first non-final node of each level does.
"""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from egostream.backbone.graphs import LevelGraphs
from egostream.stream import StreamConfig, StreamEngine
from egostream.kernels import stacked_linear
from egostream.stream import hierarchy_state
from egostream.stream.level_state import LevelState
from egostream.testing import reference_dir
from tests.reference_fixtures import backbone_cases, reference_backbone
from tests.stream.streams import (ATOL, INPUT_SIZE, anchored_before, assert_graphs_match, offline, push_sizes,
                                  random_backbone, single_threaded_torch)

__all__ = ["single_threaded_torch"]  # the autouse fixture, imported to apply here

LONG_HORIZON = StreamConfig(horizon_s=1e5)


@pytest.mark.parametrize("max_push", [1, 5], ids=["push1", "push1to5"])
@pytest.mark.parametrize("depth", range(1, 9))
def test_every_push_equals_offline_prefix(depth: int, max_push: int) -> None:
    length = 29 + 5 * depth  # never a power of two
    backbone = random_backbone(depth, seed=depth)
    rows = torch.randn(length, INPUT_SIZE, generator=torch.Generator().manual_seed(depth))
    engine = StreamEngine(backbone, LONG_HORIZON)
    for size in push_sizes(length, max_push, seed=depth + max_push):
        first = engine.num_rows
        stats = engine.push(rows[first:first + size] if size > 1 else rows[first])
        assert (stats.first_row, stats.num_rows, stats.total_rows) == (first, size, first + size)
        final_x, expected = offline(backbone, rows[:engine.num_rows])
        assert_graphs_match(engine.graphs(0), expected)
        top_x, top_pos, top_indices = engine.top_features(0)
        torch.testing.assert_close(top_x, final_x, atol=ATOL, rtol=0)
        assert torch.equal(top_indices, torch.arange(len(final_x)))


def test_a_level_builds_its_window_graph_once_per_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Level ``d`` gains a node every ``2**d`` rows, so its block window (nodes, edges, distance gates) is often the
    last push's: the engine builds a window's graph once and reuses it, and the nodes still equal the offline model."""
    calls: Counter[int] = Counter()
    edges_within = LevelState.edges_within

    def counting(level: LevelState, start: int) -> torch.Tensor:
        calls[level.level] += 1
        return edges_within(level, start)

    monkeypatch.setattr(LevelState, "edges_within", counting)
    depth, length = 5, 160
    backbone = random_backbone(depth, seed=3)
    rows = torch.randn(length, INPUT_SIZE, generator=torch.Generator().manual_seed(3))
    engine = StreamEngine(backbone, LONG_HORIZON)
    windows: list[set[tuple[int, int]]] = [set() for _ in range(depth)]
    for row in rows:
        engine.push(row)
        for level in engine._state.levels[:depth]:
            windows[level.level].add((level.block_window, level.num_nodes))
    assert [calls[d] for d in range(depth)] == [len(keys) for keys in windows]
    assert calls[0] == length and calls[depth - 1] <= length // 2 ** (depth - 2)
    final_x, expected = offline(backbone, rows)
    assert_graphs_match(engine.graphs(0), expected)


def test_setting_up_the_engine_prepares_the_cpu_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The weights are packed and the compiled kernels loaded when the engine is built, not by the first push (a
    live stream's first window would pay for it)."""
    warmed: list[str] = []
    monkeypatch.setattr(hierarchy_state, "warm_up_message_passing", lambda: warmed.append("message passing"))
    monkeypatch.setattr(hierarchy_state, "warm_up_pooling", lambda: warmed.append("pooling"))
    backbone = random_backbone(3, seed=4)
    engine = StreamEngine(backbone, LONG_HORIZON)
    assert sorted(warmed) == ["message passing", "pooling"]
    for stacks in engine._state.linears:
        for linear in stacks:
            assert linear.linears[0] in stacked_linear._PACKED


@pytest.mark.parametrize("depth", [3, 8])
def test_long_stream_in_batches_equals_offline_prefix(depth: int) -> None:
    """Deep levels only become final after ~12 * 2**d rows: a 1100-row stream makes level 6 final, level 7 not."""
    length = 1101
    backbone = random_backbone(depth, seed=10 + depth)
    rows = torch.randn(length, INPUT_SIZE, generator=torch.Generator().manual_seed(depth))
    engine = StreamEngine(backbone, LONG_HORIZON)
    for size in push_sizes(length, 64, seed=depth):
        engine.push(rows[engine.num_rows:engine.num_rows + size])
        if engine.num_pushes % 9 == 0 or engine.num_rows == length:
            final_x, expected = offline(backbone, rows[:engine.num_rows])
            assert_graphs_match(engine.graphs(0), expected)
            torch.testing.assert_close(engine.top_features(0)[0], final_x, atol=ATOL, rtol=0)
    assert engine.final_counts[0] == length - 6  # 2 TDGC layers x 3 neighbours of lag at level 0


@pytest.mark.parametrize("pool", ["mean", "max", "video_subsampling"])
def test_finality_is_exact_and_tight(pool: str) -> None:
    """Final nodes never change with later rows; every non-final node does (mean pooling and subsampling: a max
    can ignore a changed neighbour, so there only exactness is checked).

    Tightness is checked in float64 (the offline model on the prefix and on a longer stream): at the edge of the
    receptive field the change of a node can fall below float32 resolution.
    """
    depth, length, extra = 4, 150, 260
    backbone = random_backbone(depth, seed=3, pool=pool)
    rows = torch.randn(length + extra, INPUT_SIZE, generator=torch.Generator().manual_seed(5))
    engine = StreamEngine(backbone, LONG_HORIZON)
    engine.push(rows[:length])
    ours = engine.graphs(0)
    final = engine.final_mask(ours)
    _, later = offline(backbone, rows)
    in_prefix = anchored_before(later, length)
    assert not bool(((ours.x - later.x[in_prefix]).abs() > ATOL)[final].any()), "a final node changed"

    _, prefix64 = offline(backbone.double(), rows[:length].double())
    _, later64 = offline(backbone, rows.double())
    changed = (prefix64.x - later64.x[in_prefix]).abs().amax(dim=1) > 1e-12
    assert not bool(changed[final].any())
    if pool != "max":
        assert bool(changed[~final].all())
    assert int((~final).sum()) == sum(n - f for n, f in zip(engine.node_counts, engine.final_counts))


def test_recompute_mode_equals_offline_until_the_horizon_fills() -> None:
    backbone = random_backbone(5, seed=2)
    rows = torch.randn(60, INPUT_SIZE, generator=torch.Generator().manual_seed(2))
    engine = StreamEngine(backbone, StreamConfig(horizon_s=60 * 16 / 30, engine_mode="recompute"))
    for size in push_sizes(60, 4, seed=1):
        engine.push(rows[engine.num_rows:engine.num_rows + size])
        final_x, expected = offline(backbone, rows[:engine.num_rows])
        assert_graphs_match(engine.graphs(0), expected)
        torch.testing.assert_close(engine.top_features(0)[0], final_x, atol=ATOL, rtol=0)


def test_node_updates_per_push_do_not_grow_with_the_stream() -> None:
    depth = 4
    backbone = random_backbone(depth, seed=4)
    engine = StreamEngine(backbone, StreamConfig(horizon_s=40.0))
    updates = [engine.push(row).node_updates for row in torch.randn(600, INPUT_SIZE)]
    # After ~12 * 2**3 rows every level has its full frontier; from then on the pattern of push costs repeats with
    # period 2**depth rows whatever the stream length.
    assert updates[200:328] == updates[472:600]
    lag_nodes = [n - f for n, f in zip(engine.node_counts, engine.final_counts)]
    assert max(lag_nodes) <= 14
    assert max(updates) <= depth * (1 + 14 + 2 * 3)  # per level: new node, non-final nodes, the 2R halo


REFERENCE_CASES = backbone_cases()


@pytest.mark.skipif(not REFERENCE_CASES, reason="no reference cases found")
@pytest.mark.parametrize("name,case", REFERENCE_CASES, ids=[name for name, _ in REFERENCE_CASES])
def test_stream_reference(name: str, case: dict) -> None:
    """Streaming each on-grid video of a reference batch row by row ends on the authors' recorded level graphs."""
    root = reference_dir()
    backbone = reference_backbone(case).eval()
    fields = torch.load(root / case["inputs_file"], weights_only=True)
    expected = torch.load(root / case["expected_file"], weights_only=True)
    graphs = LevelGraphs(*(expected[f"expected.backbone.graphs.{key}"]
                           for key in ("x", "pos", "video", "depth", "extent", "indices")),
                         num_videos=len(fields["input.ptr"]) - 1)
    streamed = 0
    for video in range(graphs.num_videos):
        rows_of_video = (fields["input.batch"] == video) & fields["input.mask"]
        rows, pos = fields["input.x"][rows_of_video], fields["input.pos"][rows_of_video]
        config = StreamConfig(horizon_s=1e5)
        if len(rows) == 0 or not torch.equal(pos, config.row_positions_s(0, len(rows))):
            continue  # a sample whose nodes are not on the stream's row grid (e.g. LTA's rounded times)
        engine = StreamEngine(backbone, config)
        for row in rows:
            engine.push(row)
        assert_graphs_match(engine.graphs(0), graphs, graphs.video == video)
        streamed += 1
    if streamed == 0:
        pytest.skip(f"{name}: no video of this batch lies on the stream's row grid")
