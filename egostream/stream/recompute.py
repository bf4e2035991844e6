"""The recompute baseline: the offline backbone over the retained horizon of rows, rerun at every push.

This is what a streaming system without incremental state does; :mod:`benchmarks.stream_step` compares it with
:class:`~egostream.stream.hierarchy_state.IncrementalHierarchy`. It keeps the last ``horizon_rows`` raw feature rows
and runs :class:`~egostream.backbone.hierarchy.HierarchicalBackbone` on them with absolute positions and indices (so
node numbering and pooling parity are those of the stream). Until the horizon is full this equals the offline model
on the whole prefix; afterwards the nodes near the horizon's start differ from it, because the model then sees a
truncated video.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from egostream.backbone.graphs import LevelGraphs, VideoBatch
from egostream.backbone.hierarchy import HierarchicalBackbone
from egostream.device import module_device
from egostream.stream.config import StreamConfig
from egostream.stream.row_buffer import RowBuffer

__all__ = ["RecomputeHierarchy"]


class RecomputeHierarchy:
    """Offline backbone over the last ``config.horizon_rows`` rows at every push.

    Args:
        backbone: the model, in eval mode.
        config: the row grid and horizon.
    """

    def __init__(self, backbone: HierarchicalBackbone, config: StreamConfig) -> None:
        self.backbone = backbone
        self.config = config
        self.num_rows = 0
        self._rows: RowBuffer | None = None
        self._graphs: LevelGraphs | None = None
        self.device = module_device(backbone)
        self._final_x = torch.empty(0, backbone.hidden_size, device=self.device)

    @property
    def first_row(self) -> int:
        """Absolute index of the oldest retained row."""
        return self.num_rows - (0 if self._rows is None else len(self._rows))

    @torch.no_grad()
    def push(self, rows: Tensor) -> int:
        """Append ``[m, D]`` (or ``[m, S, D]``) raw feature rows and rerun the backbone; returns the node updates
        (every level node of the horizon)."""
        if self._rows is None:
            self._rows = RowBuffer(tuple(rows.shape[1:]), torch.float32, capacity=2 * self.config.horizon_rows,
                                   device=self.device)
        self._rows.append(rows)
        self.num_rows += len(rows)
        self._rows.drop_front(max(0, len(self._rows) - self.config.horizon_rows))
        first = self.first_row
        indices = torch.arange(first, self.num_rows, device=self.device)
        batch = VideoBatch(self._rows.rows, self.config.row_positions_s(first, len(indices)).to(self.device),
                           torch.zeros_like(indices), indices, 1)
        self._final_x, self._graphs = self.backbone(batch)
        return len(self._graphs.x)

    def graphs(self, first_row: int) -> LevelGraphs:
        """The last run's nodes anchored at rows ``>= first_row`` (node ``k`` of level ``d``: row ``2**d * k``)."""
        if self._graphs is None:
            raise RuntimeError("no rows pushed yet")
        graphs = self._graphs
        keep = graphs.indices * (2 ** graphs.depth) >= first_row
        return LevelGraphs(x=graphs.x[keep], pos=graphs.pos[keep], video=graphs.video[keep],
                           depth=graphs.depth[keep], extent=graphs.extent[keep], indices=graphs.indices[keep],
                           num_videos=1)

    def top_features(self, first_row: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(x, pos, indices)`` of the last run's ``final_x`` nodes anchored at rows ``>= first_row``."""
        step = 2 ** self.backbone.depth
        start = max(math.ceil(first_row / step), math.ceil(self.first_row / step))
        indices = torch.arange(start, math.ceil(self.num_rows / step), device=self.device)
        offset = math.ceil(self.first_row / step)
        return (self._final_x[start - offset:],
                self.config.row_positions_s(start * step, len(indices), step=step).to(self.device), indices)
