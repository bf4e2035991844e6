"""StackedLinear and PackedSequential: equal to the layers they stack (to float32 rounding), each output row
independent of the rows batched with it (oneDNN path), the packed weight rebuilt when a parameter changes, never
pickled into a stream snapshot, and the plain-linear path where oneDNN is not used."""
from __future__ import annotations

import gc

import pytest
import torch
from torch import nn

from egostream.kernels import stacked_linear
from egostream.kernels.stacked_linear import WITH_ONEDNN_LINEAR, PackedSequential, StackedLinear
from egostream.stream.snapshot import dumps_state, loads_state, shared_modules

requires_onednn = pytest.mark.skipif(not WITH_ONEDNN_LINEAR, reason="this PyTorch build has no oneDNN linear")


def _layers(seed: int = 0) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
    torch.manual_seed(seed)
    return nn.Linear(48, 40), nn.Linear(48, 24, bias=False), nn.Linear(48, 8)


def _assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.parametrize("rows", [0, 1, 2, 7, 16, 33])
def test_outputs_equal_each_layer(rows: int) -> None:
    layers = _layers()
    x = torch.randn(rows, 48)
    outputs = StackedLinear(layers)(x)
    assert [tuple(out.shape) for out in outputs] == [(rows, 40), (rows, 24), (rows, 8)]
    with torch.no_grad():
        for out, layer in zip(outputs, layers):
            if rows:
                _assert_close(out, layer(x))


@requires_onednn
def test_rows_do_not_depend_on_their_batch() -> None:
    """A row's output is bit-identical whether it is computed alone or in any batch (the engine's restore and the
    LTA readout's repeated rows rely on it)."""
    x = torch.randn(64, 48)
    stacked = StackedLinear(_layers())
    full = torch.cat(stacked(x), dim=1)
    for rows in range(1, 65):
        assert torch.equal(torch.cat(stacked(x[:rows]), dim=1), full[:rows]), rows
    assert torch.equal(torch.cat(stacked(x[20:23]), dim=1), full[20:23])


def test_in_place_parameter_change_repacks() -> None:
    layers = _layers()
    stacked = StackedLinear(layers)
    x = torch.randn(5, 48)
    before = stacked(x)[0].clone()
    with torch.no_grad():
        layers[0].weight.mul_(2.0)
        layers[0].bias.zero_()
        expected = layers[0](x)
    after = stacked(x)[0]
    _assert_close(after, expected)
    assert not torch.allclose(after, before)


def test_replaced_parameter_repacks() -> None:
    layers = _layers()
    stacked = StackedLinear(layers)
    x = torch.randn(3, 48)
    stacked(x)
    layers[1].weight = nn.Parameter(torch.randn(24, 48))
    with torch.no_grad():
        _assert_close(stacked(x)[1], layers[1](x))


def test_plain_linear_path_equals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where oneDNN is not used (no oneDNN build, a CUDA tensor), the stacked weight goes through F.linear."""
    monkeypatch.setattr(stacked_linear, "WITH_ONEDNN_LINEAR", False)
    layers = _layers()
    x = torch.randn(9, 48)
    with torch.no_grad():
        for out, layer in zip(StackedLinear(layers)(x), layers):
            _assert_close(out, layer(x))


def test_layers_must_share_their_input_width() -> None:
    with pytest.raises(ValueError, match="in_features"):
        StackedLinear([nn.Linear(4, 2), nn.Linear(5, 2)])
    with pytest.raises(ValueError, match="in_features"):
        StackedLinear([])


def test_snapshot_refers_to_the_layers_and_leaves_the_packed_weight_out() -> None:
    model = nn.Sequential(*_layers())
    stacked = StackedLinear(list(model))
    x = torch.randn(4, 48)
    expected = stacked(x)  # packs the weight
    shared = shared_modules("model", model)
    data = dumps_state(stacked, shared)
    assert len(data) < 2_000  # references and widths only: the weights are 3 x 48 x 72 floats = 41 kB
    restored = loads_state(data, shared)
    assert restored.linears[0] is model[0]
    for out, again in zip(expected, restored(x)):
        assert torch.equal(out, again)


def test_packed_sequential_equals_the_sequential() -> None:
    torch.manual_seed(1)
    neck = nn.Sequential(nn.Dropout(0.5), nn.Linear(32, 48), nn.LayerNorm(48), nn.ReLU(), nn.Linear(48, 16)).eval()
    x = torch.randn(11, 32)
    with torch.no_grad():
        _assert_close(PackedSequential(neck)(x), neck(x))


def test_stacks_of_the_same_layers_share_one_packed_weight_that_goes_with_the_model() -> None:
    """Every stream of a model builds its own StackedLinear handles; the packed copy of the weights is one."""
    layers = _layers()
    first, second = StackedLinear(layers), StackedLinear(layers)
    assert first._weights()[0] is second._weights()[0]
    assert StackedLinear(layers[:2])._weights()[0] is not first._weights()[0]
    assert layers[0] in stacked_linear._PACKED
    count = len(stacked_linear._PACKED)
    del layers, first, second
    gc.collect()
    assert len(stacked_linear._PACKED) == count - 1


def test_packing_one_stack_after_another_leaves_the_first_intact() -> None:
    """Every stack is packed through one shared scratch buffer: each packed weight must be its own copy."""
    first_layers, second_layers = _layers(seed=1), _layers(seed=2)
    x = torch.randn(6, 48)
    first = StackedLinear(first_layers)
    first.prepare()
    StackedLinear(second_layers).prepare()
    with torch.no_grad():
        for out, layer in zip(first(x), first_layers):
            _assert_close(out, layer(x))
