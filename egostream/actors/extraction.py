"""Feature extraction over many videos (``egostream extract``): Ego4D layout, one ``<video_uid>.pt`` per video.

Each file holds a float32 tensor [T, D]: row t is the extractor's feature of window t, canonical frames
[16 t, 16 t + W) at 30 fps, with the last window backpadded as the Ego4D features are
(:mod:`egostream.io.windows`), so the rows line up with the released features of the same video. A video whose
windows cannot all be decoded (a gap longer than the canonical clock bridges) is bad input: it is reported and
skipped, since a feature file with a missing row would shift every later row.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from egostream.actors.batch import BatchItem
from egostream.actors.perception import ExtractorSpec, VideoWindows
from egostream.errors import InputError

__all__ = ["FeatureExtractionJob", "find_videos", "VIDEO_SUFFIXES", "extraction_items"]

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".ts", ".m4v"})

_EXTRACTORS: dict[str, Any] = {}  # repr(spec) -> the extractor built for it in this (worker) process


def find_videos(paths: Iterable[str | PathLike[str]]) -> list[Path]:
    """The video files named in ``paths``: files as given, folders searched (recursively) for video suffixes."""
    videos: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            videos.extend(sorted(p for p in entry.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()))
        elif entry.is_file():
            videos.append(entry)
        else:
            raise InputError(entry, None, "no such video file or folder")
    return videos


def extraction_items(videos: Sequence[Path], out_dir: str | PathLike[str]) -> list[BatchItem]:
    """One batch item per video: uid = the file name without its suffix, result ``<out_dir>/<uid>.pt``."""
    return [BatchItem(video.stem, str(video), Path(out_dir) / f"{video.stem}.pt") for video in videos]


@dataclass(frozen=True)
class FeatureExtractionJob:
    """Extracts one video's features (a :class:`~egostream.actors.batch.BatchJob`). ``dim`` is the extractor's
    width, used to validate existing files; ``batch_windows`` windows go through the extractor at a time."""

    extractor: ExtractorSpec
    dim: int
    window_frames: int = 16
    stride_frames: int = 16
    backend: str = "pyav"
    batch_windows: int = 16

    def features(self, source: str) -> torch.Tensor:
        """float32 [T, D] features of the video ``source``."""
        key = repr(self.extractor)
        extractor = _EXTRACTORS.get(key)
        if extractor is None:
            extractor = _EXTRACTORS[key] = self.extractor()
        windows = VideoWindows(source, self.window_frames, self.stride_frames, self.backend)
        rows: list[torch.Tensor] = []
        batch: list[Any] = []
        next_index = 0
        for window in windows():
            if window.index != next_index:
                raise InputError(source, "frames", f"window {window.index} follows window {next_index - 1}: "
                                 "frames are missing in between")
            next_index += 1
            batch.append(window)
            if len(batch) == self.batch_windows:
                rows.append(extractor.extract(batch))
                batch = []
        if batch:
            rows.append(extractor.extract(batch))
        if not rows:
            raise InputError(source, "frames", "the video has no decodable frames")
        return torch.cat(rows).float().contiguous()

    def compute(self, item: BatchItem) -> bytes:
        buffer = io.BytesIO()
        torch.save(self.features(item.source), buffer)
        return buffer.getvalue()

    def validate(self, path: Path) -> bool:
        try:
            features = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # torch raises many types for a damaged file
            return False
        return (isinstance(features, torch.Tensor) and features.dim() == 2 and features.shape[0] > 0
                and features.shape[1] == self.dim and features.is_floating_point())
