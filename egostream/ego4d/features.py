"""Pre-extracted per-video Ego4D features, loaded lazily through a bounded LRU cache.

Each video is one file ``<features dir>/<video_uid>.pt`` holding a floating tensor [T, D]: row t covers frames
[t * stride, t * stride + window) of the canonical 30 fps video (stride 16 frames for the Ego4D features, so one
row per 0.533 s). :class:`FeatureSpec` carries those constants, as the authors' ``Features`` dataclass does
(sapeirone/hier-egopack@4fff4e5:data/features.py; values from configs/components/features/ego4d/*.yaml).

A file is validated once, where it enters (:meth:`FeatureStore.get`): a 2-D floating tensor of the expected width
with at least one row, every value finite and at most :data:`MAX_ABS_FEATURE` in magnitude (a larger value is no
encoder's output and overflows the model's float32 arithmetic); it is returned as float32. A sample whose rows
the file does not reach fails in :meth:`FeatureStore.covering`, naming the file.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import torch

from egostream.errors import InputError
from egostream.ego4d.layout import Ego4dLayout

__all__ = ["FeatureSpec", "EGOVLP", "OMNIVORE_VIDEO_SWINL", "FeatureStore", "MAX_ABS_FEATURE"]

#: Largest feature magnitude accepted. Squares of values this size summed over any realistic width stay far
#: below float32's 3.4e38 through the backbone's LayerNorms and products.
MAX_ABS_FEATURE = 1e6


@dataclass(frozen=True)
class FeatureSpec:
    """A feature set: folder ``name``, one row every ``stride_frames`` frames, each seeing ``window_frames`` frames
    at ``fps`` frames per second, ``dim`` values per row."""

    name: str
    stride_frames: int = 16
    window_frames: int = 16
    fps: float = 30.0
    dim: int = 256

    @property
    def row_period_s(self) -> float:
        """Seconds between consecutive rows (16 / 30 = 0.533 s)."""
        return self.stride_frames / self.fps


EGOVLP = FeatureSpec("egovlp", stride_frames=16, window_frames=16, fps=30.0, dim=256)
OMNIVORE_VIDEO_SWINL = FeatureSpec("omnivore_video_swinl", stride_frames=16, window_frames=32, fps=30.0, dim=1536)


class FeatureStore:
    """Loads ``<video_uid>.pt`` feature files on first use and keeps the most recently used ones in memory.

    ``root_or_dir`` is an Ego4D data root (then the files are in ``features/<name>/``, see
    :mod:`egostream.ego4d.layout`) or, when that folder does not exist, the folder of ``.pt`` files itself.
    The cache holds at most ``cache_size`` videos and, if ``cache_bytes`` is set, at most that many tensor bytes
    (a single video larger than ``cache_bytes`` is returned but not kept). Safe to share between threads.
    """

    def __init__(self, root_or_dir: str | PathLike[str], name: str, expected_dim: int, cache_size: int = 16,
                 cache_bytes: int | None = None) -> None:
        if cache_size < 0 or (cache_bytes is not None and cache_bytes < 0):
            raise ValueError("cache_size and cache_bytes must be non-negative")
        nested = Ego4dLayout.from_root(root_or_dir).features_dir(name)
        self.directory = nested if nested.is_dir() else Path(root_or_dir)
        self.name = name
        self.expected_dim = expected_dim
        self.cache_size = cache_size
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def path(self, video_uid: str) -> Path:
        return self.directory / f"{video_uid}.pt"

    def has(self, video_uid: str) -> bool:
        """Whether the feature file of ``video_uid`` exists (the authors drop samples whose file is missing)."""
        return self.path(video_uid).is_file()

    def get(self, video_uid: str) -> torch.Tensor:
        """The [T, D] features of ``video_uid`` (D == ``expected_dim``). Do not modify the returned tensor in place."""
        with self._lock:
            cached = self._cache.get(video_uid)
            if cached is not None:
                self._cache.move_to_end(video_uid)
                return cached
        features = self._load(video_uid)
        with self._lock:
            self._insert(video_uid, features)
        return features

    def __len__(self) -> int:
        """Number of videos in the cache now."""
        return len(self._cache)

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def _load(self, video_uid: str) -> torch.Tensor:
        path = self.path(video_uid)
        if not path.is_file():
            raise InputError(path, None, f"feature file of video {video_uid!r} not found")
        try:
            features = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for a corrupt or non-tensor file
            first_line = next(iter(str(error).splitlines()), type(error).__name__)
            raise InputError(path, None, f"cannot load the feature file: {first_line}") from None
        if not isinstance(features, torch.Tensor):
            raise InputError(path, None, f"expected a tensor, found {type(features).__name__}")
        if features.dim() != 2 or features.shape[1] != self.expected_dim:
            raise InputError(path, "shape", f"expected [T, {self.expected_dim}], found {list(features.shape)}")
        if not features.is_floating_point():
            raise InputError(path, "dtype", f"expected a floating tensor, found {features.dtype}")
        if features.shape[0] == 0:
            raise InputError(path, "shape", f"empty feature file: [0, {self.expected_dim}], no rows")
        _check_values(path, features)
        return features.float()

    def covering(self, video_uid: str, start_row: int, end_row: int, *, all_rows: bool = False) -> torch.Tensor:
        """The [T, D] features of ``video_uid``, checked to hold rows a sample of rows [start_row, end_row) needs.

        By default the file must hold row ``start_row``: rows past its end are simply absent, as the authors' tensor
        slicing leaves them (hier-egopack@4fff4e5:data/ego4d/AR.py L118-122), but a sample must keep one node.
        ``all_rows``: it must hold every row (indexing, as PNR samples do). A shorter file is an InputError.
        """
        features = self.get(video_uid)
        needed = end_row if all_rows else start_row + 1
        if len(features) < needed:
            raise InputError(self.path(video_uid), "shape",
                             f"the feature file has {len(features)} rows, too short for a sample of rows "
                             f"[{start_row}, {end_row})")
        return features

    def _insert(self, video_uid: str, features: torch.Tensor) -> None:
        size = features.element_size() * features.nelement()
        if video_uid in self._cache or self.cache_size == 0:
            return
        if self.cache_bytes is not None and size > self.cache_bytes:
            return
        self._cache[video_uid] = features
        self._cached_bytes += size
        while len(self._cache) > self.cache_size or (
                self.cache_bytes is not None and self._cached_bytes > self.cache_bytes):
            _, evicted = self._cache.popitem(last=False)
            self._cached_bytes -= evicted.element_size() * evicted.nelement()


def _check_values(path: Path, features: torch.Tensor) -> None:
    """InputError naming the first row holding a non-finite value or one larger than :data:`MAX_ABS_FEATURE`."""
    bad = ~torch.isfinite(features) | (features.abs() > MAX_ABS_FEATURE)
    if not bool(bad.any()):
        return
    row, column = (int(i) for i in bad.nonzero()[0])
    value = float(features[row, column])
    if math.isfinite(value):
        problem = f"value {value:g} in column {column} beyond the feature magnitude limit {MAX_ABS_FEATURE:g}"
    else:
        problem = f"non-finite value {value:g} in column {column}"
    raise InputError(path, f"rows[{row}]", f"{problem} ({int(bad.any(dim=1).sum())} bad rows in all)")
