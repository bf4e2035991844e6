"""User-exported video encoders (EgoVLP, Omnivore, ...) loaded as TorchScript.

Input convention (what the exported module's ``forward`` must accept): float32 [B, C=3, T, H, W] — B windows,
RGB channels, T = ``frames_per_window`` frames sampled uniformly from each window, H = W = ``image_size`` — each
frame resized on its shorter side and centre-cropped (:func:`~egostream.backbone.extractors.base.prepare_frames`),
scaled to [0, 1] and normalised with ``mean``/``std`` (ImageNet statistics by default, as EgoVLP and Omnivore use).
Output: float [B, D], one feature row per window. Export with, e.g.,
``torch.jit.trace(encoder, torch.zeros(1, 3, 16, 224, 224)).save("encoder.pt")``.

The module is loaded and run once on a zero clip when the extractor is built, so a missing file, a file that is not
TorchScript, a module that rejects the input convention or returns another shape fails before the stream starts.
"""
from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import torch

from egostream.backbone.extractors.base import (EXTRACTORS, IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor,
                                                prepare_frames)
from egostream.errors import InputError

__all__ = ["TorchScriptExtractor"]


@EXTRACTORS.register("torchscript")
class TorchScriptExtractor(FeatureExtractor):
    """Runs the TorchScript video encoder saved at ``checkpoint`` on [B, 3, T, S, S] clips (module doc)."""

    def __init__(self, checkpoint: str | PathLike[str], frames_per_window: int = 16, image_size: int = 224,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 device: str | torch.device = "auto", batch_size: int = 4) -> None:
        super().__init__(frames_per_window, device, batch_size)
        self.checkpoint = Path(checkpoint)
        self.image_size = image_size
        self.mean, self.std = tuple(mean), tuple(std)
        if not self.checkpoint.is_file():
            raise InputError(self.checkpoint, "checkpoint", "no such TorchScript file")
        try:
            self.module = torch.jit.load(str(self.checkpoint), map_location=self.device).eval()
        except (RuntimeError, ValueError) as error:
            raise InputError(self.checkpoint, "checkpoint", f"not a TorchScript module: {error}") from error
        self.dim = self._probe_width()

    def _probe_width(self) -> int:
        shape = (1, 3, self.frames_per_window, self.image_size, self.image_size)
        try:
            with torch.no_grad():
                output = self.module(torch.zeros(shape, device=self.device))
        except Exception as error:  # TorchScript raises torch.jit.Error and friends for any failing op
            raise InputError(self.checkpoint, "input", f"the module rejects a float [B, 3, T, H, W] clip of shape "
                                                       f"{list(shape)}: {error}") from error
        if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[0] != 1:
            got = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise InputError(self.checkpoint, "output", f"expected one feature row per clip ([1, D]), got {got}")
        return int(output.shape[1])

    def encode(self, clips: torch.Tensor) -> torch.Tensor:
        batch, frames = clips.shape[:2]
        images = prepare_frames(clips.flatten(0, 1), self.image_size, self.mean, self.std)  # [B*T, 3, S, S]
        video = images.view(batch, frames, *images.shape[1:]).transpose(1, 2)  # [B, 3, T, S, S]
        return self.module(video.contiguous())
