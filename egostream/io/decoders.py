"""Frame decoders: PyAV (files, cameras, network streams) and decord (files), swappable by name.

Both yield :class:`~egostream.io.frames.TimedFrame` s (RGB uint8, presentation time in seconds) in presentation
order, optionally resized to ``size = (height, width)`` while decoding.

Undecodable data: a container that cannot be opened, or that yields no frame at all, raises
:class:`~egostream.errors.InputError` naming the file. With PyAV, a packet the decoder rejects in the middle of a
stream is skipped and counted in ``skipped_packets`` (the stream goes on; the clock fills the gap by holding the
previous frame). decord cannot skip: an undecodable frame raises ``InputError`` with the frame index.
"""
from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from typing import Any, Protocol

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

    def __iter__(self) -> Iterator[TimedFrame]: ...

    def close(self) -> None: ...


DECODERS: Registry[type] = Registry("video decoder")


@DECODERS.register("pyav")
class PyAVDecoder:
    """Decodes the first video stream of anything FFmpeg opens: a file, ``/dev/video0`` (``format="v4l2"``), or a
    URL (rtsp, udp, tcp, http, ...).

    ``options`` are FFmpeg demuxer/protocol options; ``timeout_s`` is PyAV's ``(open, read)`` timeout in seconds
    (None waits forever), which is what lets a stalled network read fail instead of hanging. ``low_latency``
    decodes with slice threads only: frame threads hold back one frame per thread, which a live source should not.
    """

    def __init__(self, source: str | PathLike[str], size: tuple[int, int] | None = None, *, format: str | None = None,
                 options: dict[str, str] | None = None, timeout_s: tuple[float, float] | None = None,
                 low_latency: bool = False) -> None:
        import av

        self.source = str(source)
        self.size = size
        self.skipped_packets = 0
        self.frames_decoded = 0
        self._last_time_s = 0.0
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
                raise StreamReadError(self.source, "stream",
                                      f"read failed after {self.frames_decoded} frames: {error}") from error
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                self.skipped_packets += 1
                continue
            yield from self._timed(frames)
        if self.frames_decoded == 0:
            raise InputError(self.source, "frames", f"no decodable video frame ({self.skipped_packets} packets "
                                                    "rejected by the decoder)")

    def _timed(self, frames: list[Any]) -> Iterator[TimedFrame]:
        """Frames with their time in seconds; a frame without pts follows the previous one at the nominal rate."""
        for frame in frames:
            time_s = frame.time
            if time_s is None:
                time_s = 0.0 if self.frames_decoded == 0 else self._last_time_s + 1 / (self.nominal_fps or 30.0)
            self.frames_decoded += 1
            self._last_time_s = float(time_s)
            yield TimedFrame(self._to_rgb(frame), float(time_s))

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
        self.skipped_packets = 0
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
