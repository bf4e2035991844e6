"""Omnivore's video trunk (Swin3D) as Ego4D's ``omnivore_video_swinl`` features were made, from the released files.

The network is torchvision's :class:`~torchvision.models.video.swin_transformer.SwinTransformer3d` with its head
replaced by Identity: numerically the same network as Omnivore's ``SwinTransformer3D`` (omnivision/models/
swin_transformer.py in facebookresearch/omnivore), bit for bit on the fixture cases. The released checkpoint
(``swinL_In21k_checkpoint.torch``: ``{"trunk": ..., "heads": ...}``, loaded by omnivore/models/omnivore_model.py
``_omnivore_base``) is read as it is and its ``trunk`` keys are renamed by :func:`omnivore_to_torchvision_key`;
Ego4D replaces the heads by Identity (ego4d/features/models/omnivore.py ``load_model``), so they are not used.
Sizes are read from the tensors (embed dim, depths, heads, patch, window), so Swin-B, Swin-L and smaller test
models load the same way.

Pipeline per window (:mod:`~egostream.backbone.extractors.video_transforms`): the window's 32 frames at 30 fps,
``/ 255``, ImageNet normalisation, short side 256 (floor, bilinear, no antialias), centre crop 224 -> model input
float32 [B, 3, 32, 224, 224] -> feature [B, 8 * embed_dim] (1536 for Swin-L).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import torch
from torch import Tensor, nn

from egostream.backbone.extractors.base import EXTRACTORS, FeatureExtractor
from egostream.backbone.extractors.precision import PRECISIONS, autocast
from egostream.backbone.extractors.video_transforms import ego4d_omnivore_transform
from egostream.errors import InputError

__all__ = ["SwinConfig", "SWIN_ARCHS", "omnivore_to_torchvision_key", "build_swin3d", "load_omnivore_trunk",
           "OmnivoreExtractor"]


@dataclass(frozen=True)
class SwinConfig:
    """Swin3D sizes: patch (t, h, w), embed dim C (feature width 8 C), blocks and heads per stage, window."""

    patch_size: tuple[int, int, int] = (2, 4, 4)
    embed_dim: int = 192
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (6, 12, 24, 48)
    window_size: tuple[int, int, int] = (8, 7, 7)
    mlp_ratio: float = 4.0

    @property
    def dim(self) -> int:
        """Feature width: the channels of the last stage, ``embed_dim * 2 ** (stages - 1)``."""
        return self.embed_dim * 2 ** (len(self.depths) - 1)


#: Omnivore's builders (omnivore/models/omnivore_model.py ``omnivore_swinB`` / ``_omnivore_swinL``).
SWIN_ARCHS: dict[str, SwinConfig] = {
    "swin_b": SwinConfig(embed_dim=128, num_heads=(4, 8, 16, 32), window_size=(16, 7, 7)),
    "swin_l": SwinConfig(),
}

_BLOCK = re.compile(r"^layers\.(\d+)\.blocks\.(\d+)\.(.+)$")
_DOWNSAMPLE = re.compile(r"^layers\.(\d+)\.downsample\.(.+)$")
_MLP = {"mlp.fc1.": "mlp.0.", "mlp.fc2.": "mlp.3."}


def omnivore_to_torchvision_key(key: str) -> str | None:
    """The torchvision ``SwinTransformer3d`` key of an Omnivore ``trunk`` key; ``None`` for the RGB-D patch
    embedding (``depth_patch_embed.*``), which RGB video never uses. Stage i's blocks are ``features.<2i>``, its
    PatchMerging ``features.<2i+1>``; the MLP's ``fc1``/``fc2`` are ``mlp.0``/``mlp.3``."""
    if key.startswith("depth_patch_embed."):
        return None
    block = _BLOCK.match(key)
    if block:
        stage, index, rest = block.groups()
        for old, new in _MLP.items():
            if rest.startswith(old):
                rest = new + rest[len(old):]
        return f"features.{2 * int(stage)}.{index}.{rest}"
    downsample = _DOWNSAMPLE.match(key)
    if downsample:
        stage, rest = downsample.groups()
        return f"features.{2 * int(stage) + 1}.{rest}"
    return key


def build_swin3d(config: SwinConfig) -> nn.Module:
    """torchvision ``SwinTransformer3d`` of ``config`` with ``head = Identity`` (eval mode: stochastic depth off)."""
    from torchvision.models.video.swin_transformer import SwinTransformer3d

    model = SwinTransformer3d(patch_size=list(config.patch_size), embed_dim=config.embed_dim,
                              depths=list(config.depths), num_heads=list(config.num_heads),
                              window_size=list(config.window_size), mlp_ratio=config.mlp_ratio)
    model.head = nn.Identity()
    return model.eval()


