"""Horizon eviction: memory stays bounded and the retained nodes keep their full-prefix offline values."""
from __future__ import annotations

import pytest
import torch

from egostream.errors import InputError
from egostream.stream import StreamConfig, StreamEngine, load_stream_config
from egostream.stream.row_buffer import RowBuffer
from tests.stream.streams import (INPUT_SIZE, anchored_at_or_after, assert_graphs_match, offline, push_sizes,
                                  random_backbone, single_threaded_torch)

__all__ = ["single_threaded_torch"]  # the autouse fixture, imported to apply here

HORIZON_ROWS = 40


def _engine(depth: int, seed: int) -> StreamEngine:
    return StreamEngine(random_backbone(depth, seed=seed), StreamConfig(horizon_s=HORIZON_ROWS * 16 / 30))


@pytest.mark.parametrize("depth", [2, 5])
def test_retained_nodes_keep_their_full_prefix_values(depth: int) -> None:
    engine = _engine(depth, seed=depth)
    rows = torch.randn(403, INPUT_SIZE, generator=torch.Generator().manual_seed(depth))
    for size in push_sizes(len(rows), 7, seed=depth):
        engine.push(rows[engine.num_rows:engine.num_rows + size])
        if engine.num_pushes % 11 == 0 or engine.num_rows == len(rows):
            first_row = max(0, engine.num_rows - HORIZON_ROWS)
            assert engine.horizon_first_row == first_row
            final_x, expected = offline(engine.backbone, rows[:engine.num_rows])
            assert_graphs_match(engine.graphs(), expected, anchored_at_or_after(expected, first_row))
            top_x, _, top_indices = engine.top_features()
            torch.testing.assert_close(top_x, final_x[top_indices], atol=1e-5, rtol=0)


def test_memory_stays_flat_after_the_horizon() -> None:
    engine = _engine(4, seed=1)
    levels = engine._state.levels

    def footprint() -> list[tuple[int, int, int]]:
        return [(level.num_nodes - level.first, level.num_edges, level.inputs.capacity) for level in levels]

    stream = torch.randn(1280, INPUT_SIZE)  # footprints compared at the same phase modulo 2**depth rows
    for row in stream[:640]:
        engine.push(row)
    after_640 = footprint()
    for row in stream[640:]:
        engine.push(row)
    assert footprint() == after_640
    assert levels[0].first == 1280 - HORIZON_ROWS  # level 0 keeps exactly the horizon
    # A deep level keeps the nodes its non-final frontier still reads, even before the horizon.
    assert all(level.num_nodes - level.first <= max(HORIZON_ROWS // 2 ** level.level + 1, 14 + 2 * 3 + 1)
               for level in levels)


def test_rows_before_the_horizon_are_refused() -> None:
    engine = _engine(2, seed=0)
    with pytest.raises(ValueError, match="no rows"):
        engine.graphs()
    engine.push(torch.randn(100, INPUT_SIZE))
    with pytest.raises(ValueError, match="before the horizon"):
        engine.graphs(59)
    assert int(engine.graphs(60).indices[0]) == 60


def test_bad_rows_are_input_errors() -> None:
    engine = _engine(2, seed=0)
    with pytest.raises(InputError, match="rows"):
        engine.push(torch.randn(3, INPUT_SIZE + 1))
    with pytest.raises(InputError, match="NaN"):
        engine.push(torch.full((2, INPUT_SIZE), float("nan")))
    with pytest.raises(ValueError, match="eval"):
        StreamEngine(random_backbone(1, seed=0).train())


def test_row_buffer_rewrites_its_tail_and_forgets_its_front() -> None:
    buffer = RowBuffer((2,), torch.float32, capacity=4)
    values = torch.arange(200.0).reshape(100, 2)
    buffer.append(values[:3])
    buffer.truncate(1)
    buffer.append(values[1:50])
    buffer.drop_front(10)
    assert torch.equal(buffer.rows, values[10:50])
    for start in range(50, 100, 5):  # a sliding window of 40 rows never needs more than 4x its size
        buffer.append(values[start:start + 5])
        buffer.drop_front(5)
    assert torch.equal(buffer.rows, values[60:100])
    assert buffer.capacity <= 4 * 40


def test_default_config_is_eight_minutes_of_rows() -> None:
    config = load_stream_config()
    assert config.horizon_rows == 8 * 60 * 30 // 16 == 900
    assert config.engine_mode == "incremental"
    assert load_stream_config(overrides=["horizon_s=1920"]).horizon_rows == 3600
    with pytest.raises(InputError, match="engine_mode"):
        load_stream_config(overrides=["engine_mode=lazy"])
