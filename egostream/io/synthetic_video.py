"""Synthetic videos whose look follows a per-frame label sequence, rendered and encoded with PyAV.

Label ``c`` of ``num_classes`` paints the frame in its own hue (evenly spaced on the colour wheel) with stripes of
its own orientation, drifting by one pixel per frame so the encoder sees motion. Any extractor that keeps colour
(even the tiny :class:`~egostream.backbone.extractors.PixelProjectionExtractor`) separates the labels, which is what
the tests and ``egostream demo`` need from a video: known structure, nothing downloaded.
"""
from __future__ import annotations

import colorsys
import time
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from os import PathLike
from pathlib import Path

import numpy as np

__all__ = ["label_colour", "render_frame", "render_frames", "write_video", "render_video", "CONTAINER_FORMATS"]

CONTAINER_FORMATS = {".mp4": "mp4", ".ts": "mpegts", ".mkv": "matroska"}


def label_colour(label: int, num_classes: int) -> np.ndarray:
    """The RGB uint8 [3] colour of ``label``: hue ``label / num_classes``, full saturation, value 0.9."""
    red, green, blue = colorsys.hsv_to_rgb((label % num_classes) / num_classes, 1.0, 0.9)
    return np.round(np.array([red, green, blue]) * 255).astype(np.uint8)


def render_frame(label: int, frame_index: int, num_classes: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """Frame ``frame_index`` (RGB uint8 [H, W, 3], ``size = (H, W)``) of a stretch labelled ``label``."""
    height, width = size
    rows, cols = np.mgrid[0:height, 0:width]
    angle = np.pi * (label % num_classes) / num_classes
    phase = rows * np.sin(angle) + cols * np.cos(angle) + frame_index
    stripes = 0.75 + 0.25 * (np.sin(phase * 2 * np.pi / 8) > 0)
    return (label_colour(label, num_classes)[None, None, :] * stripes[..., None]).astype(np.uint8)


def render_frames(labels: Sequence[int], num_classes: int | None = None,
                  size: tuple[int, int] = (48, 64)) -> Iterator[np.ndarray]:
    """One frame per entry of ``labels`` (``num_classes`` defaults to ``max(labels) + 1``)."""
    classes = num_classes if num_classes is not None else max(labels) + 1
    for frame_index, label in enumerate(labels):
        yield render_frame(int(label), frame_index, classes, size)


def write_video(target: str | PathLike[str], frames: Iterable[np.ndarray], fps: float, *, format: str | None = None,
                codec: str = "libx264", realtime: bool = False, crf: int = 12) -> int:
    """Encode RGB uint8 frames to ``target`` (a file, or a URL such as ``udp://127.0.0.1:5000?pkt_size=1316`` with
    ``format="mpegts"``) at ``fps`` frames per second; returns the number of frames written.

    The container follows the suffix (.mp4, .ts, .mkv) unless ``format`` is given. ``realtime`` paces the writes
    at ``fps`` (a live stream). Frames must have even height and width (H.264's 4:2:0 chroma).
    """
    import av

    target_text = str(target)
    container_format = format or CONTAINER_FORMATS.get(Path(target_text).suffix.lower())
    rate = Fraction(fps).limit_denominator(1001)
    written = 0
    started = time.monotonic()
    with av.open(target_text, "w", format=container_format) as container:
        stream = None
        for image in frames:
            if stream is None:
                stream = container.add_stream(codec, rate=rate)
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "ultrafast", "crf": str(crf), "g": str(max(1, round(fps)))}
                if realtime:
                    stream.options["tune"] = "zerolatency"
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            written += 1
            if realtime:
                time.sleep(max(0.0, started + written / fps - time.monotonic()))
        if stream is not None:
            container.mux(stream.encode(None))
    return written


def render_video(path: str | PathLike[str], labels: Sequence[int], fps: float = 30.0, *,
                 num_classes: int | None = None, size: tuple[int, int] = (48, 64), format: str | None = None,
                 realtime: bool = False) -> Path | str:
    """Render ``labels`` (one label per frame) to an H.264 video at ``path`` (file or URL); returns ``path``."""
    write_video(path, render_frames(labels, num_classes, size), fps, format=format, realtime=realtime)
    return Path(path) if "://" not in str(path) else str(path)
