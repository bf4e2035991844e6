"""Frame decoders: PyAV (files, cameras, network streams) and decord (files), swappable by name.

Both yield :class:`~egostream.io.frames.TimedFrame` s (RGB uint8, presentation time in seconds) in presentation
order, optionally resized to ``size = (height, width)`` while decoding.

Undecodable data: a container that cannot be opened, or that yields no frame at all, raises
:class:`~egostream.errors.InputError` naming the file. With PyAV the stream goes on through damage, counted:

* ``skipped_packets``: packets the decoder rejected with an error;
* ``skipped_frames``: packets with a presentation time that never came out as a frame (rejected, or dropped by
  the decoder without an error, as H.264 does with a slice it cannot conceal): a frame with time t settles every
  packet time before it, up to ``max_skip_s`` earlier (an earlier time belongs to a loop or a jump, not a skip);
* ``corrupt_frames``: frames the decoder output but flagged corrupt (concealed errors), or decoded from a packet
  the demuxer flagged corrupt (an MPEG-TS continuity error: lost TS packets).

The frame after a skip, and a corrupt frame, carry ``decode_errors=True``; the clock fills the gap by holding the
previous frame. A frame without a presentation time gets ``time_s = NaN`` (:mod:`egostream.io.timeline` places
it). decord cannot skip: an undecodable frame raises ``InputError`` with the frame index.
"""
from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from typing import Any, Protocol

import math

import numpy as np

from egostream.errors import InputError
from egostream.io.frames import TimedFrame
from egostream.registry import Registry

__all__ = ["FrameDecoder", "PyAVDecoder", "DecordDecoder", "DECODERS", "StreamReadError"]


class StreamReadError(InputError):
    """Reading an opened source failed (a demuxer error or a read timeout): the cue for a network source to
    reconnect."""


class FrameDecoder(Protocol):
    """An opened video: iterate it for frames; ``nominal_fps`` is the container's frame rate (None if unknown)."""

    nominal_fps: float | None
    skipped_packets: int
    skipped_frames: int
    corrupt_frames: int

    def __iter__(self) -> Iterator[TimedFrame]: ...

    def close(self) -> None: ...


DECODERS: Registry[type] = Registry("video decoder")
_MAX_PENDING = 256  # packet times remembered for skip counting (frames without a time never settle them)


