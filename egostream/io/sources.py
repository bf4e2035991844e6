"""Video sources: files, camera devices and network streams, registered by kind in :data:`SOURCES`.

A source opens its input when :meth:`VideoSource.frames` is iterated and yields decoded
:class:`~egostream.io.frames.TimedFrame` s; :class:`~egostream.io.window_stream.WindowStream` puts them on the
canonical clock and cuts windows. ``live`` sources (camera, network) produce frames at their own pace, so the
stream drops the oldest windows when the consumer falls behind; file sources wait for the consumer.

Every source puts its frames on a stream time that always increases (:class:`~egostream.io.timeline.StreamTimeline`:
frames without a PTS, non-monotonic times, jumps and 2^33 wraps are repaired and counted) and counts what the
decoder skipped (:meth:`VideoSource.counts`).

Network give-up policy (:class:`ReconnectPolicy`): a failure to open (nothing within ``open_timeout_s``: a sender
that has not started yet), or a read error / read timeout after ``read_timeout_s`` seconds without data (a sender
that stopped), triggers a reconnect after ``backoff_s`` seconds, doubling up to ``max_backoff_s`` per consecutive
failure; each attempt is announced on the status line (by default a warning of the ``egostream.io.sources`` logger,
which the pipeline's decode stage relays to the driver: what it waits for, attempt n of m). After
``max_retries`` consecutive failed attempts (the count resets whenever a frame arrives) the source gives up: when
no frame ever came, or when ``give_up="error"``, it raises :class:`~egostream.errors.InputError` naming the URL and
the last error; with ``give_up="end"`` (the default) a stream that did deliver frames ends cleanly, as at a clean end
of stream (the server closed it), and its last window is still cut. Across a reconnect, stream time continues with
the wall-clock time the outage lasted, so windows during the outage are missing, not invented.

RTSP goes through FFmpeg's client; ``options={"rtsp_transport": "tcp"}`` (or ``"udp"``, ``"udp_multicast"``,
``"http"``) picks the transport, as ``ffmpeg -rtsp_transport`` does.
"""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from urllib.parse import urlsplit

from egostream.errors import InputError
from egostream.io.decoders import DECODERS, FrameDecoder, PyAVDecoder
from egostream.io.frames import TimedFrame
from egostream.io.timeline import StreamTimeline
from egostream.registry import Registry

__all__ = ["VideoSource", "FileSource", "CameraSource", "NetworkSource", "ReconnectPolicy", "SOURCES", "open_source",
           "NETWORK_SCHEMES"]

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "udp", "rtp", "tcp", "srt", "http", "https"})

SOURCES: Registry[type[VideoSource]] = Registry("video source")


_DECODER_COUNTS = ("skipped_packets", "skipped_frames", "corrupt_frames")


