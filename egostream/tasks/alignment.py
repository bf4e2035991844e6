"""Segment alignment: the mean of the level-0 node features that fall inside each ground-truth segment.

Reproduces ``align`` of sapeirone/hier-egopack@4fff4e5:models/tasks/ego4d/ar.py and ``OSCCTask.align`` of
models/tasks/ego4d/oscc.py: node ``i`` belongs to segment ``m`` when it is of the same video and
``start_m <= pos_i <= end_m`` (both ends inclusive). Segments may overlap and may start before the first node.
"""
from __future__ import annotations

from torch import Tensor

__all__ = ["segment_mean"]


def segment_mean(features: Tensor, pos: Tensor, video: Tensor, segments: Tensor, segment_video: Tensor, *,
                 clamp_empty: bool) -> Tensor:
    """Mean of the node features inside each segment.

    Args:
        features: ``[N, F]`` level-0 node features.
        pos: ``[N]`` node times in seconds.
        video: ``[N]`` video id of each node.
        segments: ``[M, 2]`` (start, end) in seconds, on the same origin as ``pos``.
        segment_video: ``[M]`` video id of each segment.
        clamp_empty: ``True`` gives a zero vector for a segment without nodes (AR: the count is clamped to 1);
            ``False`` divides by zero and gives NaN (OSCC, which does not clamp).

    Returns:
        ``[M, F]`` aligned features.
    """
    member = (segment_video[:, None] == video[None, :]) \
        & (segments[:, :1] <= pos[None, :]) & (segments[:, 1:] >= pos[None, :])
    count = member.sum(1)
    if clamp_empty:
        count = count.clamp(min=1)
    # A masked product and sum (not a matmul) keeps the summation order of the authors' code.
    return (member[:, :, None] * features[None]).sum(1) / count[:, None]
