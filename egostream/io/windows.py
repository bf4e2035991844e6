"""Cutting canonical frames into the windows of the Ego4D feature grid.

Window t holds canonical frames [t * stride, t * stride + W) (stride 16; W = 16 for EgoVLP-style encoders, 32 for
Omnivore-style ones), so window t is row t of the Ego4D feature file of the same video. At the end of a stream whose
length is not on the grid, the last window is *backpadded*: it holds the last W frames [N - W, N) and gets the next
index, as the Ego4D extraction does (pytorchvideo ``UniformClipSampler(backpad_last=True)``; EGO4D/docs@2d5b4c4:
docs/data/features.md, "a video has 39 frames: [0, 31], [7, 38]"). A stream shorter than W frames gives one window
whose tail repeats its last frame. Windows overlapping missing canonical frames (see :mod:`egostream.io.clock`)
are not emitted.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from egostream.ego4d.features import FeatureSpec
from egostream.io.clock import CANONICAL_FPS
from egostream.io.frames import FrameWindow

__all__ = ["WindowSpec", "EGOVLP_WINDOWS", "OMNIVORE_WINDOWS", "Windower", "expected_window_count"]


@dataclass(frozen=True)
class WindowSpec:
    """``window_frames`` canonical frames per window, a new window every ``stride_frames`` frames at ``fps``."""

    window_frames: int = 16
    stride_frames: int = 16
    fps: float = CANONICAL_FPS
    backpad_last: bool = True

    def __post_init__(self) -> None:
        if self.window_frames < 1 or self.stride_frames < 1 or self.fps <= 0:
            raise ValueError(f"invalid window spec {self}")

    @classmethod
    def from_feature_spec(cls, spec: FeatureSpec, backpad_last: bool = True) -> WindowSpec:
        """The windows behind a feature set's rows (e.g. ``OMNIVORE_VIDEO_SWINL``: W = 32, stride 16, 30 fps)."""
        return cls(spec.window_frames, spec.stride_frames, spec.fps, backpad_last)


EGOVLP_WINDOWS = WindowSpec(window_frames=16, stride_frames=16)
OMNIVORE_WINDOWS = WindowSpec(window_frames=32, stride_frames=16)


def expected_window_count(num_frames: int, spec: WindowSpec) -> int:
    """Windows (feature rows) of a gap-free stream of ``num_frames`` canonical frames."""
    if not spec.backpad_last:
        return max(0, (num_frames - spec.window_frames) // spec.stride_frames + 1) if num_frames > 0 else 0
    if num_frames <= 0:
        return 0
    return max(0, math.ceil((num_frames - spec.window_frames) / spec.stride_frames)) + 1


class Windower:
    """Turns ``(canonical index, image)`` pairs, in increasing index order, into :class:`FrameWindow` s."""

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self._buffer: deque[tuple[int, np.ndarray]] = deque(maxlen=spec.window_frames)
        self._emitted_end = 0  # canonical frame index just past the last emitted window
        self._seen_gap = False

    def push(self, frame_index: int, image: np.ndarray) -> FrameWindow | None:
        """Add one canonical frame; returns the window it completes, if any."""
        if self._buffer and frame_index != self._buffer[-1][0] + 1:
            self._buffer.clear()
            self._seen_gap = True
        self._buffer.append((frame_index, image))
        start = frame_index - self.spec.window_frames + 1
        if len(self._buffer) < self.spec.window_frames or start % self.spec.stride_frames:
            return None
        return self._emit(start // self.spec.stride_frames, start, backpadded=False)

    def finish(self) -> FrameWindow | None:
        """End of stream: the backpadded last window, when the grid does not reach the last frame."""
        if not self._buffer or not self.spec.backpad_last:
            return None
        end = self._buffer[-1][0] + 1
        if end <= self._emitted_end:
            return None
        if len(self._buffer) == self.spec.window_frames:
            index = math.ceil((end - self.spec.window_frames) / self.spec.stride_frames)
            return self._emit(index, end - self.spec.window_frames, backpadded=True)
        if self._seen_gap or self._buffer[0][0] != 0:
            return None
        while len(self._buffer) < self.spec.window_frames:  # a stream shorter than one window
            self._buffer.append((self._buffer[-1][0] + 1, self._buffer[-1][1]))
        return self._emit(0, 0, backpadded=True)

    def _emit(self, index: int, start_frame: int, backpadded: bool) -> FrameWindow:
        frames = np.stack([image for _, image in self._buffer])
        self._emitted_end = start_frame + self.spec.window_frames
        return FrameWindow(index=index, start_frame=start_frame, frames=frames, fps=self.spec.fps,
                           backpadded=backpadded)
