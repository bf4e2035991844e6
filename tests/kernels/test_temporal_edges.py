"""Temporal radius edges against a brute-force all-pairs radius graph (an independent O(N^2) definition)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from egostream.kernels.temporal_edges import radius_edges, radius_edges_incremental, radius_edges_ptr
from egostream.testing import requires_cuda
from tests.kernels.device_backends import DeviceBackend


def brute_force_sorted(pos: np.ndarray, group: np.ndarray, radius: float, loop: bool) -> np.ndarray:
    """``[2, E]`` every (j, i) of one group with (p_j - p_i)^2 < r^2 in pos's dtype, from the full pair matrix,
    ordered by target then source."""
    diff = pos[None, :] - pos[:, None]  # [i, j] = p_j - p_i
    linked = (diff * diff < pos.dtype.type(radius * radius)) & (group[None, :] == group[:, None])
    if not loop:
        np.fill_diagonal(linked, False)
    target, source = np.nonzero(linked)  # row-major: targets ascending, then sources
    return np.stack([source, target])


def brute_force(pos: torch.Tensor, group: torch.Tensor, radius: float, loop: bool) -> set[tuple[int, int]]:
    """Every (j, i) of the same group with (p_j - p_i)^2 < r^2 in pos's dtype, from all pairs, as a set."""
    return {tuple(pair) for pair in brute_force_sorted(pos.numpy(), group.numpy(), radius, loop).T.tolist()}


def as_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    pairs = {tuple(pair) for pair in edge_index.t().tolist()}
    assert len(pairs) == edge_index.shape[1], "duplicate edges"
    return pairs


def random_case(generator: torch.Generator, num_videos: int, max_len: int, *, duplicates: bool, shuffle: bool):
    lengths = torch.randint(0, max_len + 1, (num_videos,), generator=generator)
    pos, video = [], []
    for b, n in enumerate(lengths.tolist()):
        if duplicates:
            p = torch.randint(0, 8, (n,), generator=generator).float() * 0.5
        else:
            p = torch.rand(n, generator=generator) * 10
        p = p if shuffle else p.sort().values
        pos.append(p)
        video.append(torch.full((n,), b, dtype=torch.long))
    return torch.cat(pos), torch.cat(video)


