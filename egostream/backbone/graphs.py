"""The node sets that flow from the feature rows through the hierarchy to the task heads.

Two containers, shared by the backbone, the task heads, the backpack and the streaming engine:

* :class:`VideoBatch` holds the level-0 input: the feature rows of one or more videos, concatenated video-major.
* :class:`LevelGraphs` holds the output of every level of the hierarchy, concatenated level-major (all level-0 nodes
  of all videos, then all level-1 nodes, ...), exactly as the authors' ``GraphHier`` returns its ``graphs`` batch
  (sapeirone/hier-egopack@4fff4e5:models/graph_hier.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["VideoBatch", "LevelGraphs"]


@dataclass
class VideoBatch:
    """Feature rows of ``num_videos`` videos, video-major.

    Attributes:
        x: ``[N, D]`` float32 feature rows (one per window of 16 frames).
        pos: ``[N]`` float32 node time in seconds from the sample's first window.
        video: ``[N]`` int64 video id in ``0..num_videos-1``, sorted.
        indices: ``[N]`` int64 row index inside its own video (``0..n_b-1``).
        num_videos: number of videos ``B``.
    """

    x: Tensor
    pos: Tensor
    video: Tensor
    indices: Tensor
    num_videos: int

    @classmethod
    def from_videos(cls, features: list[Tensor], pos: list[Tensor]) -> VideoBatch:
        """Concatenate per-video ``[n_b, D]`` feature rows and ``[n_b]`` positions (seconds)."""
        video = torch.cat([torch.full((len(f),), b, dtype=torch.long) for b, f in enumerate(features)])
        indices = torch.cat([torch.arange(len(f)) for f in features])
        return cls(torch.cat(features), torch.cat(pos).float(), video, indices, len(features))

    @classmethod
    def from_padded(cls, x: Tensor, pos: Tensor, video: Tensor, indices: Tensor, mask: Tensor,
                    num_videos: int | None = None) -> VideoBatch:
        """Keep the real rows (``mask`` true) of a padded collated batch, as the authors' ``GraphHier`` does first.

        ``num_videos`` defaults to ``video.max() + 1`` over all rows (padding included), so a video whose rows are
        all padding still counts.
        """
        if num_videos is None:
            num_videos = int(video.max()) + 1 if len(video) else 0
        return cls(x[mask], pos[mask], video[mask], indices[mask], num_videos)


@dataclass
class LevelGraphs:
    """Node features of every level (after that level's block, before pooling), concatenated level-major.

    Attributes:
        x: ``[N_all, F]`` node features.
        pos: ``[N_all]`` float32 node time in seconds (a pooled node keeps the time of the even node it came from).
        video: ``[N_all]`` int64 video id.
        depth: ``[N_all]`` int64 level ``d`` of each node.
        extent: ``[N_all]`` float32 ``2**d``.
        indices: ``[N_all]`` int64 node index inside its video at its level.
        num_videos: number of videos ``B``.
    """

    x: Tensor
    pos: Tensor
    video: Tensor
    depth: Tensor
    extent: Tensor
    indices: Tensor
    num_videos: int

    @property
    def batch(self) -> Tensor:
        """``[N_all]`` int64 level of each node: the graph id in the authors' ``Batch`` of levels (= ``depth``)."""
        return self.depth

    @property
    def ptr(self) -> Tensor:
        """``[num_levels + 1]`` int64 row offsets of each level (the authors' ``graphs.ptr``)."""
        counts = torch.bincount(self.depth, minlength=self.num_levels)
        return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])

    @property
    def num_levels(self) -> int:
        return int(self.depth.max().item()) + 1 if self.depth.numel() else 0

    def level_mask(self, d: int) -> Tensor:
        """``[N_all]`` bool mask of the nodes at level ``d``."""
        return self.depth == d
