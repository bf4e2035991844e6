"""The incremental, prefix-exact hierarchy: each push recomputes only the non-final frontier of every level.

For a stream of ``n`` rows, every level-``d`` node feature held here equals the offline
:class:`~egostream.backbone.hierarchy.HierarchicalBackbone` run on rows ``[0, n)`` (same modules, same weights, same
float32 arithmetic per node). A push of ``m`` rows:

1. projects the new rows (``backbone.proj``) into level 0's block inputs; they are final at once;
2. at each level ``d``: appends the level's new nodes and their edges, runs ``backbone.layers[d]`` on the trailing
   window ``[outputs_final - L * R, num_nodes)`` (the non-final nodes plus the ``L * R`` final nodes their ``L``
   TDGC layers read; outputs at the window's first ``L * R`` nodes see a truncated neighbourhood and are discarded),
   adds the residual, and rewrites the non-final outputs;
3. pools the level's trailing outputs as ``backbone.pool`` does, the kept rows only
   (:func:`~egostream.kernels.neighbour_pool.pool_even_rows`; absolute indices, so the even-index parity is counted
   from the stream start) into the next level's non-final block inputs;
4. advances the final counts (:mod:`egostream.stream.finality`), evicts the block inputs no future block run reads
   (older than the next run's window) and the final nodes older than the horizon that no future computation reads.

Every tensor of the state lives on the backbone's device (:func:`egostream.device.module_device`).

Pickled (a stream snapshot, :mod:`egostream.stream.snapshot`), the state leaves out the non-final block outputs: they
are what the last push's block run computed from inputs the state keeps, so unpickling runs those block windows
again (same inputs, edges and shapes: the same values) instead of storing them.

Work per push is ``O(levels * (m + frontier))``, the frontier being about ``12 + L * R`` nodes per level with the
Ego4D grid, independent of how long the stream has run.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from egostream.backbone.graphs import LevelGraphs
from egostream.device import module_device
from egostream.kernels.gated_messages import warm_up as warm_up_message_passing
from egostream.kernels.neighbour_pool import pool_even_rows, warm_up as warm_up_pooling
from egostream.kernels.stacked_linear import StackedLinear
from egostream.backbone.hierarchy import HierarchicalBackbone, LevelBlock
from egostream.stream.config import StreamConfig
from egostream.stream.edge_gates import EdgeGates
from egostream.stream.finality import block_final_count, neighbour_reach, pooled_final_count
from egostream.stream.level_state import LevelState
from egostream.stream.row_buffer import RowBuffer

__all__ = ["IncrementalHierarchy", "stack_level_graphs"]


def stack_level_graphs(levels: list[tuple[Tensor, Tensor, Tensor]]) -> LevelGraphs:
    """One-video :class:`LevelGraphs` from per-level ``(x [n_d, F], pos [n_d] s, indices [n_d])``, level-major."""
    depth = torch.cat([torch.full((len(pos),), d, dtype=torch.long) for d, (_, pos, _) in enumerate(levels)])
    pos = torch.cat([pos for _, pos, _ in levels])
    return LevelGraphs(x=torch.cat([x for x, _, _ in levels]), pos=pos, video=torch.zeros_like(depth), depth=depth,
                       extent=(2.0 ** depth).to(pos.dtype), indices=torch.cat([idx for _, _, idx in levels]),
                       num_videos=1)


def _stacked_linears(backbone: HierarchicalBackbone) -> list[list[StackedLinear]]:
    return [[StackedLinear([conv.lin_rel, conv.lin_root]) for conv in block.convs] for block in backbone.layers]


class IncrementalHierarchy:
    """Per-level node state of a stream, updated push by push (see the module docstring).

    Args:
        backbone: the model, in eval mode (its dropout must be inactive for outputs to be final).
        config: the row grid and horizon.
    """

    def __init__(self, backbone: HierarchicalBackbone, config: StreamConfig) -> None:
        self.backbone = backbone
        self.config = config
        self.num_layers = backbone.cfg.n_layers
        self.reach = neighbour_reach(backbone.cfg.radius_s, config.row_period_s)
        width = backbone.hidden_size
        self.device = module_device(backbone)
        self.levels = [LevelState(d, width, with_block=d < backbone.depth, radius_s=backbone.cfg.radius_s,
                                  reach=self.reach, device=self.device) for d in range(backbone.depth + 1)]
        #: Per level, the TDGC distance gates of the edge lengths met so far (:mod:`egostream.stream.edge_gates`).
        self.gates = [EdgeGates() for _ in range(backbone.depth)]
        #: Per level, per TDGC layer, its ``lin_rel`` and ``lin_root`` as one GEMM (:mod:`egostream.kernels.stacked_linear`).
        self.linears = _stacked_linears(backbone)
        #: Per level, the last block window's graph (see :meth:`_window_graph`).
        self._windows: list[tuple[tuple[int, int], Tensor, Tensor, list[Tensor | None]] | None] = \
            [None] * backbone.depth
        self.num_rows = 0
        self._warm_up()

    def _warm_up(self) -> None:
        """Pack the TDGC weights and compile (or load) the CPU kernels now, when the stream is set up: the first
        push is then as fast as the next ones instead of paying ~0.3 s (~1.5 s on a checkout's first run)."""
        for stacks in self.linears:
            for linear in stacks:
                linear.prepare()
        if self.device.type == "cpu":
            warm_up_message_passing()
            warm_up_pooling()

    @property
    def depth(self) -> int:
        return self.backbone.depth

    @torch.no_grad()
    def push(self, projected: Tensor) -> int:
        """Append ``[m, F]`` projected rows (``backbone.proj`` of the next ``m`` feature rows).

        Returns the number of node updates: level nodes evaluated by a level block in this push, the discarded
        window halo included.
        """
        total = self.num_rows + len(projected)
        level0 = self.levels[0]
        self._grow(level0, total)
        level0.write(level0.inputs, self.num_rows, projected)
        level0.inputs_final = total
        updates = 0
        for d, block in enumerate(self.backbone.layers):
            updates += self._update_block(self.levels[d], block)
            self._grow(self.levels[d + 1], math.ceil(total / 2 ** (d + 1)))
            self._update_pooled(self.levels[d], self.levels[d + 1])
        self.num_rows = total
        self._evict()
        return updates

    def _grow(self, level: LevelState, num_nodes: int) -> None:
        if num_nodes == level.num_nodes:  # level d gains a node every 2**d rows only
            return
        step = 2 ** level.level
        level.add_nodes(self.config.row_positions_s(level.num_nodes * step, num_nodes - level.num_nodes,
                                                    step=step).to(self.device))

    def _update_block(self, level: LevelState, block: LevelBlock) -> int:
        start = level.outputs_final
        level.block_window = max(0, start - self.num_layers * self.reach)
        updates = self._run_block(level, block, start)
        level.outputs_final = block_final_count(level.inputs_final, self.num_layers, self.reach)
        return updates

    def _run_block(self, level: LevelState, block: LevelBlock, start: int) -> int:
        """Run ``block`` on the level's window ``[block_window, num_nodes)`` and write the outputs of nodes
        ``start ..``; returns the nodes evaluated."""
        window = level.block_window
        inputs = level.read(level.inputs, window)
        edges, pos, weights = self._window_graph(level, block)
        outputs = inputs + block(inputs, edges, pos, weights, self.linears[level.level])
        level.write(level.outputs, start, outputs[start - window:])
        return len(inputs)

    def _window_graph(self, level: LevelState, block: LevelBlock) -> tuple[Tensor, Tensor, list[Tensor | None]]:
        """The level's block window ``[block_window, num_nodes)`` as a graph: its ``[2, E]`` edges (renumbered from
        the window's first node), ``[n]`` positions in seconds and each conv's edge factors. Level ``d`` gains a
        node every ``2**d`` rows only, so the window is often the one of the last push: then the graph is reused
        (a window's nodes, positions and edges never change)."""
        key = (level.block_window, level.num_nodes)
        cached = self._windows[level.level]
        if cached is None or cached[0] != key:
            edges = level.edges_within(level.block_window)
            pos = level.read(level.pos, level.block_window).clone()
            cached = (key, edges, pos, self.gates[level.level].weights(list(block.convs), edges, pos))
            self._windows[level.level] = cached
        return cached[1], cached[2], cached[3]

    def __getstate__(self) -> dict[str, object]:
        state = dict(vars(self))
        state["_windows"] = [None] * len(self._windows)  # derived from the levels, rebuilt at the next push
        state["levels"] = [level.without_provisional_outputs() for level in self.levels]
        return state

    @torch.no_grad()
    def __setstate__(self, state: dict[str, object]) -> None:
        vars(self).update(state)
        vars(self).setdefault("gates", [EdgeGates() for _ in self.backbone.layers])  # a snapshot older than the gates
        vars(self).setdefault("linears", _stacked_linears(self.backbone))
        vars(self).setdefault("_windows", [None] * self.backbone.depth)
        for level, block in zip(self.levels, self.backbone.layers):
            if level.num_nodes > level.outputs_final:
                self._run_block(level, block, level.outputs_final)

    def _update_pooled(self, level: LevelState, upper: LevelState) -> None:
        start = upper.inputs_final
        window = max(0, 2 * start - 1)  # the first kept node 2 * start and its left neighbour
        upper.write(upper.inputs, start,
                    pool_even_rows(level.read(level.outputs, window), window, self.backbone.cfg.pool))
        upper.inputs_final = pooled_final_count(level.outputs_final, self.backbone.cfg.pool)

    def _evict(self) -> None:
        """Drop final nodes before the horizon that no future push reads (block halo, pooling window)."""
        horizon_row = max(0, self.num_rows - self.config.horizon_rows)
        for d, level in enumerate(self.levels):
            keep = math.ceil(horizon_row / 2 ** d)
            if level.with_block:
                next_window = max(0, level.outputs_final - self.num_layers * self.reach)
                # the last block window's inputs stay: a restored snapshot runs that window again
                level.evict_inputs_before(level.block_window)
                keep = min(keep, next_window, max(0, 2 * self.levels[d + 1].inputs_final - 1))
            else:
                keep = min(keep, level.inputs_final)
            level.evict_before(keep)

    def graphs(self, first_row: int) -> LevelGraphs:
        """Copies of every level's nodes anchored at rows ``>= first_row`` (node ``k`` of level ``d``: row
        ``2**d * k``), positions in stream seconds and absolute indices."""
        return stack_level_graphs([self._level_nodes(level, level.outputs, first_row, copy=False)  # cat copies
                                   for level in self.levels[:-1]])

    def top_features(self, first_row: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(x [n, F], pos [n] s, indices [n])`` after the last pooling (the backbone's ``final_x``), nodes anchored
        at rows ``>= first_row``."""
        top = self.levels[-1]
        return self._level_nodes(top, top.inputs, first_row)

    def _level_nodes(self, level: LevelState, features: RowBuffer, first_row: int, *,
                     copy: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """The level's nodes anchored at rows ``>= first_row``; ``copy=False`` returns views of the state (for a
        caller that copies them anyway)."""
        start = min(math.ceil(first_row / 2 ** level.level), level.num_nodes)
        x, pos = level.read(features, start), level.read(level.pos, start)
        if copy:
            x, pos = x.clone(), pos.clone()
        return x, pos, torch.arange(start, level.num_nodes, device=self.device)

    def outputs_final(self) -> tuple[int, ...]:
        """Final node features per level (level ``d``'s nodes ``0 .. count - 1`` are final)."""
        return tuple(level.outputs_final for level in self.levels[:-1])

    def num_nodes(self) -> tuple[int, ...]:
        """Nodes per level so far (``ceil(num_rows / 2**d)``)."""
        return tuple(level.num_nodes for level in self.levels[:-1])
