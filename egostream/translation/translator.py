"""The translator: tokens of every source task's view of every node, a transformer encoder over them, the translated
tokens of the primary task, and how much attention the primary task paid to each source task.

EgoT2-s (facebookresearch/EgoT2@686c305:HOI/models/pnr/video_model_transfer_3task.py
``TaskFusionMFTransformer3TaskDropout``): each task-specific feature goes through its own ``nn.Linear`` to width
``d`` and a dropout; the concatenated sequence goes through a shared ``LayerNorm``, a learned position embedding is
added, and an ``nn.TransformerEncoder`` (``nhead=8``, ``dim_feedforward=2 d``, ``batch_first``) translates it.
Here the sequence of one video holds ``K x n`` tokens (``K`` source tasks, ``n`` level-0 nodes) and EgoT2's learned
position embedding is split into a learned task embedding (``[K, d]``) plus a fixed sinusoidal encoding of the node's
time, in seconds before the newest node of the video, so the same weights serve clips of any length and a stream
of any duration. EgoT2 averages all output tokens into one head; here the primary task's head reads the translated
tokens of the primary task, one per node, so its outputs keep the task's own type.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from egostream.translation.config import TranslationConfig
from egostream.translation.sources import SourceViews

__all__ = ["time_encoding", "TokenBuilder", "Translation", "TaskTranslator"]


def time_encoding(seconds: Tensor, width: int, base: float = 10000.0) -> Tensor:
    """Sinusoidal encoding ``[n, width]`` of times ``[n]`` in seconds: channels ``2i`` / ``2i + 1`` are the sine /
    cosine of ``seconds * base ** (-2 i / width)``."""
    rates = torch.exp(torch.arange(0, width, 2, dtype=torch.float32, device=seconds.device)
                      * (-math.log(base) / width))
    angles = seconds.to(torch.float32)[:, None] * rates[None, :]
    return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(len(seconds), width)


class TokenBuilder(nn.Module):
    """Per source task and node: ``LayerNorm(Dropout(Linear_t(view)))`` plus the learned embedding of task ``t``.

    The time encoding is added by :class:`TaskTranslator` (it depends on the newest node, so a cached token of a
    final node stays valid as the stream grows).

    Args:
        widths: source task -> width of its view, in token order.
        d_model: token width ``d``.
        dropout: dropout on each projected view (training only).
    """

    def __init__(self, widths: Mapping[str, int], d_model: int, dropout: float) -> None:
        super().__init__()
        self.tasks = list(widths)
        self.projections = nn.ModuleDict({task: nn.Linear(width, d_model) for task, width in widths.items()})
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)
        self.task_embedding = nn.Parameter(torch.randn(len(self.tasks), d_model) * 0.02)

    def forward(self, task: str, view: Tensor) -> Tensor:
        """Tokens ``[n, d]`` of source ``task`` from its view ``[n, F_t]`` (no time encoding yet)."""
        k = self.tasks.index(task)
        return self.norm(self.dropout(self.projections[task](view))) + self.task_embedding[k]


@dataclass
class Translation:
    """The translator's output for the level-0 nodes of a batch.

    Attributes:
        tokens: ``[N0, d]`` translated tokens of the primary task, one per node (the views' node order).
        attention: ``[B, K]`` per video, the share of the attention the primary task's tokens paid to each source
            task's tokens (mean over layers, heads and the primary tokens; rows sum to 1), or ``None`` when not
            asked for.
        tasks: the source tasks (columns of ``attention``).
    """

    tokens: Tensor
    attention: Tensor | None
    tasks: list[str]

    def attention_report(self, video: int = 0) -> dict[str, float]:
        """Source task -> share of the primary task's attention, for one video."""
        if self.attention is None:
            raise ValueError("the translation was run without report=True")
        return {task: float(share) for task, share in zip(self.tasks, self.attention[video].tolist())}


class TaskTranslator(nn.Module):
    """Tokens, encoder and the primary task's translated tokens (see the module docstring).

    Args:
        widths: source task -> view width, in token order.
        primary: the primary task (one of ``widths``).
        config: sizes and dropout.
    """

    def __init__(self, widths: Mapping[str, int], primary: str, config: TranslationConfig) -> None:
        super().__init__()
        if primary not in widths:
            raise ValueError(f"the primary task {primary!r} is not a source task ({list(widths)})")
        self.primary = primary
        self.config = config
        self.tokens = TokenBuilder(widths, config.d_model, config.feature_dropout)
        layer = nn.TransformerEncoderLayer(config.d_model, config.num_heads, dim_feedforward=2 * config.d_model,
                                           dropout=config.dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)

    @property
    def tasks(self) -> list[str]:
        return self.tokens.tasks

    def forward(self, views: SourceViews, *, report: bool = False,
                base_tokens: Mapping[str, Tensor] | None = None) -> Translation:
        """Translate the level-0 nodes of ``views``.

        Args:
            views: every source task's view of the nodes.
            report: also compute the attention shares (one extra attention pass per layer).
            base_tokens: precomputed :class:`TokenBuilder` outputs per task (``[N0, d]``, e.g. cached tokens of
                final stream nodes); ``views.features`` is not read then.
        """
        tasks = self.tasks
        num_tasks, d = len(tasks), self.config.d_model
        video, pos, num_videos = views.video, views.pos, views.num_videos
        n0 = len(video)
        counts = torch.bincount(video, minlength=num_videos)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(n0, device=video.device) - starts[video]
        n_max = int(counts.max()) if n0 else 0
        newest = torch.full((num_videos,), -math.inf, device=pos.device).scatter_reduce(0, video, pos, "amax")
        timing = time_encoding(newest[video] - pos, d, self.config.time_base_s)
        sequence = pos.new_zeros(num_videos, num_tasks * n_max, d)
        padding = torch.ones(num_videos, num_tasks * n_max, dtype=torch.bool, device=pos.device)
        for k, task in enumerate(tasks):
            tokens = base_tokens[task] if base_tokens is not None else self.tokens(task, views.features[task])
            sequence[video, k * n_max + slot] = tokens + timing
            padding[video, k * n_max + slot] = False
        primary_slot = tasks.index(self.primary) * n_max + slot
        shares = pos.new_zeros(num_videos, num_tasks) if report else None
        x = sequence
        for layer in self.encoder.layers:
            if shares is not None:
                shares += self._shares(layer, x, padding, video, primary_slot, n_max, num_tasks)
            x = layer(x, src_key_padding_mask=padding)
        attention = shares / len(self.encoder.layers) if shares is not None else None
        return Translation(x[video, primary_slot], attention, list(tasks))

    @staticmethod
    def _shares(layer: nn.TransformerEncoderLayer, x: Tensor, padding: Tensor, video: Tensor, primary_slot: Tensor,
                n_max: int, num_tasks: int) -> Tensor:
        """``[B, K]`` share of the layer's attention (head mean) from the primary tokens to each task's tokens."""
        _, weights = layer.self_attn(x, x, x, key_padding_mask=padding, need_weights=True,
                                     average_attn_weights=True)
        rows = weights[video, primary_slot]                               # [N0, K * n_max]
        per_task = rows.reshape(len(rows), num_tasks, n_max).sum(-1)      # [N0, K]
        total = per_task.new_zeros(int(padding.shape[0]), num_tasks).index_add_(0, video, per_task)
        count = torch.bincount(video, minlength=int(padding.shape[0])).clamp(min=1)
        return total / count[:, None]
