"""Feature rows of a sample, node positions and segment times, computed exactly as the authors' datasets do.

Frames are at 30 fps in parent-video coordinates; a sample spanning frames [start_frame, end_frame) takes the
feature rows [start_frame // stride, end_frame // stride) (the row holding ``end_frame`` is excluded, a start before
the video is clamped to row 0, and rows past the end of the feature file are simply absent: tensor slicing), see
sapeirone/hier-egopack@4fff4e5:data/ego4d/AR.py L118-122 (same in LTA.py L187-196, OSCC.py L102-106, MQ.py L162-166).
Times are seconds from the first frame of the first row, ``(start_frame // stride) * stride``: node i sits at
(0.5 + i) * stride / fps and a frame f at (f - start_frame + start_frame mod stride) / fps (AR.py L126-135, L161).
All float math is float32 torch, in the authors' order of operations, so values are bit-identical.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from egostream.ego4d.features import FeatureSpec, FeatureStore

__all__ = ["FeatureWindow", "feature_window", "centred_node_positions_s", "frames_to_sample_seconds"]


@dataclass(frozen=True)
class FeatureWindow:
    """Rows [start_row, end_row) of the features of ``video_uid``; ``grid_offset_frames`` = start_frame mod stride.

    The number of nodes is ``min(end_row, T) - start_row`` for a feature file of T rows (0 when start_row >= T).
    """

    video_uid: str
    start_row: int
    end_row: int
    grid_offset_frames: int

    def read(self, store: FeatureStore) -> torch.Tensor:
        """The [n, D] feature rows of this window (n >= 1: a file ending before ``start_row`` is an InputError)."""
        return store.covering(self.video_uid, self.start_row, self.end_row)[self.start_row:self.end_row]

    def num_nodes(self, total_rows: int) -> int:
        """Nodes of the window in a feature file of ``total_rows`` rows."""
        return max(0, min(self.end_row, total_rows) - self.start_row)


def feature_window(video_uid: str, start_frame: int, end_frame: int, spec: FeatureSpec) -> FeatureWindow:
    """The rows covering frames [start_frame, end_frame) (hier-egopack@4fff4e5:data/ego4d/AR.py L118-121)."""
    start_row = max(0, start_frame // spec.stride_frames)
    end_row = max(start_row, end_frame // spec.stride_frames)
    return FeatureWindow(video_uid, start_row, end_row, start_frame % spec.stride_frames)


def centred_node_positions_s(num_nodes: int, spec: FeatureSpec, decimals: int | None = None) -> torch.Tensor:
    """float32 [n]: node i at (0.5 + i) * stride / fps seconds; LTA rounds to 3 ``decimals`` (LTA.py L218)."""
    positions = (0.5 + torch.arange(num_nodes)) * spec.stride_frames / spec.fps
    return positions if decimals is None else torch.round(positions, decimals=decimals)


def frames_to_sample_seconds(start_frames: Sequence[int], end_frames: Sequence[int], origin_frame: int,
                             grid_offset_frames: int, spec: FeatureSpec) -> torch.Tensor:
    """float32 [M, 2]: (start, end) frames as seconds on the nodes' time axis.

    ``(frame - origin_frame + grid_offset_frames) / fps`` (hier-egopack@4fff4e5:data/ego4d/AR.py L127-135); may be
    negative or past the last node.
    """
    if len(start_frames) == 0:
        return torch.zeros((0, 2))
    start = torch.Tensor(list(start_frames)) - origin_frame
    end = torch.Tensor(list(end_frames)) - origin_frame
    return (torch.stack([start, end], dim=-1) + grid_offset_frames) / spec.fps
