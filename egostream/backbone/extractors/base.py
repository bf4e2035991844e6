"""The feature-extractor contract: windows of RGB frames in, one feature row per window out.

An extractor sees the frames of each :class:`~egostream.io.frames.FrameWindow` (W canonical frames, the Ego4D
window grid), keeps ``frames_per_window`` = n of them sampled uniformly (frame ``floor((i + 0.5) * W / n)`` for
i < n; all W when None), and returns a float32 [B, dim] tensor on the CPU: row b is the feature of window b, the
row the Hier-EgoPack backbone reads for that window index. Windows are encoded ``batch_size`` at a time on
``device`` (resolved by :func:`egostream.device.resolve_device`: ``"auto"`` is the first usable CUDA device, else the
CPU).

Extractors are registered by name in :data:`EXTRACTORS`; :func:`build_extractor` builds one and checks its output
width against the width the model expects, so a wrong extractor fails before any frame is decoded.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from egostream.device import resolve_device
from egostream.errors import InputError
from egostream.io.frames import FrameWindow
from egostream.registry import Registry

__all__ = ["FeatureExtractor", "EXTRACTORS", "build_extractor", "sample_frame_indices",
           "prepare_frames", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

EXTRACTORS: Registry[type[FeatureExtractor]] = Registry("feature extractor")


def sample_frame_indices(window_frames: int, count: int | None) -> np.ndarray:
    """``count`` frame indices spread uniformly over a window of ``window_frames`` frames: frame
    ``floor((i + 0.5) * window_frames / count)`` for i < count (the centres of ``count`` equal parts; every frame
    when ``count == window_frames``; repeats when ``count`` is larger). All frames when ``count`` is None."""
    if count is None:
        return np.arange(window_frames)
    if count < 1:
        raise ValueError("frames_per_window must be at least 1")
    return np.floor((np.arange(count) + 0.5) * window_frames / count).astype(np.int64)


def prepare_frames(frames: torch.Tensor, image_size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """RGB uint8 [N, H, W, 3] -> normalised float32 [N, 3, S, S]: scale to [0, 1], resize the shorter side to
    ``image_size`` (bicubic, antialiased), centre-crop S x S, subtract ``mean`` and divide by ``std`` per channel."""
    images = frames.permute(0, 3, 1, 2).float().div_(255.0)
    height, width = images.shape[-2:]
    scale = image_size / min(height, width)
    resized = (max(image_size, round(height * scale)), max(image_size, round(width * scale)))
    if resized != (height, width):
        images = F.interpolate(images, size=resized, mode="bicubic", antialias=True, align_corners=False)
        images = images.clamp_(0.0, 1.0)
    top = (images.shape[-2] - image_size) // 2
    left = (images.shape[-1] - image_size) // 2
    images = images[..., top:top + image_size, left:left + image_size]
    mean_t = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean_t) / std_t


class FeatureExtractor(ABC):
    """Encodes windows of frames into feature rows (see the module doc). Subclasses set ``dim`` and implement
    :meth:`encode`."""

    dim: int
    #: the Ego4D feature set (``features/<name>/``) the rows reproduce, or None for features of no release
    feature_name: str | None = None
    #: the weights file the extractor loaded, or None
    weights: Path | None = None

    def __init__(self, frames_per_window: int | None = None, device: str | torch.device = "auto",
                 batch_size: int = 8) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.frames_per_window = frames_per_window
        self.device = resolve_device(device)
        self.batch_size = batch_size

    def frame_offsets(self, window_frames: int) -> np.ndarray:
        """The frames (offsets into a window of ``window_frames``) the model sees: ``sample_frame_indices``."""
        return sample_frame_indices(window_frames, self.frames_per_window)

    @abstractmethod
    def encode(self, clips: torch.Tensor) -> torch.Tensor:
        """RGB uint8 [B, T, H, W, 3] on ``self.device`` (T sampled frames per window) -> float [B, dim]."""

    @torch.no_grad()
    def extract(self, windows: Sequence[FrameWindow] | np.ndarray) -> torch.Tensor:
        """Feature rows float32 [B, dim] (CPU) of B windows, given as :class:`FrameWindow` s or one uint8 array
        [B, W, H, W_px, 3]."""
        clips = np.stack([window.frames for window in windows]) if not isinstance(windows, np.ndarray) else windows
        if clips.ndim != 5 or clips.shape[-1] != 3:
            raise ValueError(f"expected RGB windows [B, W, H, W, 3], got shape {clips.shape}")
        clips = clips[:, self.frame_offsets(clips.shape[1])]
        rows = []
        for first in range(0, clips.shape[0], self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(clips[first:first + self.batch_size])).to(self.device)
            rows.append(self.encode(batch).float().cpu())
        return torch.cat(rows) if rows else torch.empty(0, self.dim)

    def check_width(self, expected_dim: int, checkpoint: str | PathLike[str] | None = None,
                    expected_name: str | None = None) -> None:
        """Raise :class:`InputError` naming ``checkpoint`` when this extractor's rows are not ``expected_dim`` wide,
        or are another released feature set than ``expected_name`` (the features the model was trained on). The
        one-line message names both widths and both files (the model checkpoint and the extractor's weights)."""
        name_clash = (expected_name is not None and self.feature_name is not None
                      and expected_name != self.feature_name)
        if self.dim == expected_dim and not name_clash:
            return
        extractor = f"the {type(self).__name__}" + (f" on {self.weights}" if self.weights is not None else "")
        produces = f"{self.feature_name} features, {self.dim}" if self.feature_name else f"{self.dim}"
        trained = f"{expected_name} features, {expected_dim}" if expected_name else f"{expected_dim}"
        raise InputError(checkpoint, "feature width",
                         f"the model was trained on {trained} per window but {extractor} produces {produces} per "
                         "window; pick the extractor the model was trained with")


def build_extractor(name: str, *, expected_dim: int | None = None,
                    model_checkpoint: str | PathLike[str] | None = None, expected_name: str | None = None,
                    **options: object) -> FeatureExtractor:
    """Build the extractor registered as ``name`` with ``options`` and, when ``expected_dim`` is given (the input
    width of the model in ``model_checkpoint``, trained on the features ``expected_name`` when known), check its
    output width and feature set. Raises before any video is touched."""
    extractor = EXTRACTORS.get(name)(**options)
    if expected_dim is not None:
        extractor.check_width(expected_dim, model_checkpoint, expected_name)
    return extractor
