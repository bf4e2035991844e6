"""The distance gates of a streaming level, computed once per distinct edge length.

A TDGC layer weighs each edge message by ``sign(p_j - p_i) * gate(|p_j - p_i|)``
(:class:`~egostream.backbone.tdgc.DistanceGatedConv`), where the gate is a small MLP of the edge length in seconds.
The offline model evaluates it on the distinct lengths of the graph at every forward. A stream's nodes lie on a fixed
row grid, so the same few lengths come back push after push (about ``2 * reach`` per level, plus the float32
rounding variants of positions far from the stream start): :class:`EdgeGates` keeps each conv's gate rows by exact
float32 length and evaluates the MLP only on lengths it has not met, so a push reads no gate weights at all in the
steady state. A gate row depends on its own length only, so the factors equal the offline ones (to the rounding of
the batch they were computed in, as the offline model's own unique-length batches). A stream snapshot leaves the
table out: each gate row is computed alone, so the rebuilt table holds the same values.
"""
from __future__ import annotations

import torch
from torch import Tensor

from collections.abc import Sequence

from egostream.backbone.tdgc import DistanceGatedConv

__all__ = ["EdgeGates"]


class EdgeGates:
    """Gate rows by edge length, for each of a fixed sequence of TDGC layers (a level's block, the LTA head).

    Args:
        max_lengths: distinct lengths kept; past it the table starts over (a stream of days meets new float32
            rounding variants of its grid's lengths now and then, so memory stays bounded).
    """

    def __init__(self, max_lengths: int = 4096) -> None:
        self.max_lengths = max_lengths
        #: ``[K]`` float32 edge lengths in seconds, sorted, and per layer their ``[K, F]`` gate rows.
        self.lengths: Tensor | None = None
        self.gates: list[Tensor] = []

    def __len__(self) -> int:
        return 0 if self.lengths is None else len(self.lengths)

    def __getstate__(self) -> dict[str, object]:
        """A snapshot keeps the bound only: the table is rebuilt from the lengths the stream meets next."""
        return {"max_lengths": self.max_lengths, "lengths": None, "gates": []}

    @torch.no_grad()
    def weights(self, convs: Sequence[DistanceGatedConv], edge_index: Tensor, pos: Tensor) -> list[Tensor | None]:
        """Each layer's ``[E, F]`` edge factors for ``edge_index [2, E]`` over nodes at ``pos [N]`` seconds (what
        ``DistanceGatedConv.edge_weights`` returns); ``convs`` are the same layers, in the same order, every call."""
        offset = pos[edge_index[0]] - pos[edge_index[1]]
        if len(offset) == 0 or not any(conv.distance_gate for conv in convs):
            return [conv.signed_weights(offset, offset.new_zeros(0, conv.out_channels) if conv.distance_gate else None)
                    for conv in convs]
        where = self._rows(convs, offset.abs())
        return [conv.signed_weights(offset, gates[where] if conv.distance_gate else None)
                for conv, gates in zip(convs, self.gates)]

    def _rows(self, convs: Sequence[DistanceGatedConv], lengths: Tensor) -> Tensor:
        """``[E]`` rows of the table holding ``lengths [E]``, after adding the lengths it lacked."""
        if self.lengths is not None and len(self):
            where = torch.searchsorted(self.lengths, lengths).clamp(max=len(self) - 1)
            if bool((self.lengths[where] == lengths).all()):
                return where
        known = self.lengths if self.lengths is not None and len(self) < self.max_lengths else lengths[:0]
        new = torch.unique(lengths)
        new = new[~torch.isin(new, known)]
        merged, order = torch.sort(torch.cat([known, new]))
        # one length at a time: a gate row then never depends on which lengths shared its batch, so a table rebuilt
        # after a snapshot restore (snapshots leave the table out) holds the very same values
        fresh = [torch.cat([conv.gate(length) for length in new.split(1)]) if conv.distance_gate
                 else new.new_zeros(len(new), 0) for conv in convs]
        previous = self.gates if len(known) else [row[:0] for row in fresh]
        self.gates = [torch.cat([old, added])[order] for old, added in zip(previous, fresh)]
        self.lengths = merged
        return torch.searchsorted(merged, lengths)
