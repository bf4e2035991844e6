"""Temporal radius edges: every ordered pair of nodes of the same video closer than a radius on a 1-D time axis.

This replaces ``torch_geometric.nn.radius_graph`` for the hierarchy's level graphs (PyG >= 2.7 routes that call to
pyg-lib, which is not available here, and torch_cluster's KD-tree is not needed in one dimension).

Semantics (torch_cluster 1.6.3 ``radius``/``radius_graph``, CPU nanoflann and CUDA, as called by
sapeirone/hier-egopack@4fff4e5:models/graph_hier.py):

* an edge ``j -> i`` exists when ``(p_j - p_i) ** 2 < radius ** 2``, evaluated in the dtype of ``pos`` (torch_cluster
  compares squared distances; ``radius ** 2`` is rounded to that dtype once). This is the strict test
  ``|p_j - p_i| < radius`` except in the last ulp, where the squared form is what the authors' code computes;
* ``edge_index[0]`` is the source ``j``, ``edge_index[1]`` the target ``i``;
* ``loop=False`` removes the pairs ``i == j`` (by node index: two nodes at the same time are still joined);
* videos are given by a sorted ``video`` vector (or directly by row offsets ``ptr``); nodes of different videos are
  never joined. Positions need not be sorted inside a video.

Deviation: torch_cluster keeps at most ``max_num_neighbors=32`` sources per target (in KD-tree order). The
hierarchy's graphs have 6 neighbours per node, so the cap is never reached there; here no cap is applied.

Cost: ``O(N log N)`` for the window search plus ``O(E)`` for the edges, with ``E`` the number of candidate pairs;
no dense ``N x N`` matrix is ever built. The output is sorted by target, then source.
"""
from __future__ import annotations

import torch
from torch import Tensor

from egostream.kernels._dispatch import Backend, use_cupy
from egostream.kernels._layout import segment_of_rows

__all__ = ["radius_edges", "radius_edges_ptr", "radius_edges_incremental"]


# Relative widening of the searchsorted window before the exact squared-distance test; it only has to exceed the
# float32 rounding of ``p_j - p_i`` and of ``radius ** 2`` (a few 1e-8).
_WINDOW_SLACK = 1e-5


def _search_reach(radius: float) -> float:
    """Half-width of the candidate window of a search: the radius widened by ``_WINDOW_SLACK``."""
    return abs(radius) * (1.0 + _WINDOW_SLACK) + _WINDOW_SLACK


def _within_radius(pos_src: Tensor, pos_dst: Tensor, radius: float) -> Tensor:
    """The exact edge test ``(p_j - p_i)^2 < r^2`` in the dtype of the positions (torch_cluster's test)."""
    diff = pos_src - pos_dst
    return diff * diff < torch.tensor(radius * radius, dtype=diff.dtype, device=diff.device)


