"""A tiny deterministic extractor for tests, demos and CPU benchmarks: a fixed random projection of coarse colours."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from egostream.backbone.extractors.base import EXTRACTORS, FeatureExtractor

__all__ = ["PixelProjectionExtractor"]


@EXTRACTORS.register("pixel_projection")
class PixelProjectionExtractor(FeatureExtractor):
    """Row = P^T (mean frame pooled to ``grid`` x ``grid`` cells, scaled to [-0.5, 0.5], flattened).

    The window's frames are averaged, average-pooled to a ``grid`` x ``grid`` RGB image (3 * grid^2 values) and
    multiplied by a fixed Gaussian matrix P [3 * grid^2, dim] with entries N(0, 1 / (3 * grid^2)), drawn on the CPU
    from ``seed`` so the features are identical on every machine and device. Colour and coarse layout survive, so
    the synthetic videos' labels stay separable; no weights, no download.
    """

    def __init__(self, dim: int = 32, grid: int = 8, seed: int = 0, frames_per_window: int | None = None,
                 device: str | torch.device = "auto", batch_size: int = 64) -> None:
        super().__init__(frames_per_window, device, batch_size)
        if dim < 1 or grid < 1:
            raise ValueError("dim and grid must be positive")
        self.dim = dim
        self.grid = grid
        inputs = 3 * grid * grid
        generator = torch.Generator().manual_seed(seed)
        self.projection = (torch.randn(inputs, dim, generator=generator) / inputs ** 0.5).to(self.device)

    def encode(self, clips: torch.Tensor) -> torch.Tensor:
        mean_frame = clips.float().mean(dim=1).permute(0, 3, 1, 2) / 255.0  # [B, 3, H, W]
        cells = F.adaptive_avg_pool2d(mean_frame, self.grid).flatten(1) - 0.5  # [B, 3 * grid^2]
        return cells @ self.projection
