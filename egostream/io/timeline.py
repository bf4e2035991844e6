"""Stream time for frames whose timestamps cannot be trusted: missing, NaN, going backwards, jumping, wrapping.

A live stream's presentation times are not a clock: frames arrive without a PTS, senders loop a file without
offsetting its times, cameras restart at zero, MPEG-TS times wrap every 2^33 ticks of 90 kHz (about 26.5 hours).
:class:`StreamTimeline` turns each frame's *raw* time (seconds, as decoded; None or NaN when it has none) into a
*stream time* that always increases, so the canonical clock (:mod:`egostream.io.clock`) never stalls or fails.

The rule, for each frame after the first (``period`` is one frame of the stream's nominal rate, 1/30 s when unknown;
``arrival gap`` is the arrival-clock time since the previous frame, given for live sources only, where it
measures how long the sender really paused; ``pause`` is the arrival gap when it exceeds ``max_jump_s`` (a real
pause, not jitter), else one ``period``; ``step`` is the raw time minus the previous usable raw time):

* **continuous** (``0 < step <= max_jump_s``): the frame is placed ``step`` after the last frame that had a usable
  time (so frames without a time in between do not shift it), and at least one ``period`` after the previous
  frame. A forward gap up to ``max_jump_s`` (lost packets) stays a gap, which the clock fills or leaves missing.
* **MPEG-TS wrap** (``step <= 0`` but ``0 < step + 2^33 / 90000 s <= max_jump_s``): placed as continuous with the
  unwrapped step, exactly; counted in ``wraps`` and as a discontinuity (the windows it touches are flagged).
* **non-monotonic** (``-max_jump_s <= step <= 0``, a repeated or reordered time): the frame is placed one
  ``period`` after the previous one (counted in ``retimed``).
* **jump** (any other step: a loop back to the start, a restart, a leap forward): a discontinuity; stream time
  advances by ``pause`` (``period`` for files), counted in ``discontinuities``.
* **no usable time** (no PTS, NaN, infinite): the frame is placed ``pause`` after the previous one (``period`` for
  files), counted in ``untimed``; the next usable raw time is compared with the last usable one.
* **reconnect** (the source says so): a discontinuity; stream time advances by ``max(period, arrival gap)``, so
  the wall-clock time of the outage passes in stream time and the windows of the outage are missing, not invented.

The first frame's stream time is its raw time (0 without one). Raw times after a retimed frame or a jump continue
relative to their own previous raw time, so a loop or a restart is counted once and the new segment then runs at
its own rate.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["StreamTimeline", "TimelineCounters", "PTS_WRAP_S"]

#: One MPEG-TS timestamp wrap: 2^33 ticks of the 90 kHz system clock, in seconds.
PTS_WRAP_S = 2 ** 33 / 90_000


@dataclass
class TimelineCounters:
    """What the timeline repaired: frames without a usable time, frames re-timed because their time went back,
    discontinuities (jumps, wraps and reconnects), and wraps among them."""

    untimed: int = 0
    retimed: int = 0
    discontinuities: int = 0
    wraps: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class StreamTimeline:
    """Places frames on an increasing stream time (seconds) by the rule of the module doc.

    ``nominal_fps`` is the stream's frame rate (None, zero or non-finite: 30 fps is assumed); ``max_jump_s`` the
    largest raw step taken as continuous.
    """

    def __init__(self, nominal_fps: float | None = None, max_jump_s: float = 1.0) -> None:
        if not max_jump_s > 0:
            raise ValueError("max_jump_s must be positive")
        self.max_jump_s = max_jump_s
        self.period_s = 1 / 30.0
        self.set_rate(nominal_fps)
        self.counters = TimelineCounters()
        self._time_s: float | None = None
        self._raw_s: float | None = None  # the last usable raw time, and the stream time it was placed at
        self._raw_placed_s = 0.0
        self._arrival_s: float | None = None

    def set_rate(self, nominal_fps: float | None) -> None:
        """Use ``nominal_fps`` for the period from now on (ignored when it is not a positive finite number)."""
        if nominal_fps is not None and math.isfinite(nominal_fps) and nominal_fps > 0:
            self.period_s = 1.0 / nominal_fps

    def place(self, raw_s: float | None, arrival_s: float | None = None,
              reconnected: bool = False) -> tuple[float, bool]:
        """``(stream time in seconds, discontinuity)`` of the next frame, from its raw time (None or NaN when it
        has none), its arrival time (seconds on any monotonic clock; None for files) and whether the source
        reconnected just before it."""
        usable = raw_s is not None and math.isfinite(raw_s)
        arrival_gap_s = 0.0
        if arrival_s is not None and self._arrival_s is not None:
            arrival_gap_s = max(0.0, arrival_s - self._arrival_s)
        self._arrival_s = arrival_s if arrival_s is not None else self._arrival_s
        if self._time_s is None:
            self._time_s = float(raw_s) if usable else 0.0  # type: ignore[arg-type]
            self._raw_s = float(raw_s) if usable else None  # type: ignore[arg-type]
            self._raw_placed_s = self._time_s
            return self._time_s, False
        paused_s = arrival_gap_s if arrival_gap_s > self.max_jump_s else self.period_s
        discontinuity = False
        time_s = self._time_s + paused_s
        if reconnected:
            time_s, discontinuity = self._time_s + max(self.period_s, arrival_gap_s), True
        elif not usable:
            self.counters.untimed += 1
        elif self._raw_s is not None:  # else: the first usable time after untimed frames, nothing to compare with
            step_s = float(raw_s) - self._raw_s  # type: ignore[arg-type]
            if 0 < step_s + PTS_WRAP_S <= self.max_jump_s:
                self.counters.wraps += 1
                step_s, discontinuity = step_s + PTS_WRAP_S, True
            if 0 < step_s <= self.max_jump_s:
                time_s = max(self._raw_placed_s + step_s, self._time_s + self.period_s)
            elif -self.max_jump_s <= step_s <= 0:
                self.counters.retimed += 1
                time_s = self._time_s + self.period_s
            else:
                discontinuity = True
        if discontinuity:
            self.counters.discontinuities += 1
        if usable:
            self._raw_s, self._raw_placed_s = float(raw_s), time_s  # type: ignore[arg-type]
        self._time_s = time_s
        return time_s, discontinuity
