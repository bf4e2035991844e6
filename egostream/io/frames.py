"""The two values that flow out of a video source: decoded frames with their time, and windows of canonical frames."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TimedFrame", "FrameWindow"]


@dataclass(frozen=True)
class TimedFrame:
    """One decoded frame: ``image`` is RGB uint8 [H, W, 3]; ``time_s`` is its presentation time in seconds on the
    source's own clock (any origin; the canonical clock measures from the first frame). A decoder gives the raw
    time, NaN when the frame has none; a :class:`~egostream.io.sources.VideoSource` replaces it by the stream time
    of :mod:`egostream.io.timeline`, which always increases. ``discontinuity`` marks the first frame after a break
    in the stream (a timestamp jump or wrap, a network reconnect): the previous frame is not held across it.
    ``decode_errors`` marks a frame the decoder flagged corrupt, or the first frame after packets or frames it
    skipped. ``arrival_s`` is the UNIX time the frame came out of the decoder (None when not recorded)."""

    image: np.ndarray
    time_s: float
    discontinuity: bool = False
    decode_errors: bool = False
    arrival_s: float | None = None


@dataclass(frozen=True)
class FrameWindow:
    """``frames`` (RGB uint8 [W, H, W_px, 3]) are canonical frames [start_frame, start_frame + W) of the stream.

    ``index`` is the absolute window index: window t starts at canonical frame ``t * stride`` (the row index of the
    Ego4D feature file), except a *backpadded* last window, which ends at the stream's last frame instead (see
    :mod:`egostream.io.windows`). ``fps`` is the canonical frame rate, so the window spans
    [``start_s``, ``end_s``) seconds from the stream start.

    ``discontinuity`` / ``decode_errors``: a timestamp discontinuity, or frames the decoder skipped or flagged
    corrupt, fall inside the window (see :class:`TimedFrame`). ``source_counts`` are the source's cumulative
    counters (:meth:`~egostream.io.sources.VideoSource.counts` and the clock's) when the window was cut; empty
    when nobody filled them in. ``arrival_s`` is the UNIX time the source frame shown in the window's last
    canonical frame came out of the decoder (the start of glass-to-answer latency; None when not recorded).
    """

    index: int
    start_frame: int
    frames: np.ndarray
    fps: float
    backpadded: bool = False
    discontinuity: bool = False
    decode_errors: bool = False
    source_counts: Mapping[str, int] = field(default_factory=dict, compare=False)
    arrival_s: float | None = None

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
