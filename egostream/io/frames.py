"""The two values that flow out of a video source: decoded frames with their time, and windows of canonical frames."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TimedFrame", "FrameWindow"]


@dataclass(frozen=True)
class TimedFrame:
    """One decoded frame: ``image`` is RGB uint8 [H, W, 3]; ``time_s`` is its presentation time in seconds on the
    source's own clock (any origin; the canonical clock measures from the first frame). ``discontinuity`` marks the
    first frame after a break in the stream (a network reconnect): the previous frame is not held across it."""

    image: np.ndarray
    time_s: float
    discontinuity: bool = False


@dataclass(frozen=True)
class FrameWindow:
    """``frames`` (RGB uint8 [W, H, W_px, 3]) are canonical frames [start_frame, start_frame + W) of the stream.

    ``index`` is the absolute window index: window t starts at canonical frame ``t * stride`` (the row index of the
    Ego4D feature file), except a *backpadded* last window, which ends at the stream's last frame instead (see
    :mod:`egostream.io.windows`). ``fps`` is the canonical frame rate, so the window spans
    [``start_s``, ``end_s``) seconds from the stream start.
    """

    index: int
    start_frame: int
    frames: np.ndarray
    fps: float
    backpadded: bool = False

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def start_s(self) -> float:
        """Seconds from the stream start to the window's first frame."""
        return self.start_frame / self.fps

    @property
    def end_s(self) -> float:
        """Seconds from the stream start to the end of the window's last frame (exclusive)."""
        return (self.start_frame + self.num_frames) / self.fps