def _expand_windows(lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """All pairs ``(q, k)`` with ``lo[q] <= k < hi[q]``, as two flat index vectors (no padding)."""
    counts = (hi - lo).clamp_min(0)
    query = torch.repeat_interleave(torch.arange(len(lo), device=lo.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    offset = torch.arange(len(query), device=lo.device) - torch.repeat_interleave(starts, counts)
    return query, lo[query] + offset


def _candidate_windows(keys: Tensor, ptr: Tensor, key_segment: Tensor, queries: Tensor, query_segment: Tensor,
                       radius: float) -> tuple[Tensor, Tensor]:
    """For each query, the row range ``[lo, hi)`` of ``keys`` that may lie within ``radius`` in its segment.

    ``keys`` is sorted inside each segment ``[ptr[s], ptr[s+1])``. To search all segments at once, every segment is
    shifted (in float64) onto its own stretch of one increasing axis, separated by more than the radius; the window
    is widened by ``_WINDOW_SLACK`` and later filtered with the exact test, so rounding here cannot lose an edge.
    """
    num_segments = len(ptr) - 1
    keys64 = keys.double()
    nonempty = ptr[1:] > ptr[:-1]
    first = torch.zeros(num_segments, dtype=torch.float64, device=keys.device)
    last = torch.zeros(num_segments, dtype=torch.float64, device=keys.device)
    first[nonempty] = keys64[ptr[:-1][nonempty]]
    last[nonempty] = keys64[ptr[1:][nonempty] - 1]
    gap = 4.0 * abs(radius) + 1.0
    span = (last - first) + gap
    base = torch.cumsum(span, 0) - span - first  # segment s maps p -> p + base[s]
    axis = keys64 + base[key_segment]
    shifted = queries.double() + base[query_segment]
    reach = _search_reach(radius)
    lo = torch.searchsorted(axis, shifted - reach, side="left")
    hi = torch.searchsorted(axis, shifted + reach, side="right")
    lo = torch.maximum(lo, ptr[query_segment])
    hi = torch.minimum(hi, ptr[query_segment + 1])
    return lo, hi


def _sort_within_segments(pos: Tensor, segment: Tensor) -> Tensor | None:
    """A permutation that sorts ``pos`` inside each (contiguous) segment, or ``None`` if it is already sorted."""
    same = segment[1:] == segment[:-1]
    if not bool((pos[1:][same] < pos[:-1][same]).any()):
        return None
    order = torch.argsort(pos, stable=True)
    return order[torch.argsort(segment[order], stable=True)]


def _radius_edges_torch(pos: Tensor, ptr: Tensor, radius: float, loop: bool) -> Tensor:
    segment = segment_of_rows(ptr, len(pos))
    order = _sort_within_segments(pos, segment)
    sorted_pos = pos if order is None else pos[order]
    lo, hi = _candidate_windows(sorted_pos, ptr, segment, sorted_pos, segment, radius)
    target, source = _expand_windows(lo, hi)
    keep = _within_radius(sorted_pos[source], sorted_pos[target], radius)
    if not loop:
        keep &= source != target
    source, target = source[keep], target[keep]
    if order is not None:
        source, target = order[source], order[target]
        rank = torch.argsort(target * len(pos) + source)
        source, target = source[rank], target[rank]
    return torch.stack([source, target])


def _check_inputs(pos: Tensor, radius: float) -> None:
    if pos.dim() != 1:
        raise ValueError(f"pos must be a 1-D tensor of times, got shape {tuple(pos.shape)}")
    if not pos.is_floating_point():
        raise ValueError(f"pos must be a floating-point tensor, got {pos.dtype}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}")


def radius_edges_ptr(pos: Tensor, ptr: Tensor, radius: float, *, loop: bool = False,
                     backend: Backend = "auto") -> Tensor:
    """Radius edges inside the row ranges ``[ptr[s], ptr[s+1])``.

    This is the form torch_cluster works in internally (it turns ``batch`` into ``ptr``); it lets a caller
    reproduce a grouping that is not a sorted video vector (e.g. the LTA head's ``bucketize`` quirk, fixture README
    §9.6) by passing the offsets that torch_cluster would compute.

    Args:
        pos: ``[N]`` float node times (any unit; the radius is in the same unit).
        ptr: ``[S + 1]`` int64 non-decreasing row offsets with ``ptr[0] == 0`` and ``ptr[-1] == N``.
        radius: strict radius, same unit as ``pos``.
        loop: keep the pairs ``i -> i``.
        backend: ``"cpu"`` (the torch path, on the tensor's own device), ``"cupy"`` (CUDA), or ``"auto"`` (CuPy for
            CUDA tensors when available); see :func:`egostream.kernels._dispatch.use_cupy`.

    Returns:
        ``[2, E]`` int64 ``edge_index`` (row 0 source ``j``, row 1 target ``i``), sorted by target then source.
    """
    _check_inputs(pos, radius)
    ptr = ptr.to(device=pos.device, dtype=torch.long)
    if ptr.dim() != 1 or len(ptr) < 1 or int(ptr[0]) != 0 or int(ptr[-1]) != len(pos) or bool(
            (ptr[1:] < ptr[:-1]).any()):
        raise ValueError(f"ptr must be non-decreasing offsets from 0 to {len(pos)}, got {ptr.tolist()}")
    if len(pos) == 0:
        return torch.empty(2, 0, dtype=torch.long, device=pos.device)
    if use_cupy(backend, pos):
        from egostream.kernels._temporal_edges_cupy import radius_edges_cupy

        segment = segment_of_rows(ptr, len(pos))
        order = _sort_within_segments(pos, segment)
        if order is None:
            return radius_edges_cupy(pos, ptr, radius, loop)
        edges = order[radius_edges_cupy(pos[order], ptr, radius, loop)]
        rank = torch.argsort(edges[1] * len(pos) + edges[0])
        return edges[:, rank]
    return _radius_edges_torch(pos, ptr, radius, loop)


def radius_edges(pos: Tensor, video: Tensor, radius: float, *, loop: bool = False,
                 backend: Backend = "auto") -> Tensor:
    """Radius edges between the nodes of the same video (``radius_graph(pos, radius, video, loop)``).

    Args:
        pos: ``[N]`` float node times in seconds (or any unit shared with ``radius``).
        video: ``[N]`` int64 video id of each node, sorted (videos contiguous, ids increasing).
        radius: strict radius, same unit as ``pos``.
        loop: keep the pairs ``i -> i``.
        backend: see :func:`radius_edges_ptr`.

    Returns:
        ``[2, E]`` int64 ``edge_index`` with ``edge_index[0]`` the source ``j`` and ``edge_index[1]`` the target
        ``i``, for every ``i != j`` (or all, with ``loop``) of one video with ``(p_j - p_i)^2 < radius^2``; sorted
        by target then source.
    """
    if video.shape != pos.shape:
        raise ValueError(f"video must have the shape of pos {tuple(pos.shape)}, got {tuple(video.shape)}")
    video = video.to(pos.device)
    if len(video) > 1 and bool((video[1:] < video[:-1]).any()):
        raise ValueError("video must be sorted (the nodes of each video contiguous, ids increasing)")
    change = torch.nonzero(video[1:] != video[:-1]).flatten() + 1
    bounds = torch.tensor([0, len(video)], dtype=torch.long, device=pos.device)
    ptr = torch.cat([bounds[:1], change, bounds[1:]]) if len(video) else bounds[:1]
    return radius_edges_ptr(pos, ptr, radius, loop=loop, backend=backend)


def radius_edges_incremental(buffer_pos: Tensor, new_pos: Tensor, radius: float, *, loop: bool = False,
                             backend: Backend = "auto") -> Tensor:
    """The edges that appending ``new_pos`` to one video's node buffer adds, in both directions.

    Node numbering is that of the concatenation ``[buffer_pos; new_pos]``: buffer node ``b`` is ``b``, new node
    ``k`` is ``len(buffer_pos) + k``. The result equals ``radius_edges(cat, same video, ...)`` minus
    ``radius_edges(buffer_pos, ...)`` as a set: every edge with at least one new endpoint (``j -> new`` for any
    ``j``, and ``new -> b`` for buffer nodes ``b``). Work is ``O((M + E_new) log N)`` for ``M`` new nodes, so a
    streaming push does not grow with the buffer length.

    Args:
        buffer_pos: ``[N]`` float times of the nodes already in the level, sorted (a stream appends in time order).
        new_pos: ``[M]`` float times of the appended nodes, sorted.
        radius: strict radius, same unit as the positions.
        loop: add ``new -> new`` self-loops.
        backend: see :func:`radius_edges_ptr`. The CuPy path runs the kernels of the full graph on the targets from
            the first buffer node that can reach a new node, keeping only the edges with a new endpoint.

    Returns:
        ``[2, E_new]`` int64 ``edge_index`` (source, target), sorted by target then source.
    """
    _check_inputs(new_pos, radius)
    if buffer_pos.dim() != 1 or buffer_pos.dtype != new_pos.dtype:
        raise ValueError("buffer_pos must be a 1-D tensor with the dtype of new_pos")
    all_pos = torch.cat([buffer_pos, new_pos.to(buffer_pos.device)])
    if len(all_pos) > 1 and bool((all_pos[1:] < all_pos[:-1]).any()):
        raise ValueError("buffer_pos and new_pos must be sorted and new_pos must not start before the buffer ends")
    num_old, num_all = len(buffer_pos), len(all_pos)
    device = all_pos.device
    ptr = torch.tensor([0, num_all], dtype=torch.long, device=device)
    if use_cupy(backend, all_pos):
        from egostream.kernels._temporal_edges_cupy import radius_edges_cupy

        first_target = num_all
        if len(new_pos):
            first_new = all_pos[num_old:num_old + 1].double()
            first_target = int(torch.searchsorted(all_pos.double(), first_new - _search_reach(radius)))
        return radius_edges_cupy(all_pos, ptr, radius, loop, first_target=first_target, num_old=num_old)
    key_segment = torch.zeros(num_all, dtype=torch.long, device=device)
    query_segment = torch.zeros(len(new_pos), dtype=torch.long, device=device)
    lo, hi = _candidate_windows(all_pos, ptr, key_segment, all_pos[num_old:], query_segment, radius)
    query, other = _expand_windows(lo, hi)
    new = query + num_old
    keep = _within_radius(all_pos[other], all_pos[new], radius)
    if not loop:
        keep &= other != new
    new, other = new[keep], other[keep]
    into_new = torch.stack([other, new])
    from_new = torch.stack([new, other])[:, other < num_old]
    edges = torch.cat([into_new, from_new], dim=1)
    rank = torch.argsort(edges[1] * num_all + edges[0])
    return edges[:, rank]