@DECODERS.register("pyav")
class PyAVDecoder:
    """Decodes the first video stream of anything FFmpeg opens: a file, ``/dev/video0`` (``format="v4l2"``), or a
    URL (rtsp, udp, tcp, http, ...).

    ``options`` are FFmpeg demuxer/protocol options; ``timeout_s`` is PyAV's ``(open, read)`` timeout in seconds
    (None waits forever), which is what lets a stalled network read fail instead of hanging. ``low_latency``
    decodes with slice threads only: frame threads hold back one frame per thread, which a live source should not.
    ``max_skip_s`` bounds how far back a missing packet time counts as a skipped frame (see the module doc).
    """

    def __init__(self, source: str | PathLike[str], size: tuple[int, int] | None = None, *, format: str | None = None,
                 options: dict[str, str] | None = None, timeout_s: tuple[float, float] | None = None,
                 low_latency: bool = False, max_skip_s: float = 1.0) -> None:
        import av

        self.source = str(source)
        self.size = size
        self.skipped_packets = 0
        self.skipped_frames = 0
        self.corrupt_frames = 0
        self.frames_decoded = 0
        self._pending_pts: list[int] = []  # packet times sent to the decoder and not yet seen as a frame
        self._damaged = False  # a skip happened since the last frame
        try:
            self._container = av.open(self.source, format=format, options=options or {}, timeout=timeout_s)
        except (av.FFmpegError, OSError) as error:
            raise InputError(self.source, "container", f"cannot open video: {error}") from error
        if not self._container.streams.video:
            self._container.close()
            raise InputError(self.source, "streams", "no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "SLICE" if low_latency else "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.nominal_fps = float(rate) if rate else None
        time_base = self._stream.time_base
        self._max_skip_ticks = int(max_skip_s / float(time_base)) if time_base else 0

    def __iter__(self) -> Iterator[TimedFrame]:
        import av

        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except (StopIteration, av.error.EOFError):
                break
            except av.FFmpegError as error:
                yield from self._timed(self._stream.decode(None))  # the frames the decoder still holds
                self._settle_all()
                raise StreamReadError(self.source, "stream",
                                      f"read failed after {self.frames_decoded} frames: {error}") from error
            if packet.size and packet.pts is not None:
                self._pending_pts.append(packet.pts)
                del self._pending_pts[:-_MAX_PENDING]
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                self.skipped_packets += 1
                self._damaged = True
                continue
            yield from self._timed(frames, corrupt_packet=packet.is_corrupt)
        self._settle_all()
        if self.frames_decoded == 0:
            raise InputError(self.source, "frames", f"no decodable video frame ({self.skipped_packets} packets "
                                                    "rejected by the decoder)")

    def _timed(self, frames: list[Any], corrupt_packet: bool = False) -> Iterator[TimedFrame]:
        """Frames with their raw time in seconds (NaN without one), skips and corruption counted."""
        for frame in frames:
            if frame.pts is not None:
                self._settle(frame.pts)
            corrupt = bool(frame.is_corrupt) or corrupt_packet
            self.corrupt_frames += corrupt
            damaged, self._damaged = self._damaged or corrupt, False
            self.frames_decoded += 1
            time_s = frame.time
            raw_s = float(time_s) if time_s is not None and math.isfinite(time_s) else math.nan
            yield TimedFrame(self._to_rgb(frame), raw_s, decode_errors=damaged)

    def _settle_all(self) -> None:
        """End of a stream (the decoder flushed): packet times never seen as a frame were skipped frames."""
        self.skipped_frames += len(self._pending_pts)
        self._pending_pts.clear()

    def _settle(self, pts: int) -> None:
        """A frame at ``pts`` came out: earlier packet times within ``max_skip_s`` were skipped frames."""
        if pts in self._pending_pts:
            self._pending_pts.remove(pts)
        earlier = [sent for sent in self._pending_pts if sent < pts]
        if earlier:
            skipped = sum(1 for sent in earlier if pts - sent <= self._max_skip_ticks)
            self.skipped_frames += skipped
            self._damaged = self._damaged or skipped > 0
            self._pending_pts = [sent for sent in self._pending_pts if sent > pts]

    def _to_rgb(self, frame: Any) -> np.ndarray:
        if self.size is None:
            return frame.to_ndarray(format="rgb24")
        height, width = self.size
        return frame.to_ndarray(format="rgb24", width=width, height=height)

    def close(self) -> None:
        self._container.close()


@DECODERS.register("decord")
class DecordDecoder:
    """Decodes a video file with decord (random access, batched reads of ``batch_frames`` frames)."""

    def __init__(self, source: str | PathLike[str], size: tuple[int, int] | None = None, *,
                 batch_frames: int = 32) -> None:
        try:
            import decord
        except ImportError as error:
            raise InputError(str(source), "backend", f"the decord backend is not available: {error}") from error
        self.source = str(source)
        self.skipped_packets = self.skipped_frames = self.corrupt_frames = 0
        self.batch_frames = batch_frames
        height, width = size if size is not None else (-1, -1)
        try:
            self._reader = decord.VideoReader(self.source, width=width, height=height, num_threads=1)
        except (decord.DECORDError, RuntimeError) as error:
            raise InputError(self.source, "container", f"cannot open video: {error}") from error
        self.nominal_fps = float(self._reader.get_avg_fps()) or None

    def __iter__(self) -> Iterator[TimedFrame]:
        import decord

        total = len(self._reader)
        if total == 0:
            raise InputError(self.source, "frames", "no decodable video frame")
        for first in range(0, total, self.batch_frames):
            indices = list(range(first, min(first + self.batch_frames, total)))
            try:
                images = self._reader.get_batch(indices).asnumpy()
                times_s = self._reader.get_frame_timestamp(indices)[:, 0]
            except (decord.DECORDError, RuntimeError) as error:
                raise InputError(self.source, f"frame {first}", f"cannot decode: {error}") from error
            for image, time_s in zip(images, times_s):
                yield TimedFrame(image, float(time_s))

    def close(self) -> None:
        self.__dict__.pop("_reader", None)  # decord has no close; dropping the reader frees its decoder