@pytest.mark.parametrize("seed", range(40))
def test_matches_brute_force_on_random_batches(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    pos, video = random_case(generator, num_videos=1 + seed % 4, max_len=12, duplicates=seed % 3 == 0,
                             shuffle=seed % 2 == 1)
    radius = [0.5, 1.0, 2.0, 3.3][seed % 4]
    for loop in (False, True):
        edges = radius_edges(pos, video, radius, loop=loop, backend="cpu")
        assert as_set(edges) == brute_force(pos, video, radius, loop)


def small_random_case(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, float, bool]:
    """0-40 nodes of 1-4 videos: times on a coarse grid (ties, exact-radius distances) or continuous, unsorted or
    sorted inside a video, float32 or float64; a radius on or off the grid; with or without self-loops."""
    lengths = rng.integers(0, 11, int(rng.integers(1, 5)))
    dtype = rng.choice([np.float32, np.float64])
    if rng.random() < 0.5:
        pos = rng.integers(0, 12, lengths.sum()) * 0.5
    else:
        pos = rng.random(lengths.sum()) * 8
    video = np.repeat(np.arange(len(lengths)), lengths)
    if rng.random() < 0.5:  # sorted inside each video
        pos = pos[np.lexsort((pos, video))]
    radius = float(rng.choice([0.5, 1.0, 1.5, 1.7, 3.3]))
    return (torch.from_numpy(pos.astype(dtype)), torch.from_numpy(video), radius, bool(rng.random() < 0.5))


@pytest.mark.parametrize("block", range(4))
def test_matches_brute_force_on_thousands_of_small_cases(block: int) -> None:
    for index in range(500):
        pos, video, radius, loop = small_random_case(np.random.default_rng([block, index]))
        edges = radius_edges(pos, video, radius, loop=loop, backend="cpu")
        expected = brute_force_sorted(pos.numpy(), video.numpy(), radius, loop)
        np.testing.assert_array_equal(edges.numpy(), expected, err_msg=f"case ({block}, {index})")


def test_output_is_sorted_by_target_then_source() -> None:
    pos = torch.tensor([3.0, 0.0, 1.0, 2.5, 0.2])
    edges = radius_edges(pos, torch.zeros(5, dtype=torch.long), 1.5)
    key = edges[1] * 5 + edges[0]
    assert torch.equal(key, key.sort().values)


def test_hierarchy_level0_spacing_gives_three_neighbours_each_side() -> None:
    pos = (0.5 + torch.arange(20, dtype=torch.float32)) * 16 / 30
    edges = radius_edges(pos, torch.zeros(20, dtype=torch.long), 2.0)
    in_degree = torch.bincount(edges[1], minlength=20)
    assert in_degree[10].item() == 6 and in_degree[0].item() == 3
    assert (edges[0] - edges[1]).abs().max().item() == 3


def test_strict_radius_excludes_exact_distance() -> None:
    pos = torch.tensor([0.0, 1.0, 2.0])
    assert as_set(radius_edges(pos, torch.zeros(3, dtype=torch.long), 1.0)) == set()
    assert as_set(radius_edges(pos, torch.zeros(3, dtype=torch.long), 1.0, loop=True)) == {(0, 0), (1, 1), (2, 2)}


def test_degenerate_inputs() -> None:
    empty = radius_edges(torch.empty(0), torch.empty(0, dtype=torch.long), 2.0)
    assert empty.shape == (2, 0)
    single = radius_edges(torch.tensor([1.0]), torch.tensor([0]), 2.0)
    assert single.shape == (2, 0)
    assert as_set(radius_edges(torch.tensor([1.0]), torch.tensor([0]), 2.0, loop=True)) == {(0, 0)}
    # Two videos at identical times are never joined.
    assert as_set(radius_edges(torch.tensor([1.0, 1.0]), torch.tensor([0, 1]), 2.0)) == set()


def test_rejects_unsorted_videos_and_bad_radius() -> None:
    with pytest.raises(ValueError, match="sorted"):
        radius_edges(torch.tensor([0.0, 1.0]), torch.tensor([1, 0]), 2.0)
    with pytest.raises(ValueError, match="radius"):
        radius_edges(torch.tensor([0.0, 1.0]), torch.tensor([0, 0]), 0.0)


def test_ptr_groups_unsorted_positions_like_torch_cluster() -> None:
    # The LTA head passes batch=arange(B).repeat(K); torch_cluster's bucketize turns it into ptr [0, 46, 53, 60]
    # for B=3, K=20 (fixture README 9.6). Positions inside each chunk are not sorted.
    pos = torch.arange(20, dtype=torch.float32).repeat(3)
    ptr = torch.tensor([0, 46, 53, 60])
    group = torch.repeat_interleave(torch.arange(3), ptr[1:] - ptr[:-1])
    edges = radius_edges_ptr(pos, ptr, 2.5)
    assert as_set(edges) == brute_force(pos, group, 2.5, loop=False)


@pytest.mark.parametrize("seed", range(20))
def test_incremental_equals_full_difference(seed: int) -> None:
    generator = torch.Generator().manual_seed(100 + seed)
    n_old, n_new = torch.randint(0, 10, (2,), generator=generator).tolist()
    n_new = max(n_new, 1)
    steps = torch.randint(0, 3, (n_old + n_new,), generator=generator).float() * 0.4  # includes ties
    pos = torch.cumsum(steps, 0)
    radius = [0.5, 1.3, 2.0][seed % 3]
    for loop in (False, True):
        full = as_set(radius_edges(pos, torch.zeros(len(pos), dtype=torch.long), radius, loop=loop))
        old = as_set(radius_edges(pos[:n_old], torch.zeros(n_old, dtype=torch.long), radius, loop=loop))
        added = radius_edges_incremental(pos[:n_old], pos[n_old:], radius, loop=loop)
        assert as_set(added) == full - old


def test_incremental_rejects_out_of_order_push() -> None:
    with pytest.raises(ValueError, match="sorted"):
        radius_edges_incremental(torch.tensor([0.0, 5.0]), torch.tensor([1.0]), 2.0)


@pytest.mark.parametrize("seed", range(10))
def test_device_path_equals_cpu_path(seed: int, device_backend: DeviceBackend) -> None:
    generator = torch.Generator().manual_seed(200 + seed)
    pos, video = random_case(generator, num_videos=5, max_len=300, duplicates=seed % 2 == 0, shuffle=seed % 3 == 0)
    radius = 1.5 if seed % 2 == 0 else 1.7  # 1.5: exact distances on the duplicates' 0.5 grid
    for dtype in (torch.float32, torch.float64):
        for loop in (False, True):
            cpu = radius_edges(pos.to(dtype), video, radius, loop=loop, backend="cpu")
            on_device = radius_edges(pos.to(dtype).to(device_backend.device), video.to(device_backend.device),
                                     radius, loop=loop, backend=device_backend.name)
            assert on_device.device.type == device_backend.device.type
            assert torch.equal(cpu, on_device.cpu())


def test_device_path_equals_cpu_path_on_thousands_of_small_cases(device_backend: DeviceBackend) -> None:
    device = device_backend.device
    for index in range(1000):
        rng = np.random.default_rng([7, index])
        pos, video, radius, loop = small_random_case(rng)
        expected = radius_edges(pos, video, radius, loop=loop, backend="cpu")
        got = radius_edges(pos.to(device), video.to(device), radius, loop=loop, backend=device_backend.name)
        assert torch.equal(got.cpu(), expected), f"case {index}"
        ordered = pos.sort().values
        split = int(rng.integers(0, len(ordered) + 1))
        expected = radius_edges_incremental(ordered[:split], ordered[split:], radius, loop=loop, backend="cpu")
        got = radius_edges_incremental(ordered[:split].to(device), ordered[split:].to(device), radius, loop=loop,
                                       backend=device_backend.name)
        assert torch.equal(got.cpu(), expected), f"incremental case {index}"


@pytest.mark.parametrize("seed", range(10))
def test_incremental_device_path_equals_cpu_path(seed: int, device_backend: DeviceBackend) -> None:
    generator = torch.Generator().manual_seed(300 + seed)
    steps = torch.randint(0, 3, (400,), generator=generator).to(torch.float64) * 0.5  # ties and exact distances
    pos = torch.cumsum(steps, 0)
    for num_old, num_new in ((0, 5), (0, 0), (7, 0), (150, 1), (250, 150), (399, 1)):
        for dtype in (torch.float32, torch.float64):
            buffer_pos, new_pos = pos[:num_old].to(dtype), pos[num_old:num_old + num_new].to(dtype)
            for loop in (False, True):
                cpu = radius_edges_incremental(buffer_pos, new_pos, 1.5, loop=loop, backend="cpu")
                on_device = radius_edges_incremental(buffer_pos.to(device_backend.device),
                                                     new_pos.to(device_backend.device), 1.5, loop=loop,
                                                     backend=device_backend.name)
                assert torch.equal(cpu, on_device.cpu())


@requires_cuda
def test_forced_cupy_on_cpu_tensors_runs_on_the_gpu_and_returns_cpu_tensors() -> None:
    pos, video = random_case(torch.Generator().manual_seed(7), num_videos=3, max_len=50, duplicates=True,
                             shuffle=True)
    edges = radius_edges(pos, video, 1.5, backend="cupy")
    assert edges.device.type == "cpu" and torch.equal(edges, radius_edges(pos, video, 1.5, backend="cpu"))
    added = radius_edges_incremental(pos[:10].sort().values, pos[10:20].sort().values + 10.0, 1.5, backend="cupy")
    assert added.device.type == "cpu"
    assert torch.equal(added, radius_edges_incremental(pos[:10].sort().values, pos[10:20].sort().values + 10.0, 1.5,
                                                       backend="cpu"))