def _window_from_index(path: Path, index: Tensor, table: Tensor) -> tuple[int, int, int]:
    """The window (Wt, Wh, Ww) behind a relative-position index [N, N] and table [(2Wt-1)(2Wh-1)(2Ww-1), heads],
    with square spatial windows (every released Swin3D)."""
    volume, entries = int(index.shape[0]), int(table.shape[0])
    found = []
    for depth in range(1, volume + 1):
        if volume % depth:
            continue
        side = math.isqrt(volume // depth)
        if side * side * depth == volume and (2 * depth - 1) * (2 * side - 1) ** 2 == entries:
            found.append((depth, side, side))
    if len(found) != 1:
        raise InputError(path, "trunk", f"cannot tell the attention window from a {volume}-token window and "
                                        f"{entries} relative positions; give window_size=[t,h,w]")
    return found[0]


def infer_swin_config(path: Path, trunk: Mapping[str, Tensor],
                      window_size: Sequence[int] | None = None) -> SwinConfig:
    """The :class:`SwinConfig` of an Omnivore ``trunk`` state dict, read from its tensor shapes."""
    try:
        proj = trunk["patch_embed.proj.weight"]  # [C, 3, pt, ph, pw]
        stages = 1 + max(int(m.group(1)) for m in map(_BLOCK.match, trunk) if m)
        depths = tuple(1 + max(int(m.group(2)) for m in map(_BLOCK.match, trunk) if m and int(m.group(1)) == s)
                       for s in range(stages))
        heads = tuple(int(trunk[f"layers.{s}.blocks.0.attn.relative_position_bias_table"].shape[1])
                      for s in range(stages))
        hidden = int(trunk["layers.0.blocks.0.mlp.fc1.weight"].shape[0])
        if window_size is None:
            window = _window_from_index(path, trunk["layers.0.blocks.0.attn.relative_position_index"],
                                        trunk["layers.0.blocks.0.attn.relative_position_bias_table"])
        else:
            window = tuple(int(v) for v in window_size)
    except (KeyError, ValueError) as error:
        raise InputError(path, "trunk", f"not an Omnivore Swin3D trunk ({error})") from error
    embed = int(proj.shape[0])
    return SwinConfig(tuple(int(v) for v in proj.shape[2:]), embed, depths, heads, window,  # type: ignore[arg-type]
                      hidden / embed)


def load_omnivore_trunk(path: str | PathLike[str], window_size: Sequence[int] | None = None
                        ) -> tuple[nn.Module, SwinConfig]:
    """The Omnivore video trunk in a released-layout file (``{"trunk", "heads", ...}``; extra top-level keys are
    ignored), as a torchvision ``SwinTransformer3d`` with Identity head, loaded strictly, eval mode."""
    file = Path(path)
    if not file.is_file():
        raise InputError(file, "weights", "no such Omnivore checkpoint file")
    try:
        content = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch/pickle raise many types for foreign files
        raise InputError(file, "weights", f"not a readable torch file: {type(error).__name__}: {error}") from error
    if not isinstance(content, Mapping) or not isinstance(content.get("trunk"), Mapping):
        raise InputError(file, "trunk", "expected the released Omnivore layout {'trunk': state dict, 'heads': ...}")
    trunk = content["trunk"]
    config = infer_swin_config(file, trunk, window_size)
    state = {new: value for key, value in trunk.items() if (new := omnivore_to_torchvision_key(key)) is not None}
    model = build_swin3d(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(file, "trunk", f"does not fit a Swin3D of {config}: missing {sorted(missing)[:3]}, "
                                        f"unexpected {sorted(unexpected)[:3]}")
    return model, config


@EXTRACTORS.register("omnivore")
class OmnivoreExtractor(FeatureExtractor):
    """Ego4D's ``omnivore_video_swinl`` features: one row per 32-frame window (stride 16, 30 fps), width
    ``8 * embed_dim`` (module doc).

    Args:
        weights: the released Omnivore checkpoint (``{"trunk", "heads"}``), e.g. ``swinL_In21k_checkpoint.torch``.
        arch: ``swin_b`` or ``swin_l`` with random weights (needs ``allow_random_weights``; benchmarks only).
        window_size: the attention window (t, h, w) when it cannot be read from the checkpoint.
        side_size / crop_size: short side after resizing, and the centre crop (Ego4D: 256 / 224).
        precision: ``float32`` (the reference) or ``bfloat16`` / ``float16`` autocast.
    """

    feature_name = "omnivore_video_swinl"
    window_frames = 32

    def __init__(self, weights: str | PathLike[str] | None = None, *, arch: str | None = None,
                 allow_random_weights: bool = False, window_size: Sequence[int] | None = None,
                 side_size: int = 256, crop_size: int = 224, precision: str = "float32",
                 device: str | torch.device = "auto", batch_size: int = 4) -> None:
        super().__init__(None, device, batch_size)
        if precision not in PRECISIONS:
            raise InputError(None, "precision", f"expected one of {', '.join(PRECISIONS)}, got {precision!r}")
        if weights is not None:
            model, self.config = load_omnivore_trunk(weights, window_size)
        elif arch in SWIN_ARCHS and allow_random_weights:
            self.config = SWIN_ARCHS[arch]
            model = build_swin3d(self.config)
        else:
            raise InputError(None, "weights", "give weights=<Omnivore checkpoint, e.g. swinL_In21k_checkpoint.torch>"
                                              f" (or arch={'|'.join(SWIN_ARCHS)} with allow_random_weights=true)")
        self.weights = None if weights is None else Path(weights)
        self.model = model.to(self.device).eval()
        self.dim = self.config.dim
        self.side_size, self.crop_size, self.precision = side_size, crop_size, precision

    def preprocess(self, clips: Tensor) -> Tensor:
        """uint8 [B, T, H, W, 3] -> float32 [B, 3, T, crop, crop] (Ego4D's transform, each window alone)."""
        return torch.stack([ego4d_omnivore_transform(clip, self.side_size, self.crop_size) for clip in clips])

    def forward_model(self, video: Tensor) -> Tensor:
        """Model input float32 [B, 3, T, S, S] -> features float32 [B, dim]."""
        with autocast(self.device, self.precision):
            return self.model(video).float()

    def encode(self, clips: Tensor) -> Tensor:
        return self.forward_model(self.preprocess(clips))
