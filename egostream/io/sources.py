"""Video sources: files, camera devices and network streams, registered by kind in :data:`SOURCES`.

A source opens its input when :meth:`VideoSource.frames` is iterated and yields decoded
:class:`~egostream.io.frames.TimedFrame` s; :class:`~egostream.io.window_stream.WindowStream` puts them on the
canonical clock and cuts windows. ``live`` sources (camera, network) produce frames at their own pace, so the
stream drops the oldest windows when the consumer falls behind; file sources wait for the consumer.

Network give-up policy (:class:`ReconnectPolicy`): a failure to open, or a read error / read timeout after
``read_timeout_s`` seconds without data, triggers a reconnect after ``backoff_s`` seconds, doubling up to
``max_backoff_s`` per consecutive failure. After ``max_retries`` consecutive failed attempts (the count resets
whenever a frame arrives) the source raises :class:`~egostream.errors.InputError` naming the URL and the last error.
A clean end of stream (the server closed it) ends the source without reconnecting. Across a reconnect, stream time
continues with the wall-clock time the outage lasted, so windows during the outage are missing, not invented.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from urllib.parse import urlsplit

from egostream.errors import InputError
from egostream.io.decoders import DECODERS, FrameDecoder, PyAVDecoder
from egostream.io.frames import TimedFrame
from egostream.registry import Registry

__all__ = ["VideoSource", "FileSource", "CameraSource", "NetworkSource", "ReconnectPolicy", "SOURCES", "open_source",
           "NETWORK_SCHEMES"]

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "udp", "rtp", "tcp", "srt", "http", "https"})

SOURCES: Registry[type[VideoSource]] = Registry("video source")


class VideoSource(ABC):
    """A stream of decoded frames. After (or during) iteration, ``nominal_fps`` is the decoder's frame rate,
    ``skipped_packets`` counts undecodable packets skipped, ``reconnects`` counts network reconnections."""

    live: bool = False

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.nominal_fps: float | None = None
        self.skipped_packets = 0
        self.reconnects = 0

    @abstractmethod
    def _open(self) -> FrameDecoder:
        """Open the input (raises InputError naming it when it cannot)."""

    def frames(self) -> Iterator[TimedFrame]:
        """Open the input and yield its frames in presentation order; the input is closed when iteration ends."""
        decoder = self._open()
        try:
            self.nominal_fps = decoder.nominal_fps
            yield from decoder
        finally:
            self.skipped_packets += decoder.skipped_packets
            decoder.close()

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
    a read with no data for ``read_timeout_s`` seconds counts as a failure."""

    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 10.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError(f"invalid reconnect policy {self}")
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
                 options: dict[str, str] | None = None) -> None:
        super().__init__(url)
        self.policy = policy
        self.size = size
        self.options = {"analyzeduration": "500000", "probesize": "65536", **(options or {})}

    def _open(self) -> FrameDecoder:
        return PyAVDecoder(self.uri, self.size, options=self.options,
                           timeout_s=(self.policy.open_timeout_s, self.policy.read_timeout_s), low_latency=True)

    def frames(self) -> Iterator[TimedFrame]:
        """Frames of every connection in turn, stream time continuing across reconnects (see the module doc)."""
        failures = 0
        offset_s: float | None = None  # added to this connection's times to continue the previous one
        last_time_s: float | None = None
        last_wall_s = 0.0  # monotonic clock when the last frame arrived
        while True:
            connection_start_s: float | None = None
            first = True
            try:
                for frame in super().frames():
                    if connection_start_s is None:
                        connection_start_s = frame.time_s
                        outage_s = time.monotonic() - last_wall_s
                        offset_s = 0.0 if last_time_s is None else last_time_s + outage_s
                    failures = 0
                    last_wall_s = time.monotonic()
                    last_time_s = offset_s + frame.time_s - connection_start_s
                    yield TimedFrame(frame.image, last_time_s, discontinuity=self.reconnects > 0 and first)
                    first = False
                return
            except InputError as error:  # an open that fails, or a StreamReadError (read error / timeout)
                failures += 1
                if failures > self.policy.max_retries:
                    raise InputError(self.uri, "connection",
                                     f"gave up after {failures} failed attempts (max_retries="
                                     f"{self.policy.max_retries}, backoff_s={self.policy.backoff_s}): "
                                     f"{error.reason}") from error
                self.reconnects += 1
                time.sleep(self.policy.delay_s(failures))


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