class VideoSource(ABC):
    """A stream of decoded frames on an increasing stream time. After (or during) iteration, ``nominal_fps`` is
    the decoder's frame rate, ``reconnects`` counts network reconnections, ``timeline`` holds the timestamp
    repairs and :meth:`counts` every counter."""

    live: bool = False

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.nominal_fps: float | None = None
        self.reconnects = 0
        self.timeline = StreamTimeline()
        self._closed_counts = dict.fromkeys(_DECODER_COUNTS, 0)  # decoders already closed
        self._decoder: FrameDecoder | None = None

    @abstractmethod
    def _open(self) -> FrameDecoder:
        """Open the input (raises InputError naming it when it cannot)."""

    def counts(self) -> dict[str, int]:
        """Decoder damage (``skipped_packets``, ``skipped_frames``, ``corrupt_frames``; :mod:`~egostream.io.decoders`),
        ``reconnects`` and the timeline's repairs (``untimed``, ``retimed``, ``discontinuities``, ``wraps``) so far;
        safe to call from another thread."""
        decoder = self._decoder
        counts = {name: self._closed_counts[name] + (getattr(decoder, name, 0) if decoder is not None else 0)
                  for name in _DECODER_COUNTS}
        return {**counts, "reconnects": self.reconnects, **self.timeline.counters.as_dict()}

    @property
    def skipped_packets(self) -> int:
        return self.counts()["skipped_packets"]

    def _decoded(self) -> Iterator[TimedFrame]:
        """The raw frames of one opening of the input; the decoder is closed when iteration ends."""
        decoder = self._open()
        self._decoder = decoder
        try:
            self.nominal_fps = decoder.nominal_fps
            self.timeline.set_rate(decoder.nominal_fps)
            yield from decoder
        finally:
            self._decoder = None
            for name in _DECODER_COUNTS:
                self._closed_counts[name] += getattr(decoder, name, 0)
            decoder.close()

    def _placed(self, frame: TimedFrame, reconnected: bool = False) -> TimedFrame:
        """``frame`` on the stream time (live sources pass their arrival clock to the timeline)."""
        time_s, discontinuity = self.timeline.place(frame.time_s, time.monotonic() if self.live else None,
                                                    reconnected)
        return TimedFrame(frame.image, time_s, discontinuity=discontinuity or frame.discontinuity,
                          decode_errors=frame.decode_errors, arrival_s=time.time())

    def frames(self) -> Iterator[TimedFrame]:
        """Open the input and yield its frames on the stream time; the input is closed when iteration ends."""
        for frame in self._decoded():
            yield self._placed(frame)

    @property
    def last_frame_duration_s(self) -> float | None:
        """How long the last frame is shown: one nominal frame period (None if the rate is unknown)."""
        return 1.0 / self.nominal_fps if self.nominal_fps else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


@SOURCES.register("file")
class FileSource(VideoSource):
    """A video file decoded by ``backend`` (a :data:`~egostream.io.decoders.DECODERS` name: ``"pyav"`` or
    ``"decord"``), optionally resized to ``size = (height, width)`` while decoding."""

    live = False

    def __init__(self, path: str | PathLike[str], backend: str = "pyav", size: tuple[int, int] | None = None) -> None:
        super().__init__(str(path))
        self.decoder_class = DECODERS.get(backend)
        self.size = size

    def _open(self) -> FrameDecoder:
        if not Path(self.uri).is_file():
            raise InputError(self.uri, "path", "no such video file")
        return self.decoder_class(self.uri, self.size)


@SOURCES.register("camera")
class CameraSource(VideoSource):
    """A camera device through PyAV (``input_format="v4l2"`` on Linux), at the device's ``framerate`` and
    ``video_size = (width, height)`` when given. A camera that fails is not reopened: the error is raised."""

    live = True

    def __init__(self, device: str = "/dev/video0", framerate: float | None = None,
                 video_size: tuple[int, int] | None = None, input_format: str = "v4l2",
                 size: tuple[int, int] | None = None, read_timeout_s: float = 5.0) -> None:
        super().__init__(device)
        self.options = {}
        if framerate:
            self.options["framerate"] = str(framerate)
        if video_size:
            self.options["video_size"] = f"{video_size[0]}x{video_size[1]}"
        self.input_format = input_format
        self.size = size
        self.read_timeout_s = read_timeout_s

    def _open(self) -> FrameDecoder:
        return PyAVDecoder(self.uri, self.size, format=self.input_format, options=self.options,
                           timeout_s=(self.read_timeout_s, self.read_timeout_s), low_latency=True)


@dataclass(frozen=True)
class ReconnectPolicy:
    """When a network source gives up: after ``max_retries`` consecutive failed attempts, waiting ``backoff_s``
    seconds before the first retry and doubling up to ``max_backoff_s``. Opening waits at most ``open_timeout_s``;
    a read with no data for ``read_timeout_s`` seconds counts as a failure. ``give_up``: ``"end"`` ends a stream
    that delivered frames cleanly, ``"error"`` raises (a stream that never delivered a frame always raises)."""

    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 10.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    give_up: str = "end"

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError(f"invalid reconnect policy {self}")
        if self.give_up not in ("end", "error"):
            raise ValueError(f"give_up must be 'end' or 'error', got {self.give_up!r}")
        if self.open_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ValueError(f"timeouts must be positive: {self}")

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)


