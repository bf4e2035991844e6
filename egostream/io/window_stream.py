"""From a video source to a bounded stream of windows on the canonical clock.

:func:`iter_windows` is the synchronous core (frames -> canonical clock -> windows). :class:`WindowStream` runs it
in a producer thread behind a bounded queue of ``queue_size`` windows, with a policy per source:

* ``"block"`` (file sources): the producer waits for the consumer; nothing is lost.
* ``"drop_oldest"`` (live sources): when the queue is full the oldest queued window is discarded and counted in
  ``windows_dropped``, so a consumer slower than the source sees the newest windows and memory stays bounded
  (at most ``queue_size`` windows plus the W frames being assembled). Dropped windows leave gaps in the absolute
  window indices.

An error in the producer (an unreadable file, a network source that gave up) is raised in the consumer, after the
windows produced before it.
"""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from egostream.errors import InputError
from egostream.io.clock import CanonicalClock, ClockCounters
from egostream.io.frames import FrameWindow, TimedFrame
from egostream.io.queues import BoundedQueue, OverflowPolicy, QueueClosed
from egostream.io.sources import VideoSource
from egostream.io.windows import EGOVLP_WINDOWS, Windower, WindowSpec

__all__ = ["iter_windows", "WindowStream", "StreamStats", "QueuePolicy"]

QueuePolicy = Literal["block", "drop_oldest"]


def iter_windows(frames: Iterable[TimedFrame], spec: WindowSpec = EGOVLP_WINDOWS, *, max_hold_s: float = 1.0,
                 last_frame_duration_s: float | Callable[[], float | None] | None = None,
                 counters: ClockCounters | None = None) -> Iterator[FrameWindow]:
    """Windows of ``frames`` on the canonical clock of ``spec.fps`` (rules in :mod:`egostream.io.clock` and
    :mod:`egostream.io.windows`). ``last_frame_duration_s`` is how long the last frame lasts (seconds), or a
    callable asked at the end of the stream (a source knows its rate only once opened). Pass ``counters`` to
    read the clock's drop/duplicate counts. When ``frames`` raises :class:`InputError`, the frames received before
    it still give their windows, then the error propagates. A window holding canonical frames the clock marked
    (:class:`~egostream.io.clock.ClockMark`) gets ``discontinuity`` / ``decode_errors`` set, and every window the
    ``arrival_s`` of the frame shown last in it."""
    clock = CanonicalClock(spec.fps, max_hold_s)
    if counters is not None:
        clock.counters = counters
    windower = Windower(spec)

    def flagged(window: FrameWindow) -> FrameWindow:
        clock.marks[:] = [mark for mark in clock.marks if mark.stop > window.start_frame]  # windows only move on
        end = window.start_frame + window.num_frames
        touching = [mark for mark in clock.marks if mark.first < end]
        return dataclasses.replace(window, discontinuity=any(mark.discontinuity for mark in touching),
                                   decode_errors=any(mark.decode_errors for mark in touching),
                                   arrival_s=clock.released_arrival_s)

    def settle(pairs: list[tuple[int, np.ndarray]]) -> Iterator[FrameWindow]:
        for frame_index, image in pairs:
            window = windower.push(frame_index, image)
            if window is not None:
                yield flagged(window)

    def finish() -> Iterator[FrameWindow]:
        duration_s = last_frame_duration_s() if callable(last_frame_duration_s) else last_frame_duration_s
        yield from settle(clock.finish(duration_s))
        last = windower.finish()
        if last is not None:
            yield flagged(last)

    try:
        for frame in frames:
            yield from settle(clock.push(frame))
    except InputError:  # the frames received before a failure still make their windows
        yield from finish()
        raise
    yield from finish()


