"""One level of the streaming hierarchy: its retained nodes, their features, positions and temporal edges.

Nodes are numbered absolutely from the stream start (node ``k`` of level ``d`` is the even-kept node of row
``2**d * k``). A level keeps the nodes ``first .. num_nodes - 1``; older ones have been evicted. For every retained
node it stores the block input (the projected row at level 0, the pooled node above), the block output (the node
feature of :class:`~egostream.backbone.graphs.LevelGraphs`) and its time in seconds. Block inputs are needed only
by the block's next runs, so they are evicted on their own, earlier (:meth:`LevelState.evict_inputs_before`). Its edges are added
incrementally, only the new nodes' edges per push (:func:`~egostream.kernels.temporal_edges.radius_edges_incremental`),
and are stored ordered by their later endpoint so the edges of a trailing window are a suffix found by binary search.
"""
from __future__ import annotations

import torch
from torch import Tensor

from egostream.kernels.temporal_edges import radius_edges_incremental
from egostream.stream.row_buffer import RowBuffer

__all__ = ["LevelState"]


class LevelState:
    """Retained nodes of one hierarchy level.

    Args:
        level: level ``d`` (its edges use the radius on ``pos / 2**d``).
        width: feature width ``F`` of the block inputs and outputs.
        with_block: the level runs a block (stores outputs and edges); ``False`` for the pooled top, which only
            stores the final pooled features (the backbone's ``final_x``).
        radius_s: edge radius in seconds at level 0.
        reach: the largest index offset an edge may join (see :func:`egostream.stream.finality.neighbour_reach`);
            a longer edge raises ``RuntimeError`` because finality would no longer be exact.
        device: where every tensor of the level lives.
    """

    def __init__(self, level: int, width: int, *, with_block: bool, radius_s: float, reach: int,
                 device: torch.device | None = None) -> None:
        self.level = level
        self.with_block = with_block
        self.radius_s = radius_s
        self.reach = reach
        #: First retained node (positions, outputs, edges).
        self.first = 0
        #: First retained block input (``>= first``).
        self.inputs_first = 0
        #: First node of the window the block ran on in the last push (its inputs are retained).
        self.block_window = 0
        self.num_nodes = 0
        #: Final block inputs (a prefix ``0 .. inputs_final - 1``).
        self.inputs_final = 0
        #: Final block outputs (a prefix ``0 .. outputs_final - 1``).
        self.outputs_final = 0
        self.pos = RowBuffer((), torch.float32, device=device)
        self.inputs = RowBuffer((width,), torch.float32, device=device)
        self.outputs = RowBuffer((width,), torch.float32, device=device)
        self._edges = RowBuffer((2,), torch.long, device=device)
        self._edge_last = RowBuffer((), torch.long, device=device)

    @property
    def scale(self) -> float:
        """``2**level``: the level's radius applies to ``pos / scale``."""
        return 2.0 ** self.level

    def add_nodes(self, pos: Tensor) -> int:
        """Append nodes at times ``pos`` ``[m]`` seconds and their edges; returns the number of edges added."""
        if len(pos) == 0:
            return 0
        if self.with_block:
            tail_start = max(self.first, self.num_nodes - self.reach - 1)
            tail = self.pos.rows[tail_start - self.first:]
            local = radius_edges_incremental(tail / self.scale, pos / self.scale, self.radius_s)
            edges = (local + tail_start).t()
            if len(edges) and int((edges[:, 0] - edges[:, 1]).abs().max()) > self.reach:
                raise RuntimeError(f"level {self.level}: an edge joins nodes more than {self.reach} apart; "
                                   "the finality rule assumes that reach")
            last = edges.max(dim=1).values
            order = torch.argsort(last, stable=True)
            self._edges.append(edges[order])
            self._edge_last.append(last[order])
        self.pos.append(pos)
        self.num_nodes += len(pos)
        return len(pos)

    def edges_within(self, start: int) -> Tensor:
        """``[2, E]`` edges among nodes ``start .. num_nodes - 1``, renumbered from 0 (node ``start`` is 0)."""
        begin = int(torch.searchsorted(self._edge_last.rows, start))
        edges = self._edges.rows[begin:]
        edges = edges[edges.min(dim=1).values >= start]
        return (edges - start).t().contiguous()

    def _first_of(self, buffer: RowBuffer) -> int:
        return self.inputs_first if buffer is self.inputs else self.first

    def read(self, buffer: RowBuffer, start: int) -> Tensor:
        """Rows of ``buffer`` (one of ``pos``/``inputs``/``outputs``) for nodes ``start ..`` its end (a view)."""
        first = self._first_of(buffer)
        if start < first:
            raise IndexError(f"level {self.level}: node {start} was evicted (first retained: {first})")
        return buffer.rows[start - first:]

    def write(self, buffer: RowBuffer, start: int, values: Tensor) -> None:
        """Replace the rows of ``buffer`` from node ``start`` on with ``values`` (rewrite and/or extend)."""
        first = self._first_of(buffer)
        if start < first:
            raise IndexError(f"level {self.level}: node {start} was evicted (first retained: {first})")
        buffer.truncate(start - first)
        buffer.append(values)

    def without_provisional_outputs(self) -> LevelState:
        """A shallow copy whose ``outputs`` hold the final outputs only (what a snapshot stores)."""
        copy = object.__new__(LevelState)
        vars(copy).update(vars(self))
        final = self.read(self.outputs, self.first)[:max(0, self.outputs_final - self.first)]
        copy.outputs = RowBuffer(tuple(final.shape[1:]), final.dtype, capacity=self.outputs.capacity,
                                 device=final.device)
        copy.outputs.append(final)
        return copy

    def evict_inputs_before(self, node: int) -> None:
        """Forget the block inputs of nodes before ``node`` (no future block run reads them)."""
        count = min(node - self.inputs_first, len(self.inputs))
        if count > 0:
            self.inputs.drop_front(count)
            self.inputs_first += count

    def evict_before(self, node: int) -> None:
        """Forget nodes ``first .. node - 1`` (and their inputs) and the edges that end before ``node``."""
        if node <= self.first:
            return
        count = node - self.first
        for buffer in (self.pos, self.outputs):
            buffer.drop_front(min(count, len(buffer)))
        self.evict_inputs_before(node)
        if self.with_block:
            dropped = int(torch.searchsorted(self._edge_last.rows, node))
            self._edges.drop_front(dropped)
            self._edge_last.drop_front(dropped)
        self.first = node

    @property
    def num_edges(self) -> int:
        """Edges currently stored (both directions counted)."""
        return len(self._edges)
