"""EgoVLP's video tower: the divided space-time TimeSformer of Frozen-in-Time plus the projection into the joint
video-text space.

Reproduces showlab/EgoVLP model/video_transformer.py (``SpaceTimeTransformer``, ``SpaceTimeBlock``,
``VarAttention``, ``VideoPatchEmbed``) with ``attention_style="frozen-in-time"`` and model/model.py
``FrozenInTime.compute_video`` (``vid_proj`` = Sequential(Linear)). Parameter names follow the released checkpoint
(``video_model.*``, ``vid_proj.0.*``), so its state dict loads strictly.

Shapes: input x float [B, F, 3, R, R] (F <= ``num_frames``, R = ``img_size``), tokens [B, 1 + F * n, E] with
n = (R / patch)^2 patches per frame, frame-major after the CLS token; output [B, projection_dim].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["SpaceTimeConfig", "SpaceTimeTransformer", "EgoVLPVideoTower"]


@dataclass(frozen=True)
class SpaceTimeConfig:
    """Sizes of the video tower. Defaults: the released EgoVLP (ViT-B/16 at 224, 16 temporal rows, 256-d)."""

    img_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    num_frames: int = 16
    mlp_ratio: float = 4.0
    projection_dim: int = 256

    @property
    def patches_per_frame(self) -> int:
        return (self.img_size // self.patch_size) ** 2


def _attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """softmax(q k^T) v over the last two dims (q already scaled)."""
    return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v


class DividedAttention(nn.Module):
    """Multi-head attention over one axis of the token grid (EgoVLP ``VarAttention``).

    The CLS query attends to every token. Each patch query attends to the CLS token and to the patches that share
    its frame (``axis="space"``) or its position in every frame (``axis="time"``).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, frames: int, axis: str) -> Tensor:
        batch, tokens, dim = x.shape
        heads = self.num_heads
        q, k, v = (t.reshape(batch, tokens, heads, dim // heads).transpose(1, 2).reshape(batch * heads, tokens, -1)
                   for t in self.qkv(x).chunk(3, dim=-1))  # [(B h), N, d], heads split as (h d)
        q = q * self.scale
        cls_out = _attend(q[:, :1], k, v)
        patches = (tokens - 1) // frames
        grid = (batch * heads, frames, patches, dim // heads)

        def group(t: Tensor) -> Tensor:  # [(B h), 1 + F n, d] -> time: [(B h n), F, d]; space: [(B h F), n, d]
            t = t[:, 1:].reshape(grid)
            if axis == "time":
                return t.transpose(1, 2).reshape(-1, frames, grid[-1])
            return t.reshape(-1, patches, grid[-1])

        q_, k_, v_ = group(q), group(k), group(v)
        repeat = q_.shape[0] // (batch * heads)
        k_ = torch.cat([k[:, :1].repeat_interleave(repeat, dim=0), k_], dim=1)
        v_ = torch.cat([v[:, :1].repeat_interleave(repeat, dim=0), v_], dim=1)
        out = _attend(q_, k_, v_)
        if axis == "time":
            out = out.reshape(batch * heads, patches, frames, -1).transpose(1, 2)
        out = out.reshape(batch * heads, frames * patches, -1)
        out = torch.cat([cls_out, out], dim=1)
        out = out.reshape(batch, heads, tokens, -1).transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj(out)


class Mlp(nn.Module):
    """Linear -> exact GELU -> Linear (timm ``Mlp``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SpaceTimeBlock(nn.Module):
    """``t = x + timeattn(norm3(x))``; ``x = x + attn(norm1(t))`` (the residual is the block input, the
    frozen-in-time style); ``x = x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = DividedAttention(dim, num_heads)
        self.timeattn = DividedAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: Tensor, frames: int) -> Tensor:
        time_residual = x + self.timeattn(self.norm3(x), frames, "time")
        x = x + self.attn(self.norm1(time_residual), frames, "space")
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Per-frame Conv2d patch embedding, kernel = stride = patch (EgoVLP ``VideoPatchEmbed``)."""

    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """[B, F, 3, R, R] -> [B, F * n, E], frame-major."""
        batch = x.shape[0]
        return self.proj(x.flatten(0, 1)).flatten(2).transpose(1, 2).reshape(batch, -1, self.proj.out_channels)


class SpaceTimeTransformer(nn.Module):
    """The TimeSformer trunk: output the CLS token after the final LayerNorm, [B, E]."""

    def __init__(self, config: SpaceTimeConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.patch_embed = PatchEmbed(config.patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.patches_per_frame + 1, dim))
        self.temporal_embed = nn.Parameter(torch.zeros(1, config.num_frames, dim))
        self.blocks = nn.ModuleList(SpaceTimeBlock(dim, config.num_heads, config.mlp_ratio)
                                    for _ in range(config.depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        frames = x.shape[1]
        if frames > self.config.num_frames:
            raise ValueError(f"the model has {self.config.num_frames} temporal rows, got {frames} frames")
        tokens = self.patch_embed(x)
        patches = self.config.patches_per_frame
        # CLS: cls_token + pos_embed[0]; patch (f, p): pos_embed[1 + p] + temporal_embed[f] (summed first)
        patch_pos = self.pos_embed[:, 1:].repeat(1, frames, 1) + self.temporal_embed[:, :frames].repeat_interleave(
            patches, dim=1)
        position = torch.cat([self.pos_embed[:, :1], patch_pos], dim=1)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1) + position
        for block in self.blocks:
            x = block(x, frames)
        return self.norm(x)[:, 0]


class EgoVLPVideoTower(nn.Module):
    """``vid_proj(video_model(x))``: [B, F, 3, R, R] -> [B, projection_dim] (no normalisation, no activation)."""

    def __init__(self, config: SpaceTimeConfig) -> None:
        super().__init__()
        self.config = config
        self.video_model = SpaceTimeTransformer(config)
        self.vid_proj = nn.Sequential(nn.Linear(config.embed_dim, config.projection_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.vid_proj(self.video_model(x))
