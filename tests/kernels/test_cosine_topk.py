"""Cosine top-k: brute force (normalise, matmul, full sort), EgoPack's distance formula, zero rows, CuPy path."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from egostream.errors import InputError
from egostream.kernels import _cosine_topk_cupy
from egostream.kernels.cosine_topk import PrototypeIndex, cosine_topk, normalize_rows, topk_lowest_index
from egostream.testing import requires_cuda
from tests.kernels.device_backends import DeviceBackend


def _lexsort_topk(similarities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row by a full sort on (-value, column): the brute-force definition of the tie rule."""
    columns = np.arange(similarities.shape[1])
    order = np.zeros((len(similarities), k), dtype=np.int64)
    for row, values in enumerate(similarities):
        order[row] = np.lexsort((columns, -values))[:k]
    return np.take_along_axis(similarities, order, 1), order


def _brute_force(queries: torch.Tensor, prototypes: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 cosine similarities, sorted by (-similarity, index) with a full lexsort."""
    q = queries.double() / queries.double().norm(dim=1, keepdim=True)
    p = prototypes.double() / prototypes.double().norm(dim=1, keepdim=True)
    return _lexsort_topk((q @ p.T).numpy(), k)


def _random_rows(rng: np.random.Generator, n: int, dim: int) -> torch.Tensor:
    return torch.from_numpy(rng.standard_normal((n, dim)).astype(np.float32))


@pytest.mark.parametrize("seed", range(30))
def test_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    num_prototypes = int(rng.integers(1, 300))
    num_queries = int(rng.integers(0, 40))
    dim = int(rng.choice([1, 3, 16, 64]))
    k = int(rng.choice([1, min(8, num_prototypes), num_prototypes, int(rng.integers(0, num_prototypes + 1))]))
    prototypes, queries = _random_rows(rng, num_prototypes, dim), _random_rows(rng, num_queries, dim)

    similarities, indices = PrototypeIndex(prototypes).topk(queries, k, backend="cpu")
    expected_sims, expected_indices = _brute_force(queries, prototypes, k)

    assert similarities.shape == indices.shape == (num_queries, k)
    assert similarities.dtype == torch.float32 and indices.dtype == torch.int64
    if dim > 1:  # in one dimension every similarity is exactly +-1: order decided by ties, checked below
        np.testing.assert_array_equal(indices.numpy(), expected_indices)
    np.testing.assert_allclose(similarities.numpy(), expected_sims, rtol=0, atol=1e-5)


def small_random_case(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(queries [Q, D], prototypes [P, D], k)``: 0-5 queries, 1-60 prototypes of 1-8 dimensions on a small integer
    grid (duplicates, zero rows and exact ties), any k from 0 to P."""
    dim, num_prototypes = int(rng.integers(1, 9)), int(rng.integers(1, 61))
    prototypes = rng.integers(-2, 3, (num_prototypes, dim)).astype(np.float32)
    queries = rng.integers(-2, 3, (int(rng.integers(0, 6)), dim)).astype(np.float32)
    return torch.from_numpy(queries), torch.from_numpy(prototypes), int(rng.integers(0, num_prototypes + 1))


@pytest.mark.parametrize("block", range(4))
def test_matches_the_brute_force_on_thousands_of_small_cases(block: int) -> None:
    for index in range(500):
        queries, prototypes, k = small_random_case(np.random.default_rng([block, index]))
        similarities, indices = cosine_topk(queries, normalize_rows(prototypes), k, backend="cpu")
        brute = torch.mm(normalize_rows(queries), normalize_rows(prototypes).T).numpy()  # normalise, matmul ...
        expected_values, expected_indices = _lexsort_topk(brute, k)  # ... and a full sort
        np.testing.assert_array_equal(indices.numpy(), expected_indices, err_msg=f"case ({block}, {index})")
        np.testing.assert_array_equal(similarities.numpy(), expected_values, err_msg=f"case ({block}, {index})")


def test_duplicates_and_ties_take_the_lowest_index() -> None:
    prototypes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 3.0]])
    queries = torch.tensor([[5.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    similarities, indices = PrototypeIndex(prototypes).topk(queries, 6, backend="cpu")
    assert indices.tolist() == [[0, 2, 3, 1, 5, 4], [1, 5, 0, 2, 3, 4], [0, 1, 2, 3, 5, 4]]
    np.testing.assert_allclose(similarities[0].numpy(), [1, 1, 1, 0, 0, -1], atol=1e-7)
    _, top3 = PrototypeIndex(prototypes).topk(queries[:1], 3, backend="cpu")
    assert top3.tolist() == [[0, 2, 3]]


def test_zero_rows_have_similarity_zero() -> None:
    prototypes = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    queries = torch.tensor([[0.0, 0.0], [-2.0, 0.0]])
    similarities, indices = PrototypeIndex(prototypes).topk(queries, 3, backend="cpu")
    assert indices.tolist() == [[0, 1, 2], [2, 0, 3]]
    assert similarities.tolist() == [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    assert torch.isfinite(similarities).all()
    assert normalize_rows(prototypes)[0].tolist() == [0.0, 0.0]


def test_selected_distances_are_egopacks_smallest_distances() -> None:
    # EgoPack: distances = 1 - mm(g1 / |g1|, g2 / |g2|), sorted ascending, first k (models/egopack/egopack.py).
    rng = np.random.default_rng(7)
    prototypes, queries = _random_rows(rng, 500, 256), _random_rows(rng, 64, 256)
    k = 8
    g1 = queries / queries.norm(dim=1, keepdim=True)
    g2 = prototypes / prototypes.norm(dim=1, keepdim=True)
    distances = 1 - torch.mm(g1, g2.T)
    egopack_distances, egopack_matches = distances.sort(dim=-1).values[:, :k], distances.argsort(dim=-1)[:, :k]

    similarities, indices = PrototypeIndex(prototypes).topk(queries, k, backend="cpu")

    assert torch.equal(1 - similarities, egopack_distances)
    assert torch.equal(indices[:, 0], egopack_matches[:, 0])
    assert torch.equal(torch.sort(indices, dim=1).values, torch.sort(egopack_matches, dim=1).values)


def test_empty_queries_and_bad_k() -> None:
    index = PrototypeIndex(torch.ones(1, 4))
    similarities, indices = index.topk(torch.zeros(0, 4), 1, backend="cpu")
    assert similarities.shape == (0, 1) and indices.shape == (0, 1)
    assert index.topk(torch.ones(2, 4), 1, backend="cpu")[1].tolist() == [[0], [0]]
    with pytest.raises(InputError, match="k"):
        index.topk(torch.ones(2, 4), 2)
    with pytest.raises(InputError, match="queries"):
        index.topk(torch.ones(2, 3), 1)


def test_topk_lowest_index_against_lexsort() -> None:
    rng = np.random.default_rng(3)
    values = torch.from_numpy(np.round(rng.standard_normal((50, 40)), 1).astype(np.float32))
    for k in (1, 5, 40):
        top_values, top_indices = topk_lowest_index(values, k)
        expected_values, expected_indices = _lexsort_topk(values.numpy(), k)
        np.testing.assert_array_equal(top_indices.numpy(), expected_indices)
        np.testing.assert_array_equal(top_values.numpy(), expected_values)


def test_device_selection_matches_cpu_exactly(device_backend: DeviceBackend) -> None:
    rng = np.random.default_rng(11)
    for _ in range(60 if device_backend.emulated else 300):
        rows, columns = int(rng.integers(1, 20)), int(rng.integers(1, 3000))
        values = rng.standard_normal((rows, columns)).astype(np.float32)
        if rng.random() < 0.5:
            values = np.round(values, 1).astype(np.float32)  # many ties
        values[:, rng.integers(0, columns, columns // 4)] = -0.0
        k = int(rng.choice([1, min(8, columns), min(32, columns), min(33, columns), columns]))
        cpu_values, cpu_indices = topk_lowest_index(torch.from_numpy(values), k)
        device_values, device_indices = _cosine_topk_cupy.topk_lowest_index_cupy(
            torch.from_numpy(values).to(device_backend.device), k)
        assert torch.equal(device_indices.cpu(), cpu_indices)
        assert torch.equal(device_values.cpu(), cpu_values)


def test_device_path_equals_cpu_path_on_thousands_of_small_cases(device_backend: DeviceBackend) -> None:
    for index in range(1000):
        queries, prototypes, k = small_random_case(np.random.default_rng([9, index]))
        index_ = PrototypeIndex(prototypes)
        expected = index_.topk(queries, k, backend="cpu")
        got = index_.to(device_backend.device).topk(queries.to(device_backend.device), k, backend=device_backend.name)
        assert torch.equal(got[1].cpu(), expected[1]) and torch.equal(got[0].cpu(), expected[0]), f"case {index}"


def test_device_path_equals_torch_on_the_same_device(device_backend: DeviceBackend) -> None:
    rng = np.random.default_rng(12)
    for _ in range(40 if device_backend.emulated else 200):
        num_prototypes, dim = int(rng.integers(1, 5000)), int(rng.choice([8, 256, 768]))
        queries = _random_rows(rng, int(rng.integers(0, 300)), dim).to(device_backend.device)
        index = PrototypeIndex(_random_rows(rng, num_prototypes, dim)).to(device_backend.device)
        k = int(rng.choice([1, min(8, num_prototypes), min(64, num_prototypes)]))
        torch_sims, torch_indices = index.topk(queries, k, backend="cpu")  # torch on the tensors' device
        sims, indices = index.topk(queries, k, backend=device_backend.name)
        assert sims.device.type == indices.device.type == device_backend.device.type
        assert torch.equal(indices, torch_indices)  # the same product, so the same similarities to select from
        assert torch.equal(sims, torch_sims)


def test_device_path_accepts_tensors_that_require_grad(device_backend: DeviceBackend) -> None:
    prototypes = normalize_rows(torch.randn(50, 16, generator=torch.Generator().manual_seed(0)))
    prototypes = prototypes.to(device_backend.device).requires_grad_()
    queries = torch.randn(4, 16, generator=torch.Generator().manual_seed(1)).to(device_backend.device)
    expected = cosine_topk(queries, prototypes, 5, backend="cpu")
    got = cosine_topk(queries, prototypes, 5, backend=device_backend.name)
    assert torch.equal(got[1], expected[1]) and torch.equal(got[0], expected[0].detach())


@requires_cuda
def test_forced_cupy_on_cpu_tensors_runs_on_the_gpu_and_returns_cpu_tensors() -> None:
    rng = np.random.default_rng(13)
    index = PrototypeIndex(_random_rows(rng, 3000, 64))
    queries = _random_rows(rng, 5, 64)
    sims, indices = index.topk(queries, 8, backend="cupy")
    expected_sims, expected_indices = index.topk(queries, 8, backend="cpu")
    assert sims.device.type == indices.device.type == "cpu"
    assert torch.equal(indices, expected_indices) and torch.equal(sims, expected_sims)
