"""TDGC message passing: the compiled CPU path is bit-identical to the PyTorch path (random graphs, every weight
shape, with and without bias, mean and sum), the PyTorch path is a hand-computed mean, and the dispatch keeps
autograd, other dtypes and the max aggregation on the PyTorch path."""
from __future__ import annotations

import pytest
import torch

from egostream import optional
from egostream.backbone.tdgc import DistanceGatedConv
import egostream.kernels.gated_messages as kernel
from egostream.kernels.gated_messages import gated_messages

requires_numba = pytest.mark.skipif(not optional.WITH_NUMBA, reason="needs Numba")


def _case(seed: int) -> dict[str, object]:
    generator = torch.Generator().manual_seed(seed)
    nodes = int(torch.randint(1, 40, (1,), generator=generator))
    width = (768, 37, 1)[seed % 3]
    num_edges = int(torch.randint(0, 5 * nodes, (1,), generator=generator))
    weight_width = (width, 1, None)[seed % 4 % 3]
    return dict(
        rel=torch.randn(nodes, width, generator=generator), root=torch.randn(nodes, width, generator=generator),
        edge_index=torch.randint(0, nodes, (2, num_edges), generator=generator),
        weight=None if weight_width is None else torch.randn(num_edges, weight_width, generator=generator),
        bias=torch.randn(1, width, generator=generator) if seed % 5 else None,
        aggregation=("mean", "sum")[seed % 7 % 2])


def _torch_path(monkeypatch: pytest.MonkeyPatch, case: dict[str, object]) -> torch.Tensor:
    with monkeypatch.context() as patch:
        patch.setattr(kernel, "CPU_KERNEL", "torch")
        return gated_messages(**case)  # type: ignore[arg-type]


@requires_numba
@pytest.mark.parametrize("seed", range(300))
def test_compiled_path_is_bit_identical_to_the_torch_path(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    case = _case(seed)
    assert kernel._compiled_applies(case["rel"], case["root"], case["weight"], case["bias"],  # type: ignore[arg-type]
                                    case["aggregation"])  # type: ignore[arg-type]
    assert torch.equal(gated_messages(**case), _torch_path(monkeypatch, case))  # type: ignore[arg-type]


@requires_numba
def test_non_contiguous_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    case = _case(1)
    wide = torch.randn(len(case["rel"]), 2 * case["rel"].shape[1])  # type: ignore[union-attr]
    case["rel"] = wide[:, ::2]
    case["edge_index"] = torch.flip(case["edge_index"], dims=(0,))  # type: ignore[arg-type]
    assert torch.equal(gated_messages(**case), _torch_path(monkeypatch, case))  # type: ignore[arg-type]


@pytest.mark.parametrize("compiled", ["compiled", "torch"])
def test_hand_computed_mean(compiled: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if compiled == "compiled" and not optional.WITH_NUMBA:
        pytest.skip("needs Numba")
    monkeypatch.setattr(kernel, "CPU_KERNEL", compiled)
    rel = torch.tensor([[1.0, -2.0], [3.0, 4.0], [-5.0, 0.5]])
    root = torch.tensor([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]])
    edges = torch.tensor([[1, 2, 0], [0, 0, 1]])  # 1 -> 0, 2 -> 0, 0 -> 1; node 2 has no incoming edge
    weight = torch.tensor([[2.0, 1.0], [1.0, -1.0], [0.5, 0.5]])
    bias = torch.tensor([[1.0, 1.0]])
    out = gated_messages(rel, root, edges, weight, bias, "mean")
    # node 0: mean(lrelu([3, 4]) * [2, 1], lrelu([-5, 0.5]) * [1, -1]) = mean([6, 4], [-1, -0.5]) = [2.5, 1.75]
    # node 1: lrelu([1, -2]) * [0.5, 0.5] = [0.5, -0.2]; node 2: no messages
    expected = torch.tensor([[2.5 + 10 + 1, 1.75 + 20 + 1], [0.5 + 30 + 1, -0.2 + 40 + 1], [51.0, 61.0]])
    torch.testing.assert_close(out, expected)


def test_autograd_float64_and_max_take_the_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    case = _case(2)
    rel = case["rel"].clone().requires_grad_(True)  # type: ignore[union-attr]
    assert not kernel._compiled_applies(rel, case["root"], None, None, "mean")  # type: ignore[arg-type]
    with torch.no_grad():
        assert kernel._compiled_applies(rel, case["root"], None, None, "mean") == optional.WITH_NUMBA  # type: ignore
    assert not kernel._compiled_applies(case["rel"].double(), case["root"].double(), None, None,  # type: ignore
                                        "mean")
    assert not kernel._compiled_applies(case["rel"], case["root"], None, None, "max")  # type: ignore[arg-type]
    conv = DistanceGatedConv(8, 8)
    x = torch.randn(5, 8, requires_grad=True)
    edges = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    conv(x, edges, torch.arange(5.0)).sum().backward()
    assert x.grad is not None and conv.lin_rel.weight.grad is not None


def test_the_layer_gives_the_same_output_with_and_without_autograd() -> None:
    """Training (autograd, PyTorch path) and inference (compiled path) compute the same layer output."""
    torch.manual_seed(0)
    conv = DistanceGatedConv(16, 16)
    x, pos = torch.randn(30, 16), torch.arange(30.0) * 0.5
    edges = torch.stack(torch.meshgrid(torch.arange(30), torch.arange(30), indexing="ij")).reshape(2, -1)
    edges = edges[:, ((edges[0] - edges[1]).abs() <= 3) & (edges[0] != edges[1])]
    with torch.no_grad():
        inference = conv(x, edges, pos)
    assert torch.equal(conv(x, edges, pos).detach(), inference)
