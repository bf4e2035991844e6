"""The streaming engine: feature rows in, the per-level node features of the sliding hierarchy out.

Usage::

    engine = StreamEngine(backbone.eval(), load_stream_config())
    for row in feature_rows:                       # [D] (or [m, D] for a batch of m rows)
        stats = engine.push(row)                   # PushStats: rows so far, node updates, milliseconds
        graphs = engine.graphs()                   # LevelGraphs over the horizon (absolute indices, stream seconds)
        final = engine.final_mask(graphs)          # [N_all] bool: nodes no future row can change

Contract (``shared/DESIGN.md`` §4):

* **Prefix exactness**: after ``n`` rows, every node feature at every level equals the offline
  :class:`~egostream.backbone.hierarchy.HierarchicalBackbone` on rows ``[0, n)`` (float32, to 1e-5; pooling parity
  counted from the stream start), whatever the push sizes; evicted nodes aside, this holds for the retained nodes
  of a stream longer than the horizon too (they keep their full-prefix values).
* **Finality**: node ``k`` of level ``d`` is final iff ``k < final_counts[d]`` (rule in
  :mod:`egostream.stream.finality`); only the non-final frontier is recomputed per push, so per-push work does not
  grow with the stream (``PushStats.node_updates``).
* **Bounded memory**: final nodes anchored before the horizon (``config.horizon_rows`` rows back) are evicted once
  no future push reads them; :meth:`StreamEngine.graphs` covers the horizon.

* **Device**: the state lives on the backbone's device; rows pushed from elsewhere (host rows on a CUDA model) are
  copied there. A push copies no tensor back to the host; it reads back at most :func:`host_reads_per_push` scalars:
  the finiteness check of the rows and, per level with a block, the emptiness and reach checks of the new edges, the
  start of the block's edge window, the edges to evict (data-dependent sizes that decide what runs next) and whether
  the window's edge lengths all have their distance gates cached (:mod:`egostream.stream.edge_gates`; this one
  check replaces the two sizes the layers' ``torch.unique`` of the lengths synchronised on).

``config.engine_mode = "recompute"`` swaps in :class:`~egostream.stream.recompute.RecomputeHierarchy` (the offline
backbone over the horizon at every push), the benchmark baseline.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from egostream.backbone.graphs import LevelGraphs
from egostream.backbone.hierarchy import HierarchicalBackbone
from egostream.device import module_device
from egostream.errors import InputError
from egostream.stream.config import StreamConfig
from egostream.stream.finality import level_final_counts, neighbour_reach
from egostream.stream.hierarchy_state import IncrementalHierarchy
from egostream.stream.recompute import RecomputeHierarchy

__all__ = ["StreamEngine", "PushStats", "host_reads_per_push"]


def host_reads_per_push(depth: int) -> int:
    """The most device scalars one incremental push reads back to the host (see the module docstring)."""
    return 1 + 5 * depth


@dataclass(frozen=True)
class PushStats:
    """What one :meth:`StreamEngine.push` did.

    Attributes:
        first_row: absolute index of the first row of the push.
        num_rows: rows pushed.
        total_rows: rows received since the stream start (after this push).
        node_updates: level nodes (re)computed by the level blocks in this push.
        elapsed_ms: wall-clock milliseconds spent in the push.
    """

    first_row: int
    num_rows: int
    total_rows: int
    node_updates: int
    elapsed_ms: float


class StreamEngine:
    """The sliding hierarchical graph of one stream (see the module docstring).

    Args:
        backbone: the model; must be in eval mode (dropout off), it is used under ``torch.no_grad``.
        config: row grid, horizon and engine mode.
    """

    def __init__(self, backbone: HierarchicalBackbone, config: StreamConfig | None = None) -> None:
        if backbone.training:
            raise ValueError("StreamEngine needs the backbone in eval mode (call backbone.eval()): "
                             "active dropout would make no node final")
        self.backbone = backbone
        self.config = config if config is not None else StreamConfig()
        self.device = module_device(backbone)
        self._state: IncrementalHierarchy | RecomputeHierarchy = (
            IncrementalHierarchy(backbone, self.config) if self.config.engine_mode == "incremental"
            else RecomputeHierarchy(backbone, self.config))
        self._reach = neighbour_reach(backbone.cfg.radius_s, self.config.row_period_s)
        self.num_pushes = 0
        self.node_updates_total = 0
        self.last_push: PushStats | None = None

    @property
    def depth(self) -> int:
        """Levels of the hierarchy."""
        return self.backbone.depth

    @property
    def num_rows(self) -> int:
        """Rows received since the stream start."""
        return self._state.num_rows

    @property
    def stream_time_s(self) -> float:
        """Seconds of stream covered by the rows received: ``num_rows * row_period_s``."""
        return self.num_rows * self.config.row_period_s

    @property
    def horizon_first_row(self) -> int:
        """Absolute index of the first row inside the horizon: ``max(0, num_rows - horizon_rows)``."""
        return max(0, self.num_rows - self.config.horizon_rows)

    def push(self, rows: Tensor) -> PushStats:
        """Append the next feature row(s): ``[D]``, ``[m, D]`` or ``[m, S, D]`` with ``S * D == input_size``."""
        rows = self._check_rows(rows)
        first_row = self.num_rows
        began = time.perf_counter()
        with torch.no_grad():
            if isinstance(self._state, IncrementalHierarchy):
                updates = self._state.push(self.backbone.proj(rows.unsqueeze(1) if rows.dim() == 2 else rows))
            else:
                updates = self._state.push(rows)
        stats = PushStats(first_row=first_row, num_rows=len(rows), total_rows=self.num_rows, node_updates=updates,
                          elapsed_ms=(time.perf_counter() - began) * 1e3)
        self.num_pushes += 1
        self.node_updates_total += updates
        self.last_push = stats
        return stats

    def _check_rows(self, rows: Tensor) -> Tensor:
        if not isinstance(rows, Tensor) or not rows.is_floating_point():
            raise InputError(None, "rows", f"expected a floating-point tensor, got {getattr(rows, 'dtype', rows)!r}")
        if rows.dim() == 1:
            rows = rows.unsqueeze(0)
        width = rows[0].numel() if len(rows) else 0
        if rows.dim() not in (2, 3) or len(rows) == 0 or width != self.backbone.cfg.input_size:
            raise InputError(None, "rows", f"expected [D], [m, D] or [m, S, D] rows with S * D = "
                             f"{self.backbone.cfg.input_size} and m >= 1, got shape {tuple(rows.shape)}")
        if not bool(torch.isfinite(rows).all()):
            raise InputError(None, "rows", f"rows {self.num_rows}.. contain NaN or infinite values")
        return rows.to(device=self.device, dtype=torch.float32)

    def graphs(self, first_row: int | None = None) -> LevelGraphs:
        """Every level's nodes anchored at rows ``>= first_row`` (default: the horizon's first row), as one video.

        Node ``k`` of level ``d`` is anchored at row ``2**d * k``; ``indices`` are these absolute ``k``, ``pos`` the
        stream seconds ``(0.5 + 2**d k) * stride / fps``, ``video`` all 0. The tensors are copies.
        Raises ``ValueError`` for a ``first_row`` before the horizon (evicted) or before any row was pushed.
        """
        return self._state.graphs(self._check_first_row(first_row))

    def top_features(self, first_row: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(x [n, F], pos [n] s, indices [n])`` after the last pooling (the backbone's ``final_x``)."""
        return self._state.top_features(self._check_first_row(first_row))

    def _check_first_row(self, first_row: int | None) -> int:
        if self.num_rows == 0:
            raise ValueError("no rows pushed yet")
        if first_row is None:
            return self.horizon_first_row
        if not 0 <= first_row:
            raise ValueError(f"first_row must be >= 0, got {first_row}")
        if first_row < self.horizon_first_row:
            raise ValueError(f"row {first_row} is before the horizon (first retained row {self.horizon_first_row})")
        return first_row

    @property
    def final_counts(self) -> tuple[int, ...]:
        """Per level, how many nodes are final: node ``k`` of level ``d`` is final iff ``k < final_counts[d]``."""
        return level_final_counts(self.num_rows, self.depth, self.backbone.cfg.n_layers, self._reach,
                                  self.backbone.cfg.pool)

    @property
    def node_counts(self) -> tuple[int, ...]:
        """Nodes per level since the stream start: ``ceil(num_rows / 2**d)``."""
        return tuple(-(-self.num_rows // 2 ** d) for d in range(self.depth))

    def final_mask(self, graphs: LevelGraphs) -> Tensor:
        """``[N_all]`` bool: which nodes of ``graphs`` (from :meth:`graphs`) are final."""
        counts = torch.tensor(self.final_counts, dtype=torch.long, device=graphs.indices.device)
        return graphs.indices < counts[graphs.depth]
