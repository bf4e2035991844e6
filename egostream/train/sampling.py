"""The order in which training samples are drawn: shuffled passes, a pure function of (seed, stream, step).

The authors draw each task's batches from a shuffled ``DataLoader`` with ``drop_last=True`` wrapped in an
``InfiniteLoader`` that restarts (and reshuffles) a loader as soon as it is exhausted
(sapeirone/hier-egopack@4fff4e5:utils/dataloading.py, ``InfiniteLoader``, ``build_dataloader``). :class:`ShuffledBatches`
gives the same structure (full batches only, a fresh permutation per pass over the dataset) but derives the
permutation of pass ``p`` from ``(seed, stream, p)`` alone, so the batch of any step is known without replaying the
run: a run resumed from a checkpoint draws exactly the batches the uninterrupted run would have drawn.
"""
from __future__ import annotations

import numpy as np

from egostream.errors import InputError

__all__ = ["ShuffledBatches"]


class ShuffledBatches:
    """Batches of sample indices for a dataset of ``num_samples``, ``batch_size`` at a time, in shuffled passes.

    Args:
        num_samples: dataset size.
        batch_size: samples per batch; the incomplete last batch of each pass is dropped.
        seed: the run's seed.
        stream: distinguishes the datasets of one run (e.g. the task index in multi-task training).
        name: dataset name for error messages.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, stream: int = 0, name: str = "dataset") -> None:
        if batch_size < 1:
            raise InputError(None, f"batch_size ({name})", f"must be >= 1, got {batch_size}")
        if num_samples < batch_size:
            raise InputError(None, f"batch_size ({name})", f"{num_samples} training samples cannot fill one batch of "
                                                           f"{batch_size} (the last incomplete batch is dropped)")
        self.num_samples, self.batch_size, self.seed, self.stream = num_samples, batch_size, seed, stream
        self._pass: int | None = None
        self._order = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        """Batches per pass (the authors' ``len(dataloader)`` with ``drop_last=True``)."""
        return self.num_samples // self.batch_size

    def permutation(self, pass_index: int) -> np.ndarray:
        """``[num_samples]`` int64 sample order of pass ``pass_index``."""
        generator = np.random.default_rng([self.seed % 2**32, self.stream, pass_index])
        return generator.permutation(self.num_samples).astype(np.int64)

    def batch(self, step: int) -> list[int]:
        """Sample indices of the ``step``-th batch drawn from this dataset (0-based, counted over all passes)."""
        pass_index, position = divmod(step, len(self))
        if pass_index != self._pass:
            self._pass, self._order = pass_index, self.permutation(pass_index)
        start = position * self.batch_size
        return self._order[start:start + self.batch_size].tolist()
