"""Resampling decoded frames onto the canonical 30 fps clock.

Ego4D features are computed on canonical 30 fps videos, so a stream must be put on the same clock before it is cut
into windows. The rule (sample and hold, causal):

* Times are measured from the first frame: a frame stamped ``t`` is at ``r = t - t_first`` seconds.
* Canonical frame ``k`` (at ``k / fps`` seconds) is the **latest source frame whose time is <= k / fps** (with a
  tolerance of 1e-3 frame for timestamp rounding). A 30 fps source therefore maps frame i to slot i unchanged.
* A source frame that is the latest for no slot is dropped (source faster than the clock: a 60 fps video keeps its
  even frames); one that is the latest for several slots is duplicated (slower: a 24 fps video repeats every fourth
  frame, 4 source frames -> 5 canonical frames).
* The last frame lasts ``last_frame_duration_s`` (the decoder's nominal frame period), so a 2 s video gives 60
  canonical frames whatever its rate.
* A frame is held for at most ``max_hold_s`` seconds, and across a ``discontinuity`` (a reconnect) only for one
  source frame period (the last gap between frames): longer gaps leave the slots in between *missing*, and the
  windows touching them are not emitted, so window indices stay aligned with time and no frozen window is invented.
* A frame whose time is not after the previous frame's, or is not finite, is dropped and counted as out of order
  (sources never produce one: :mod:`egostream.io.timeline` repairs their times first).
* Marks: for a ``discontinuity`` or ``decode_errors`` frame, the canonical frames where the previous frame is held
  in its stead (its copies after its own first slot) and the first slot of the frame itself are recorded in
  ``marks``, so the windows holding them can be flagged (:func:`egostream.io.window_stream.iter_windows`).

Each canonical frame shows what is on screen at its time, and never a frame from its future, so a live stream can
settle frame k as soon as a frame later than k / fps arrives. The Ego4D canonical videos are already 30 fps, where
this rule is the identity.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from egostream.io.frames import TimedFrame

__all__ = ["ClockCounters", "CanonicalClock", "ClockMark", "CANONICAL_FPS"]

CANONICAL_FPS = 30.0
_SLOT_TOLERANCE = 1e-3  # in frames: timestamps within 1/1000 of a frame of a slot count as on it


@dataclass
class ClockCounters:
    """What the clock did so far: source frames seen, canonical frames emitted, source frames dropped (never
    shown), extra copies made by duplication, canonical slots left missing in gaps, out-of-order frames dropped."""

    source_frames: int = 0
    canonical_frames: int = 0
    dropped: int = 0
    duplicated: int = 0
    missing: int = 0
    out_of_order: int = 0


@dataclass(frozen=True)
class ClockMark:
    """Canonical frames [``first``, ``stop``) touched by a timestamp ``discontinuity`` and/or ``decode_errors``."""

    first: int
    stop: int
    discontinuity: bool
    decode_errors: bool


class CanonicalClock:
    """Maps :class:`TimedFrame` s to ``(canonical frame index, image)`` pairs; feed frames in decode order.

    ``push`` returns the canonical frames that the new frame closes (those shown by the *previous* frame), so the
    output lags the input by one source frame; ``finish`` flushes the last one. ``released_arrival_s`` is the
    ``arrival_s`` of the source frame the last returned canonical frames show.
    """

    def __init__(self, fps: float = CANONICAL_FPS, max_hold_s: float = 1.0) -> None:
        if fps <= 0 or max_hold_s <= 0:
            raise ValueError("fps and max_hold_s must be positive")
        self.fps = fps
        self.max_hold_s = max_hold_s
        self.counters = ClockCounters()
        self.marks: list[ClockMark] = []
        self._origin_s: float | None = None
        self._held: np.ndarray | None = None
        self._held_arrival_s: float | None = None
        self.released_arrival_s: float | None = None
        self._held_at_s = 0.0
        self._last_gap_s = 1.0 / fps
        self._next_slot = 0

    def _first_slot_at_or_after(self, seconds: float) -> int:
        return math.ceil(seconds * self.fps - _SLOT_TOLERANCE)

    def push(self, frame: TimedFrame) -> list[tuple[int, np.ndarray]]:
        """Add the next decoded frame; returns the canonical frames now settled, in order."""
        self.counters.source_frames += 1
        if self._origin_s is None:
            if not math.isfinite(frame.time_s):
                self.counters.out_of_order += 1
                return []
            self._origin_s = frame.time_s
            self._held, self._held_at_s, self._held_arrival_s = frame.image, 0.0, frame.arrival_s
            return []
        at_s = frame.time_s - self._origin_s
        if not at_s > self._held_at_s:  # earlier, equal, or NaN
            self.counters.out_of_order += 1
            return []
        hold_s = self._last_gap_s if frame.discontinuity else self.max_hold_s
        first_open = self._next_slot
        settled = self._release_held(until_s=at_s, hold_s=hold_s)
        if frame.discontinuity or frame.decode_errors:
            first = min(settled[0][0] + 1 if settled else first_open, self._next_slot)
            self.marks.append(ClockMark(first, self._next_slot + 1, frame.discontinuity, frame.decode_errors))
        if not frame.discontinuity:
            self._last_gap_s = at_s - self._held_at_s
        self._held, self._held_at_s, self._held_arrival_s = frame.image, at_s, frame.arrival_s
        return settled

    def finish(self, last_frame_duration_s: float | None = None) -> list[tuple[int, np.ndarray]]:
        """End of stream: the last frame is shown for ``last_frame_duration_s`` (default one canonical frame)."""
        if self._held is None:
            return []
        duration_s = last_frame_duration_s if last_frame_duration_s and last_frame_duration_s > 0 else 1 / self.fps
        settled = self._release_held(until_s=self._held_at_s + duration_s, hold_s=self.max_hold_s)
        self._held = None
        return settled

    def _release_held(self, until_s: float, hold_s: float) -> list[tuple[int, np.ndarray]]:
        """Emit the held frame for every slot from the next one up to (not including) ``until_s``, for at most
        ``hold_s`` seconds; slots past that are skipped as missing."""
        assert self._held is not None
        self.released_arrival_s = self._held_arrival_s
        first = max(self._next_slot, self._first_slot_at_or_after(self._held_at_s))
        stop = self._first_slot_at_or_after(until_s)
        held_stop = min(stop, self._first_slot_at_or_after(self._held_at_s + hold_s))
        count = max(0, held_stop - first)
        self.counters.missing += max(0, stop - max(first, held_stop))
        if count == 0:
            self.counters.dropped += 1
        else:
            self.counters.duplicated += count - 1
            self.counters.canonical_frames += count
        self._next_slot = max(self._next_slot, stop)
        return [(slot, self._held) for slot in range(first, first + count)]
