"""Between-level pooling: the compiled even-row path is bit-identical to the reference (neighbour pooling, then the
even rows) for every mode, run length and parity, and equals the hand-computed mean."""
from __future__ import annotations

import pytest
import torch

import egostream.kernels.neighbour_pool as kernel
from egostream import optional
from egostream.kernels.neighbour_pool import neighbour_pool, pool_even_rows

requires_numba = pytest.mark.skipif(not optional.WITH_NUMBA, reason="needs Numba")


def _reference(x: torch.Tensor, first_index: int, mode: str) -> torch.Tensor:
    indices = torch.arange(first_index, first_index + len(x))
    return neighbour_pool(x, torch.zeros_like(indices), indices, mode)[indices % 2 == 0]  # type: ignore[arg-type]


@requires_numba
@pytest.mark.parametrize("mode", ["mean", "max", "video_subsampling"])
@pytest.mark.parametrize("first_index", [0, 1, 6, 13])
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 17, 18])
def test_compiled_rows_are_bit_identical_to_the_reference(mode: str, first_index: int, rows: int) -> None:
    x = torch.randn(rows, 33, generator=torch.Generator().manual_seed(rows * 100 + first_index))
    x[0, 0] = float("nan")  # NaN propagates alike through the sums and the maxima
    assert torch.equal(pool_even_rows(x, first_index, mode).nan_to_num(7.0),  # type: ignore[arg-type]
                       _reference(x, first_index, mode).nan_to_num(7.0))


def test_hand_computed_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.tensor([[1.0], [2.0], [4.0], [8.0], [16.0]])
    # rows 1 and 3 have even absolute indices 2 and 4: (1 + 2*2 + 4) / 4 and (4 + 2*8 + 16) / 4
    for path in ("compiled", "torch") if optional.WITH_NUMBA else ("torch",):
        monkeypatch.setattr(kernel, "CPU_KERNEL", path)
        assert pool_even_rows(x, 1, "mean")[:, 0].tolist() == [2.25, 9.0]
        # from index 0: row 0 has no left neighbour, row 4 no right one
        assert pool_even_rows(x, 0, "mean")[:, 0].tolist() == pytest.approx([(2 + 2) / 3, (2 + 8 + 8) / 4,
                                                                             (8 + 32) / 3], rel=1e-7)


def test_autograd_takes_the_torch_path() -> None:
    x = torch.randn(6, 4, requires_grad=True)
    pool_even_rows(x, 0, "mean").sum().backward()
    assert x.grad is not None
