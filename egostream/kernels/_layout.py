"""Data layouts the host and device paths of the kernels share (so a ``_*_cupy`` module never imports the public
module that dispatches to it).

* :class:`GroupPicks`: what a greedy NMS kernel returns over ``G`` groups (:mod:`egostream.kernels.nms`).
* :func:`segment_of_rows`: the segment (video) id of every row from row offsets ``ptr``
  (:mod:`egostream.kernels.temporal_edges`).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["GroupPicks", "segment_of_rows"]


class GroupPicks(NamedTuple):
    """Raw output of a greedy NMS kernel over ``G`` independent groups (classes), ``L`` = largest group size.

    Attributes:
        rows: ``[G, L]`` int64 input row of each pick, in pick order; entries past ``counts[g]`` are undefined.
        scores: ``[G, L]`` float32 score of each pick at the time it was picked.
        counts: ``[G]`` int64 number of picks of each group.
    """

    rows: Tensor
    scores: Tensor
    counts: Tensor


def segment_of_rows(ptr: Tensor, num_rows: int) -> Tensor:
    """``[num_rows]`` int64 segment id of every row, from the ``[S + 1]`` offsets ``ptr``."""
    return torch.repeat_interleave(torch.arange(len(ptr) - 1, device=ptr.device), ptr[1:] - ptr[:-1],
                                   output_size=num_rows)
