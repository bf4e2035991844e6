"""A growable tensor of rows with cheap append, tail rewrite and front eviction (the engine's node storage).

The streaming engine appends a few rows per push, rewrites its provisional tail, and drops old rows once they leave
the horizon. :class:`RowBuffer` does all three in amortised ``O(rows touched)``: storage doubles when full and live
rows are moved to the front only when the free space at the end runs out, so a push never copies the whole buffer
except during those (rare, geometric) compactions.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["RowBuffer"]


class RowBuffer:
    """Live rows ``[len, *row_shape]`` stored in a larger preallocated tensor.

    Args:
        row_shape: shape of one row (``()`` for scalars).
        dtype: element dtype.
        capacity: initial number of row slots (grows by doubling).
        device: where the rows live (default: the CPU).

    Pickled, a buffer keeps its live rows only (no free slots), so a snapshot holds exactly the retained state.
    """

    def __init__(self, row_shape: tuple[int, ...], dtype: torch.dtype, capacity: int = 64,
                 device: torch.device | None = None) -> None:
        self._storage = torch.empty((max(1, capacity), *row_shape), dtype=dtype, device=device)
        self._start = 0
        self._stop = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"rows": self.rows, "capacity": self.capacity}

    def __setstate__(self, state: dict[str, Any]) -> None:
        rows: Tensor = state["rows"]
        capacity = max(int(state["capacity"]), len(rows), 1)
        self._storage = torch.empty((capacity, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
        self._storage[:len(rows)] = rows
        self._start, self._stop = 0, len(rows)

    def __len__(self) -> int:
        return self._stop - self._start

    @property
    def rows(self) -> Tensor:
        """``[len, *row_shape]`` view of the live rows (valid until the next write)."""
        return self._storage[self._start:self._stop]

    @property
    def capacity(self) -> int:
        """Row slots currently allocated."""
        return len(self._storage)

    def append(self, values: Tensor) -> None:
        """Add ``[m, *row_shape]`` rows at the end."""
        count = len(values)
        if self._stop + count > len(self._storage):
            self._make_room(count)
        self._storage[self._stop:self._stop + count] = values
        self._stop += count

    def truncate(self, length: int) -> None:
        """Keep only the first ``length`` live rows (``0 <= length <= len``)."""
        if not 0 <= length <= len(self):
            raise IndexError(f"cannot truncate {len(self)} rows to {length}")
        self._stop = self._start + length

    def drop_front(self, count: int) -> None:
        """Forget the first ``count`` live rows (``0 <= count <= len``)."""
        if not 0 <= count <= len(self):
            raise IndexError(f"cannot drop {count} of {len(self)} rows")
        self._start += count

    def _make_room(self, count: int) -> None:
        """Compact the live rows to the front, doubling the storage first unless the rows fill at most half of it
        (so a compaction frees at least as many slots as it copies: amortised O(1) per appended row)."""
        live = len(self)
        capacity = len(self._storage)
        while 2 * (live + count) > capacity:
            capacity *= 2
        if capacity != len(self._storage):
            storage = torch.empty((capacity, *self._storage.shape[1:]), dtype=self._storage.dtype,
                                  device=self._storage.device)
            storage[:live] = self.rows
            self._storage = storage
        else:
            self._storage[:live] = self.rows.clone()
        self._start, self._stop = 0, live
