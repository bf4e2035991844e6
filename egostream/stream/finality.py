"""Which nodes of the hierarchy are final: no row pushed later can change them.

Notation, per level ``d`` of a stream of ``n`` rows (node ``k`` of level ``d`` is the even-kept node of row
``2**d * k``; level ``d`` has ``ceil(n / 2**d)`` nodes):

* ``inputs_final[d]``: how many of the level's block INPUTS are final (a prefix ``0 .. inputs_final - 1``). Level 0's
  inputs are the projected rows, final as soon as they arrive: ``inputs_final[0] = n``.
* ``outputs_final[d]``: how many of the level's OUTPUTS (the :class:`~egostream.backbone.graphs.LevelGraphs` node
  features) are final.

Rules (``R`` = :func:`neighbour_reach`, the largest index offset joined by a level edge, the same at every level
because the radius is applied to ``pos / 2**d``; ``L`` = TDGC layers per level):

1. One TDGC layer: node ``i`` aggregates the MEAN over its neighbours ``j`` with ``|i - j| <= R``; its value is fixed
   once every one of them exists and is final (a neighbour that does not exist yet would change the mean's count).
   So a layer turns ``f`` final inputs into ``max(0, f - R)`` final outputs; the block (``L`` layers, then
   point-wise LayerNorm / LeakyReLU / residual) into ``outputs_final = max(0, inputs_final - L * R)``.
2. Pooling: pooled node ``i`` is ``(x_{i-1} + 2 x_i + x_{i+1}) / 4``, but ``(x_{i-1} + 2 x_i) / 3`` while ``i`` is
   the stream's last node, so it is final once ``x_{i+1}`` is final (``"max"`` pooling: the same neighbourhood;
   ``"video_subsampling"``: once ``x_i`` is). Keeping the even nodes ``2k``:
   ``inputs_final[d+1] = max(0, (outputs_final[d] - pool_reach + 1) // 2)`` with ``pool_reach`` 1 (0 for
   subsampling).

With the Ego4D grid (0.533 s rows, radius 2 s: ``R = 3``, ``L = 2``) this gives ``outputs_final[0] = n - 6``,
``inputs_final[1] = (n - 6) // 2``, ``outputs_final[1] = (n - 6) // 2 - 6``, ...: about 6 + 12 * (2**d - 1) rows of
lag at level ``d``, i.e. about 12 non-final nodes at every level above 0, independent of the stream length. The
rules are tight: the first non-final node of every level does change with the next rows (tested).
"""
from __future__ import annotations

import math

__all__ = ["neighbour_reach", "block_final_count", "pooled_final_count", "pool_reach", "level_final_counts"]

# Relative margin on radius / spacing: positions late in a long stream are float32 seconds (ulp 5e-4 s at 2 hours),
# so an offset within a hair of the radius might be joined; counting it keeps finality conservative (the engine
# also checks every edge it adds against the reach).
_REACH_MARGIN = 1e-3


def neighbour_reach(radius_s: float, row_period_s: float) -> int:
    """Largest index offset ``|i - j|`` that a level edge can join: offsets ``k`` with ``k * period < radius``.

    Conservative where ``radius / period`` is within :data:`_REACH_MARGIN` of an integer (3 for 2 s and 16/30 s).
    """
    if not radius_s > 0 or not row_period_s > 0:
        raise ValueError(f"radius_s and row_period_s must be positive, got {radius_s} and {row_period_s}")
    return math.floor(radius_s / row_period_s * (1.0 + _REACH_MARGIN))


def block_final_count(inputs_final: int, num_layers: int, reach: int) -> int:
    """Final outputs of a level block of ``num_layers`` TDGC layers, given its ``inputs_final`` final inputs."""
    return max(0, inputs_final - num_layers * reach)


def pool_reach(pool: str) -> int:
    """Index offset of the furthest node the between-level pooling reads (1 for mean/max, 0 for subsampling)."""
    return 0 if pool == "video_subsampling" else 1


def pooled_final_count(outputs_final: int, pool: str) -> int:
    """Final block inputs of the next level, given ``outputs_final`` final outputs of this level."""
    return max(0, (outputs_final - pool_reach(pool) + 1) // 2)


def level_final_counts(num_rows: int, depth: int, num_layers: int, reach: int, pool: str) -> tuple[int, ...]:
    """Final node features per level (``outputs_final[d]`` for ``d = 0 .. depth-1``) after ``num_rows`` rows."""
    counts = []
    inputs_final = num_rows
    for _ in range(depth):
        outputs_final = block_final_count(inputs_final, num_layers, reach)
        counts.append(outputs_final)
        inputs_final = pooled_final_count(outputs_final, pool)
    return tuple(counts)
