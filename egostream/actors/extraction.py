"""Feature extraction over many videos (``egostream extract``): Ego4D layout, one ``<video_uid>.pt`` per video.

Each file holds a float32 tensor [T, D]: row t is the extractor's feature of window t, canonical frames
[16 t, 16 t + W) at 30 fps, with the last window backpadded as the Ego4D features are
(:mod:`egostream.io.windows`), so the rows line up with the released features of the same video. An extractor
that samples the whole video instead (EgoVLP ``sampling=ego4d-mq``) gets every canonical frame, in two passes. A
video whose windows cannot all be decoded (a gap longer than the canonical clock bridges) is bad input: it is
reported and skipped, since a feature file with a missing row would shift every later row.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
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
        if getattr(extractor, "samples_whole_video", False):
            return self._whole_video(extractor, source)
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

    def _canonical_frames(self, source: str) -> Iterator[tuple[int, Any]]:
        """``(index, RGB uint8 [H, W, 3])`` of every canonical 30 fps frame of ``source``, in order."""
        for expected, window in enumerate(VideoWindows(source, 1, 1, self.backend)()):
            if window.start_frame != expected:
                raise InputError(source, "frames", f"canonical frame {window.start_frame} follows frame "
                                                   f"{expected - 1}: frames are missing in between")
            yield window.start_frame, window.frames[0]

    def _whole_video(self, extractor: Any, source: str) -> torch.Tensor:
        """Rows of an extractor that samples the whole video (EgoVLP ``ego4d-mq``): a first decoding pass counts
        the canonical frames, the second feeds them, the extractor keeping only the ones it samples."""
        num_frames = sum(1 for _ in self._canonical_frames(source))
        if num_frames == 0:
            raise InputError(source, "frames", "the video has no decodable frames")
        features = extractor.video_features(num_frames, self._canonical_frames(source))
        if len(features) == 0:
            raise InputError(source, "frames", f"{num_frames} frames are too few for one feature row")
        return features.float().contiguous()

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