@SOURCES.register("network")
class NetworkSource(VideoSource):
    """A network stream (rtsp, udp, tcp, http, ...) through PyAV, reconnecting as :class:`ReconnectPolicy` says.

    ``options`` are FFmpeg protocol/demuxer options (e.g. ``{"rtsp_transport": "tcp"}``); by default the demuxer
    probes at most 0.5 s of stream so a live stream starts quickly.
    """

    live = True

    def __init__(self, url: str, policy: ReconnectPolicy = ReconnectPolicy(), size: tuple[int, int] | None = None,
                 options: dict[str, str] | None = None, status: Callable[[str], None] | None = None) -> None:
        super().__init__(url)
        self.policy = policy
        self.size = size
        self.options = {"analyzeduration": "500000", "probesize": "65536", **(options or {})}
        self.status = status or log_status
        self.ended: str | None = None  # why the stream ended, once it has

    def _open(self) -> FrameDecoder:
        return PyAVDecoder(self.uri, self.size, options=self.options,
                           timeout_s=(self.policy.open_timeout_s, self.policy.read_timeout_s), low_latency=True)

    def frames(self) -> Iterator[TimedFrame]:
        """Frames of every connection in turn, stream time continuing across reconnects (see the module doc)."""
        failures = 0
        received = False
        attempts = self.policy.max_retries + 1
        while True:
            if not received:
                self.status(f"waiting for {self.uri} (attempt {failures + 1} of {attempts}, open timeout "
                            f"{self.policy.open_timeout_s:g} s)")
            first = True
            try:
                for frame in self._decoded():
                    failures, received = 0, True
                    yield self._placed(frame, reconnected=first)
                    first = False
                self.ended = "the server ended the stream"
                return
            except InputError as error:  # an open that fails, or a StreamReadError (read error / timeout)
                failures += 1
                if failures >= attempts:
                    reason = (f"gave up after {failures} failed attempts (max_retries={self.policy.max_retries}, "
                              f"backoff_s={self.policy.backoff_s}): {error.reason}")
                    if received and self.policy.give_up == "end":
                        self.ended = reason
                        self.status(f"{self.uri}: stream ended: {reason}")
                        return
                    raise InputError(self.uri, "connection", reason) from error
                self.reconnects += 1
                delay_s = self.policy.delay_s(failures)
                self.status(f"{self.uri}: {error.reason}; retry {failures} of {self.policy.max_retries} in "
                            f"{delay_s:g} s")
                time.sleep(delay_s)


STATUS_LOGGER = logging.getLogger("egostream.io.sources")


def log_status(message: str) -> None:
    """The default status line of a network source: a warning of :data:`STATUS_LOGGER` (``egostream: message``;
    on stderr when nothing else handles that logger)."""
    STATUS_LOGGER.warning("egostream: %s", message)


def open_source(uri: str | PathLike[str], **options: object) -> VideoSource:
    """The source for ``uri``: a network URL (scheme in :data:`NETWORK_SCHEMES`), a camera (``/dev/video*`` or
    ``v4l2:/dev/videoN``), or else a video file. ``options`` go to the source's constructor."""
    text = str(uri)
    scheme = urlsplit(text).scheme.lower()
    if scheme in NETWORK_SCHEMES:
        return SOURCES.get("network")(text, **options)
    if scheme == "v4l2" or text.startswith("/dev/video"):
        return SOURCES.get("camera")(text.removeprefix("v4l2:"), **options)
    return SOURCES.get("file")(text, **options)