@dataclass
class StreamStats:
    """Counters of one stream, safe to report at any time: decoded source frames, canonical frames and what the
    clock dropped / duplicated / left missing, the decoder's damage (undecodable packets, skipped frames, corrupt
    frames), the timeline's repairs (frames without a time, re-timed frames, discontinuities, 2^33 wraps), network
    reconnects, windows emitted to the consumer and windows dropped because the consumer was slower
    (``drop_oldest`` policy only), and the deepest the queue got."""

    source: str
    source_frames: int = 0
    canonical_frames: int = 0
    clock_dropped: int = 0
    clock_duplicated: int = 0
    missing_frames: int = 0
    out_of_order: int = 0
    skipped_packets: int = 0
    skipped_frames: int = 0
    corrupt_frames: int = 0
    untimed: int = 0
    retimed: int = 0
    discontinuities: int = 0
    wraps: int = 0
    reconnects: int = 0
    windows_emitted: int = 0
    windows_dropped: int = 0
    max_queue_depth: int = 0

    def as_dict(self) -> dict[str, int | str]:
        return asdict(self)


class WindowStream:
    """Iterate a source's windows through a producer thread and a bounded queue (see the module doc).

    ``policy`` defaults to ``"drop_oldest"`` for live sources and ``"block"`` for files. Use as a context manager
    (or call :meth:`close`) so the producer stops when the consumer does. ``stats`` can be read at any time.
    """

    def __init__(self, source: VideoSource, spec: WindowSpec = EGOVLP_WINDOWS, *, queue_size: int = 8,
                 policy: QueuePolicy | None = None, max_hold_s: float = 1.0) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.source = source
        self.spec = spec
        self.policy: QueuePolicy = policy or ("drop_oldest" if source.live else "block")
        self.max_hold_s = max_hold_s
        # windows, then the end of the stream: an error to raise, or nothing when the source ended
        self._queue: BoundedQueue[FrameWindow | BaseException] = BoundedQueue(queue_size,
                                                                              OverflowPolicy(self.policy))
        self._clock_counters = ClockCounters()
        self._windows_emitted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consuming = False

    @property
    def stats(self) -> StreamStats:
        clock = self._clock_counters
        return StreamStats(
            source=self.source.uri, source_frames=clock.source_frames, canonical_frames=clock.canonical_frames,
            clock_dropped=clock.dropped, clock_duplicated=clock.duplicated, missing_frames=clock.missing,
            out_of_order=clock.out_of_order, **self.source.counts(), windows_emitted=self._windows_emitted,
            windows_dropped=self._queue.dropped, max_queue_depth=self._queue.high_water)

    def _produce(self) -> None:
        frames = self.source.frames()
        try:
            for window in iter_windows(frames, self.spec, max_hold_s=self.max_hold_s,
                                       last_frame_duration_s=lambda: self.source.last_frame_duration_s,
                                       counters=self._clock_counters):
                if self._stop.is_set():
                    return
                self._queue.put(window)
            self._queue.close()
        except QueueClosed:  # the consumer closed the stream
            return
        except BaseException as error:  # handed to the consumer, which raises it
            try:
                self._queue.put_last(error)
            except QueueClosed:
                return
        finally:
            frames.close()  # closes the decoder now, not at garbage collection

    def start(self) -> WindowStream:
        """Start the producer (open the source) now rather than at the first ``next``; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._produce, name=f"egostream-source {self.source.uri}",
                                            daemon=True)
            self._thread.start()
        return self

    def __iter__(self) -> Iterator[FrameWindow]:
        if self._consuming:
            raise RuntimeError("a WindowStream can be iterated once")
        self._consuming = True
        self.start()
        return self._consume()

    def _consume(self) -> Iterator[FrameWindow]:
        while True:
            batch = self._queue.get_batch(1)
            if not batch:
                return
            (item,) = batch
            if isinstance(item, BaseException):
                raise item
            self._windows_emitted += 1
            yield item

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the producer (it notices within one frame, or one network read timeout) and free queued windows."""
        self._stop.set()
        self._queue.discard()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> WindowStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
