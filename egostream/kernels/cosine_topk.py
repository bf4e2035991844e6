"""Top-k cosine similarity of query rows against a frozen prototype matrix that is normalised once.

This is the neighbour search of EgoPack's interaction (sapeirone/hier-egopack@4fff4e5:models/egopack/egopack.py,
``EgoPack._compute_edges`` with ``cos_dissimilarity``): rows are normalised as ``x / x.norm(dim=1, keepdim=True)``
(no epsilon), similarities are ``torch.mm(queries_n, prototypes_n.T)``, and the authors sort the *distance*
``1 - similarity`` in ascending order and keep the first ``k``. Here:

* the normalisation and the product are the same torch operations, so on the CPU path the similarities are
  bit-identical to the authors' ``torch.mm`` output (for the same query batch);
* results are sorted by decreasing similarity; **ties are resolved by the lowest prototype index** (the authors'
  ``argsort`` is unstable, so their order among equal distances is unspecified). Since ``1 - s`` is monotone in
  float32, the selected distances ``1 - similarities`` equal the authors' ``k`` smallest distances exactly and the
  neighbour sets and top-1 agree wherever the authors' own order is determined (no tie at the ``k``-th place);
* **zero rows**: the authors' division gives NaN for a zero-norm row. Here a zero-norm row (query or prototype)
  normalises to the zero vector, so it has similarity 0 with everything; a zero query therefore returns similarity 0
  for the prototypes ``0..k-1`` (lowest indices, by the tie rule). Inputs must be finite.

To rebuild the authors' edge weights from this kernel use ``relu(1 - (1 - similarity))``, which is what they compute
(``(1 - distances).relu()``) and differs from ``relu(similarity)`` in the last float32 bits.

One product (``torch.mm``, on the prototypes' device), two selections: torch (CPU, or a CUDA tensor without CuPy) and
CuPy (raw selection kernels for ``k <= 32``: one thread block per query, or per 1,024-column part of a longer row plus
a merge; a full sort of composite keys above).
"""
from __future__ import annotations

import torch
from torch import Tensor

from egostream.errors import InputError
from egostream.kernels._dispatch import Backend, use_cupy

__all__ = ["PrototypeIndex", "cosine_topk", "normalize_rows"]


def normalize_rows(x: Tensor) -> Tensor:
    """``x / ||x||`` per row, exactly as EgoPack's ``g / g.norm(dim=1, keepdim=True)``; zero rows stay zero.

    Args:
        x: ``[N, D]`` float rows.
    Returns:
        ``[N, D]`` rows of norm 1 (or 0 for zero rows), in the dtype of ``x``.
    """
    norm = x.norm(dim=1, keepdim=True)
    return torch.where(norm > 0, x / norm, torch.zeros_like(x))


def topk_lowest_index(similarities: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Row-wise top-``k`` of ``[Q, P]`` values, decreasing, ties by lowest column: ``([Q, k] values, [Q, k] int64)``."""
    num_queries = similarities.shape[0]
    if k == 0 or num_queries == 0:
        return similarities[:, :k], torch.zeros((num_queries, k), dtype=torch.long, device=similarities.device)
    kth = similarities.topk(k, dim=1).values[:, -1:]
    candidates = similarities >= kth  # the top k plus any tie at the k-th value
    counts = candidates.sum(dim=1)
    row, column = torch.nonzero(candidates, as_tuple=True)  # row-major: columns ascending inside a row
    width = int(counts.max())
    slot = torch.arange(len(row), device=row.device) - (torch.cumsum(counts, 0) - counts)[row]
    padded_values = similarities.new_full((num_queries, width), float("-inf"))
    padded_columns = torch.zeros((num_queries, width), dtype=torch.long, device=row.device)
    padded_values[row, slot] = similarities[row, column]
    padded_columns[row, slot] = column
    order = torch.sort(padded_values, dim=1, descending=True, stable=True).indices[:, :k]
    return padded_values.gather(1, order), padded_columns.gather(1, order)


def cosine_topk(queries: Tensor, normalized_prototypes: Tensor, k: int, *,
                backend: Backend = "auto") -> tuple[Tensor, Tensor]:
    """Top-``k`` prototypes of each query by cosine similarity.

    Args:
        queries: ``[Q, D]`` query rows (any norm; normalised here).
        normalized_prototypes: ``[P, D]`` rows already passed through :func:`normalize_rows`.
        k: number of neighbours, ``0 <= k <= P``.
        backend: ``"auto"``, ``"cpu"`` (torch, on the tensors' device) or ``"cupy"``.

    Returns:
        ``(similarities [Q, k] float32, indices [Q, k] int64)``, by decreasing similarity, ties by lowest index,
        on the device of ``normalized_prototypes``.
    """
    if queries.ndim != 2 or normalized_prototypes.ndim != 2 or queries.shape[1] != normalized_prototypes.shape[1]:
        raise InputError(None, "queries", f"expected [Q, D] queries against [P, D] prototypes, got "
                                          f"{list(queries.shape)} and {list(normalized_prototypes.shape)}")
    if not 0 <= k <= normalized_prototypes.shape[0]:
        raise InputError(None, "k", f"must be in [0, {normalized_prototypes.shape[0]}] (the number of prototypes), "
                                    f"got {k}")
    prototypes = normalized_prototypes.float()
    normalized_queries = normalize_rows(queries.detach().float().to(prototypes.device))
    similarities = torch.mm(normalized_queries, prototypes.T)
    if use_cupy(backend, prototypes):
        from egostream.kernels._cosine_topk_cupy import topk_lowest_index_cupy

        return topk_lowest_index_cupy(similarities, k)
    return topk_lowest_index(similarities, k)


class PrototypeIndex:
    """A frozen ``[P, D]`` prototype matrix, normalised once, answering top-``k`` cosine queries.

    Example::

        index = PrototypeIndex(prototypes)          # [P, D]
        similarities, indices = index.topk(x, 8)   # [Q, 8] each
    """

    def __init__(self, prototypes: Tensor) -> None:
        if prototypes.ndim != 2:
            raise InputError(None, "prototypes", f"expected shape [P, D], got {list(prototypes.shape)}")
        self.normalized: Tensor = normalize_rows(prototypes.detach().float())

    @property
    def num_prototypes(self) -> int:
        return self.normalized.shape[0]

    @property
    def dim(self) -> int:
        return self.normalized.shape[1]

    def to(self, device: torch.device | str) -> PrototypeIndex:
        """Move the normalised matrix to ``device`` (no renormalisation)."""
        self.normalized = self.normalized.to(device)
        return self

    def topk(self, queries: Tensor, k: int, *, backend: Backend = "auto") -> tuple[Tensor, Tensor]:
        """``(similarities [Q, k] float32, indices [Q, k] int64)``; see :func:`cosine_topk`."""
        return cosine_topk(queries, self.normalized, k, backend=backend)
