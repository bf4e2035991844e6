"""The streaming engine's table of TDGC distance gates (egostream.stream.edge_gates)."""
from __future__ import annotations

import pickle

import pytest
import torch

from egostream.backbone.tdgc import DistanceGatedConv
from egostream.stream.config import row_positions_s
from egostream.stream.edge_gates import EdgeGates


def _convs(signed: bool = True, distance_gate: bool = True) -> list[DistanceGatedConv]:
    torch.manual_seed(0)
    return [DistanceGatedConv(8, 8, pos_hidden_channels=16, signed=signed, distance_gate=distance_gate).eval()
            for _ in range(2)]


def _window(first_row: int, count: int, reach: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of ``count`` grid rows from ``first_row`` and every edge joining rows at most ``reach`` apart."""
    pos = row_positions_s(first_row, count, 16, 30.0)
    target, source = torch.meshgrid(torch.arange(count), torch.arange(count), indexing="ij")
    near = ((target - source).abs() <= reach) & (target != source)
    return pos, torch.stack([source[near], target[near]])


@pytest.mark.parametrize(("signed", "distance_gate"), [(True, True), (False, True), (True, False)])
def test_the_factors_equal_the_layers_own(signed: bool, distance_gate: bool) -> None:
    convs, gates = _convs(signed, distance_gate), EdgeGates()
    for first_row in (0, 5_000, 900_000):  # far from the start, float32 positions round the grid's lengths
        pos, edges = _window(first_row, 20)
        for conv, weight in zip(convs, gates.weights(convs, edges, pos)):
            expected = conv.edge_weights(edges, pos)
            assert (weight is None) == (expected is None)
            if expected is not None:
                torch.testing.assert_close(weight, expected, atol=1e-6, rtol=0)


def test_each_length_is_gated_once() -> None:
    convs, gates = _convs(), EdgeGates()
    calls = []
    for conv in convs:
        conv.lin_pos.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    pos, edges = _window(100, 20)
    gates.weights(convs, edges, pos)
    lengths = len(torch.unique((pos[edges[0]] - pos[edges[1]]).abs()))
    assert len(gates) == lengths and calls == [1] * (2 * lengths)  # one row per length and layer
    gates.weights(convs, edges, pos)  # the same window again: nothing new to gate
    assert len(calls) == 2 * lengths


def test_the_table_stays_bounded() -> None:
    convs, gates, sizes = _convs(), EdgeGates(max_lengths=8), []
    for first_row in range(0, 4_000_000, 97_003):  # new float32 rounding variants of the lengths as rows grow
        pos, edges = _window(first_row, 12)
        weights = gates.weights(convs, edges, pos)
        sizes.append(len(gates))
        torch.testing.assert_close(weights[0], convs[0].edge_weights(edges, pos), atol=1e-6, rtol=0)
    assert max(sizes) >= 8  # the stream met more lengths than the bound ...
    assert max(sizes) <= 8 + 2 * 3  # ... and the table held at most the bound plus one window's new lengths
    assert any(later < earlier for earlier, later in zip(sizes, sizes[1:]))  # it started over


def test_a_pickled_table_is_rebuilt_with_the_same_values() -> None:
    convs, gates = _convs(), EdgeGates()
    pos, edges = _window(321, 20)
    before = gates.weights(convs, edges, pos)
    restored = pickle.loads(pickle.dumps(gates))
    assert len(restored) == 0  # a snapshot carries no table
    for old, new in zip(before, restored.weights(convs, edges, pos)):
        assert old is not None and new is not None and torch.equal(old, new)
