"""Thumbnails of a video at chosen stream times, for the report's video track.

The video is decoded once, in order (:func:`egostream.io.open_source`); the frame shown at each requested time (the
last frame that starts at or before it, times measured from the first frame as the stream clock does) is scaled to
``height`` pixels and kept as PNG bytes.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np

__all__ = ["Thumbnail", "video_thumbnails", "thumbnail_times"]


@dataclass(frozen=True)
class Thumbnail:
    """The frame shown at ``time_s`` stream seconds: PNG bytes of ``width`` x ``height`` pixels."""

    time_s: float
    png: bytes
    width: int
    height: int


def thumbnail_times(end_s: float, count: int) -> list[float]:
    """``count`` times spread evenly over ``[0, end_s]`` seconds (the centres of ``count`` equal slices)."""
    if count < 1 or end_s <= 0:
        return []
    return [(k + 0.5) * end_s / count for k in range(count)]


def _png(image: np.ndarray, height: int) -> tuple[bytes, int, int]:
    from PIL import Image

    picture = Image.fromarray(image)
    width = max(1, round(picture.width * height / picture.height))
    buffer = io.BytesIO()
    picture.resize((width, height), Image.Resampling.BILINEAR).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue(), width, height


def video_thumbnails(path: str | PathLike[str], times_s: Sequence[float], height: int = 72) -> list[Thumbnail]:
    """One :class:`Thumbnail` per time of ``times_s`` (seconds from the first frame, ascending) that the video
    reaches; ``height`` in pixels (the width keeps the aspect ratio).

    Raises:
        InputError: the video cannot be opened (from :func:`egostream.io.open_source`).
    """
    from egostream.io import open_source

    wanted = sorted(times_s)
    thumbnails: list[Thumbnail] = []
    origin: float | None = None
    previous: np.ndarray | None = None
    frames = open_source(str(path)).frames()
    try:
        for frame in frames:
            origin = frame.time_s if origin is None else origin
            now = frame.time_s - origin
            while wanted and previous is not None and now > wanted[0]:
                thumbnails.append(Thumbnail(wanted.pop(0), *_png(previous, height)))
            if not wanted:
                break
            previous = frame.image
    finally:
        frames.close()
    if previous is not None and wanted:
        thumbnails.append(Thumbnail(wanted.pop(0), *_png(previous, height)))
    return thumbnails
